"""`person:` tags: who the owner named in a photo, as others may see it and search for it.

A person's tag is read from the faces and people tables, never stored as a row of `tags`: so it is
never a training label, a class of the vocabulary, a tag count or part of a data set export. It is
shown on a photo only to whom the person's audience allows (the owner; the accounts they chose;
or whoever may see the photo), and only where the viewer may see the photo at all: the callers
(services/photos.py) have already left out every photo the viewer may not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from sqlalchemy import ColumnElement, exists, false, select
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Face, Person, PersonViewer, Photo
from eyes.domain import Account, PersonAudience
from eyes.services.tags import PERSON_PREFIX
from eyes.services.views import PersonTag


def tag_of(slug: str) -> str:
    return PERSON_PREFIX + slug


def person_tag(name: str, slug: str) -> PersonTag:
    tag = tag_of(slug)
    return PersonTag.model_construct(tag=tag, name=name, url=f"/tags/{quote(tag, safe=':')}")


def shown_to(viewer: Account | None) -> ColumnElement[bool]:
    """People whose tag `viewer` may see on a photo they may see."""
    everyone = Person.audience == PersonAudience.VIEWERS
    if viewer is None:
        return everyone
    chosen = (Person.audience == PersonAudience.CHOSEN) & exists().where(
        PersonViewer.person_id == Person.id, PersonViewer.user_id == viewer.id
    )
    return (Person.owner_id == viewer.id) | everyone | chosen


def person_tags(
    ctx: Context, session: Session, photo_ids: Sequence[int], viewer: Account | None
) -> dict[int, list[PersonTag]]:
    """The person tags `viewer` may see on each of these photos (which they may see), by name."""
    found: dict[int, list[PersonTag]] = {}
    if not ctx.settings.faces or not photo_ids:
        return found
    rows = session.execute(
        select(Face.photo_id, Person.name, Person.slug)
        .join(Person, Person.id == Face.person_id)
        .join(Photo, Photo.id == Face.photo_id)
        # A person is the photo owner's own: never someone else's name on their photo.
        .where(Face.photo_id.in_(list(photo_ids)), Person.owner_id == Photo.owner_id, shown_to(viewer))
        .distinct()
        .order_by(Face.photo_id, Person.slug)
    )
    for photo_id, name, slug in rows:
        found.setdefault(photo_id, []).append(person_tag(name, slug))
    return found


def with_person(ctx: Context, tag: str, viewer: Account | None) -> ColumnElement[bool]:
    """Photos in which their owner named the person of `tag` (`person:<slug>`), for a viewer the
    person's audience allows (the caller limits the photos to those the viewer may see)."""
    slug = tag.removeprefix(PERSON_PREFIX)
    if not ctx.settings.faces or not slug:
        return false()
    return exists(
        select(Face.id)
        .join(Person, Person.id == Face.person_id)
        .where(
            Face.photo_id == Photo.id,
            Person.owner_id == Photo.owner_id,
            Person.slug == slug,
            shown_to(viewer),
        )
    )
