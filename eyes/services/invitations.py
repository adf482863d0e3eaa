"""Invitations: one-time codes to sign up with, and the setup code that makes the first
administrator (printed at start while there is none, so the first visitor is never one)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Invitation, User
from eyes.db.session import transaction
from eyes.domain import Account
from eyes.errors import BadRequest, NotFound
from eyes.services.views import InvitationPublic

INVALID = "this invitation is unknown, already used or expired: ask an administrator for a new one"


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def create(ctx: Context, by: Account | None, *, admin: bool = False) -> str:
    """A new invitation; returns its code, shown once (only its hash is kept)."""
    return make(ctx, by, admin=admin)[1]


def make(
    ctx: Context, by: Account | None, *, admin: bool = False, setup: bool = False
) -> tuple[InvitationPublic, str]:
    """A new invitation and its code (shown once: only its hash is kept). With sign-up closed only
    an administrator's invitation opens it, so a member's is refused rather than made useless."""
    if ctx.settings.signup == "closed" and not admin:
        raise BadRequest(
            "sign-up is closed (EYES_SIGNUP=closed): a member's invitation would not work; "
            "make the account with `eyes users create`, or invite an administrator"
        )
    code = secrets.token_urlsafe(16)
    invitation = Invitation(
        code_hash=_hash(code),
        admin=admin,
        setup=setup,
        created_by_id=by.id if by else None,
        created_at=datetime.now(UTC),
        expires_at=datetime.now(UTC) + timedelta(days=ctx.settings.invitation_days),
    )
    with transaction(ctx.sessions) as session:
        session.add(invitation)
    return InvitationPublic.of(invitation), code


def setup_code(ctx: Context) -> str | None:
    """While no administrator exists: a fresh one-time code that makes one (earlier setup codes
    stop working: only the newest printed is valid). None once there is an administrator."""
    with transaction(ctx.sessions) as session:
        if session.scalar(select(exists().where(User.is_admin))):
            return None
        end_setup(session)
    return make(ctx, None, admin=True, setup=True)[1]


def end_setup(session: Session) -> None:
    """In the caller's transaction: the platform has an administrator now, so no unused setup
    link may make another."""
    session.execute(delete(Invitation).where(Invitation.setup, Invitation.used_at.is_(None)))


def redeem(session: Session, code: str) -> Invitation:
    """Use up `code`, in the caller's transaction (with the account it makes). One statement marks
    it used and returns it, so two sign-ups racing with one code cannot both have it: a SELECT
    then UPDATE let both through on SQLite, which ignores FOR UPDATE."""
    now = datetime.now(UTC)
    used = session.scalar(
        update(Invitation)
        .where(Invitation.code_hash == _hash(code), Invitation.used_at.is_(None), Invitation.expires_at > now)
        .values(used_at=now)
        .returning(Invitation)
        .execution_options(synchronize_session=False)
    )
    if used is None:
        raise BadRequest(INVALID)
    if used.setup and session.scalar(select(exists().where(User.is_admin))):
        raise BadRequest(INVALID)  # a setup link outlived its purpose (the rollback keeps it unused)
    return used


def open_invitations(ctx: Context) -> list[InvitationPublic]:
    """Invitations not used yet and not expired, newest first (the setup link excluded)."""
    with ctx.sessions() as session:
        return [
            InvitationPublic.of(i)
            for i in session.scalars(
                select(Invitation)
                .where(
                    Invitation.used_at.is_(None),
                    Invitation.expires_at > datetime.now(UTC),
                    ~Invitation.setup,
                )
                .order_by(Invitation.id.desc())
            )
        ]


def revoke(ctx: Context, invitation_id: int) -> None:
    with transaction(ctx.sessions) as session:
        gone = session.execute(
            delete(Invitation).where(
                Invitation.id == invitation_id,
                Invitation.used_at.is_(None),
                ~Invitation.setup,
            )
        )
        if not gone.rowcount:  # type: ignore[attr-defined]
            raise NotFound("no such open invitation")
