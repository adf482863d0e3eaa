"""Bulk import of a folder tree, with a progress bar and a summary."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

from sqlalchemy import func, select
from tqdm import tqdm

from eyes.context import Context
from eyes.db.models import User
from eyes.domain import License, Visibility
from eyes.errors import BadRequest, EyesError
from eyes.images import pixel_count, plausible_date
from eyes.services.accounts import get_user_by_name
from eyes.services.photos import PhotoDraft, Uploaded, upload_photo
from eyes.services.serving import ModelInputs
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
    photo_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "existing": self.existing,
            "rejected": [{"file": f, "reason": r} for f, r in self.rejected],
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
    progress: bool = True,
) -> ImportReport:
    """Import every image under `root` for `owner`; `license` (None: the owner's default licence)
    is given to each new photo (one already there keeps its own)."""
    chosen = License.parse(license) if license else None
    user = resolve_owner(ctx, owner)
    files = find_images(root)
    report = ImportReport()
    started = time.perf_counter()

    def store(path: Path) -> tuple[str, Uploaded | str, ModelInputs | None]:
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
            uploaded = upload_photo(ctx, user.id, path, draft)
        except EyesError as exc:
            return shown, exc.message, None
        return shown, uploaded, _model_input(ctx, path) if uploaded.created else None

    untagged: list[int] = []
    inputs: dict[int, ModelInputs] = {}
    # Two threads store and prepare the network's input (decoding, thumbnails and resizing
    # release the GIL) while this one runs the network on what they have stored, a batch at a
    # time, from those inputs: the original is not read and decoded again.
    with (
        ThreadPoolExecutor(max_workers=STORE_THREADS) as pool,
        tqdm(total=len(files), desc="importing", unit="photo", disable=not progress) as bar,
    ):
        for shown, result, model_input in _bounded_map(pool, store, files, AHEAD):
            bar.update(1)
            if isinstance(result, str):
                report.rejected.append((shown, result))
                continue
            report.photo_ids.append(result.photo_id)
            if result.created:
                report.imported += 1
                untagged.append(result.photo_id)
                if model_input is not None:
                    inputs[result.photo_id] = model_input
            else:
                report.existing += 1
            if len(untagged) >= TAG_BATCH:
                tag_photos(ctx, untagged, inputs)
                untagged, inputs = [], {}
        tag_photos(ctx, untagged, inputs)
    report.seconds = time.perf_counter() - started
    if ctx.jobs is not None and report.imported:
        ctx.jobs.enqueue("score_sensitive")  # else the server's next sweep finds them
    return report


def _model_input(ctx: Context, path: Path) -> ModelInputs | None:
    """The networks' inputs for a photo just stored, made the way tagging makes them (None if the
    network cannot read it: tagging then records why)."""
    try:
        with ctx.limits.decoding.hold(pixel_count(path), patient=True):
            # Scored for sensitive content afterwards, by the background job: the score costs
            # more than the rest of an import, and others see the photo blurred until it has one.
            return ctx.tagger.prepare_inputs(path, sensitive=False)
    except Exception:  # tagging decodes the stored original again and marks it untaggable
        return None


def _bounded_map(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: list[T], window: int) -> Iterator[R]:
    """`pool.map` that keeps at most `window` results waiting (each holds a network input)."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
