"""Moderation: sensitive photos, reports, and what administrators do about them.

Sensitive photos (the model's score at `EYES_SENSITIVE_THRESHOLD` or above, or marked by their
owner) are shown blurred to others unless they opted in. Anyone signed in may report a photo they
can see, once, within `EYES_REPORT_LIMIT_PER_ACCOUNT`. Administrators work through a queue of
reported and high-scoring photos: hide (out of every list, search, export and training set:
services/photos.not_hidden), restore, warn a user (a notice they see), suspend an account (it
cannot sign in, its sessions and tokens end, its photos are hidden from others).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import ApiToken, Image, LoginSession, Notice, Photo, Report, User
from eyes.db.session import transaction
from eyes.domain import Account, ReportReason, Visibility, new_key
from eyes.errors import BadRequest, Conflict, Forbidden, NotFound
from eyes.services import label_clock
from eyes.services.photos import all_as_seen_by, as_seen_by, get_visible_photo, photo_query
from eyes.services.views import (
    ModerationItem,
    NoticePublic,
    PhotoPublic,
    ReportPublic,
    SuspendedUser,
)

MAX_NOTE = 500
MAX_MESSAGE = 2000
QUEUE_LENGTH = 100


def _require_admin(user: Account) -> None:
    # The routes check too; a service that changes what others see checks for itself.
    if not user.is_admin:
        raise Forbidden("only administrators can moderate")


# --- what everybody does ---------------------------------------------------------------------


def report_photo(ctx: Context, key: str, user: Account, reason: ReportReason, note: str = "") -> ReportPublic:
    """`user` reports a photo they can see (another's private photo is 'not found'): once per
    photo, within the per-account limit (429 beyond it)."""
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise BadRequest(f"a report's note is at most {MAX_NOTE} characters; this one has {len(note)}")
    photo = get_visible_photo(ctx, key, user)
    if photo.owner_id == user.id:
        raise BadRequest("you cannot report your own photo: edit, mark as sensitive or delete it instead")
    # Every attempt counts, a repeated one too: a script cannot probe or flood for free.
    ctx.limits.hit(
        ctx.settings.report_limit_per_account, "report", str(user.id), what="reports from your account"
    )
    try:
        with transaction(ctx.sessions) as session:
            report = Report(photo_id=photo.id, reporter_id=user.id, reason=reason.value, note=note)
            session.add(report)
            session.flush()
            return _report_public(report, photo.public_id, user.username)
    except IntegrityError:
        raise Conflict("you have already reported this photo; an administrator will look at it") from None


def mark_sensitive(ctx: Context, key: str, user: Account, marked: bool) -> PhotoPublic:
    """The owner (or an administrator) marks a photo sensitive, or takes the mark off. The mark
    adds to the model's score: it cannot unblur what the model finds sensitive."""
    photo = get_visible_photo(ctx, key, user)
    if photo.owner_id != user.id and not user.is_admin:
        raise Forbidden("only the owner can mark this photo as sensitive; report it instead")
    with transaction(ctx.sessions) as session:
        session.get_one(Photo, photo.id).marked_sensitive = marked
    return _as_admin_or_owner(ctx, photo.id, user)


def unread_notices(ctx: Context, user: Account) -> list[NoticePublic]:
    with ctx.sessions() as session:
        rows = session.execute(
            select(Notice.id, Notice.message, Photo.public_id, Notice.created_at)
            .outerjoin(Photo, Photo.id == Notice.photo_id)
            .where(Notice.user_id == user.id, Notice.read_at.is_(None))
            .order_by(Notice.id)
        ).all()
    return [NoticePublic(id=i, message=m, photo=p, created_at=c) for i, m, p, c in rows]


def dismiss_notice(ctx: Context, user: Account, notice_id: int) -> None:
    with transaction(ctx.sessions) as session:
        notice = session.get(Notice, notice_id)
        if notice is None or notice.user_id != user.id:  # someone else's is nothing to this user
            raise NotFound("no such notice")
        notice.read_at = notice.read_at or datetime.now(UTC)


# --- what administrators do ------------------------------------------------------------------


def queue(ctx: Context, admin: Account) -> list[ModerationItem]:
    """Photos with open reports (most reported first), then photos the model scored sensitive
    that nobody reviewed yet (highest first). Private photos are seen by nobody but their owner
    and are not queued for their score."""
    _require_admin(admin)
    threshold = ctx.settings.sensitive_threshold
    open_reports = func.count(Report.id)
    with ctx.sessions() as session:
        reported = session.execute(
            select(Report.photo_id, open_reports)
            .where(Report.resolved_at.is_(None))
            .group_by(Report.photo_id)
            .order_by(open_reports.desc(), Report.photo_id)
            .limit(QUEUE_LENGTH)
        ).all()
        ids = [photo_id for photo_id, _ in reported]
        scored = session.scalars(
            select(Photo.id)
            .join(Image, Image.sha256 == Photo.sha256)
            .where(
                Image.sensitive_score >= threshold,
                Photo.hidden_at.is_(None),
                Photo.reviewed_at.is_(None),
                Photo.visibility != Visibility.PRIVATE,
                Photo.id.not_in(ids) if ids else Photo.id.is_not(None),
            )
            .order_by(Image.sensitive_score.desc(), Photo.id)
            .limit(max(0, QUEUE_LENGTH - len(ids)))
        ).all()
        ids += scored
        photos = {p.id: p for p in session.scalars(photo_query().where(Photo.id.in_(ids)))}
        reports = _open_reports(session, ids)
        views = dict(zip(photos, all_as_seen_by(ctx, list(photos.values()), admin), strict=True))
        return [
            ModerationItem(
                photo=views[i],
                reports=reports.get(i, []),
                owner_suspended=photos[i].owner.suspended_at is not None,
            )
            for i in ids
            if i in photos
        ]


def _open_reports(session: Session, photo_ids: list[int]) -> dict[int, list[ReportPublic]]:
    found: dict[int, list[ReportPublic]] = defaultdict(list)
    if not photo_ids:
        return found
    rows = session.execute(
        select(Report, Photo.public_id, User.username)
        .join(Photo, Photo.id == Report.photo_id)
        .join(User, User.id == Report.reporter_id)
        .where(Report.photo_id.in_(photo_ids), Report.resolved_at.is_(None))
        .order_by(Report.id)
    )
    for report, public_id, reporter in rows:
        found[report.photo_id].append(_report_public(report, public_id, reporter))
    return found


def _report_public(report: Report, photo: str, reporter: str) -> ReportPublic:
    return ReportPublic(
        id=report.id,
        photo=photo,
        reporter=reporter,
        reason=ReportReason(report.reason),
        note=report.note,
        created_at=report.created_at,
        resolution=report.resolution,
    )


def _photo_for_admin(session: Session, key: str) -> Photo:
    photo = session.scalar(select(Photo).where(Photo.public_id == key))
    if photo is None:
        raise NotFound("there is no such photo")
    return photo


def _resolve_reports(session: Session, photo_id: int, admin: Account, resolution: str) -> None:
    session.execute(
        update(Report)
        .where(Report.photo_id == photo_id, Report.resolved_at.is_(None))
        .values(resolved_at=datetime.now(UTC), resolved_by_id=admin.id, resolution=resolution)
    )


def hide_photo(ctx: Context, admin: Account, key: str, reason: str = "") -> PhotoPublic:
    """Hide a photo from everybody but its owner (who is told why) and administrators: out of
    every list, search and similar list, every export and training set; its open reports are
    resolved. New media URLs, so nothing cached under the old ones shows it."""
    _require_admin(admin)
    reason = _message(reason, required=False)
    with transaction(ctx.sessions) as session:
        photo = _photo_for_admin(session, key)
        now = datetime.now(UTC)
        photo.hidden_at = photo.hidden_at or now
        photo.reviewed_at = now
        photo.media_key = new_key()
        _resolve_reports(session, photo.id, admin, "hidden")
        told = f"An administrator hid your photo {photo.title or photo.public_id!r}"
        session.add(
            Notice(
                user_id=photo.owner_id,
                photo_id=photo.id,
                message=f"{told}: {reason}" if reason else f"{told}.",
                created_by_id=admin.id,
            )
        )
        label_clock.tick(session)  # it teaches no more
        photo_id = photo.id
    return _as_admin_or_owner(ctx, photo_id, admin)


def restore_photo(ctx: Context, admin: Account, key: str) -> PhotoPublic:
    """Show a hidden photo again (or keep a reported or high-scoring one): its open reports are
    resolved and it leaves the queue."""
    _require_admin(admin)
    with transaction(ctx.sessions) as session:
        photo = _photo_for_admin(session, key)
        if photo.hidden_at is not None:
            photo.hidden_at = None
            photo.media_key = new_key()
            label_clock.tick(session)
        photo.reviewed_at = datetime.now(UTC)
        _resolve_reports(session, photo.id, admin, "restored")
        photo_id = photo.id
    return _as_admin_or_owner(ctx, photo_id, admin)


def warn_user(
    ctx: Context, admin: Account, username: str, message: str, photo_key: str | None = None
) -> None:
    """A message the user sees on every page until they dismiss it."""
    _require_admin(admin)
    message = _message(message, required=True)
    with transaction(ctx.sessions) as session:
        user = _user(session, username)
        photo = _photo_for_admin(session, photo_key) if photo_key else None
        if photo is not None and photo.owner_id != user.id:  # the notice would show them another's photo
            raise BadRequest(f"that photo is not {user.username}'s: a warning names one of their own photos")
        photo_id = photo.id if photo is not None else None
        session.add(Notice(user_id=user.id, photo_id=photo_id, message=message, created_by_id=admin.id))


def suspend_user(ctx: Context, admin: Account, username: str) -> None:
    """The account cannot sign in; its sessions and API tokens end now; its photos are hidden
    from everybody else (services/photos.not_hidden) under new media URLs."""
    _require_admin(admin)
    with transaction(ctx.sessions) as session:
        user = _user(session, username)
        if user.id == admin.id:
            raise BadRequest("you cannot suspend yourself")
        if user.is_admin:
            raise Forbidden("an administrator cannot be suspended")
        now = datetime.now(UTC)
        user.suspended_at = user.suspended_at or now
        session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        _new_media_keys(session, user.id)
        label_clock.tick(session)


def unsuspend_user(ctx: Context, admin: Account, username: str) -> None:
    """The account may sign in again (with new sessions and tokens) and its photos are shown
    again, except those hidden one by one."""
    _require_admin(admin)
    with transaction(ctx.sessions) as session:
        user = _user(session, username)
        if user.suspended_at is None:
            return
        user.suspended_at = None
        _new_media_keys(session, user.id)
        label_clock.tick(session)


def suspended_users(ctx: Context, admin: Account) -> list[SuspendedUser]:
    _require_admin(admin)
    with ctx.sessions() as session:
        rows = session.execute(
            select(User.username, User.suspended_at)
            .where(User.suspended_at.is_not(None))
            .order_by(User.suspended_at.desc())
        ).all()
    return [SuspendedUser(username=u, suspended_at=at) for u, at in rows if at is not None]


def _new_media_keys(session: Session, owner_id: int) -> None:
    for photo_id in session.scalars(select(Photo.id).where(Photo.owner_id == owner_id)):
        session.execute(update(Photo).where(Photo.id == photo_id).values(media_key=new_key()))


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"no user called {username!r}")
    return user


def _message(text: str, *, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise BadRequest("write the message the user will see")
    if len(text) > MAX_MESSAGE:
        raise BadRequest(f"a message is at most {MAX_MESSAGE} characters; this one has {len(text)}")
    return text


def _as_admin_or_owner(ctx: Context, photo_id: int, viewer: Account) -> PhotoPublic:
    with ctx.sessions() as session:
        photo = session.scalar(photo_query().where(Photo.id == photo_id))
    if photo is None:
        raise NotFound("there is no such photo")
    return as_seen_by(ctx, photo, viewer)
