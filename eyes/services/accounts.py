"""Accounts: sign-up, log-in, administrators and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import ApiToken, User, as_utc
from eyes.db.session import transaction
from eyes.domain import Account, License
from eyes.errors import BadRequest, Conflict, Forbidden, NotAuthenticated, NotFound
from eyes.services import invitations, label_clock, sessions
from eyes.services.faces import forget_faces
from eyes.services.limits import Slots
from eyes.services.views import AccountView, TokenPublic, UserPublic

_hasher = PasswordHasher()
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")
MIN_PASSWORD = 8
TOKEN_PREFIX = "eyes_"
MAX_TOKEN_DAYS = 3650
MAX_PASSWORD = 1024  # a passphrase, not a megabyte for Argon2 to chew


def normalize_username(name: str) -> str:
    username = name.strip().lower()
    if not USERNAME.match(username):
        raise BadRequest(
            "a username is 2 to 40 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return username


def create_user(ctx: Context, username: str, password: str, *, admin: bool = False) -> AccountView:
    """A new account. Nobody becomes an administrator by coming first: only by `admin` (the CLI,
    or an administrator's invitation such as the setup link)."""
    username = normalize_username(username)
    password_hash = _new_hash(password, ctx.limits.hashing)  # no connection waits for a slot
    with transaction(ctx.sessions) as session:
        return AccountView.of(_add_user(session, username, password_hash, admin=admin))


def _new_hash(password: str, hashing: Slots | None) -> str:
    """The hash of an acceptable password; each hash takes 64 MiB, so it waits for a slot."""
    _check_password(password)
    with _slot(hashing):
        return _hasher.hash(password)


def _add_user(session: Session, username: str, password_hash: str, *, admin: bool) -> User:
    """The account's row, in the caller's transaction (sign-up uses up its invitation in the same
    one); `username` is already normalised."""
    user = User(username=username, password_hash=password_hash, is_admin=admin)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"the username {username!r} is taken; choose another") from None
    if admin:  # the platform has an administrator: the setup link printed at start dies now
        invitations.end_setup(session)
    return user


def _verify(stored: str, password: str, hashing: Slots | None) -> bool:
    try:
        with _slot(hashing):
            return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def sign_in(ctx: Context, username: str, password: str, client: str) -> AccountView:
    """Check a password from the address `client`, within the sign-in limits.

    Every attempt counts against the address (`EYES_SIGNIN_LIMIT_PER_IP`), counted before the
    hash so that a parallel burst is cut short. Failures count against the name from this address
    (`EYES_SIGNIN_FAILURES_PER_NAME_AND_IP`, the tight one: one guesser stops there) and against the
    name from everywhere (`EYES_SIGNIN_FAILURES_PER_NAME`, looser: guessers on many addresses). The
    owner signing in from another address is held back only by the second, and only while the
    failures are recent: no one can lock an account for good. A success forgets this address's
    failures for the name."""
    s, limits = ctx.settings, ctx.limits
    name = username.strip().lower()[:64]
    limits.hit(s.signin_limit_per_ip, "signin-ip", client, what="sign-in attempts from your address")
    limits.check(
        s.signin_failures_per_name_and_ip,
        "signin-name-ip",
        name,
        client,
        what="failed sign-ins for this name from your address",
    )
    limits.check(s.signin_failures_per_name, "signin-name", name, what="failed sign-ins for this name")
    with ctx.sessions() as session:
        user = session.scalar(select(User).where(User.username == name))
    # No database connection is held while waiting for a hashing slot. Hash even for an unknown
    # name, so timing does not tell which usernames exist.
    if not _verify(user.password_hash if user else _DUMMY_HASH, password, limits.hashing) or user is None:
        limits.count(s.signin_failures_per_name_and_ip, "signin-name-ip", name, client)
        limits.count(s.signin_failures_per_name, "signin-name", name)
        raise NotAuthenticated("wrong username or password")
    limits.clear(s.signin_failures_per_name_and_ip, "signin-name-ip", name, client)
    if user.suspended_at is not None:  # told only after the right password: no probing
        raise Forbidden("this account is suspended by an administrator")
    if _hasher.check_needs_rehash(user.password_hash):
        with _slot(limits.hashing), transaction(ctx.sessions) as session:
            session.get_one(User, user.id).password_hash = _hasher.hash(password)
    return AccountView.of(user)


def sign_up(ctx: Context, username: str, password: str, client: str, invite: str = "") -> AccountView:
    """A new account from the address `client`, within `EYES_SIGNUP_LIMIT_PER_IP` (every try
    counts, so names cannot be probed for free either).

    `EYES_SIGNUP` says who may: anyone (`open`), holders of an invitation (`invite`), or only
    holders of an administrator's invitation (`closed`: the setup link). An invitation is used up
    in the same transaction as the account it makes; an administrator's makes an administrator."""
    ctx.limits.hit(ctx.settings.signup_limit_per_ip, "signup-ip", client, what="sign-ups from your address")
    mode = ctx.settings.signup
    if mode != "open" and not invite.strip():  # refused before a hash is paid for
        raise _refused(mode)
    name = normalize_username(username)
    # Hashed before the transaction: on SQLite it holds the one write lock, on PostgreSQL a
    # connection and the invitation's row, and a hash waits for its slot and takes 64 MiB.
    password_hash = _new_hash(password, ctx.limits.hashing)
    with transaction(ctx.sessions) as session:
        # Used up first: a refusal below rolls that back, and making an administrator below does
        # not count it as an open setup link.
        used = invitations.redeem(session, invite) if invite.strip() else None
        if (used is None and mode == "invite") or (mode == "closed" and not (used and used.admin)):
            raise _refused(mode)
        admin = used is not None and used.admin
        user = _add_user(session, name, password_hash, admin=admin)
        if used is not None:
            used.used_by_id = user.id
        return AccountView.of(user)


