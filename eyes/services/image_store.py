"""Stored images: an `images` row and its blobs (the original and two thumbnails), which come and
go together, whoever else uploads or deletes the same bytes at the same moment.

The row is the lock. An upload claims it (making it if needed) and, holding it, makes sure the
blobs are there; a removal takes it and, holding it, deletes blobs and row only when no photo
refers to them. So a delete racing another owner's upload of the same bytes never takes the
blobs from under the new photo. Blobs that no row names (a crash between writing and
committing) are swept once they are older than any upload can take.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Image, Photo
from eyes.db.session import insert_ignoring_duplicates, lock_rows, transaction

THUMB_SIZES = ("small", "large")
WRITERS = 8  # blobs written at once


def original_key(sha256: str) -> str:
    return f"originals/{sha256[:2]}/{sha256}"


def thumb_key(sha256: str, size: str) -> str:
    return f"thumbs/{size}/{sha256[:2]}/{sha256}.jpg"


def blob_keys(sha256: str) -> list[str]:
    return [original_key(sha256)] + [thumb_key(sha256, s) for s in THUMB_SIZES]


@dataclass
class Prepared:
    """A decoded upload, ready to store: the file, what its row says, and its thumbnails' bytes
    (made once while the image was decoded, so the blobs can be written again without it)."""

    sha256: str
    path: Path
    format: str
    width: int
    height: int
    size_bytes: int
    thumbs: dict[str, bytes] = field(default_factory=dict)


def write_missing(ctx: Context, images: Sequence[Prepared]) -> None:
    """Write whichever of the images' blobs are not in the store (each write is atomic). Several
    at once: a write waits mostly for the disk (or the network), not for a core."""
    if len(images) == 1:
        _write_missing(ctx, images[0])
    elif images:
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            list(pool.map(lambda prepared: _write_missing(ctx, prepared), images))


def _write_missing(ctx: Context, prepared: Prepared) -> None:
    key = original_key(prepared.sha256)
    if not ctx.blobs.exists(key):
        ctx.blobs.put_file(key, prepared.path)
    for size, data in prepared.thumbs.items():
        key = thumb_key(prepared.sha256, size)
        if not ctx.blobs.exists(key):
            ctx.blobs.put_bytes(key, data)


def claim(session: Session, ctx: Context, images: Sequence[Prepared]) -> None:
    """In the caller's transaction: make or lock the images' rows and, holding them, make sure
    their blobs are there (a removal that took them just before finds the rows taken from now on)."""
    # In the order of their keys, as the lock below takes them: two uploads of the same new images
    # in another order would otherwise each wait for a row the other made (a deadlock).
    unclaimed = {prepared.sha256: prepared for prepared in sorted(images, key=lambda p: p.sha256)}
    for _ in range(3):
        # The insert takes SQLite's write lock; the update locks the rows on PostgreSQL (and leaves
        # out any a removal deleted between the two: those are inserted again).
        insert_ignoring_duplicates(session, Image.__table__, [_row(p) for p in unclaimed.values()])
        locked = lock_rows(
            session, Image.size_bytes, Image.sha256.in_(list(unclaimed)), returning=(Image.sha256,)
        )
        write_missing(ctx, [unclaimed.pop(sha256) for (sha256,) in locked])
        if not unclaimed:
            return
    raise RuntimeError(f"could not claim images {sorted(unclaimed)}: removed three times in a row")


def _row(prepared: Prepared) -> dict[str, object]:
    return {
        "sha256": prepared.sha256,
        "format": prepared.format,
        "width": prepared.width,
        "height": prepared.height,
        "size_bytes": prepared.size_bytes,
    }


def remove_if_unreferenced(ctx: Context, sha256: str) -> bool:
    """Delete the image's row and blobs if no photo refers to them; True when it did.

    The blobs go while the row is locked and before the delete commits: an upload of the same
    bytes waits, then makes a new row and writes them again. If a blob cannot be deleted, nothing
    is (the row stays, and the next sweep tries again)."""
    try:
        with transaction(ctx.sessions) as session:
            gone = session.execute(
                delete(Image)
                .where(Image.sha256 == sha256, ~exists().where(Photo.sha256 == sha256))
                .returning(Image.sha256)
                .execution_options(synchronize_session=False)
            ).first()
            if gone is None:
                return False
            for key in blob_keys(sha256):
                ctx.blobs.delete(key)
    except IntegrityError:  # a photo of the same bytes committed meanwhile: it keeps them
        return False
    return True


def collect_unreferenced(ctx: Context, limit: int = 500) -> int:
    """Remove images no photo refers to any more (a delete whose cleanup failed); returns how many."""
    with ctx.sessions() as session:
        shas = list(
            session.scalars(
                select(Image.sha256).where(~exists().where(Photo.sha256 == Image.sha256)).limit(limit)
            )
        )
    return sum(remove_if_unreferenced(ctx, sha) for sha in shas)


def sweep_orphan_blobs(ctx: Context, older_than_s: float) -> list[str]:
    """Delete blobs that no image row names and that were written more than `older_than_s` ago
    (younger ones may belong to an upload that has not committed yet). Returns the keys deleted."""
    by_sha: dict[str, list[str]] = {}
    for prefix in ("originals/", "thumbs/"):
        for key in ctx.blobs.keys(prefix):
            name = key.rsplit("/", 1)[-1].removesuffix(".jpg")
            by_sha.setdefault(name, []).append(key)
    known: set[str] = set()
    shas = sorted(by_sha)
    with ctx.sessions() as session:
        for start in range(0, len(shas), 500):
            chunk = shas[start : start + 500]
            known.update(session.scalars(select(Image.sha256).where(Image.sha256.in_(chunk))))
    now = time.time()
    deleted = []
    for sha in shas:
        if sha in known:
            continue
        for key in by_sha[sha]:
            if now - ctx.blobs.modified_at(key) > older_than_s:
                ctx.blobs.delete(key)
                deleted.append(key)
    return deleted
