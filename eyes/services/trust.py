"""Whose votes count: an account's vote weighs by its record, not by how many accounts vote.

An account is trusted when it is an administrator, or when it is old enough and enough of its
votes agreed with the decisions of other, established owners (the owner confirmed or rejected the
same tag on the same photo). Everyone else may vote, and their votes are shown, but they teach the
model nothing: a hundred accounts made a minute ago weigh what one does, nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from eyes.config import Settings
from eyes.db.models import Photo, PhotoTag, TagVote, User, as_utc
from eyes.domain import TagStatus


def _established_before(settings: Settings) -> datetime:
    return datetime.now(UTC) - timedelta(days=settings.trust_min_account_age_days)


def voting_records(session: Session, settings: Settings) -> dict[int, tuple[int, int]]:
    """Per voter: (votes that agreed with an established owner's decision, votes on decided tags)."""
    owner = aliased(User)
    agreed = case(
        (
            or_(
                and_(PhotoTag.status == TagStatus.CONFIRMED, TagVote.agrees),
                and_(PhotoTag.status == TagStatus.REJECTED, ~TagVote.agrees),
            ),
            1,
        ),
        else_=0,
    )
    rows = session.execute(
        select(TagVote.user_id, func.sum(agreed), func.count())
        .join(PhotoTag, and_(PhotoTag.photo_id == TagVote.photo_id, PhotoTag.tag_id == TagVote.tag_id))
        .join(Photo, Photo.id == TagVote.photo_id)
        .join(owner, owner.id == Photo.owner_id)
        .where(
            PhotoTag.status.in_([TagStatus.CONFIRMED, TagStatus.REJECTED]),
            PhotoTag.set_by_user_id == Photo.owner_id,  # the owner's own decision
            Photo.owner_id != TagVote.user_id,
            # Agreeing with accounts made for the purpose builds no record.
            owner.created_at <= _established_before(settings),
        )
        .group_by(TagVote.user_id)
    )
    return {user_id: (int(agree or 0), int(total)) for user_id, agree, total in rows}


def trusted_voters(session: Session, settings: Settings) -> set[int]:
    """The accounts whose votes count towards training labels (never a suspended one)."""
    records = voting_records(session, settings)
    cutoff = _established_before(settings)
    trusted = set(session.scalars(select(User.id).where(User.is_admin)))
    if settings.trust_min_agreements <= 0:  # a community that trusts every account of age
        trusted |= set(session.scalars(select(User.id).where(User.created_at <= cutoff)))
    for user_id, created_at in session.execute(
        select(User.id, User.created_at).where(User.id.in_(list(records)))
    ):
        agree, total = records[user_id]
        if (
            (as_utc(created_at) or cutoff) <= cutoff
            and agree >= settings.trust_min_agreements
            and agree >= settings.trust_min_agreement_rate * total
        ):
            trusted.add(user_id)
    # A suspended account teaches nothing: its photos are hidden (services/photos.not_hidden),
    # and the votes it cast before are set aside with them (suspending ticks the label clock).
    return trusted - set(session.scalars(select(User.id).where(User.suspended_at.is_not(None))))
