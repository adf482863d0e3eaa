"""People as their owner sees them: the People page, a person's page and faces, and the small
pictures of faces; and the lookups that keep every id to its owner (services/people.py changes
what these show).

Every id a caller names (a face, a person) is looked up among the asking owner's own: another
account's id is "not found", exactly like an id that does not exist, so counting ids tells nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Face, Image, Person, PersonViewer, Photo, User
from eyes.domain import Account, PersonAudience
from eyes.errors import NotFound
from eyes.images import face_crop
from eyes.services.image_store import thumb_key
from eyes.services.person_tags import tag_of
from eyes.services.photos import LISTED_COLUMNS, PhotoPage, photo_views
from eyes.services.views import ListedPhoto

GROUPS_SHOWN = 60  # the biggest groups on the People page
FACES_PER_GROUP = 24  # of each group, shown
SINGLES_SHOWN = 60  # faces in no group, shown
FACES_OF_PERSON = 200  # a person's faces on their page
SUGGESTIONS_SHOWN = 60
CROP_SIDE = 128  # pixels of a face's picture

NO_FACE = "there is no such face"
NO_PERSON = "there is no such person"


# --- what the pages and the API show ---------------------------------------------------------


class FaceView(BaseModel):
    """One of the owner's faces: where it is and who the owner or their model says it is."""

    id: int
    photo: str = Field(description="The photo's id")
    photo_url: str
    crop_url: str = Field(description="A small picture of the face (its owner's alone)")
    person: int | None = Field(None, description="Who the owner said it is")
    suggested_person: int | None = Field(None, description="Who the owner's recognition thinks it is")
    suggested_name: str | None = None


class FaceGroupPublic(BaseModel):
    """Unnamed faces that look like one person."""

    id: int = Field(description="The group's id (the id of its first face): name, merge or split it by it")
    size: int
    faces: list[FaceView] = Field(description=f"The first {FACES_PER_GROUP} faces")


class PersonPublic(BaseModel):
    """Someone the owner named."""

    id: int
    name: str
    tag: str = Field(description="`person:<name>`: search for it like any tag")
    url: str
    audience: PersonAudience = Field(
        description="Who sees the tag: owner (you alone), chosen (you and `viewers`), viewers (whoever "
        "may see the photo)"
    )
    viewers: list[str] = Field(description="The accounts chosen to see the tag (audience `chosen`)")
    face_count: int
    photo_count: int
    cover_url: str | None = Field(None, description="A picture of one of their faces")


class PeopleOverview(BaseModel):
    """The People page: named people, groups of unnamed faces, and what the model suggests."""

    people: list[PersonPublic]
    groups: list[FaceGroupPublic] = Field(description=f"The {GROUPS_SHOWN} biggest groups, biggest first")
    group_count: int
    singles: list[FaceView] = Field(description="Unnamed faces in no group")
    single_count: int
    suggestions: list[FaceView] = Field(description="Unnamed faces the owner's recognition has a guess for")
    not_faces: int = Field(description="Faces marked 'not a face'")


def _face_view(
    face_id: int, photo_key: str, person: int | None, suggested: int | None, names: dict[int, str]
) -> FaceView:
    return FaceView.model_construct(
        id=face_id,
        photo=photo_key,
        photo_url=f"/photos/{photo_key}",
        crop_url=f"/people/faces/{face_id}.jpg",
        person=person,
        suggested_person=suggested,
        suggested_name=names.get(suggested) if suggested is not None else None,
    )


# --- lookups that check ownership ------------------------------------------------------------


def check_on(ctx: Context) -> None:
    if not ctx.settings.faces:
        raise NotFound("faces are off on this site (EYES_FACES)")


def mine(owner_id: int) -> ColumnElement[bool]:
    """Faces in this owner's photos."""
    return Face.photo_id.in_(select(Photo.id).where(Photo.owner_id == owner_id))


def unnamed() -> ColumnElement[bool]:
    return Face.person_id.is_(None) & Face.not_a_face.is_(False)


def owned_person(session: Session, owner_id: int, person_id: int) -> Person:
    person = session.scalar(select(Person).where(Person.id == person_id, Person.owner_id == owner_id))
    if person is None:
        raise NotFound(NO_PERSON)
    return person


