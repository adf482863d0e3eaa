"""Image bytes: thumbnails for everyone who may see the photo, the original for its owner only."""

from __future__ import annotations

from typing import BinaryIO

from fastapi import APIRouter, Request, Response

from eyes.db.models import Visibility
from eyes.errors import NotFound
from eyes.services import photos as photo_service
from eyes.web.deps import ContextDep, ViewerDep

router = APIRouter(include_in_schema=False)
ONE_YEAR = 31_536_000
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}


def _serve(request: Request, blob: BinaryIO, etag: str, media_type: str, public: bool) -> Response:
    # A photo's bytes never change, so its URLs can be cached for good; private ones only by
    # the browser, never by a shared cache.
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


@router.get("/photos/{photo_id}/{size}.jpg")
def thumbnail(photo_id: int, size: str, request: Request, ctx: ContextDep, viewer: ViewerDep) -> Response:
    if size not in photo_service.THUMB_SIZES:
        raise NotFound("thumbnails are small.jpg and large.jpg")
    photo = photo_service.get_visible_photo(ctx, photo_id, viewer)
    blob = ctx.blobs.open(photo_service.thumb_key(photo.sha256, size))
    etag = f'"{photo.sha256[:32]}-{size}"'
    return _serve(request, blob, etag, "image/jpeg", photo.visibility == Visibility.PUBLIC)


@router.get("/photos/{photo_id}/original")
def original(photo_id: int, request: Request, ctx: ContextDep, viewer: ViewerDep) -> Response:
    """The uploaded file as it was, location included: the owner's alone."""
    photo = photo_service.get_visible_photo(ctx, photo_id, viewer)
    if viewer is None or viewer.id != photo.owner_id:
        raise NotFound("the original file is only available to the photo's owner")
    blob = ctx.blobs.open(photo_service.original_key(photo.sha256))
    response = _serve(request, blob, f'"{photo.sha256[:32]}"', MIME[photo.image.format], False)
    response.headers["Content-Disposition"] = "attachment"
    return response
