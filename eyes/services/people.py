"""People: an owner's faces grouped by likeness, named, and corrected, the only door to the people
tables (faces' person and group, people, person_viewers, face_rejections).

Everything here is one owner's data about their own photos. Every id a caller names (a face, a
group, a person) is looked up among the asking owner's own: another account's id is "not found",
exactly like an id that does not exist, so counting ids tells nothing. A named person becomes a
`person:` tag (services/person_tags.py) seen only by whom the owner allows. What the pages show
of all this is read in services/people_views.py.

Groups: `group` clusters the owner's unnamed faces (eyes.ml.people.group_faces) and gives each
group the id of its first face, so a group keeps its id from one grouping to the next as long as
that face stays in it. It runs after every scan that found faces and on demand. A split or a face
taken out of an unnamed group lasts until the next grouping; naming the group keeps it for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Face, FaceGrouping, FaceRejection, Person, PersonViewer, Photo, User
from eyes.db.session import insert_ignoring_duplicates, transaction, upsert
from eyes.domain import Account, PersonAudience
from eyes.errors import BadRequest, Conflict, NotFound
from eyes.ml.people import group_faces
from eyes.services import face_recognition
from eyes.services.people_views import (
    NO_FACE,
    FaceView,
    PersonPublic,
    check_on,
    face_view,
    mine,
    owned_person,
    person_view,
    unnamed,
)
from eyes.services.person_tags import tag_of
from eyes.services.tags import PERSON_PREFIX, normalize_tag
from eyes.services.views import as_utc

MAX_NAME = 80  # the people.name column
MAX_GROUPED = 3000  # the newest unnamed faces one grouping looks at: bounded work and memory per scan
# Grouping 3,000 faces takes about 0.9 s on 2 busy cores, 500 a few tens of ms: up to this many an
# owner's new faces are grouped at once; beyond, at most every GROUP_EVERY_S (group_new_faces).
GROUP_AT_ONCE = 500
GROUP_EVERY_S = 60.0
MAX_VIEWERS = 100  # accounts one person's tag may be shown to (audience `chosen`)
MAX_CHOSEN_FACES = 1000  # faces one split may name

_NO_GROUP = "there is no such group (it may have been named or grouped again: reload the page)"


class GroupingResult(BaseModel):
    faces: int = Field(description="Unnamed faces looked at")
    groups: int


class MergeResult(BaseModel):
    """What a group became: one group (merged with another) or someone named."""

    group: int | None = Field(default=None, description="The merged group's id")
    person: PersonPublic | None = Field(default=None, description="The person it joined")


class SplitResult(BaseModel):
    group: int | None = Field(description="The chosen faces' group (null: a single face, in no group)")
    rest: int | None = Field(description="What is left of the old group (null: one face or none)")


# --- lookups -----------------------------------------------------------------------------------


def _face(session: Session, owner_id: int, face_id: int) -> Face:
    face = session.scalar(select(Face).where(Face.id == face_id, mine(owner_id)))
    if face is None:
        raise NotFound(NO_FACE)
    return face


def _group(session: Session, owner_id: int, group_id: int) -> list[Face]:
    """The group's faces, claimed for this transaction: taken by an update (which changes
    nothing), not read, so the write lock (SQLite) or the rows' locks (PostgreSQL) are held from
    here. Two corrections of one group at once then happen one after the other, and the second
    finds the group gone, rather than both reading it and the last overwriting the first."""
    ids = session.scalars(
        update(Face)
        .where(Face.group_id == group_id, unnamed(), mine(owner_id))
        .values(group_id=Face.group_id)
        .returning(Face.id)
    ).all()
    if not ids:
        raise NotFound(_NO_GROUP)
    return list(session.scalars(select(Face).where(Face.id.in_(ids)).order_by(Face.id)))


def _count_change(ctx: Context, user: Account) -> None:
    ctx.limits.hit(
        ctx.settings.people_limit_per_account, "people", str(user.id), what="changes to your people"
    )


def _corrected(ctx: Context, owner_id: int) -> None:
    """The owner told us who is who: their recognition learns again when enough changed (after
    the commit; queued where there is a job queue)."""
    face_recognition.after_correction(ctx, owner_id)


# --- names -----------------------------------------------------------------------------------


def clean_name(ctx: Context, raw: str) -> tuple[str, str]:
    """A person's name as the owner wrote it (spaces collapsed) and its slug, the tag's name:
    normalised like a tag, spaces as '-', so `person:<slug>` is one word a search box keeps."""
    name = " ".join(raw.split())
    if not name:
        raise BadRequest("a person needs a name")
    # The whole tag, person:<slug>, is a tag's length at most, so it can be searched for.
    longest = min(MAX_NAME, ctx.settings.max_tag_length - len(PERSON_PREFIX))
    if len(name) > longest:
        raise BadRequest(f"a name is at most {longest} characters; this one has {len(name)}")
    if ":" in name:
        raise BadRequest("a name cannot contain ':' (its tag is person:<name>)")
    try:
        slug = normalize_tag(name, longest, query=True).replace(" ", "-")
    except BadRequest as exc:
        raise BadRequest(exc.message.replace("a tag", "a name")) from None
    return name, slug


def _person_named(session: Session, owner_id: int, name: str, slug: str) -> Person:
    """The owner's person with this slug, made if there is none: a name the owner already gave
    someone is that person."""
    insert_ignoring_duplicates(
        session,
        Person.__table__,
        [{"owner_id": owner_id, "name": name, "slug": slug, "audience": PersonAudience.OWNER.value}],
    )
    return session.scalars(select(Person).where(Person.owner_id == owner_id, Person.slug == slug)).one()


def _give(session: Session, faces: Sequence[Face], person_id: int) -> None:
    """The owner says these faces are this person: named, out of their group, no suggestion, and
    no earlier 'not this person' for them (the owner's last word wins)."""
    ids = [f.id for f in faces]
    session.execute(
        update(Face)
        .where(Face.id.in_(ids))
        .values(person_id=person_id, group_id=None, suggested_person_id=None, suggestion_distance=None)
    )
    session.execute(
        delete(FaceRejection).where(FaceRejection.face_id.in_(ids), FaceRejection.person_id == person_id)
    )


# --- grouping --------------------------------------------------------------------------------


def group(ctx: Context, owner_id: int) -> GroupingResult:
    """Group the owner's unnamed faces (not marked 'not a face') by likeness: the newest
    MAX_GROUPED of them. Each group's id is its first face's id."""
    with ctx.sessions() as session:
        newest = session.scalar(select(func.max(Face.id)).where(mine(owner_id))) or 0
        rows = list(
            session.execute(
                select(Face.id, Face.descriptor)
                .where(mine(owner_id), unnamed())
                .order_by(Face.id.desc())
                .limit(MAX_GROUPED)
            )
        )
    rows.reverse()  # oldest first: the same faces give the same groups
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    labels = np.empty(0, dtype=np.int64)
    if rows:
        labels = group_faces(np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]))
    groups = {int(label): ids[labels == label] for label in np.unique(labels) if label >= 0}
    with transaction(ctx.sessions) as session:
        upsert(
            session,
            FaceGrouping.__table__,
            [{"owner_id": owner_id, "through_face_id": newest, "grouped_at": datetime.now(UTC)}],
            "owner_id",
        )
        # Only faces still unnamed: a name given meanwhile wins.
        session.execute(
            update(Face).where(Face.id.in_(ids[labels < 0].tolist()), unnamed()).values(group_id=None)
        )
        for members in groups.values():
            session.execute(
                update(Face)
                .where(Face.id.in_(members.tolist()), unnamed())
                .values(group_id=int(members.min()))
            )
    return GroupingResult(faces=len(rows), groups=len(groups))