def people_views(session: Session, owner_id: int, only: int | None = None) -> list[PersonPublic]:
    query = select(Person).where(Person.owner_id == owner_id).order_by(func.lower(Person.name), Person.id)
    if only is not None:
        query = query.where(Person.id == only)
    people = list(session.scalars(query))
    if not people:
        return []
    ids = [p.id for p in people]
    counts = {
        row[0]: (row[1], row[2], row[3])
        for row in session.execute(
            select(
                Face.person_id,
                func.count(Face.id),
                func.count(func.distinct(Face.photo_id)),
                func.min(Face.id),
            )
            .where(Face.person_id.in_(ids))
            .group_by(Face.person_id)
        )
    }
    viewers: dict[int, list[str]] = {}
    for person_id, username in session.execute(
        select(PersonViewer.person_id, User.username)
        .join(User, User.id == PersonViewer.user_id)
        .where(PersonViewer.person_id.in_(ids))
        .order_by(User.username)
    ):
        viewers.setdefault(person_id, []).append(username)
    views = []
    for p in people:
        faces, photos, cover = counts.get(p.id, (0, 0, None))
        views.append(
            PersonPublic(
                id=p.id,
                name=p.name,
                tag=tag_of(p.slug),
                url=f"/people/{p.id}",
                audience=p.audience,
                viewers=viewers.get(p.id, []),
                face_count=faces,
                photo_count=photos,
                cover_url=f"/people/faces/{cover}.jpg" if cover is not None else None,
            )
        )
    return views


def list_people(ctx: Context, user: Account) -> list[PersonPublic]:
    """The people `user` named, by name, with how many faces and photos each has and a cover."""
    check_on(ctx)
    with ctx.sessions() as session:
        return people_views(session, user.id)


def person_view(ctx: Context, user: Account, person_id: int) -> PersonPublic:
    with ctx.sessions() as session:
        found = people_views(session, user.id, only=person_id)
    if not found:
        raise NotFound(NO_PERSON)
    return found[0]


def _names(session: Session, owner_id: int) -> dict[int, str]:
    return {
        r.id: r.name
        for r in session.execute(select(Person.id, Person.name).where(Person.owner_id == owner_id))
    }


_FACE_COLUMNS = (Face.id, Photo.public_id, Face.person_id, Face.suggested_person_id)


def face_view(ctx: Context, user: Account, face_id: int) -> FaceView:
    with ctx.sessions() as session:
        row = session.execute(
            select(*_FACE_COLUMNS)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.id == face_id, Photo.owner_id == user.id)
        ).first()
        if row is None:
            raise NotFound(NO_FACE)
        return _face_view(*row, _names(session, user.id))


def overview(ctx: Context, user: Account) -> PeopleOverview:
    """Everything the People page shows `user` of their own faces and people."""
    check_on(ctx)
    own = Photo.owner_id == user.id
    with ctx.sessions() as session:
        names = _names(session, user.id)
        sizes = [
            (int(group_id or 0), int(size))
            for group_id, size in session.execute(
                select(Face.group_id, func.count(Face.id))
                .join(Photo, Photo.id == Face.photo_id)
                .where(own, unnamed(), Face.group_id.is_not(None))
                .group_by(Face.group_id)
                .order_by(func.count(Face.id).desc(), Face.group_id)
            )
        ]
        shown = sizes[:GROUPS_SHOWN]
        members: dict[int, list[FaceView]] = {g: [] for g, _ in shown}
        if shown:
            for row in session.execute(
                select(*_FACE_COLUMNS, Face.group_id)
                .join(Photo, Photo.id == Face.photo_id)
                .where(own, unnamed(), Face.group_id.in_(list(members)))
                .order_by(Face.id)
            ):
                faces = members[int(row[4] or 0)]
                if len(faces) < FACES_PER_GROUP:
                    faces.append(_face_view(*row[:4], names))
        single = (own, unnamed(), Face.group_id.is_(None))
        singles = [
            _face_view(*row, names)
            for row in session.execute(
                select(*_FACE_COLUMNS)
                .join(Photo, Photo.id == Face.photo_id)
                .where(*single)
                .order_by(Face.id.desc())
                .limit(SINGLES_SHOWN)
            )
        ]
        single_count = session.scalar(
            select(func.count(Face.id)).join(Photo, Photo.id == Face.photo_id).where(*single)
        )
        suggestions = [
            _face_view(*row, names)
            for row in session.execute(
                select(*_FACE_COLUMNS)
                .join(Photo, Photo.id == Face.photo_id)
                .where(own, unnamed(), Face.suggested_person_id.is_not(None))
                .order_by(Face.suggestion_distance, Face.id)
                .limit(SUGGESTIONS_SHOWN)
            )
        ]
        not_faces = session.scalar(
            select(func.count(Face.id)).join(Photo, Photo.id == Face.photo_id).where(own, Face.not_a_face)
        )
        people = people_views(session, user.id)
    return PeopleOverview(
        people=people,
        groups=[FaceGroupPublic(id=g, size=n, faces=members[g]) for g, n in shown],
        group_count=len(sizes),
        singles=singles,
        single_count=int(single_count or 0),
        suggestions=suggestions,
        not_faces=int(not_faces or 0),
    )


