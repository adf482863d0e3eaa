"""Faces, the owner's data: which photos still wait to be scanned, where the faces of an owner's
photos are and how many, and forgetting them all. Finding faces in stored originals is
services/face_scan.py.

Faces are an owner's data: found only when the instance (EYES_FACES) and the owner (their
`faces_enabled` preference) both say so; listed for nobody else; deleted with their photo, and
all of them when the owner turns faces off.

Accounts import this module (turning faces off forgets them), so it imports nothing that reads
accounts: not services/people, whose views read photos, which read accounts.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Face, Person, Photo, User
from eyes.domain import Account
from eyes.services import face_recognition

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


def awaiting_scan() -> tuple[ColumnElement[bool], ...]:
    """The conditions on a photo not yet scanned whose owner has faces on (services/face_scan.py
    claims a photo with them)."""
    return (
        Photo.faces_scanned_at.is_(None),
        Photo.owner_id.in_(select(User.id).where(User.faces_enabled.is_(True))),
    )


def unscanned_photo_ids(ctx: Context, owner_id: int | None = None, limit: int = BATCH) -> list[int]:
    """Photos of owners with faces on that have not been scanned, oldest first."""
    query = select(Photo.id).where(*awaiting_scan()).order_by(Photo.id).limit(limit)
    if owner_id is not None:
        query = query.where(Photo.owner_id == owner_id)
    with ctx.sessions() as session:
        return list(session.scalars(query))


def count_unscanned(ctx: Context, owner_id: int | None = None) -> int:
    query = select(func.count(Photo.id)).where(*awaiting_scan())
    if owner_id is not None:
        query = query.where(Photo.owner_id == owner_id)
    with ctx.sessions() as session:
        return int(session.scalar(query) or 0)


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
