"""Tag names and the tags people set on their photos."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from eyes.config import Settings
from eyes.db.models import Photo, PhotoTag, Tag
from eyes.db.session import insert_ignoring_duplicates
from eyes.domain import Account, TagSource, TagStatus
from eyes.errors import BadRequest, Forbidden, NotFound
from eyes.services import label_clock

_SPACES = re.compile(r"\s+")
# Characters that would break a tag's URL (/tags/NAME) or a comma-separated tag field.
_FORBIDDEN = set("/\\,?#%")
# The namespace of people named in photos (services/people.py): searchable like a tag, but never a
# row of `tags`, so never a label, a class, a count or part of an export.
PERSON_PREFIX = "person:"


def normalize_tag(raw: str, max_length: int, *, query: bool = False) -> str:
    """Trim, collapse spaces, lower-case, Unicode NFC; refuse empty, too long or unsafe names.
    A `person:` name is refused unless this is a search (`query`): people are named on the People
    page, never set as tags."""
    name = unicodedata.normalize("NFC", _SPACES.sub(" ", raw).strip().lower())
    if not name:
        raise BadRequest("a tag needs at least one letter or digit")
    if len(name) > max_length:
        raise BadRequest(f"a tag is at most {max_length} characters; this one has {len(name)}")
    bad = sorted({ch for ch in name if ch in _FORBIDDEN or unicodedata.category(ch)[0] == "C"})
    if bad:
        raise BadRequest(f"a tag cannot contain {' '.join(repr(ch) for ch in bad)}")
    if not query and is_person_tag(name):
        raise BadRequest(f"tags starting with {PERSON_PREFIX!r} name people: name them on the People page")
    return name


def is_person_tag(name: str) -> bool:
    return name.startswith(PERSON_PREFIX)


# Tags as a person gave them, what the services take (they normalise them: no caller can store
# an untidy tag): one field typed as `beach, sunset`, or names one by one (a comma in one of
# those is refused, as every unsafe character is).
TypedTags = str | Sequence[str]


def normalize_tags(names: Iterable[str], max_length: int, *, query: bool = False) -> list[str]:
    """Names given one by one: each normalised (`normalize_tag`), each once, in the order given."""
    return list(dict.fromkeys(normalize_tag(raw, max_length, query=query) for raw in names))


def parse_tag_list(raw: str, max_length: int, *, query: bool = False) -> list[str]:
    """Tags typed as `beach, sunset`: normalised, each once, in the order given (blanks between
    commas are skipped)."""
    return normalize_tags((part for part in raw.split(",") if part.strip()), max_length, query=query)


def typed_tags(tags: TypedTags, max_length: int, *, query: bool = False) -> list[str]:
    """`TypedTags` normalised: a field split at its commas (`parse_tag_list`), names one by one
    each one tag (`normalize_tags`)."""
    if isinstance(tags, str):
        return parse_tag_list(tags, max_length, query=query)
    return normalize_tags(tags, max_length, query=query)


def tag_ids(session: Session, names: set[str]) -> dict[str, int]:
    """Ids of these tags, creating the missing ones. Inserted in sorted order and ignoring
    duplicates, so concurrent writers wait for each other instead of deadlocking."""
    if not names:
        return {}
    if any(is_person_tag(n) for n in names):  # a caller that forgot normalize_tag's check
        raise BadRequest(f"tags starting with {PERSON_PREFIX!r} name people: name them on the People page")
    insert_ignoring_duplicates(session, Tag.__table__, [{"name": n} for n in sorted(names)])
    return {
        name: tag_id for name, tag_id in session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(names)))
    }


def get_or_create_tag(session: Session, name: str) -> Tag:
    return session.get_one(Tag, tag_ids(session, {name})[name])


def set_owner_tag(session: Session, photo: Photo, user: Account, name: str) -> PhotoTag:
    """The owner sets a tag, or confirms a suggestion: either way it is now confirmed."""
    if photo.owner_id != user.id:
        raise Forbidden("only the owner can tag this photo; you can vote on its tags instead")
    tag = get_or_create_tag(session, name)
    approves = user.is_admin and tag.approved_at is None
    if approves:
        # An administrator's own tag is approved as a class by being set: no second step.
        tag.approved_at, tag.approved_by_id = datetime.now(UTC), user.id
    photo_tag = session.scalar(
        select(PhotoTag).where(PhotoTag.photo_id == photo.id, PhotoTag.tag_id == tag.id)
    )
    if photo_tag is None:
        photo_tag = PhotoTag(photo_id=photo.id, tag_id=tag.id, source=TagSource.USER)
        session.add(photo_tag)
    photo_tag.status = TagStatus.CONFIRMED
    photo_tag.set_by_user_id = user.id
    session.flush()
    if approves:
        label_clock.tick(session)  # every label of the tag may count now
    else:
        label_clock.decided(session)
    return photo_tag


def reject_owner_tag(session: Session, photo: Photo, user: Account, name: str) -> None:
    """The owner removes a tag. A model's suggestion is kept as rejected, so it is never offered
    again and a later model learns from the 'no'; a tag only a person had set is simply deleted."""
    if photo.owner_id != user.id:
        raise Forbidden("only the owner can remove this photo's tags")
    photo_tag = session.scalar(
        select(PhotoTag).join(Tag).where(PhotoTag.photo_id == photo.id, Tag.name == name)
    )
    if photo_tag is None:
        raise NotFound(f"the photo has no tag {name!r}")
    if photo_tag.source == TagSource.MODEL:
        photo_tag.status = TagStatus.REJECTED
        photo_tag.set_by_user_id = user.id
    else:
        session.delete(photo_tag)
    session.flush()
    label_clock.decided(session)


TAG_RULES = (
    "A tag is trimmed, its spaces collapsed and lower-cased; then it has 1 to EYES_MAX_TAG_LENGTH "
    f"characters ({Settings.model_fields['max_tag_length'].default} by default) and none of "
    f"{' '.join(sorted(_FORBIDDEN))} or control characters."
)
