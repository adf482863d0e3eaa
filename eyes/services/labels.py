"""Votes, training-grade labels and the vocabulary the network learns.

A label is training grade when the owner set or confirmed it, or when at least
`min_votes_to_agree` distinct users confirmed it and fewer rejected it. The owner's decision wins.
A tag joins the vocabulary when it has `min_labels_per_tag` training-grade photos from at least
`min_owners_per_tag` distinct owners.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from eyes.config import Settings
from eyes.context import Context
from eyes.db.models import Photo, PhotoTag, Tag, TagStatus, TagVote, User
from eyes.db.session import transaction
from eyes.errors import BadRequest
from eyes.services.photos import get_visible_photo
from eyes.services.tags import get_or_create_tag, reject_owner_tag, set_owner_tag


def vote(session: Session, photo: Photo, user: User, name: str, agrees: bool) -> None:
    """`user` says the photo does (or does not) show `name`. The owner's vote is a decision."""
    if photo.owner_id == user.id:
        if agrees:
            set_owner_tag(session, photo, user, name)
        else:
            reject_owner_tag(session, photo, user, name)
        return
    tag = get_or_create_tag(session, name)
    existing = session.scalar(
        select(TagVote).where(
            TagVote.photo_id == photo.id, TagVote.tag_id == tag.id, TagVote.user_id == user.id
        )
    )
    if existing is None:
        session.add(TagVote(photo_id=photo.id, tag_id=tag.id, user_id=user.id, agrees=agrees))
    else:
        existing.agrees = agrees
    session.flush()


def cast_vote(ctx: Context, photo_id: int, user: User, name: str, agrees: bool) -> dict[str, tuple[int, int]]:
    """Record `user`'s vote on a photo they can see; returns the photo's tally afterwards."""
    get_visible_photo(ctx, photo_id, user)
    with transaction(ctx.sessions) as session:
        vote(session, session.get_one(Photo, photo_id), user, name, agrees)
        return vote_counts(session, photo_id)


def vote_counts(session: Session, photo_id: int) -> dict[str, tuple[int, int]]:
    """Per tag name: (users who agree, users who disagree), owner excluded."""
    rows = session.execute(
        select(
            Tag.name,
            func.sum(case((TagVote.agrees, 1), else_=0)),
            func.sum(case((TagVote.agrees, 0), else_=1)),
        )
        .join(Tag, Tag.id == TagVote.tag_id)
        .where(TagVote.photo_id == photo_id)
        .group_by(Tag.name)
    )
    return {name: (int(yes), int(no)) for name, yes, no in rows}


@dataclass
class Labels:
    """Training-grade labels by image (content hash): a photo uploaded twice is one example."""

    positives: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    negatives: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    owners: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # tag -> owners
    photos: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # sha -> photo ids

    @property
    def count(self) -> int:
        return sum(len(tags) for tags in self.positives.values())


def training_labels(session: Session, settings: Settings) -> Labels:
    labels = Labels()
    decided = session.execute(
        select(Photo.id, Photo.sha256, Photo.owner_id, Tag.name, PhotoTag.status)
        .join(PhotoTag, PhotoTag.photo_id == Photo.id)
        .join(Tag, Tag.id == PhotoTag.tag_id)
        .where(PhotoTag.status.in_([TagStatus.CONFIRMED, TagStatus.REJECTED]))
    )
    owner_says: set[tuple[int, str]] = set()
    for photo_id, sha, owner_id, name, status in decided:
        owner_says.add((photo_id, name))
        labels.photos[sha].add(photo_id)
        if status == TagStatus.CONFIRMED:
            labels.positives[sha].add(name)
            labels.owners[name].add(owner_id)
        else:
            labels.negatives[sha].add(name)

    agreed = session.execute(
        select(Photo.id, Photo.sha256, Photo.owner_id, Tag.name)
        .join(TagVote, TagVote.photo_id == Photo.id)
        .join(Tag, Tag.id == TagVote.tag_id)
        .where(TagVote.user_id != Photo.owner_id)
        .group_by(Photo.id, Photo.sha256, Photo.owner_id, Tag.name)
        .having(
            func.sum(case((TagVote.agrees, 1), else_=0)) >= settings.min_votes_to_agree,
            func.sum(case((TagVote.agrees, 1), else_=0)) > func.sum(case((TagVote.agrees, 0), else_=1)),
        )
    )
    for photo_id, sha, owner_id, name in agreed:
        if (photo_id, name) in owner_says:
            continue  # the owner's decision wins
        labels.photos[sha].add(photo_id)
        labels.positives[sha].add(name)
        labels.owners[name].add(owner_id)
    # A tag both confirmed (on one copy) and rejected (on another) of the same image: trust the yes.
    for sha, names in labels.negatives.items():
        names -= labels.positives.get(sha, set())
    return labels


def vocabulary(labels: Labels, settings: Settings) -> list[str]:
    counts: dict[str, int] = defaultdict(int)
    for names in labels.positives.values():
        for name in names:
            counts[name] += 1
    return sorted(
        name
        for name, n in counts.items()
        if n >= settings.min_labels_per_tag and len(labels.owners[name]) >= settings.min_owners_per_tag
    )


def require_vocabulary(vocab: list[str], settings: Settings) -> None:
    if len(vocab) < 2:
        raise BadRequest(
            f"not enough agreed labels to train: {len(vocab)} tag(s) have at least "
            f"{settings.min_labels_per_tag} training-grade photos from {settings.min_owners_per_tag} "
            "owners, and a model needs at least 2"
        )
