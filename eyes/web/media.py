"""Image bytes: thumbnails for everyone who may see the photo, the original for its owner only."""

from __future__ import annotations

from fastapi import Request, Response

from eyes.context import Context
from eyes.services import photos as photo_service
from eyes.web.deps import ContextDep, ViewerDep
from eyes.web.routers import page_router

router = page_router()
ONE_YEAR = 31_536_000


def _serve(request: Request, ctx: Context, blob: photo_service.Blob) -> Response:
    # A photo's bytes never change and its media URLs change with its visibility, so they can be
    # cached for good; only public ones by a shared cache.
    headers = {
        "ETag": blob.etag,
        "Cache-Control": f"{'public' if blob.public else 'private'}, max-age={ONE_YEAR}, immutable",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == blob.etag:
        return Response(status_code=304, headers=headers)
    # Read whole and closed here: a streamed file whose client went away before the first chunk
    # was never closed (a leaked handle per aborted image load). Blobs are bounded by the upload
    # limit, and thumbnails are small.
    with ctx.blobs.open(blob.key) as stream:
        return Response(stream.read(), media_type=blob.media_type, headers=headers)


@router.get("/media/{media_key}/{size}.jpg")
def thumbnail(media_key: str, size: str, request: Request, ctx: ContextDep, viewer: ViewerDep) -> Response:
    """A thumbnail, at a URL that changes with the photo's visibility (so it can be cached for good)."""
    return _serve(request, ctx, photo_service.thumbnail_blob(ctx, media_key, size, viewer))


@router.get("/photos/{photo_id}/original")
def original(photo_id: str, request: Request, ctx: ContextDep, viewer: ViewerDep) -> Response:
    """The uploaded file as it was, location included: the owner's alone."""
    response = _serve(request, ctx, photo_service.original_blob(ctx, photo_id, viewer))
    response.headers["Content-Disposition"] = "attachment"
    return response