def group_new_faces(ctx: Context, owner_id: int) -> GroupingResult | None:
    """Group the owner's faces again if some are newer than their last grouping (after a scan,
    and from the sweep). Cheap for a small collection, so at once; an owner with more than
    GROUP_AT_ONCE unnamed faces is grouped at most every GROUP_EVERY_S seconds, and the sweep
    groups what a burst of uploads left. None: nothing done (nothing new, or not yet)."""
    with ctx.sessions() as session:
        newest = session.scalar(select(func.max(Face.id)).where(mine(owner_id))) or 0
        last = session.get(FaceGrouping, owner_id)
        if newest == 0 or (last is not None and last.through_face_id >= newest):
            return None
        if last is not None and datetime.now(UTC) - as_utc(last.grouped_at) < timedelta(
            seconds=GROUP_EVERY_S
        ):
            waiting = session.scalar(select(func.count(Face.id)).where(mine(owner_id), unnamed())) or 0
            if waiting > GROUP_AT_ONCE:
                return None
    return group(ctx, owner_id)


def owners_to_group(ctx: Context) -> list[int]:
    """Owners with faces newer than their last grouping (the sweep's work)."""
    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(Photo.owner_id)
                .join(Face, Face.photo_id == Photo.id)
                .outerjoin(FaceGrouping, FaceGrouping.owner_id == Photo.owner_id)
                .group_by(Photo.owner_id, FaceGrouping.through_face_id)
                .having(func.max(Face.id) > func.coalesce(FaceGrouping.through_face_id, 0))
                .order_by(Photo.owner_id)
            )
        )