def person_faces(ctx: Context, user: Account, person_id: int) -> list[FaceView]:
    """The faces named as this person (the first FACES_OF_PERSON), to correct them."""
    check_on(ctx)
    with ctx.sessions() as session:
        owned_person(session, user.id, person_id)
        names = _names(session, user.id)
        return [
            _face_view(*row, names)
            for row in session.execute(
                select(*_FACE_COLUMNS)
                .join(Photo, Photo.id == Face.photo_id)
                .where(Face.person_id == person_id)
                .order_by(Face.id)
                .limit(FACES_OF_PERSON)
            )
        ]


def person_photos(
    ctx: Context, user: Account, person_id: int, *, before: int | None = None, limit: int | None = None
) -> PhotoPage:
    """The owner's photos of this person, newest first, keyset-paginated by id."""
    check_on(ctx)
    limit = max(1, min(limit or ctx.settings.page_size, 200))
    with ctx.sessions() as session:
        owned_person(session, user.id, person_id)
        query = (
            select(*LISTED_COLUMNS)
            .join(User, User.id == Photo.owner_id)
            .join(Image, Image.sha256 == Photo.sha256)
            .where(
                Photo.owner_id == user.id,
                Photo.id.in_(select(Face.photo_id).where(Face.person_id == person_id)),
            )
            .order_by(Photo.id.desc())
            .limit(limit + 1)
        )
        if before is not None:
            query = query.where(Photo.id < before)
        rows = [ListedPhoto._make(row) for row in session.execute(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        items = photo_views(ctx, session, rows, user)
    return PhotoPage(items, rows[-1].id if more and rows else None)


@dataclass(frozen=True)
class FacePicture:
    data: bytes | None  # a JPEG; None when the browser's copy (`cached`) is still this one
    etag: str


def face_picture(ctx: Context, user: Account, face_id: int, cached: str | None = None) -> FacePicture:
    """A small square picture of one of `user`'s faces (anyone else's: not found), cut from its
    photo's thumbnail: the small one when the face is big enough in it, else the large one. A
    browser that sends the picture's ETag as `cached` is told so before anything is read or cut."""
    check_on(ctx)
    with ctx.sessions() as session:
        row = session.execute(
            select(Face.left, Face.top, Face.right, Face.bottom, Photo.sha256, Image.width, Image.height)
            .join(Photo, Photo.id == Face.photo_id)
            .join(Image, Image.sha256 == Photo.sha256)
            .where(Face.id == face_id, Photo.owner_id == user.id)
        ).first()
    if row is None:
        raise NotFound(NO_FACE)
    etag = f'"face-{face_id}-{row.sha256[:16]}"'  # a face's box and photo never change
    if cached == etag:
        return FacePicture(None, etag)
    box = (row[0], row[1], row[2], row[3])
    small = ctx.settings.thumb_small_px / max(row.width, row.height)
    size = "small" if min(box[2] - box[0], box[3] - box[1]) * small >= CROP_SIDE / 2 else "large"
    with ctx.blobs.open(thumb_key(row.sha256, size)) as blob:
        thumb = blob.read()
    try:
        data = face_crop(thumb, box, (row.width, row.height), CROP_SIDE)
    except (OSError, ValueError) as exc:
        raise NotFound(f"this face has no picture: {exc}") from None
    return FacePicture(data, etag)
