"""Signed-in browsers, kept on the server so that they can be ended.

The cookie holds a random secret and nothing else about the account; the database keeps its
hash. Logging out deletes the row, so a copied cookie stops working at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from eyes.context import Context
from eyes.db.models import LoginSession, as_utc
from eyes.db.session import transaction
from eyes.domain import Account
from eyes.errors import NotFound
from eyes.services.views import AccountView

TOUCH_EVERY = timedelta(minutes=1)  # a write per request would serialise pages on the database


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(ctx: Context, user: Account, user_agent: str = "") -> str:
    """A new session for `user`; returns the secret for the cookie (the database keeps its hash)."""
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with transaction(ctx.sessions) as session:
        session.execute(
            delete(LoginSession).where(LoginSession.user_id == user.id, LoginSession.expires_at < now)
        )
        session.add(
            LoginSession(
                user_id=user.id,
                secret_hash=_hash(secret),
                user_agent=user_agent[:200],
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(days=ctx.settings.session_days),
            )
        )
    return secret


def user_for(ctx: Context, secret: str) -> AccountView | None:
    """The account of a live session, or None when it ended, expired or never was."""
    now = datetime.now(UTC)
    with transaction(ctx.sessions) as session:
        row = session.scalar(select(LoginSession).where(LoginSession.secret_hash == _hash(secret)))
        if row is None or as_utc(row.expires_at) <= now:  # type: ignore[operator]
            return None
        if row.user.suspended_at is not None:  # suspending ends sessions; this is belt and braces
            return None
        if now - as_utc(row.last_seen_at) > TOUCH_EVERY:  # type: ignore[operator]
            row.last_seen_at = now
        return AccountView.of(row.user)


def end(ctx: Context, secret: str) -> None:
    with transaction(ctx.sessions) as session:
        session.execute(delete(LoginSession).where(LoginSession.secret_hash == _hash(secret)))


def end_others(ctx: Context, user: Account, keep: str | None) -> int:
    """End every session of `user` but the one holding `keep` (None: all); returns how many."""
    query = delete(LoginSession).where(LoginSession.user_id == user.id)
    if keep is not None:
        query = query.where(LoginSession.secret_hash != _hash(keep))
    with transaction(ctx.sessions) as session:
        return int(session.execute(query).rowcount)  # type: ignore[attr-defined]


def end_one(ctx: Context, user: Account, session_id: int) -> None:
    with transaction(ctx.sessions) as session:
        row = session.get(LoginSession, session_id)
        if row is None or row.user_id != user.id:
            raise NotFound("no such session")
        session.delete(row)


def listing(ctx: Context, user: Account, current: str | None) -> list[dict[str, object]]:
    """The user's live sessions, newest first, marking the one asking."""
    now = datetime.now(UTC)
    mine = _hash(current) if current else None
    with ctx.sessions() as session:
        rows = session.scalars(
            select(LoginSession)
            .where(LoginSession.user_id == user.id, LoginSession.expires_at > now)
            .order_by(LoginSession.last_seen_at.desc())
        )
        return [
            {
                "id": row.id,
                "user_agent": row.user_agent or "unknown browser",
                "created_at": as_utc(row.created_at),
                "last_seen_at": as_utc(row.last_seen_at),
                "current": row.secret_hash == mine,
            }
            for row in rows
        ]