def regroup(ctx: Context, user: Account) -> GroupingResult:
    """Group the owner's unnamed faces again, now (the People page's button, the API)."""
    check_on(ctx)
    _count_change(ctx, user)
    return group(ctx, user.id)


def owners_with_faces(ctx: Context) -> list[int]:
    """Accounts with faces in their photos (for `eyes faces group` over everyone)."""
    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(Photo.owner_id)
                .where(Photo.id.in_(select(Face.photo_id)))
                .distinct()
                .order_by(Photo.owner_id)
            )
        )


# --- corrections -----------------------------------------------------------------------------


def name_group(ctx: Context, user: Account, group_id: int, name: str) -> PersonPublic:
    """The owner names a group: its faces are that person (an existing one if the name is taken)."""
    check_on(ctx)
    name, slug = clean_name(ctx, name)
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        faces = _group(session, user.id, group_id)
        person = _person_named(session, user.id, name, slug)
        _give(session, faces, person.id)
        person_id = person.id
    _corrected(ctx, user.id)
    return person_view(ctx, user, person_id)


def name_face(ctx: Context, user: Account, face_id: int, name: str) -> PersonPublic:
    """The owner names one face (one in no group, or moved to someone by name)."""
    check_on(ctx)
    name, slug = clean_name(ctx, name)
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        face = _face(session, user.id, face_id)
        person = _person_named(session, user.id, name, slug)
        _move(session, face, person.id)
        person_id = person.id
    _corrected(ctx, user.id)
    return person_view(ctx, user, person_id)


def merge_groups(ctx: Context, user: Account, group_id: int, into_group: int) -> int:
    """Two unnamed groups are one person: returns the merged group's id."""
    check_on(ctx)
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        faces = _group(session, user.id, group_id) + _group(session, user.id, into_group)
        merged = min(f.id for f in faces)
        session.execute(update(Face).where(Face.id.in_([f.id for f in faces])).values(group_id=merged))
    return merged


def merge_group_into_person(ctx: Context, user: Account, group_id: int, person_id: int) -> PersonPublic:
    """An unnamed group is someone the owner already named."""
    check_on(ctx)
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        faces = _group(session, user.id, group_id)
        person = owned_person(session, user.id, person_id)
        _give(session, faces, person.id)
    _corrected(ctx, user.id)
    return person_view(ctx, user, person_id)


