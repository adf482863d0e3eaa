"""The JSON API under /api/v1."""

from __future__ import annotations

import pathlib
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from eyes.context import Context
from eyes.domain import Account, License, PhotoOrder, Visibility
from eyes.services import accounts, faces, invitations, similar
from eyes.services import photos as photo_service
from eyes.services.classify import classify_file
from eyes.services.dataset import MAX_EXPORT_TAGS, MAX_MIN_AGREEMENT, DatasetFormat, plan_dataset
from eyes.services.dataset_files import zip_stream
from eyes.services.faces import FacePublic
from eyes.services.photos import MAX_QUERY_TAGS
from eyes.services.quota import storage_use
from eyes.services.tags import TAG_RULES
from eyes.services.views import (
    ClassifyResult,
    InvitationMade,
    InvitationPublic,
    Me,
    PhotoList,
    PhotoPublic,
    PhotoUploaded,
    TagPublic,
    TagScore,
)
from eyes.web.deps import (
    MAX_ID,
    AdminDep,
    ContextDep,
    PhotoId,
    UserDep,
    ViewerDep,
    client_address,
    next_page,
    run_image_work,
)
from eyes.web.routers import api_router
from eyes.web.schemas import InvitationCreate, MeUpdate, PhotoUpdate, TagCreate
from eyes.web.uploads import received_file

router = api_router("/api/v1", errors=(400, 401, 403, 404, 409, 413, 415, 422, 429, 503))


