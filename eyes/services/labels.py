"""Votes, training-grade labels and the classes the network learns.

A label is a yes or a no for a tag on an image. It is training grade when the owner set, confirmed
or rejected the tag, or when at least `min_votes_to_agree` trusted users (services/trust.py) agree
on it and fewer say the opposite. The owner's decision wins. A yes for a tag is a yes for its
ancestors; a no for a tag is a no for its descendants. Private photos teach nothing unless their
owner opted in. A tag nobody decided on for a photo is no label at all: a photo tagged `beach` is
not known to be "not `sunset`".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from eyes.config import Settings
from eyes.context import Context
from eyes.db.models import Photo, PhotoTag, Tag, TagVote, User
from eyes.db.session import transaction
from eyes.domain import Account, TagStatus, Visibility
from eyes.errors import BadRequest
from eyes.services import label_clock
from eyes.services.photos import get_visible_photo, not_hidden
from eyes.services.tags import get_or_create_tag, normalize_tag, reject_owner_tag, set_owner_tag
from eyes.services.trust import trusted_voters
from eyes.services.vocabulary import Hierarchy, approved_tags, hierarchy


def vote(session: Session, photo: Photo, user: Account, name: str, agrees: bool) -> None:
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
        existing.created_at = datetime.now(UTC)  # when it was last cast
    session.flush()
    label_clock.decided(session)


def cast_vote(ctx: Context, key: str, user: Account, name: str, agrees: bool) -> dict[str, tuple[int, int]]:
    """Record `user`'s vote on a photo they can see (by its public id); returns its tally afterwards."""
    name = normalize_tag(name, ctx.settings.max_tag_length)
    photo_id = get_visible_photo(ctx, key, user).id
    with transaction(ctx.sessions) as session:
        check_vote_rate(ctx, user)
        vote(session, session.get_one(Photo, photo_id), user, name, agrees)
        return vote_counts(session, photo_id)


def check_vote_rate(ctx: Context, user: Account) -> None:
    """Count a vote of this account; 429 beyond `max_votes_per_minute` (a changed vote counts
    too), with the same limiter as every other limit (services/limits.py)."""
    rule = f"{ctx.settings.max_votes_per_minute}/minute"
    ctx.limits.hit(rule, "votes", str(user.id), what="votes from your account")


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


@dataclass(frozen=True)
class Decision:
    """How one label came to be training grade: the owner of `photo_id` decided it, or trusted
    users voted (`yes` for, `no` against; the owner's own vote is a decision, never counted)."""

    photo_id: int
    by: str  # "owner" or "votes"
    agrees: bool  # what was decided: the tag is (True) or is not (False) on the photo
    yes: int = 0
    no: int = 0


@dataclass
class Labels:
    """Training-grade labels by image (content hash): a photo uploaded twice is one example."""

    positives: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    negatives: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    owners: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # tag -> owners
    photos: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # sha -> photo ids
    # (sha, tag) -> how it was decided; kept only when asked for (`explain`): a data set export
    # says who decided each label, training needs only the labels. A label a hierarchy implies
    # (a yes for the parent of a yes) has no entry.
    decisions: dict[tuple[str, str], list[Decision]] = field(default_factory=lambda: defaultdict(list))

    @property
    def count(self) -> int:
        return sum(map(len, self.positives.values())) + sum(map(len, self.negatives.values()))

    def positive_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for names in self.positives.values():
            for name in names:
                counts[name] += 1
        return counts


def teaching_photos() -> ColumnElement[bool]:
    """Photos that may teach the shared model: not private, or private with the owner's consent;
    never one hidden by moderation (or of a suspended account)."""
    return and_(
        or_(
            Photo.visibility != Visibility.PRIVATE,
            Photo.owner_id.in_(select(User.id).where(User.private_photos_teach)),
        ),
        not_hidden(),
    )