def merge_people(ctx: Context, user: Account, person_id: int, into_person: int) -> PersonPublic:
    """Two named people are one: the first's faces go to the second, and the first is gone. What
    the owner said was not the first is kept as not the second only where the face is not the
    second's; the second keeps its name and audience."""
    check_on(ctx)
    if person_id == into_person:
        raise BadRequest("merge two different people")
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        gone = owned_person(session, user.id, person_id)
        kept = owned_person(session, user.id, into_person)
        faces = list(session.scalars(select(Face).where(Face.person_id == gone.id)))
        _give(session, faces, kept.id)
        moved = session.execute(
            select(FaceRejection.face_id).where(
                FaceRejection.person_id == gone.id,
                FaceRejection.face_id.not_in(select(Face.id).where(Face.person_id == kept.id)),
            )
        ).scalars()
        insert_ignoring_duplicates(
            session, FaceRejection.__table__, [{"face_id": f, "person_id": kept.id} for f in moved]
        )
        session.execute(
            update(Face).where(Face.suggested_person_id == gone.id).values(suggested_person_id=kept.id)
        )
        session.delete(gone)
    _corrected(ctx, user.id)
    return person_view(ctx, user, into_person)


def split_group(ctx: Context, user: Account, group_id: int, face_ids: Sequence[int]) -> SplitResult:
    """The chosen faces of a group are someone else than the rest: two groups (a single face is
    in no group). Lasts until the next grouping unless a part is named."""
    check_on(ctx)
    chosen = set(face_ids)
    if not chosen:
        raise BadRequest("choose the faces to split off")
    if len(chosen) > MAX_CHOSEN_FACES:
        raise BadRequest(f"choose at most {MAX_CHOSEN_FACES} faces at once")
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        members = {f.id for f in _group(session, user.id, group_id)}
        if not chosen <= members:
            raise NotFound(f"{NO_FACE} in this group")
        rest = members - chosen
        if not rest:
            raise BadRequest("choose some of the group's faces, not all of them")
        parts = [_regroup(session, chosen), _regroup(session, rest)]
    return SplitResult(group=parts[0], rest=parts[1])


def _regroup(session: Session, ids: set[int]) -> int | None:
    """These faces as one group (a single face: in no group); returns its id."""
    group_id = min(ids) if len(ids) > 1 else None
    session.execute(update(Face).where(Face.id.in_(sorted(ids))).values(group_id=group_id))
    return group_id


def _left_group(session: Session, group_id: int | None) -> None:
    """A face left this group: a group of one is no group."""
    if group_id is None:
        return
    left = list(session.scalars(select(Face.id).where(Face.group_id == group_id, unnamed()).limit(2)))
    if len(left) == 1:
        session.execute(update(Face).where(Face.id == left[0]).values(group_id=None))


def _move(session: Session, face: Face, person_id: int | None) -> None:
    """The face is `person_id` (None: nobody named). If it was someone else, that is a 'not them'."""
    group_id = face.group_id
    if face.person_id is not None and face.person_id != person_id:
        insert_ignoring_duplicates(
            session, FaceRejection.__table__, [{"face_id": face.id, "person_id": face.person_id}]
        )
    if person_id is None:
        session.execute(
            update(Face)
            .where(Face.id == face.id)
            .values(person_id=None, group_id=None, suggested_person_id=None, suggestion_distance=None)
        )
    else:
        _give(session, [face], person_id)
    face.not_a_face = False
    session.flush()
    _left_group(session, group_id)


def move_face(ctx: Context, user: Account, face_id: int, person_id: int | None) -> FaceView:
    """The face is someone else the owner named (`person_id`), or nobody named (None): it is out
    of its person, recorded as 'not them', or out of its group."""
    check_on(ctx)
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        face = _face(session, user.id, face_id)
        if person_id is not None:
            owned_person(session, user.id, person_id)
        _move(session, face, person_id)
    _corrected(ctx, user.id)
    return face_view(ctx, user, face_id)


def unname_face(ctx: Context, user: Account, face_id: int) -> FaceView:
    """The face is not the person it was named as (or not of its group)."""
    return move_face(ctx, user, face_id, None)


def mark_not_a_face(ctx: Context, user: Account, face_id: int, not_a_face: bool = True) -> FaceView:
    """The finder was wrong: this is no face (or, `not_a_face=False`, it is one after all). A face
    marked so is named as nobody, in no group, and never suggested."""
    check_on(ctx)
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        face = _face(session, user.id, face_id)
        group_id = face.group_id
        session.execute(
            update(Face)
            .where(Face.id == face.id)
            .values(
                not_a_face=not_a_face,
                person_id=None,
                group_id=None,
                suggested_person_id=None,
                suggestion_distance=None,
            )
        )
        _left_group(session, group_id)
    _corrected(ctx, user.id)
    return face_view(ctx, user, face_id)


