"""'Help Eyes learn': the photos the champion is least sure of, and one-click answers."""

from __future__ import annotations

from sqlalchemy import exists

from eyes.context import Context
from eyes.db.models import Photo, PhotoTag, TagVote
from eyes.db.session import transaction
from eyes.domain import Account, TaggingState, TagStatus, Visibility
from eyes.errors import BadRequest
from eyes.services.labels import check_vote_rate, vote
from eyes.services.photos import all_as_seen_by, get_visible_photo, not_hidden, photo_query
from eyes.services.tags import normalize_tag
from eyes.services.views import PhotoPublic


def uncertain_photos(ctx: Context, viewer: Account, limit: int = 12) -> list[PhotoPublic]:
    """Visible photos the viewer has not answered yet and nobody has settled, least sure first."""
    query = (
        photo_query()
        .where(
            Photo.tagging == TaggingState.DONE,
            Photo.uncertainty.is_not(None),
            (Photo.visibility == Visibility.PUBLIC) | (Photo.owner_id == viewer.id),
            not_hidden(),
            ~exists().where(TagVote.photo_id == Photo.id, TagVote.user_id == viewer.id),
            ~exists().where(PhotoTag.photo_id == Photo.id, PhotoTag.status == TagStatus.CONFIRMED),
        )
        .order_by(Photo.uncertainty.desc(), Photo.id.desc())
        .limit(limit)
    )
    with ctx.sessions() as session:
        return all_as_seen_by(ctx, list(session.scalars(query)), viewer)


def answer(ctx: Context, viewer: Account, key: str, choice: str, other: str = "") -> None:
    """`choice` is a suggested tag's name, "other" (then `other` names the tag) or "none"."""
    photo = get_visible_photo(ctx, key, viewer)
    suggested = [t.tag.name for t in photo.tags if t.status == TagStatus.SUGGESTED]
    with transaction(ctx.sessions) as session:
        check_vote_rate(ctx, viewer)  # answers here are votes: the same limit
        target = session.get_one(Photo, photo.id)
        if choice == "none":
            if not suggested:
                raise BadRequest("this photo has no suggestion to reject")
            for name in suggested:
                vote(session, target, viewer, name, agrees=False)
        elif choice == "other":
            vote(session, target, viewer, normalize_tag(other, ctx.settings.max_tag_length), agrees=True)
        else:
            vote(session, target, viewer, normalize_tag(choice, ctx.settings.max_tag_length), agrees=True)
