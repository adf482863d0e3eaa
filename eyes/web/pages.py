"""HTML pages. Forms post here; the upload page and tag buttons call the JSON API from JavaScript."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from eyes.context import Context
from eyes.domain import Account, License, PhotoOrder, ReportReason, Visibility
from eyes.errors import EyesError
from eyes.services import accounts, faces, invitations, moderation, outages, sessions, similar
from eyes.services import albums as album_service
from eyes.services import photos as photo_service
from eyes.services.quota import storage_use
from eyes.services.views import NoticePublic
from eyes.web.deps import (
    MAX_ID,
    SESSION_KEY,
    AdminDep,
    ContextDep,
    UserDep,
    ViewerDep,
    client_address,
    csrf_token,
    next_page,
)
from eyes.web.errors import with_retry_after
from eyes.web.routers import page_router

log = logging.getLogger(__name__)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = page_router()


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    viewer = getattr(request.state, "viewer", None)
    # An administrator's messages to the viewer stand above every page until dismissed.
    ctx: Context = request.app.state.ctx
    notices = _notices(ctx, viewer)
    # The People page is in the menu of whoever has faces on, where the site has them on.
    people_link = viewer is not None and viewer.faces_enabled and ctx.settings.faces
    return templates.TemplateResponse(
        request,
        name,
        {
            "viewer": viewer,
            "csrf_token": csrf_token(request),
            "notices": notices,
            "people_link": people_link,
            **context,
        },
        status_code=status_code,
    )


def _notices(ctx: Context, viewer: Account | None) -> list[NoticePublic]:
    """The viewer's unread notices; none when the database is out of reach, so that the page
    (the 503 that says so, most likely) still renders."""
    if viewer is None:
        return []
    try:
        return moderation.unread_notices(ctx, viewer)
    except outages.DATABASE_DOWN as exc:
        log.warning("page shown without its notices: %s", outages.DatabaseUnavailable(exc).reason)
        return []


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(url: str | None) -> str:
    # Only local paths: never send someone to another site after signing in.
    return url if url and url.startswith("/") and not url.startswith("//") else "/"


PROFILE_ALBUMS = 12  # on the profile; the rest on /users/NAME/albums

# The feed's cursor: an id, so within the ids' range (a number past it was a server error).
Cursor = Annotated[int | None, Query(ge=1, le=MAX_ID)]


# The order of a list of photos (`?sort=taken`: by date taken).
Sort = Annotated[PhotoOrder, Query()]


def _grid(
    request: Request, viewer: Account | None, page: photo_service.PhotoPage, sort: PhotoOrder = PhotoOrder.NEW
) -> dict[str, Any]:
    # The same list in each order, from its first page.
    url = request.url.remove_query_params(["before", "sort"])
    orders = {order.value: str(url.include_query_params(sort=order.value)) for order in PhotoOrder}
    orders[PhotoOrder.NEW.value] = str(url)
    return {
        "photos": page.items,
        "next_url": next_page(request, before=page.next_before),
        "sort": sort.value,
        "orders": orders,
    }


@router.get("/", response_class=HTMLResponse)
def feed(
    request: Request, ctx: ContextDep, viewer: ViewerDep, before: Cursor = None, sort: Sort = PhotoOrder.NEW
) -> Response:
    page = photo_service.list_photos(ctx, viewer, before=before, sort=sort)
    return render(request, "feed.html", title="Latest photos", **_grid(request, viewer, page, sort))


@router.get("/users/{username}", response_class=HTMLResponse)
def profile(
    username: str,
    request: Request,
    ctx: ContextDep,
    viewer: ViewerDep,
    before: Cursor = None,
    sort: Sort = PhotoOrder.NEW,
) -> Response:
    owner = accounts.profile(ctx, username)
    page = photo_service.list_photos(ctx, viewer, owner=owner.username, before=before, sort=sort)
    own = viewer is not None and viewer.username == owner.username
    albums = album_service.list_albums(ctx, viewer, owner=owner.username, limit=PROFILE_ALBUMS)
    return render(
        request,
        "profile.html",
        owner=owner,
        own=own,
        albums=albums.items,
        more_albums=albums.next_before is not None,
        album_choices=album_service.album_choices(ctx, viewer) if own and viewer else [],
        visibilities=[v.value for v in Visibility],
        **_grid(request, viewer, page, sort),
    )


@router.get("/tags/{name}", response_class=HTMLResponse)
def tag_page(
    name: str,
    request: Request,
    ctx: ContextDep,
    viewer: ViewerDep,
    before: Cursor = None,
    sort: Sort = PhotoOrder.NEW,
) -> Response:
    page = photo_service.list_photos(ctx, viewer, tags=[name], before=before, sort=sort)
    return render(request, "tag.html", tag=page.tags[0], **_grid(request, viewer, page, sort))


@router.get("/search", response_class=HTMLResponse)
def search(
    request: Request,
    ctx: ContextDep,
    viewer: ViewerDep,
    q: str = "",
    before: Cursor = None,
    sort: Sort = PhotoOrder.NEW,
) -> Response:
    page = photo_service.search_photos(ctx, viewer, q, before=before, sort=sort)
    return render(request, "search.html", q=q, tags=page.tags, **_grid(request, viewer, page, sort))


@router.get("/photos/{photo_id}", response_class=HTMLResponse)
def photo_page(
    photo_id: str, request: Request, ctx: ContextDep, viewer: ViewerDep, reported: bool = False
) -> Response:
    photo = photo_service.show(ctx, photo_id, viewer)
    own = viewer is not None and viewer.username == photo.owner
    return render(
        request,
        "photo.html",
        photo=photo,
        own=own,
        visibilities=[v.value for v in Visibility],
        albums=album_service.albums_with_photo(ctx, photo_id, viewer),
        album_choices=album_service.album_choices(ctx, viewer) if own and viewer else [],
        report_reasons=[r.value for r in ReportReason],
        reported=reported,
        licenses=list(License),
        license=License(photo.license),
        similar=similar.similar_photos(ctx, photo_id, viewer),
        near_duplicates=similar.near_duplicates_of_photo(ctx, photo_id, viewer),
        face_count=faces.face_count(ctx, photo_id, viewer),
    )


@router.post("/photos/{photo_id}/edit")
def edit_photo(
    photo_id: str,
    ctx: ContextDep,
    user: UserDep,
    title: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    visibility: Annotated[str, Form()] = "public",
    license: Annotated[str, Form()] = "",
) -> Response:
    vis = Visibility.parse(visibility)
    chosen = License.parse(license) if license else None  # a form without the field keeps it
    photo_service.update_photo(
        ctx, photo_id, user, title=title, description=description, visibility=vis, license=chosen
    )
    return redirect(f"/photos/{photo_id}")


@router.post("/photos/{photo_id}/delete")
def delete_photo(photo_id: str, ctx: ContextDep, user: UserDep) -> Response:
    photo_service.delete_photo(ctx, photo_id, user)
    return redirect(f"/users/{user.username}")


@router.post("/photos/{photo_id}/tags")
def add_tags(photo_id: str, ctx: ContextDep, user: UserDep, tags: Annotated[str, Form()]) -> Response:
    photo_service.add_owner_tags(ctx, photo_id, user, tags)  # the field as typed: `beach, sunset`
    return redirect(f"/photos/{photo_id}")


@router.post("/photos/{photo_id}/tags/remove")
def remove_tag(photo_id: str, ctx: ContextDep, user: UserDep, name: Annotated[str, Form()]) -> Response:
    photo_service.remove_owner_tag(ctx, photo_id, user, name)
    return redirect(f"/photos/{photo_id}")


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, user: UserDep, ctx: ContextDep) -> Response:
    return render(
        request,
        "upload.html",
        max_mb=ctx.settings.max_upload_bytes // (1024 * 1024),
        visibilities=[v.value for v in Visibility],
        licenses=list(License),
    )


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, ctx: ContextDep, invite: str = "") -> Response:
    return render(request, "signup.html", error=None, invite=invite[:64], mode=ctx.settings.signup)


@router.post("/signup")
def signup(
    request: Request,
    ctx: ContextDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    invite: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        user = accounts.sign_up(ctx, username, password, client_address(request), invite)
    except EyesError as exc:
        page = render(
            request,
            "signup.html",
            status_code=exc.status_code,
            error=exc.message,
            username=username,
            invite=invite,
            mode=ctx.settings.signup,
        )
        return with_retry_after(exc, page)
    _sign_in(request, ctx, user)
    return redirect("/upload")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", error=None, next=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    ctx: ContextDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        user = accounts.sign_in(ctx, username, password, client_address(request))
    except EyesError as exc:
        return with_retry_after(
            exc,
            render(
                request,
                "login.html",
                status_code=exc.status_code,
                error=exc.message,
                next=_safe_next(next),
                username=username,
            ),
        )
    _sign_in(request, ctx, user)
    return redirect(_safe_next(next))


def _sign_in(request: Request, ctx: Context, user: Account) -> None:
    request.session.clear()  # a fresh session (and CSRF token) at every sign-in
    request.session[SESSION_KEY] = sessions.start(ctx, user, request.headers.get("user-agent", ""))
    csrf_token(request)


@router.post("/logout")
def logout(request: Request, ctx: ContextDep) -> Response:
    if (secret := request.session.get(SESSION_KEY)) is not None:
        sessions.end(ctx, str(secret))  # the server forgets it: a copied cookie is worth nothing
    request.session.clear()
    return redirect("/")


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    return _settings(request, ctx, user)


def _settings(
    request: Request,
    ctx: Context,
    user: Account,
    *,
    new_secret: str | None = None,
    new_invite: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    tokens = accounts.list_tokens(ctx, user)
    # A new token's secret (or invitation's code) is in this one response, never stored (the
    # session cookie is signed, not encrypted): no-store keeps it out of caches and the back button.
    response = render(
        request,
        "settings.html",
        status_code=status_code,
        tokens=tokens,
        new_secret=new_secret,
        new_invite=new_invite,
        error=error,
        storage=storage_use(ctx, user.id),
        browsers=sessions.listing(ctx, user, request.session.get(SESSION_KEY)),
        invitations=invitations.open_invitations(ctx) if user.is_admin else [],
        token_days=ctx.settings.api_token_days,
        signup=ctx.settings.signup,
        faces_available=ctx.settings.faces,
        licenses=list(License),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/settings/password")
def change_password(
    request: Request,
    ctx: ContextDep,
    user: UserDep,
    current: Annotated[str, Form(max_length=1024)],
    new: Annotated[str, Form(max_length=1024)],
) -> Response:
    try:
        accounts.change_password(ctx, user, current, new, keep_session=request.session.get(SESSION_KEY))
    except EyesError as exc:
        page = _settings(request, ctx, user, error=exc.message, status_code=exc.status_code)
        return with_retry_after(exc, page)
    return redirect("/settings")


@router.post("/settings/sessions/{session_id}/end")
def end_session(session_id: int, ctx: ContextDep, user: UserDep) -> Response:
    sessions.end_one(ctx, user, session_id)
    return redirect("/settings")


@router.post("/settings/sessions/end-all")
def end_all_sessions(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    """Sign out everywhere, this browser included (for a lost phone or a shared computer)."""
    sessions.end_others(ctx, user, keep=None)
    request.session.clear()
    return redirect("/login")


@router.post("/settings/invitations")
def create_invitation(
    request: Request, ctx: ContextDep, admin: AdminDep, make_admin: Annotated[str, Form()] = ""
) -> Response:
    code = invitations.create(ctx, admin, admin=make_admin == "on")
    return _settings(
        request, ctx, admin, new_invite=str(request.url_for("signup_page").include_query_params(invite=code))
    )


@router.post("/settings/invitations/{invitation_id}/revoke")
def revoke_invitation(invitation_id: int, ctx: ContextDep, admin: AdminDep) -> Response:
    invitations.revoke(ctx, invitation_id)
    return redirect("/settings")


@router.post("/settings/teaching")
def set_teaching(
    ctx: ContextDep, user: UserDep, private_photos_teach: Annotated[str, Form()] = ""
) -> Response:
    accounts.update_preferences(ctx, user, private_photos_teach=private_photos_teach == "on")
    return redirect("/settings")


@router.post("/settings/license")
def set_default_license(ctx: ContextDep, user: UserDep, license: Annotated[str, Form()] = "") -> Response:
    accounts.update_preferences(ctx, user, default_license=License.parse(license))
    return redirect("/settings")


@router.post("/settings/tokens")
def create_token(
    request: Request,
    ctx: ContextDep,
    user: UserDep,
    name: Annotated[str, Form()] = "",
    days: Annotated[float | None, Form(description="Lifetime; 0 for until revoked")] = None,
) -> Response:
    _, secret = accounts.create_token(ctx, user, name, ctx.settings.api_token_days if days is None else days)
    return _settings(request, ctx, user, new_secret=secret)  # shown once, in this answer


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(token_id: int, ctx: ContextDep, user: UserDep) -> Response:
    accounts.revoke_token(ctx, user, token_id)
    return redirect("/settings")


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/login?next={quote(target)}")