def _refused(mode: str) -> Forbidden:
    if mode == "invite":
        return Forbidden("sign-up here is by invitation: ask an administrator for a link")
    return Forbidden("sign-up is closed on this server: an administrator can make your account")


def change_password(ctx: Context, user: Account, current: str, new: str, keep_session: str | None) -> None:
    """A new password, if `current` is right; every other signed-in browser is signed out (the one
    holding `keep_session` stays). Wrong guesses count like failed sign-ins for the name."""
    s, limits = ctx.settings, ctx.limits
    limits.check(
        s.signin_failures_per_name, "signin-name", user.username, what="failed sign-ins for this name"
    )
    _check_password(new)
    with ctx.sessions() as session:
        stored = session.get_one(User, user.id).password_hash
    if not _verify(stored, current, limits.hashing):
        limits.count(s.signin_failures_per_name, "signin-name", user.username)
        raise NotAuthenticated("your current password is not right")
    with _slot(limits.hashing):
        new_hash = _hasher.hash(new)
    with transaction(ctx.sessions) as session:
        session.get_one(User, user.id).password_hash = new_hash
    sessions.end_others(ctx, user, keep=keep_session)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise BadRequest(f"a password has at most {MAX_PASSWORD} characters")


def _slot(slots: Slots | None) -> AbstractContextManager[None]:
    return slots.hold() if slots is not None else nullcontext()


_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def get_user_by_name(ctx: Context, username: str) -> AccountView:
    with ctx.sessions() as session:
        user = session.scalar(select(User).where(User.username == username.strip().lower()))
        if user is None:
            raise NotFound(f"no user called {username!r}")
        return AccountView.of(user)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    ctx: Context, user: Account, name: str, days: float | None = None
) -> tuple[TokenPublic, str]:
    """A new API token, valid for `days` (None or 0: until revoked), and its secret: returned
    this once, since only its hash is kept."""
    name = name.strip()[:100] or "token"
    if days is not None and not (days == 0 or 1 <= days <= MAX_TOKEN_DAYS):
        raise BadRequest(f"a token lives 1 to {MAX_TOKEN_DAYS} days, or 0 for until revoked")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    token = ApiToken(user_id=user.id, name=name, token_hash=_token_hash(secret), expires_at=expires)
    with transaction(ctx.sessions) as session:
        session.add(token)
        session.flush()
        return TokenPublic.of(token), secret


def list_tokens(ctx: Context, user: Account) -> list[TokenPublic]:
    with ctx.sessions() as session:
        tokens = session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.id)
        )
        return [TokenPublic.of(t) for t in tokens]


def profile(ctx: Context, username: str) -> UserPublic:
    """What anyone may see of an account."""
    return UserPublic.of(get_user_by_name(ctx, username))


def revoke_token(ctx: Context, user: Account, token_id: int) -> None:
    with transaction(ctx.sessions) as session:
        token = session.get(ApiToken, token_id)
        if token is None or token.user_id != user.id or token.revoked_at is not None:
            raise NotFound("no such token")
        token.revoked_at = datetime.now(UTC)


def user_for_token(ctx: Context, secret: str) -> AccountView:
    """The account an API token (live, not expired, its owner not suspended) belongs to."""
    with transaction(ctx.sessions) as session:
        token = session.scalar(
            select(ApiToken).where(ApiToken.token_hash == _token_hash(secret), ApiToken.revoked_at.is_(None))
        )
        if token is None or token.user.suspended_at is not None:
            raise NotAuthenticated("the API token is unknown or revoked; create one on /settings")
        now = datetime.now(UTC)
        if token.expires_at is not None and as_utc(token.expires_at) <= now:  # type: ignore[operator]
            raise NotAuthenticated(
                f"the API token expired on {token.expires_at:%Y-%m-%d}; create a new one on /settings"
            )
        last = token.last_used_at
        # A write per request would serialise the API on the database: once a minute is enough.
        if last is None or now - (last if last.tzinfo else last.replace(tzinfo=UTC)) > timedelta(minutes=1):
            token.last_used_at = now
        return AccountView.of(token.user)


def update_preferences(
    ctx: Context,
    user: Account,
    *,
    private_photos_teach: bool | None = None,
    show_sensitive: bool | None = None,
    default_license: License | None = None,
    faces_enabled: bool | None = None,
) -> AccountView:
    """Change any of `user`'s own preferences, in one transaction; what is None stays as it is.

    Private photos teach only when their owner says so (what may teach changes: the label
    clock ticks); sensitive photos are blurred unless they opt in; the default licence is what
    new uploads get (photos keep theirs); turning faces off deletes every face found in their
    photos, and lets them be scanned afresh if they turn it on again."""
    with transaction(ctx.sessions) as session:
        row = session.get_one(User, user.id)
        if private_photos_teach is not None:
            row.private_photos_teach = private_photos_teach
            label_clock.tick(session)
        if show_sensitive is not None:
            row.show_sensitive = show_sensitive
        if default_license is not None:
            row.default_license = default_license
        if faces_enabled is not None:
            row.faces_enabled = faces_enabled
            if not faces_enabled:
                forget_faces(session, user.id)
        return AccountView.of(row)
