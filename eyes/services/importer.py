"""Bulk import of a folder tree, with a progress bar and a summary."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar, cast
from urllib.parse import unquote

import numpy as np
from sqlalchemy import select
from tqdm import tqdm

from eyes.context import Context
from eyes.db.models import Photo, User
from eyes.domain import License, Visibility
from eyes.errors import BadRequest, EyesError, QuotaExceeded
from eyes.images import plausible_date
from eyes.ml.layout import matches
from eyes.services import image_store
from eyes.services.accounts import get_user_by_name
from eyes.services.fingerprint import Fingerprint
from eyes.services.photos import (
    PhotoDraft,
    PhotoUpload,
    Uploaded,
    content_hash,
    owned_copies,
    prepare_upload,
    store_uploads,
)
from eyes.services.quota import over_quota, used_bytes
from eyes.services.similar import (
    CANDIDATE_SIMILARITY,
    near_duplicates_among_own,
    remember_layout,
)
from eyes.services.tagging import tag_photos
from eyes.services.tags import normalize_tag
from eyes.services.views import AccountView

# Which files are candidates; each is still decoded before it is accepted.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
BATCH = 64  # files stored in one transaction, then tagged together
PREPARE_THREADS = 2
T = TypeVar("T")
R = TypeVar("R")
# Files prepared ahead of the batch being stored, at most: each holds its thumbnails and its
# layout summaries (about 1 MB).
AHEAD = BATCH


@dataclass
class ImportReport:
    imported: int = 0
    existing: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    # (file, the owner's photo or earlier file it nearly duplicates): imported, or skipped when asked.
    near_duplicates: list[tuple[str, str]] = field(default_factory=list)
    skipped_near_duplicates: int = 0
    photo_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "existing": self.existing,
            "rejected": [{"file": f, "reason": r} for f, r in self.rejected],
            "near_duplicates": [{"file": f, "of": o} for f, o in self.near_duplicates],
            "skipped_near_duplicates": self.skipped_near_duplicates,
            "seconds": round(self.seconds, 3),
            "images_per_second": round((self.imported + self.existing) / self.seconds, 1)
            if self.seconds
            else None,
        }


def find_images(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def file_date(path: Path) -> datetime | None:
    """When the file was last modified: the date taken of a photo whose EXIF has none (a scan, an
    export that dropped the metadata) is more often that than the day it was imported."""
    try:
        return plausible_date(datetime.fromtimestamp(path.stat().st_mtime, UTC))
    except (OSError, OverflowError, ValueError):
        return None


def resolve_owner(ctx: Context, name: str | None) -> AccountView:
    if name is not None:
        return get_user_by_name(ctx, name)
    with ctx.sessions() as session:
        users = list(session.scalars(select(User).limit(2)))
        if len(users) == 1:
            return AccountView.of(users[0])
    raise BadRequest(
        "say who owns the photos with --owner NAME"
        if users
        else "there is no account yet: create one with 'eyes users create NAME --admin'"
    )


def import_tree(
    ctx: Context,
    root: Path,
    *,
    owner: str | None = None,
    visibility: str = "public",
    tags_from_folders: bool = False,
    license: str | None = None,
    skip_near_duplicates: bool = False,
    progress: bool = True,
) -> ImportReport:
    """Import every image under `root` for `owner`; `license` (None: the owner's default licence)
    is given to each new photo (one already there keeps its own)."""
    chosen = License.parse(license) if license else None
    user = resolve_owner(ctx, owner)
    files = find_images(root)
    report = ImportReport()
    started = time.perf_counter()
    ctx.similar.index()  # built once, before the threads need it
    owned = owned_copies(ctx, user.id)  # what an import run again finds: not decoded again

    def prepare(path: Path) -> Candidate:
        shown = str(path.relative_to(root)) if path != root else path.name
        try:
            data = path.read_bytes()
            sha256 = content_hash(data)
            if sha256 in owned:
                return Candidate(shown, existing=owned[sha256])
            tags: tuple[str, ...] = ()
            if tags_from_folders and path.parent != root:
                # %XX in a folder name is a character a file system refuses (how `eyes export
                # dataset` writes such a tag); '%' itself is never part of a tag.
                tags = (normalize_tag(unquote(path.parent.name), ctx.settings.max_tag_length),)
            draft = PhotoDraft(
                filename=path.name,
                visibility=Visibility.parse(visibility),
                tags=tags,
                taken_at=file_date(path),
                license=chosen,
            )
            # Embedded before it is stored (once: tagging finds the embedding stored), so that a
            # near-duplicate can be skipped before anything of it is written.
            upload = prepare_upload(ctx, path, draft, data, sha256, patient=True, embed=True)
        except EyesError as exc:
            return Candidate(shown, refused=exc.message)
        if upload.fingerprint is not None:
            _ = upload.fingerprint.layout  # summarised by this thread, not by the one that stores
        return Candidate(shown, upload=upload)

    batch: list[Candidate] = []
    # Two threads read, decode, make the thumbnails and embed (all release the GIL) while this
    # one checks, stores and tags what they have prepared, a batch in one transaction.
    with (
        ThreadPoolExecutor(max_workers=PREPARE_THREADS) as pool,
        ThreadPoolExecutor(max_workers=image_store.WRITERS) as writers,
        tqdm(total=len(files), desc="importing", unit="photo", disable=not progress) as bar,
    ):
        run = _Run(ctx, user.id, Admission(ctx, user.id), writers, skip_near_duplicates, report)
        for candidate in _bounded_map(pool, prepare, files, AHEAD):
            bar.update(1)
            batch.append(candidate)
            if len(batch) >= BATCH:
                _store(run, batch)
                batch = []
        _store(run, batch)
    report.seconds = time.perf_counter() - started
    # Sensitive-content scores come afterwards, from the background job: the score costs more
    # than the rest of an import, and others see the photos blurred until they have one.
    if ctx.jobs is not None and report.imported:
        ctx.jobs.enqueue("score_sensitive")  # else the server's next sweep finds them
    return report


@dataclass
class Candidate:
    """A file of the import, prepared: a photo to store, or the owner's photo of the same bytes,
    or why it is refused."""

    shown: str  # the file, as the report names it
    upload: PhotoUpload | None = None
    existing: int | None = None
    refused: str = ""


@dataclass
class _Run:
    """What every batch of one import is stored with."""

    ctx: Context
    owner_id: int
    admission: Admission
    writers: ThreadPoolExecutor  # write the blobs of admitted files while the next are checked
    skip_near_duplicates: bool
    report: ImportReport


def _store(run: _Run, batch: list[Candidate]) -> None:
    """Check a batch of prepared files for near-duplicates, store those admitted in one
    transaction, tag them, and report each file, in order."""
    ctx, owner_id, admission, report = run.ctx, run.owner_id, run.admission, run.report
    shas = [c.upload.image.sha256 for c in batch if c.upload is not None]
    # The same bytes as a photo stored since the import started (from an earlier file, say).
    owned = owned_copies(ctx, owner_id, shas)
    admitted: list[tuple[int, PhotoUpload]] = []  # with its position in the batch
    admitted_shas: set[str] = set()
    # By position in the batch: what became of each file, why it was refused, what it nearly duplicates.
    outcome: dict[int, Uploaded] = {}
    refused: dict[int, str] = {}
    near: dict[int, str] = {}
    writes: list[Future[None]] = []
    # The quota walked here too (store_uploads counts again, in its transaction): a file it refuses
    # must not be what a later near-copy of it is skipped for.
    used = 0
    if ctx.settings.storage_quota_bytes:
        with ctx.sessions() as session:
            used = used_bytes(session, owner_id)
    for position, candidate in enumerate(batch):
        upload = candidate.upload
        if candidate.refused:
            refused[position] = candidate.refused
        elif upload is None or upload.image.sha256 in owned:
            existing = owned[upload.image.sha256] if upload else candidate.existing
            outcome[position] = Uploaded(cast(int, existing), created=False)
        elif upload.image.sha256 in admitted_shas:  # a file before it has the same bytes
            admitted.append((position, upload))  # stored once, for both
        elif over := over_quota(ctx.settings, used, upload.image.size_bytes):
            refused[position] = over.message
        else:
            found = admission.check(candidate.shown, upload.fingerprint)
            if found is not None:
                near[position] = found
            if found is None or not run.skip_near_duplicates:
                admitted.append((position, upload))
                admitted_shas.add(upload.image.sha256)
                used += upload.image.size_bytes
                # Its blobs now, while the rest of the batch is checked: each write waits on the
                # disk, and store_uploads then finds them there.
                writes.append(run.writers.submit(image_store.write_missing, ctx, [upload.image]))
            else:
                report.skipped_near_duplicates += 1
    for write in writes:
        write.result()
    stored = store_uploads(ctx, owner_id, [upload for _, upload in admitted])
    admission.stored()  # in the index now
    for (position, _), result in zip(admitted, stored, strict=True):
        if isinstance(result, QuotaExceeded):
            refused[position] = result.message
            near.pop(position, None)  # not imported: why is all there is to say of it
            continue
        outcome[position] = result
        if result.fingerprint is not None:  # a photo created
            remember_layout(ctx, result.photo_id, result.fingerprint)
    for position, candidate in enumerate(batch):
        if position in refused:
            report.rejected.append((candidate.shown, refused[position]))
        if position in near:
            report.near_duplicates.append((candidate.shown, near[position]))
        if position in outcome:
            report.photo_ids.append(outcome[position].photo_id)
            if outcome[position].created:
                report.imported += 1
            else:
                report.existing += 1
    created = [r.photo_id for r in outcome.values() if r.created]
    tag_photos(ctx, created, score_sensitive=False)


class Admission:
    """Near-duplicates among the owner's photos (the index) and among the files of the batch
    admitted before (not in the index until the batch is stored)."""

    def __init__(self, ctx: Context, owner_id: int) -> None:
        self._ctx = ctx
        self._owner_id = owner_id
        self._admitted: list[tuple[str, np.ndarray, Fingerprint]] = []

    def check(self, shown: str, print_: Fingerprint | None) -> str | None:
        """What this file nearly duplicates (a photo's URL, or another file of this import), or
        None: then it is admitted."""
        if print_ is None:
            return None
        vector = print_.features[0] / max(float(np.linalg.norm(print_.features[0])), 1e-12)
        found = near_duplicates_among_own(self._ctx, self._owner_id, vector, print_.layout)
        if found:
            return self._url(found[0][0])
        threshold = self._ctx.settings.near_duplicate_similarity
        for other, other_vector, other_print in self._admitted:
            if (
                float(other_vector @ vector) >= CANDIDATE_SIMILARITY
                and matches(print_.layout, other_print.layout) >= threshold
            ):
                return other
        self._admitted.append((shown, vector, print_))
        return None

    def stored(self) -> None:
        """The batch is stored: the index answers for its files from now on."""
        self._admitted.clear()

    def _url(self, photo_id: int) -> str:
        with self._ctx.sessions() as session:
            return f"/photos/{session.scalar(select(Photo.public_id).where(Photo.id == photo_id))}"


def _bounded_map(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: list[T], window: int) -> Iterator[R]:
    """`pool.map` that keeps at most `window` results waiting (each holds a network input)."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