def training_labels(
    session: Session,
    settings: Settings,
    *,
    photos: ColumnElement[bool] | None = None,
    explain: bool = False,
) -> Labels:
    """Every training-grade label of the photos that may teach, narrowed to `photos` when given
    (a data set export takes only the photos that may leave); with `explain`, how each label
    was decided (`Labels.decisions`)."""
    labels = Labels()
    allowed = teaching_photos() if photos is None else and_(teaching_photos(), photos)
    decided = session.execute(
        select(Photo.id, Photo.sha256, Photo.owner_id, Tag.name, PhotoTag.status)
        .join(PhotoTag, PhotoTag.photo_id == Photo.id)
        .join(Tag, Tag.id == PhotoTag.tag_id)
        .where(PhotoTag.status.in_([TagStatus.CONFIRMED, TagStatus.REJECTED]), allowed)
    )
    owner_says: set[tuple[int, str]] = set()
    for photo_id, sha, owner_id, name, status in decided:
        owner_says.add((photo_id, name))
        _add(labels, photo_id, sha, owner_id, name, status == TagStatus.CONFIRMED)
        if explain:
            labels.decisions[(sha, name)].append(Decision(photo_id, "owner", status == TagStatus.CONFIRMED))

    trusted = list(trusted_voters(session, settings))
    yes = func.sum(case((TagVote.agrees, 1), else_=0))
    no = func.sum(case((TagVote.agrees, 0), else_=1))
    agreed = session.execute(
        select(Photo.id, Photo.sha256, Photo.owner_id, Tag.name, yes, no)
        .join(TagVote, TagVote.photo_id == Photo.id)
        .join(Tag, Tag.id == TagVote.tag_id)
        .where(TagVote.user_id != Photo.owner_id, TagVote.user_id.in_(trusted), allowed)
        .group_by(Photo.id, Photo.sha256, Photo.owner_id, Tag.name)
    )
    need = settings.min_votes_to_agree
    for photo_id, sha, owner_id, name, n_yes, n_no in agreed:
        if (photo_id, name) in owner_says:
            continue  # the owner's decision wins
        if n_yes >= need and n_yes > n_no:
            _add(labels, photo_id, sha, owner_id, name, True)
        elif n_no >= need and n_no > n_yes:
            _add(labels, photo_id, sha, owner_id, name, False)
        else:
            continue
        if explain:
            labels.decisions[(sha, name)].append(
                Decision(photo_id, "votes", n_yes > n_no, int(n_yes), int(n_no))
            )
    _apply_hierarchy(labels, hierarchy(session))
    return labels


def _add(labels: Labels, photo_id: int, sha: str, owner_id: int, name: str, yes: bool) -> None:
    labels.photos[sha].add(photo_id)
    if yes:
        labels.positives[sha].add(name)
        labels.owners[name].add(owner_id)
    else:
        labels.negatives[sha].add(name)


def _apply_hierarchy(labels: Labels, tree: Hierarchy) -> None:
    """A yes for a child is a yes for its parents; a no for a parent is a no for its children.

    A tag both confirmed (on one copy) and rejected (on another) of the same image: trust the yes."""
    owners_of: dict[str, set[int]] = defaultdict(set)
    for name, owners in labels.owners.items():
        for ancestor in tree.ancestors(name):
            owners_of[ancestor] |= owners
    for name, owners in owners_of.items():
        labels.owners[name] |= owners
    for sha in list(labels.positives):
        labels.positives[sha] = tree.expand(labels.positives[sha])
    for sha in list(labels.negatives):
        names = labels.negatives[sha]
        names |= set().union(*(tree.descendants(n) for n in names)) if names else set()
        names -= labels.positives.get(sha, set())
        if not names:
            del labels.negatives[sha]


@dataclass
class Vocabulary:
    classes: list[str]  # what the next model learns
    waiting: list[str]  # meet the thresholds, but wait for an administrator's approval


def class_vocabulary(session: Session, labels: Labels, settings: Settings, known: set[str]) -> Vocabulary:
    """Tags with `min_labels_per_tag` yes-labels from `min_owners_per_tag` owners become classes
    when approved, known to the champion (`known`), or when the vocabulary is open."""
    counts = labels.positive_counts()
    ready = sorted(
        name
        for name, n in counts.items()
        if n >= settings.min_labels_per_tag and len(labels.owners[name]) >= settings.min_owners_per_tag
    )
    if settings.open_vocabulary:
        return Vocabulary(ready, [])
    allowed = approved_tags(session) | known
    return Vocabulary([n for n in ready if n in allowed], [n for n in ready if n not in allowed])


def countable_labels(session: Session, labels: Labels, settings: Settings, known: set[str]) -> int:
    """Labels of tags that may become classes (approved, known to the champion, or any tag in an
    open vocabulary): what counts towards an automatic run, so labels nobody approved move nothing."""
    if settings.open_vocabulary:
        return labels.count
    allowed = approved_tags(session) | known
    return sum(len(names & allowed) for names in labels.positives.values()) + sum(
        len(names & allowed) for names in labels.negatives.values()
    )


def require_vocabulary(vocab: Vocabulary, settings: Settings) -> None:
    if len(vocab.classes) < 2:
        waiting = (
            f"; {len(vocab.waiting)} more wait for an administrator's approval on /models "
            f"({', '.join(vocab.waiting[:5])})"
            if vocab.waiting
            else ""
        )
        raise BadRequest(
            f"not enough agreed labels to train: {len(vocab.classes)} approved tag(s) have at least "
            f"{settings.min_labels_per_tag} training-grade photos from {settings.min_owners_per_tag} "
            f"owners, and a model needs at least 2{waiting}"
        )
