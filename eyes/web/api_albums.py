"""The JSON API of albums, under /api/v1/albums."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, Request, Response

from eyes.domain import MAX_ID
from eyes.services import albums as album_service
from eyes.services.views import AlbumList, AlbumPublic, PhotoList
from eyes.web.deps import AlbumId, ContextDep, PhotoId, UserDep, ViewerDep, next_page
from eyes.web.routers import api_router
from eyes.web.schemas import AlbumCreate, AlbumOrder, AlbumPhotosAdd, AlbumUpdate

router = api_router("/api/v1/albums", errors=(400, 401, 403, 404, 409, 422, 429, 503))


@router.get("", response_model=AlbumList, summary="List albums, newest first")
def list_albums(
    request: Request,
    ctx: ContextDep,
    viewer: ViewerDep,
    owner: Annotated[str | None, Query(description="Only this user's albums")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Cursor from `next`")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> AlbumList:
    """Public albums, and all of yours: an unlisted album is listed for nobody but its owner."""
    page = album_service.list_albums(ctx, viewer, owner=owner, before=before, limit=limit)
    return AlbumList(items=page.items, next=next_page(request, before=page.next_before))


@router.post("", response_model=AlbumPublic, status_code=201, summary="Make an album")
def create_album(body: AlbumCreate, response: Response, ctx: ContextDep, user: UserDep) -> AlbumPublic:
    album = album_service.create_album(
        ctx, user, body.title, body.description, body.visibility, photos=body.photos
    )
    response.headers["Location"] = f"/api/v1/albums/{album.id}"
    return album


@router.get("/{album_id}", response_model=AlbumPublic, summary="One album")
def get_album(album_id: AlbumId, ctx: ContextDep, viewer: ViewerDep) -> AlbumPublic:
    return album_service.show_album(ctx, album_id, viewer)


@router.patch(
    "/{album_id}", response_model=AlbumPublic, summary="Edit title, description, visibility, cover (owner)"
)
def update_album(album_id: AlbumId, body: AlbumUpdate, ctx: ContextDep, user: UserDep) -> AlbumPublic:
    changes: dict[str, Any] = {"cover": body.cover} if "cover" in body.model_fields_set else {}
    return album_service.update_album(
        ctx,
        album_id,
        user,
        title=body.title,
        description=body.description,
        visibility=body.visibility,
        **changes,
    )


@router.delete("/{album_id}", status_code=204, summary="Delete an album; its photos stay (owner)")
def delete_album(album_id: AlbumId, ctx: ContextDep, user: UserDep) -> Response:
    album_service.delete_album(ctx, album_id, user)
    return Response(status_code=204)


@router.get(
    "/{album_id}/photos", response_model=PhotoList, summary="The album's photos you may see, in order"
)
def album_photos(
    request: Request,
    album_id: AlbumId,
    ctx: ContextDep,
    viewer: ViewerDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Cursor from `next`")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    sort: Annotated[
        Literal["album", "taken"],
        Query(description="`album`: the owner's order; `taken`: the most recently taken first, undated last"),
    ] = "album",
) -> Response:
    page = album_service.album_photos(
        ctx, album_id, viewer, after=after, limit=limit, by_date_taken=sort == "taken"
    )
    body = PhotoList(items=page.items, next=next_page(request, after=page.next_after))
    return Response(body.model_dump_json(), media_type="application/json")


@router.post("/{album_id}/photos", response_model=AlbumPublic, summary="Add your photos at the end (owner)")
def add_photos(album_id: AlbumId, body: AlbumPhotosAdd, ctx: ContextDep, user: UserDep) -> AlbumPublic:
    return album_service.add_photos(ctx, album_id, user, body.photos)


@router.delete(
    "/{album_id}/photos/{photo_id}",
    response_model=AlbumPublic,
    summary="Take a photo out of the album (owner)",
)
def remove_photo(album_id: AlbumId, photo_id: PhotoId, ctx: ContextDep, user: UserDep) -> AlbumPublic:
    return album_service.remove_photo(ctx, album_id, user, photo_id)


@router.put(
    "/{album_id}/order", response_model=AlbumPublic, summary="Put the album's photos in order (owner)"
)
def reorder(album_id: AlbumId, body: AlbumOrder, ctx: ContextDep, user: UserDep) -> AlbumPublic:
    return album_service.reorder(ctx, album_id, user, body.photos)
