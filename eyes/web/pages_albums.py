"""Album pages: an album, a user's albums, and the forms that make and fill albums (they work
without JavaScript: the grid's selection is a form of checkboxes)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from eyes.domain import MAX_ID, Visibility
from eyes.errors import BadRequest
from eyes.services import accounts
from eyes.services import albums as album_service
from eyes.web.deps import ContextDep, UserDep, ViewerDep, next_page
from eyes.web.pages import Cursor, redirect, render
from eyes.web.routers import page_router

router = page_router()
Position = Annotated[int | None, Query(ge=0, le=MAX_ID)]


@router.get("/albums/{album_id}", response_class=HTMLResponse)
def album_page(
    album_id: str,
    request: Request,
    ctx: ContextDep,
    viewer: ViewerDep,
    after: Position = None,
    sort: Literal["album", "taken"] = "album",
) -> Response:
    album = album_service.show_album(ctx, album_id, viewer)
    page = album_service.album_photos(ctx, album_id, viewer, after=after, by_date_taken=sort == "taken")
    return render(
        request,
        "album.html",
        album=album,
        photos=page.items,
        sort=sort,
        orders={
            o: str(request.url.remove_query_params(["after", "sort"]).include_query_params(sort=o))
            for o in ("album", "taken")
        },
        next_url=next_page(request, after=page.next_after),
        own=viewer is not None and viewer.username == album.owner,
        visibilities=[v.value for v in Visibility],
    )


@router.get("/users/{username}/albums", response_class=HTMLResponse)
def user_albums(
    username: str, request: Request, ctx: ContextDep, viewer: ViewerDep, before: Cursor = None
) -> Response:
    owner = accounts.profile(ctx, username)
    page = album_service.list_albums(ctx, viewer, owner=owner.username, before=before)
    return render(
        request,
        "albums.html",
        owner=owner,
        albums=page.items,
        next_url=next_page(request, before=page.next_before),
    )


@router.post("/albums")
def create_album(
    ctx: ContextDep,
    user: UserDep,
    title: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    visibility: Annotated[str, Form()] = "public",
) -> Response:
    album = album_service.create_album(ctx, user, title, description, Visibility.parse(visibility))
    return redirect(album.url)


@router.post("/albums/add")
def add_to_album(
    ctx: ContextDep,
    user: UserDep,
    photos: Annotated[list[str], Form()] = [],  # noqa: B006
    album: Annotated[str, Form()] = "",
    new_title: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """The grid's selection, or the photo page's one photo, into an album (a new one when the
    form names no album but gives a title). Ends on the album, or back where it came from."""
    if not photos:
        raise BadRequest("tick the photos to add first")
    if album:
        target = album_service.add_photos(ctx, album, user, photos)
    elif new_title.strip():
        target = album_service.create_album(ctx, user, new_title, photos=photos)
    else:
        raise BadRequest("choose an album, or give the new album a title")
    return redirect(back if back.startswith("/photos/") else target.url)


@router.post("/albums/{album_id}/edit")
def edit_album(
    album_id: str,
    ctx: ContextDep,
    user: UserDep,
    title: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    visibility: Annotated[str, Form()] = "public",
) -> Response:
    vis = Visibility.parse(visibility)
    album = album_service.update_album(
        ctx, album_id, user, title=title, description=description, visibility=vis
    )
    return redirect(album.url)


@router.post("/albums/{album_id}/delete")
def delete_album(album_id: str, ctx: ContextDep, user: UserDep) -> Response:
    album_service.delete_album(ctx, album_id, user)
    return redirect(f"/users/{user.username}")


@router.post("/albums/{album_id}/photos/{photo_id}/remove")
def remove_photo(album_id: str, photo_id: str, ctx: ContextDep, user: UserDep) -> Response:
    album = album_service.remove_photo(ctx, album_id, user, photo_id)
    return redirect(album.url)


@router.post("/albums/{album_id}/photos/{photo_id}/move")
def move_photo(
    album_id: str, photo_id: str, ctx: ContextDep, user: UserDep, offset: Annotated[int, Form(ge=-1, le=1)]
) -> Response:
    album_service.move_photo(ctx, album_id, user, photo_id, offset)
    return redirect(f"/albums/{album_id}")


@router.post("/albums/{album_id}/photos/{photo_id}/cover")
def make_cover(album_id: str, photo_id: str, ctx: ContextDep, user: UserDep) -> Response:
    album = album_service.update_album(ctx, album_id, user, cover=photo_id)
    return redirect(album.url)
