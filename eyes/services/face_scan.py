"""Finding faces: the scan job's work. Look for faces in the stored originals of photos whose
owner turned faces on, store each face's box and descriptor once (the photo is marked scanned in
the same transaction), and group the new ones into the owner's people.

What faces are kept, and for whom, is services/faces.py; grouping and naming them is
services/people.py. Nothing imports this module but the jobs and the CLI, so it may import both.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from PIL.Image import DecompressionBombError
from sqlalchemy import insert, select, update

from eyes.context import Context
from eyes.db.models import Face, Photo
from eyes.db.session import transaction
from eyes.errors import EyesError, NotFound
from eyes.images import pixel_count
from eyes.ml.faces import Face as FoundFace
from eyes.ml.faces import find_in_file
from eyes.services import face_recognition, faces, people
from eyes.services.image_store import original_key

log = logging.getLogger(__name__)


def scan_photos(ctx: Context, photo_ids: Sequence[int]) -> int:
    """Find and store the faces of these photos, where faces are on for the instance and the
    owner and the photo was not scanned yet (a second run does nothing), then suggest names for the
    new faces (services/face_recognition) and group each owner's unnamed faces again where new
    ones were found (people.group_new_faces). Returns how many photos were scanned."""
    if not faces.active(ctx) or not photo_ids:
        return 0
    with ctx.sessions() as session:
        rows = session.execute(
            select(Photo.id, Photo.sha256, Photo.owner_id).where(
                Photo.id.in_(list(photo_ids)), *faces.awaiting_scan()
            )
        ).all()
    scanned = 0
    found_for: set[int] = set()  # owners with new faces: grouped again below
    for photo_id, sha, owner_id in rows:
        found = _find(ctx, sha)
        with transaction(ctx.sessions) as session:
            # Written only if the photo is still there, still unscanned and its owner still has
            # faces on: a delete or an opt-out meanwhile wins.
            claimed = session.execute(
                update(Photo)
                .where(Photo.id == photo_id, *faces.awaiting_scan())
                .values(faces_scanned_at=datetime.now(UTC))
                .returning(Photo.id)
            ).first()
            if claimed is None:
                continue
            if found:
                session.execute(
                    insert(Face),
                    [
                        {
                            "photo_id": photo_id,
                            "left": f.box[0],
                            "top": f.box[1],
                            "right": f.box[2],
                            "bottom": f.box[3],
                            "descriptor": f.descriptor.astype("<f4").tobytes(),
                            "created_at": datetime.now(UTC),
                        }
                        for f in found
                    ],
                )
                found_for.add(owner_id)
        scanned += 1
    if scanned:  # the new faces get their owner's suggestions at once
        face_recognition.suggest_for_photos(ctx, [row[0] for row in rows])
    for owner_id in sorted(found_for):
        people.group_new_faces(ctx, owner_id)
    return scanned


def _find(ctx: Context, sha: str) -> list[FoundFace]:
    """The faces in one stored original; none if the image itself cannot be read (it is marked
    scanned). A fault of the platform (a store out of reach, models that cannot load) raises: the
    job fails, the photo stays unscanned and the sweep tries again."""
    finder = ctx.faces
    try:
        with ctx.blobs.open(original_key(sha)) as blob:
            data = blob.read()
    except NotFound as exc:
        log.warning("the original of %s is missing: %s", sha, exc)
        return []
    try:
        with ctx.limits.decoding.hold(pixel_count(data), patient=True):
            return find_in_file(finder, io.BytesIO(data))
    # dlib raises RuntimeError on an image it cannot process: that photo has no faces.
    except (OSError, ValueError, RuntimeError, DecompressionBombError, EyesError) as exc:
        log.warning("cannot look for faces in %s: %s", sha, exc)
        return []


def scan_all(ctx: Context, owner_id: int | None = None, progress: Callable[[int], None] | None = None) -> int:
    """Scan every photo still waiting (resumable: the scan marker is what is left)."""
    done = 0
    while ids := faces.unscanned_photo_ids(ctx, owner_id):
        count = scan_photos(ctx, ids)
        if count == 0:  # nothing could be claimed (faces turned off meanwhile)
            break
        done += count
        if progress is not None:
            progress(count)
    return done
