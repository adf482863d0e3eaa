"""Bulk import of a folder tree, with a progress bar and a summary."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

import numpy as np
from sqlalchemy import func, select
from tqdm import tqdm

from eyes.context import Context
from eyes.db.models import Photo, User
from eyes.domain import License, Visibility
from eyes.errors import BadRequest, EyesError
from eyes.images import plausible_date
from eyes.ml.layout import matches
from eyes.services.accounts import get_user_by_name
from eyes.services.photos import PhotoDraft, Uploaded, owned_copy, upload_photo
from eyes.services.similar import (
    CANDIDATE_SIMILARITY,
    Fingerprint,
    fingerprint_of,
    near_duplicates_among_own,
    remember_layout,
)
from eyes.services.tagging import tag_photos
from eyes.services.tags import normalize_tag

# Which files are candidates; each is still decoded before it is accepted.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
TAG_BATCH = 64
STORE_THREADS = 2
T = TypeVar("T")
R = TypeVar("R")
AHEAD = 2 * TAG_BATCH  # photos stored ahead of the network, at most


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


def resolve_owner(ctx: Context, name: str | None) -> User:
    if name is not None:
        return get_user_by_name(ctx, name)
    with ctx.sessions() as session:
        users = list(session.scalars(select(User).limit(2)))
        count = session.scalar(select(func.count(User.id)))
    if count == 1:
        return users[0]
    raise BadRequest(
        "say who owns the photos with --owner NAME"
        if count
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
    admission = Admission(ctx, user.id)

    def store(path: Path) -> tuple[str, Uploaded | str, str | None]:
        shown = str(path.relative_to(root)) if path != root else path.name
        try:
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
            print_ = None if owned_copy(ctx, user.id, path) else fingerprint_of(ctx, path)
            near = admission.check(shown, print_) if print_ is not None else None
            if near is not None and skip_near_duplicates:
                return shown, SKIPPED, near
            try:
                uploaded = upload_photo(ctx, user.id, path, draft, print_.features if print_ else None)
                if print_ is not None and uploaded.created:
                    remember_layout(ctx, uploaded.photo_id, print_)
            finally:
                admission.settled(shown)  # indexed now (or refused): the index answers for it
        except EyesError as exc:
            return shown, exc.message, None
        return shown, uploaded, near

    untagged: list[int] = []
    # Two threads decode, embed and store (decoding, thumbnails and the network release the
    # GIL) while this one runs the tags of what they have stored, a batch at a time.
    with (
        ThreadPoolExecutor(max_workers=STORE_THREADS) as pool,
        tqdm(total=len(files), desc="importing", unit="photo", disable=not progress) as bar,
    ):
        for shown, result, near in _bounded_map(pool, store, files, AHEAD):
            bar.update(1)
            if result is SKIPPED:
                report.skipped_near_duplicates += 1
            elif isinstance(result, str):
                report.rejected.append((shown, result))
                continue
            if near is not None:
                report.near_duplicates.append((shown, near))
            if not isinstance(result, Uploaded):
                continue
            report.photo_ids.append(result.photo_id)
            if result.created:
                report.imported += 1
                untagged.append(result.photo_id)
            else:
                report.existing += 1
            if len(untagged) >= TAG_BATCH:
                tag_photos(ctx, untagged, score_sensitive=False)
                untagged = []
        tag_photos(ctx, untagged, score_sensitive=False)
    report.seconds = time.perf_counter() - started
    # Sensitive-content scores come afterwards, from the background job: the score costs more
    # than the rest of an import, and others see the photos blurred until they have one.
    if ctx.jobs is not None and report.imported:
        ctx.jobs.enqueue("score_sensitive")  # else the server's next sweep finds them
    return report


SKIPPED = "skipped: a near-duplicate of a photo the owner has"


class Admission:
    """Near-duplicates among the owner's photos (the index) and among the files of this import
    that may not be in the index the check read (two threads store at once)."""

    def __init__(self, ctx: Context, owner_id: int) -> None:
        self._ctx = ctx
        self._owner_id = owner_id
        self._lock = threading.Lock()
        self._in_flight: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        # Files indexed lately, numbered: a check compares those indexed since it read the index.
        self._settled: deque[tuple[int, str, tuple[np.ndarray, np.ndarray | None]]] = deque(
            maxlen=4 * STORE_THREADS
        )
        self._count = 0

    def check(self, shown: str, print_: Fingerprint) -> str | None:
        """What this file nearly duplicates (a photo's URL, or another file of this import), or
        None; then the file is in flight until `settled`."""
        vector = print_.features[0] / max(float(np.linalg.norm(print_.features[0])), 1e-12)
        with self._lock:
            since = self._count
        # The index without the lock: it is the slow part, and the files it may miss are compared below.
        found = near_duplicates_among_own(self._ctx, self._owner_id, vector, print_.layout)
        if found:
            return self._url(found[0][0])
        with self._lock:
            others = list(self._in_flight.items()) + [(f, e) for n, f, e in self._settled if n >= since]
            threshold = self._ctx.settings.near_duplicate_similarity
            for other, (other_vector, other_layout) in others:
                if (
                    float(other_vector @ vector) >= CANDIDATE_SIMILARITY
                    and matches(print_.layout, other_layout) >= threshold
                ):
                    return other
            self._in_flight[shown] = (vector, print_.layout)
            return None

    def settled(self, shown: str) -> None:
        """The file is in the index now (or was refused)."""
        with self._lock:
            entry = self._in_flight.pop(shown, None)
            if entry is not None:
                self._settled.append((self._count, shown, entry))
                self._count += 1

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