def multipart_body(properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """OpenAPI for a multipart form with a required file: the routes read the form themselves
    (to bound it while it streams), so FastAPI cannot describe it on its own."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}, **properties},
                    }
                }
            },
        }
    }


_UPLOAD_BODY = multipart_body(
    {
        "title": {"type": "string"},
        "description": {"type": "string"},
        "visibility": {"type": "string", "enum": [v.value for v in Visibility]},
        "license": {
            "type": "string",
            "enum": [v.value for v in License],
            "description": "What others may do with the photo (default: your default licence)",
        },
        "tags": {"type": "string", "description": f"Comma-separated tags. {TAG_RULES}"},
    }
)


@router.post(
    "/photos",
    status_code=201,
    response_model=PhotoUploaded,
    responses={
        201: {"description": "The new photo, with your photos it nearly duplicates"},
        200: {"model": PhotoUploaded, "description": "You had already uploaded these bytes: your photo"},
    },
    openapi_extra=_UPLOAD_BODY,
    summary="Upload a photo",
    description="One image per request (JPEG, PNG, WebP or GIF). Answers 201 with the new photo, "
    "or 200 with the existing one when you had already uploaded the same bytes. "
    "`near_duplicates` lists your own photos this one nearly duplicates (re-encoded, resized or "
    "slightly cropped): it is stored all the same.",
)
async def upload(request: Request, response: Response, ctx: ContextDep, user: UserDep) -> PhotoUploaded:
    s = ctx.settings
    # Counted before the body is read: a refused upload costs nothing. (Everything that may block,
    # the limiter's Redis included, runs on the thread pool: never on the event loop.)
    await run_in_threadpool(
        ctx.limits.hit, s.upload_limit_per_account, "upload", str(user.id), what="uploads from your account"
    )
    async with received_file(request, s.home / "tmp", s.max_upload_bytes) as (form, file):
        draft = photo_service.PhotoDraft(
            filename=file.filename,
            title=str(form.get("title") or ""),
            description=str(form.get("description") or ""),
            visibility=Visibility.parse(str(form.get("visibility") or "")),
            license=License.parse(str(form.get("license") or "")) if form.get("license") else None,
            tags=str(form.get("tags") or ""),  # as typed, `beach, sunset`: the service tidies them
        )
        # Checked before it waits for an image slot: a bad tag is its 400, not a 503 when busy.
        draft = await run_in_threadpool(photo_service.checked_draft, ctx, draft)
        created, photo = await run_image_work(request, _store_upload, ctx, user, file.path, draft)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/photos/{photo.id}"
    return photo


def _store_upload(
    ctx: Context, user: Account, path: pathlib.Path, draft: photo_service.PhotoDraft
) -> tuple[bool, PhotoUploaded]:
    result = similar.upload_and_check(ctx, user, path, draft)
    body = PhotoUploaded(**result.photo.model_dump(), near_duplicates=result.near_duplicates)
    return result.created, body


def _count_classify(ctx: Context, user: Account, client: str) -> None:
    s = ctx.settings
    ctx.limits.hit(
        s.classify_limit_per_account, "classify", str(user.id), what="classify calls from your account"
    )
    ctx.limits.hit(s.classify_limit_per_ip, "classify-ip", client, what="classify calls from your address")


@router.get("/photos", response_model=PhotoList, summary="List photos, newest first (or by date taken)")
def list_photos(
    request: Request,
    ctx: ContextDep,
    viewer: ViewerDep,
    tag: Annotated[
        list[str],
        Query(
            description=f"Only photos with all these tags, at most {MAX_QUERY_TAGS}. {TAG_RULES}",
            json_schema_extra={"maxItems": MAX_QUERY_TAGS},
        ),
    ] = [],  # noqa: B006
    owner: Annotated[str | None, Query(description="Only this user's photos")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Cursor from `next`")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    sort: Annotated[
        PhotoOrder,
        Query(description="new: the newest upload first; taken: the most recently taken first, undated last"),
    ] = PhotoOrder.NEW,
) -> Response:
    page = photo_service.list_photos(
        ctx, viewer, owner=owner, tags=tag, before=before, limit=limit, sort=sort
    )
    # Serialised in one step: FastAPI's pass over the response model took longer than the query.
    body = PhotoList(items=page.items, next=next_page(request, before=page.next_before))
    return Response(body.model_dump_json(), media_type="application/json")


@router.get("/photos/{photo_id}", response_model=PhotoPublic, summary="One photo")
def get_photo(photo_id: PhotoId, ctx: ContextDep, viewer: ViewerDep) -> PhotoPublic:
    return photo_service.show(ctx, photo_id, viewer)


@router.get(
    "/photos/{photo_id}/similar",
    response_model=list[PhotoPublic],
    summary="More like this: similar photos you may see",
    description="The photos most like this one, most similar first: public photos and your own "
    "(nobody else's unlisted or private ones). From the embeddings stored at upload.",
)
def similar_photos(
    photo_id: PhotoId,
    ctx: ContextDep,
    viewer: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=similar.MAX_SIMILAR)] = 12,
) -> list[PhotoPublic]:
    return similar.similar_photos(ctx, photo_id, viewer, limit)


@router.patch(
    "/photos/{photo_id}", response_model=PhotoPublic, summary="Edit title, description, visibility, licence"
)
def update_photo(photo_id: PhotoId, body: PhotoUpdate, ctx: ContextDep, user: UserDep) -> PhotoPublic:
    photo = photo_service.update_photo(
        ctx,
        photo_id,
        user,
        title=body.title,
        description=body.description,
        visibility=body.visibility,
        license=body.license,
    )
    return photo


@router.delete("/photos/{photo_id}", status_code=204, summary="Delete a photo")
def delete_photo(photo_id: PhotoId, ctx: ContextDep, user: UserDep) -> Response:
    photo_service.delete_photo(ctx, photo_id, user)
    return Response(status_code=204)


@router.get("/photos/{photo_id}/tags", response_model=list[TagPublic], summary="A photo's tags")
def photo_tags(photo_id: PhotoId, ctx: ContextDep, viewer: ViewerDep) -> list[TagPublic]:
    return photo_service.show(ctx, photo_id, viewer).tags


@router.post(
    "/photos/{photo_id}/tags",
    response_model=list[TagPublic],
    summary="Add a tag, or confirm a suggestion (owner)",
)
def add_tag(photo_id: PhotoId, body: TagCreate, ctx: ContextDep, user: UserDep) -> list[TagPublic]:
    # One name, not a field to split at its commas: a comma in it is refused, as in the URL.
    return photo_service.add_owner_tags(ctx, photo_id, user, [body.name]).tags


@router.delete(
    "/photos/{photo_id}/tags/{name}",
    response_model=list[TagPublic],
    summary="Remove a tag, or reject a suggestion (owner)",
)
def remove_tag(
    photo_id: PhotoId, name: Annotated[str, Path(description=TAG_RULES)], ctx: ContextDep, user: UserDep
) -> list[TagPublic]:
    return photo_service.remove_owner_tag(ctx, photo_id, user, name).tags


_CLASSIFY_BODY = multipart_body({})


@router.post(
    "/classify",
    response_model=ClassifyResult,
    openapi_extra=_CLASSIFY_BODY,
    summary="Tag an image without storing it",
)
async def classify(request: Request, ctx: ContextDep, user: UserDep) -> ClassifyResult:
    await run_in_threadpool(_count_classify, ctx, user, client_address(request))
    s = ctx.settings
    async with received_file(request, s.home / "tmp", s.max_upload_bytes) as (_, file):
        result = await run_image_work(request, classify_file, ctx, file.path)
    return ClassifyResult(
        tags=[TagScore(name=n, confidence=round(c, 4)) for n, c in result.tags],
        model_version=result.model_version,
        ms=round(result.ms, 2),
    )


@router.get("/me", response_model=Me, summary="The signed-in user, with their storage use")
def me(ctx: ContextDep, user: UserDep) -> Me:
    return Me.of_account(user, storage_use(ctx, user.id))


@router.patch("/me", response_model=Me, summary="Change your preferences")
def update_me(body: MeUpdate, ctx: ContextDep, user: UserDep) -> Me:
    updated = accounts.update_preferences(ctx, user, **body.model_dump(exclude_unset=True))
    return Me.of_account(updated, storage_use(ctx, user.id))


@router.get(
    "/me/faces", response_model=list[FacePublic], summary="The faces found in your photos (yours alone)"
)
def my_faces(
    ctx: ContextDep,
    user: UserDep,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Only faces with a larger id (paging)")] = 0,
    limit: Annotated[int, Query(ge=1, le=faces.MAX_PAGE, description="At most this many")] = faces.MAX_PAGE,
) -> list[FacePublic]:
    return faces.my_faces(ctx, user, after=after, limit=limit)


@router.post(
    "/invitations",
    response_model=InvitationMade,
    status_code=201,
    summary="Make a one-time sign-up link (administrators)",
)
def create_invitation(
    body: InvitationCreate, request: Request, ctx: ContextDep, admin: AdminDep
) -> InvitationMade:
    invitation, code = invitations.make(ctx, admin, admin=body.admin)
    url = str(request.url_for("signup_page").include_query_params(invite=code))
    return InvitationMade(**invitation.model_dump(), code=code, url=url)


@router.get(
    "/invitations", response_model=list[InvitationPublic], summary="Open invitations (administrators)"
)
def list_invitations(ctx: ContextDep, admin: AdminDep) -> list[InvitationPublic]:
    return invitations.open_invitations(ctx)


@router.delete(
    "/invitations/{invitation_id}", status_code=204, summary="Revoke an invitation (administrators)"
)
def revoke_invitation(invitation_id: int, ctx: ContextDep, admin: AdminDep) -> Response:
    invitations.revoke(ctx, invitation_id)
    return Response(status_code=204)


@router.get(
    "/export/dataset",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The data set, as a zip"}},
    summary="Download the community's data set (administrators)",
    description="Public photos under an open licence (CC0, CC BY, CC BY-SA) with their training-grade "
    "labels, a manifest.jsonl (labels, who decided them and how, licence, author, content hash) and a "
    "README.md card, as a zip streamed while it is made. Private, unlisted and all-rights-reserved "
    "photos never leave. 404 `nothing_to_export` when no photo fits.",
)
def export_dataset(
    ctx: ContextDep,
    admin: AdminDep,
    tag: Annotated[
        list[str],
        Query(
            description=f"Only these tags (default: every tag with a training-grade label), at most "
            f"{MAX_EXPORT_TAGS}. {TAG_RULES}",
            json_schema_extra={"maxItems": MAX_EXPORT_TAGS},
        ),
    ] = [],  # noqa: B006
    min_agreement: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_MIN_AGREEMENT,
            description="Trusted voters who must agree for a vote to make a label (at least "
            "EYES_MIN_VOTES_TO_AGREE, the default)",
        ),
    ] = None,
    format: Annotated[
        DatasetFormat,
        Query(description="imagefolder: a folder per class; jsonl: every label in the manifest"),
    ] = DatasetFormat.IMAGEFOLDER,
) -> StreamingResponse:
    # Everything is decided (and any 4xx raised) before the first byte goes out.
    plan = plan_dataset(ctx, tags=tag, min_agreement=min_agreement, format=format)
    return StreamingResponse(
        zip_stream(ctx, plan),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{plan.name}.zip"',
            "Cache-Control": "no-store",
        },
    )
