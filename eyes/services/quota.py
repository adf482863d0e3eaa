"""Per-account storage quota: the bytes of an account's originals (`EYES_STORAGE_QUOTA_BYTES`).

An account's usage is the size of the original of each of its photos, read from the images'
`size_bytes`: nothing to keep in step. The same bytes uploaded by two accounts count for both (each
could delete theirs and leave the other's); an account's own duplicate costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from eyes.config import Settings
from eyes.context import Context
from eyes.db.models import Image, Photo
from eyes.errors import QuotaExceeded


@dataclass(frozen=True)
class StorageUse:
    used_bytes: int
    quota_bytes: int | None  # None: no quota


def used_bytes(session: Session, owner_id: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Image.size_bytes), 0))
        .select_from(Photo)
        .join(Image, Image.sha256 == Photo.sha256)
        .where(Photo.owner_id == owner_id)
    )
    return int(total or 0)


def storage_use(ctx: Context, owner_id: int) -> StorageUse:
    with ctx.sessions() as session:
        used = used_bytes(session, owner_id)
    return StorageUse(used, ctx.settings.storage_quota_bytes or None)


def check_quota(session: Session, settings: Settings, owner_id: int, adding: int) -> None:
    """413 `quota_exceeded` when `adding` more bytes would take the account past its quota."""
    if settings.storage_quota_bytes:
        refusal = over_quota(settings, used_bytes(session, owner_id), adding)
        if refusal is not None:
            raise refusal


def quota_refusals(
    session: Session, settings: Settings, owner_id: int, adding: Mapping[str, int]
) -> dict[str, QuotaExceeded]:
    """Of these additions (bytes, by key, in order), those that would take the account past its
    quota, each with why; each that fits counts against the next."""
    if not settings.storage_quota_bytes:
        return {}
    used = used_bytes(session, owner_id)
    refused = {}
    for key, size in adding.items():
        refusal = over_quota(settings, used, size)
        if refusal is None:
            used += size
        else:
            refused[key] = refusal
    return refused


def over_quota(settings: Settings, used: int, adding: int) -> QuotaExceeded | None:
    """Why `adding` bytes to the `used` of an account would take it past its quota, or None."""
    quota = settings.storage_quota_bytes
    if not quota or used + adding <= quota:
        return None
    return QuotaExceeded(
        f"this photo ({_mb(adding)}) would take your storage past its quota: you use "
        f"{_mb(used)} of {_mb(quota)}; delete some photos to make room"
    )


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"