def confirm_suggestion(ctx: Context, user: Account, face_id: int) -> FaceView:
    """Yes, the suggested person is who this is."""
    check_on(ctx)
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        face = _face(session, user.id, face_id)
        if face.suggested_person_id is None or face.person_id is not None:
            raise NotFound("this face has no suggestion to confirm")
        _give(session, [face], face.suggested_person_id)
    _corrected(ctx, user.id)
    return face_view(ctx, user, face_id)


def reject_suggestion(ctx: Context, user: Account, face_id: int) -> FaceView:
    """No, this is not the suggested person: never suggested as them again."""
    check_on(ctx)
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        face = _face(session, user.id, face_id)
        if face.suggested_person_id is None or face.person_id is not None:
            raise NotFound("this face has no suggestion to reject")
        insert_ignoring_duplicates(
            session, FaceRejection.__table__, [{"face_id": face.id, "person_id": face.suggested_person_id}]
        )
        session.execute(
            update(Face).where(Face.id == face.id).values(suggested_person_id=None, suggestion_distance=None)
        )
    _corrected(ctx, user.id)
    return face_view(ctx, user, face_id)


def _rename(session: Session, person: Person, name: str, slug: str) -> None:
    other = session.scalar(
        select(Person.id).where(
            Person.owner_id == person.owner_id, Person.slug == slug, Person.id != person.id
        )
    )
    if other is not None:
        raise Conflict(f"you already named someone {tag_of(slug)}: merge the two instead")
    person.name, person.slug = name, slug


def delete_person(ctx: Context, user: Account, person_id: int) -> None:
    """Forget a name: its faces are unnamed again (and grouped with the others)."""
    check_on(ctx)
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        person = owned_person(session, user.id, person_id)
        session.execute(
            update(Face)
            .where(Face.person_id == person.id)
            .values(person_id=None, suggested_person_id=None, suggestion_distance=None)
        )
        session.execute(
            update(Face).where(Face.suggested_person_id == person.id).values(suggested_person_id=None)
        )
        session.delete(person)
    group(ctx, user.id)
    _corrected(ctx, user.id)


def update_person(
    ctx: Context,
    user: Account,
    person_id: int,
    *,
    name: str | None = None,
    audience: PersonAudience | None = None,
    viewers: Sequence[str] = (),
) -> PersonPublic:
    """A new name, a new audience (with its `viewers` for 'chosen'), or both: one change, made
    whole or refused whole (a rename is not kept when its audience names no account)."""
    check_on(ctx)
    cleaned = clean_name(ctx, name) if name is not None else None
    names = sorted({v.strip() for v in viewers if v.strip()} - {user.username})
    if audience != PersonAudience.CHOSEN and names:
        raise BadRequest("choose accounts only with the audience 'chosen'")
    if len(names) > MAX_VIEWERS:
        raise BadRequest(f"choose at most {MAX_VIEWERS} accounts")
    _count_change(ctx, user)
    with transaction(ctx.sessions) as session:
        person = owned_person(session, user.id, person_id)
        if cleaned is not None:
            _rename(session, person, *cleaned)
        if audience is not None:
            _set_audience(session, person, audience, names)
    return person_view(ctx, user, person_id)


def _set_audience(session: Session, person: Person, audience: PersonAudience, names: list[str]) -> None:
    ids = {
        r.username: r.id
        for r in session.execute(select(User.username, User.id).where(User.username.in_(names)))
    }
    missing = [n for n in names if n not in ids]
    if missing:
        raise NotFound(f"there is no account {missing[0]!r}")
    person.audience = audience
    session.execute(delete(PersonViewer).where(PersonViewer.person_id == person.id))
    if ids:
        session.execute(insert(PersonViewer), [{"person_id": person.id, "user_id": i} for i in ids.values()])
