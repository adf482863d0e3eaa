"""Faces on upload: find the faces in the photos of owners who turned faces on, store each face's
box and descriptor once, and show them to their owner alone.

Faces are an owner's data: found only when the instance (EYES_FACES) and the owner (their
`faces_enabled` preference) both say so; listed for nobody else; deleted with their photo, and
all of them when the owner turns faces off.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from PIL.Image import DecompressionBombError
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Face, Person, Photo, User
from eyes.db.session import transaction
from eyes.domain import Account
from eyes.errors import EyesError, NotFound
from eyes.images import pixel_count
from eyes.ml.faces import Face as FoundFace
from eyes.ml.faces import find_in_file
from eyes.services import face_recognition
from eyes.services.image_store import original_key

log = logging.getLogger(__name__)
BATCH = 50
MAX_PAGE = 1000  # faces per page of GET /api/v1/me/faces


class FacePublic(BaseModel):
    """A face as its owner sees it: where it is, never its descriptor."""

    id: int
    photo: str = Field(description="The photo's id")
    left: int
    top: int
    right: int
    bottom: int


def active(ctx: Context) -> bool:
    return ctx.settings.faces


def _wanted() -> tuple[ColumnElement[bool], ...]:
    """Photos not yet scanned whose owner has faces on."""
    return (
        Photo.faces_scanned_at.is_(None),
        Photo.owner_id.in_(select(User.id).where(User.faces_enabled.is_(True))),
    )


def unscanned_photo_ids(ctx: Context, owner_id: int | None = None, limit: int = BATCH) -> list[int]:
    """Photos of owners with faces on that have not been scanned, oldest first."""
    query = select(Photo.id).where(*_wanted()).order_by(Photo.id).limit(limit)
    if owner_id is not None:
        query = query.where(Photo.owner_id == owner_id)
    with ctx.sessions() as session:
        return list(session.scalars(query))


def count_unscanned(ctx: Context, owner_id: int | None = None) -> int:
    query = select(func.count(Photo.id)).where(*_wanted())
    if owner_id is not None:
        query = query.where(Photo.owner_id == owner_id)
    with ctx.sessions() as session:
        return int(session.scalar(query) or 0)


def scan_photos(ctx: Context, photo_ids: Sequence[int]) -> int:
    """Find and store the faces of these photos, where faces are on for the instance and the
    owner and the photo was not scanned yet (a second run does nothing), then group each owner's
    unnamed faces again where new ones were found (services/people.group_new_faces). Returns how many photos were scanned."""
    if not active(ctx) or not photo_ids:
        return 0
    with ctx.sessions() as session:
        rows = session.execute(
            select(Photo.id, Photo.sha256, Photo.owner_id).where(Photo.id.in_(list(photo_ids)), *_wanted())
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
                .where(Photo.id == photo_id, *_wanted())
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
    if found_for:
        # Here, not at the top: people's views read photos, which read accounts, which read this.
        from eyes.services import people

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
    while ids := unscanned_photo_ids(ctx, owner_id):
        count = scan_photos(ctx, ids)
        if count == 0:  # nothing could be claimed (faces turned off meanwhile)
            break
        done += count
        if progress is not None:
            progress(count)
    return done


def forget_faces(session: Session, owner_id: int) -> None:
    """Delete every face found in this owner's photos, the people they named in them and their
    recognition versions, and mark the photos unscanned (faces turned off:
    accounts.update_preferences). Turning faces on again starts afresh."""
    mine = select(Photo.id).where(Photo.owner_id == owner_id)
    session.execute(delete(Face).where(Face.photo_id.in_(mine)))
    face_recognition.forget(session, owner_id)  # the recognition model's versions name those faces
    session.execute(delete(Person).where(Person.owner_id == owner_id))  # their viewers and rejections go too
    session.execute(update(Photo).where(Photo.owner_id == owner_id).values(faces_scanned_at=None))


def my_faces(ctx: Context, user: Account, after: int = 0, limit: int = MAX_PAGE) -> list[FacePublic]:
    """The faces found in `user`'s own photos (never anybody else's), by id after `after`."""
    with ctx.sessions() as session:
        rows = session.execute(
            select(Face.id, Photo.public_id, Face.left, Face.top, Face.right, Face.bottom)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Photo.owner_id == user.id, Face.id > after)
            .order_by(Face.id)
            .limit(min(limit, MAX_PAGE))
        ).all()
    return [FacePublic(id=r[0], photo=r[1], left=r[2], top=r[3], right=r[4], bottom=r[5]) for r in rows]


def face_count(ctx: Context, key: str, viewer: Account | None) -> int | None:
    """How many faces the photo (by its public id) has, for its owner when faces are on for them;
    None for anybody else (they learn nothing, not even whether faces were looked for)."""
    if viewer is None or not viewer.faces_enabled or not active(ctx):
        return None
    with ctx.sessions() as session:
        owned = session.scalar(select(Photo.id).where(Photo.public_id == key, Photo.owner_id == viewer.id))
        if owned is None:
            return None
        return int(session.scalar(select(func.count(Face.id)).where(Face.photo_id == owned)) or 0)
