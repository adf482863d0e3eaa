"""Request dependencies: the context, who is asking, and CSRF protection."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from eyes.context import Context
from eyes.domain import KEY_LENGTH, MAX_ID, Account
from eyes.errors import Busy, Forbidden, NotAuthenticated, NotFound
from eyes.services import sessions
from eyes.services.accounts import user_for_token

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SESSION_KEY = "sid"  # the cookie's one claim: the secret of a row in login_sessions
# Path parameters that name a photo or an album by one of its random keys, not by an integer.
KEY_PARAMS = {"photo_id", "media_key", "album_id"}
KEY_PATTERN = f"^[A-Za-z0-9_-]{{{KEY_LENGTH}}}$"
_KEY = re.compile(KEY_PATTERN)


T = TypeVar("T")
IMAGE_QUEUE = 64  # uploads and classifications that may wait for a core; more than 50 clients' worth


async def run_image_work(request: Request, work: Callable[..., T], *args: object) -> T:
    """Decode, embed and store an image on a thread, one per core at most. On the common thread
    pool, dozens of uploads and classifications at once took the cores in turns with the feed and
    search (a page then waited a second under load); queued here, they leave the light requests
    a core's share each (docs/benchmarks.md, "Load")."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "image_work", None)
    if limiter is None:  # made on the server's own event loop, at its first image
        limiter = request.app.state.image_work = anyio.CapacityLimiter(os.cpu_count() or 1)
    # The line is bounded, as the decoding slots' is (services/limits.py): past it, a burst is
    # told to come back instead of holding its uploaded files and connections while it waits.
    if limiter.statistics().tasks_waiting >= IMAGE_QUEUE:
        raise Busy("the server is busy with other images; try again in a few seconds", retry_after=2)
    return await anyio.to_thread.run_sync(lambda: work(*args), limiter=limiter)


# The dependencies below are `async def` where they only read the request: a plain `def` would
# cost each request a hop to the thread pool and back. Anything that may block goes there.
async def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def get_viewer(request: Request, ctx: Annotated[Context, Depends(get_context)]) -> Account | None:
    """The signed-in user (API token or session cookie), or None for a visitor (no database
    question at all, and no thread: the public feed's common case)."""
    if hasattr(request.state, "viewer"):
        return request.state.viewer  # type: ignore[no-any-return]
    viewer: Account | None = None
    token = _bearer(request)
    if token is not None:
        viewer = await run_in_threadpool(_user_for_token, ctx, token, client_address(request))
    elif (secret := request.session.get(SESSION_KEY)) is not None:
        viewer = await run_in_threadpool(sessions.user_for, ctx, str(secret))
        if viewer is None:  # logged out, signed out elsewhere, expired, or the account is gone
            request.session.clear()
    request.state.viewer = viewer
    request.state.via_token = token is not None
    return viewer


def client_address(request: Request) -> str:
    """The client's address, what per-address limits count. Behind a reverse proxy, `eyes serve`
    takes it from `X-Forwarded-For` only when the proxy is in `EYES_TRUSTED_PROXIES`."""
    return request.client.host if request.client else "unknown"


def _user_for_token(ctx: Context, token: str, client: str) -> Account:
    # Unknown tokens from one address are limited (EYES_TOKEN_FAILURES_PER_IP): no guessing.
    rule, what = ctx.settings.token_failures_per_ip, "requests with a wrong API token from your address"
    ctx.limits.check(rule, "token-ip", client, what=what)
    try:
        return user_for_token(ctx, token)
    except NotAuthenticated:
        ctx.limits.count(rule, "token-ip", client)
        raise


def next_page(request: Request, **cursor: int | None) -> str | None:
    """The URL of the page after this one: this one's query with the cursor the service gave
    (`before=page.next_before`, `after=page.next_after`), or None at the end (a cursor of None)."""
    [(name, value)] = cursor.items()
    return None if value is None else str(request.url.include_query_params(**{name: value}))


async def require_user(viewer: Annotated[Account | None, Depends(get_viewer)]) -> Account:
    if viewer is None:
        raise NotAuthenticated("sign in first (or send an API token as 'Authorization: Bearer ...')")
    return viewer


async def require_admin(user: Annotated[Account, Depends(require_user)]) -> Account:
    if not user.is_admin:
        raise Forbidden("only administrators can do this")
    return user


def csrf_token(request: Request) -> str:
    """This browser session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing request that relies on the session cookie but lacks the token.

    API-token requests are exempt: a browser never attaches a bearer token by itself."""
    if request.method in SAFE_METHODS or _bearer(request) is not None:
        return
    if request.url.path.startswith("/api/") and SESSION_KEY not in request.session:
        return  # an anonymous API call carries no ambient authority to abuse
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        sent = str((await request.form()).get("csrf_token", ""))
    if not expected or not sent or not secrets.compare_digest(str(expected), sent):
        raise Forbidden("the form's security token is missing or out of date: reload the page and try again")


async def ids_in_range(request: Request) -> None:
    """An `..._id` in the path is plain digits within 1..MAX_ID, and a photo's key is 22 URL-safe
    characters, or it names nothing: 404, before any query. Integer parsing alone would read " 4",
    "4_0" or "\\x854" as 4, and the database would refuse a number past its column (a server
    error). Installed on every router by eyes/web/routers.py; `PhotoId` states the same rule in the OpenAPI."""
    for name, value in request.path_params.items():
        if not isinstance(value, str):
            continue
        if name in KEY_PARAMS:
            valid = _KEY.match(value) is not None
        elif name.endswith("_id"):
            plain = value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ID))
            valid = plain and 0 < int(value) <= MAX_ID
        else:
            continue
        if not valid:
            raise NotFound("there is nothing at this address")


ContextDep = Annotated[Context, Depends(get_context)]
ViewerDep = Annotated[Account | None, Depends(get_viewer)]
UserDep = Annotated[Account, Depends(require_user)]
AdminDep = Annotated[Account, Depends(require_admin)]

PhotoId = Annotated[
    str, Path(pattern=KEY_PATTERN, description="A photo's id: 22 random URL-safe characters, as in its URL")
]

AlbumId = Annotated[
    str, Path(pattern=KEY_PATTERN, description="An album's id: 22 random URL-safe characters, as in its URL")
]
