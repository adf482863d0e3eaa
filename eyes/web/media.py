"""Image bytes: thumbnails for everyone who may see the photo, the original for its owner only."""

from __future__ import annotations

from typing import BinaryIO

from fastapi import APIRouter, Request, Response

from eyes.domain import Visibility
from eyes.errors import NotFound
from eyes.services import image_store
from eyes.services import photos as photo_service
from eyes.web.deps import ContextDep, ViewerDep

router = APIRouter(include_in_schema=False)
ONE_YEAR = 31_536_000
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}


def _serve(request: Request, blob: BinaryIO, etag: str, media_type: str, public: bool) -> Response:
    # A photo's bytes never change and its media URLs change with its visibility, so they can be
    # cached for good; only public ones by a shared cache.
    headers = {
        "ETag": etag,
        "Cache-Control": f"{'public' if public else 'private'}, max-age={ONE_YEAR}, immutable",
        "X-Content-Type-Options": "nosniff",
    }
    # Read whole and closed here: a streamed file whose client went away before the first chunk
    # was never closed (a leaked handle per aborted image load). Blobs are bounded by the upload
    # limit, and thumbnails are small.
    with blob:
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(blob.read(), media_type=media_type, headers=headers)


@router.get("/media/{media_key}/{size}.jpg")
def thumbnail(media_key: str, size: str, request: Request, ctx: ContextDep, viewer: ViewerDep) -> Response:
    """A thumbnail, at a URL that changes with the photo's visibility (so it can be cached for good)."""
    if size not in image_store.THUMB_SIZES:
        raise NotFound("thumbnails are small.jpg and large.jpg")
    photo = photo_service.get_media(ctx, media_key, viewer)
    blob = ctx.blobs.open(image_store.thumb_key(photo.sha256, size))
    etag = f'"{photo.sha256[:32]}-{size}"'
    return _serve(request, blob, etag, "image/jpeg", photo.visibility == Visibility.PUBLIC)


@router.get("/photos/{photo_id}/original")
def original(photo_id: str, request: Request, ctx: ContextDep, viewer: ViewerDep) -> Response:
    """The uploaded file as it was, location included: the owner's alone."""
    photo = photo_service.get_visible_photo(ctx, photo_id, viewer)
    if viewer is None or viewer.id != photo.owner_id:
        raise NotFound("the original file is only available to the photo's owner")
    blob = ctx.blobs.open(image_store.original_key(photo.sha256))
    response = _serve(request, blob, f'"{photo.sha256[:32]}"', MIME[photo.image.format], False)
    response.headers["Content-Disposition"] = "attachment"
    return response
