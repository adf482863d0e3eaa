"""The JSON API of moderation: reports, sensitive marks, notices, and the administrators' actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

from eyes.services import moderation
from eyes.services.views import ModerationItem, NoticePublic, PhotoPublic, ReportPublic, SuspendedUser
from eyes.web.deps import MAX_ID, AdminDep, ContextDep, PhotoId, UserDep
from eyes.web.routers import api_router
from eyes.web.schemas import HideRequest, ReportCreate, SensitiveMark, WarnRequest

router = api_router("/api/v1", errors=(400, 401, 403, 404, 409, 422, 429))
Username = Annotated[str, Path(max_length=64, description="A user's name")]


@router.post(
    "/photos/{photo_id}/reports",
    response_model=ReportPublic,
    status_code=201,
    summary="Report a photo to the administrators (once per photo; rate-limited)",
)
def report_photo(photo_id: PhotoId, body: ReportCreate, ctx: ContextDep, user: UserDep) -> ReportPublic:
    return moderation.report_photo(ctx, photo_id, user, body.reason, body.note)


@router.put(
    "/photos/{photo_id}/sensitive",
    response_model=PhotoPublic,
    summary="Mark your photo sensitive, or take the mark off (owner or administrators)",
)
def mark_sensitive(photo_id: PhotoId, body: SensitiveMark, ctx: ContextDep, user: UserDep) -> PhotoPublic:
    return moderation.mark_sensitive(ctx, photo_id, user, body.marked)


@router.get("/me/notices", response_model=list[NoticePublic], summary="Messages from the administrators")
def notices(ctx: ContextDep, user: UserDep) -> list[NoticePublic]:
    return moderation.unread_notices(ctx, user)


@router.post("/me/notices/{notice_id}/dismiss", status_code=204, summary="Dismiss a message")
def dismiss_notice(
    notice_id: Annotated[int, Path(ge=1, le=MAX_ID)], ctx: ContextDep, user: UserDep
) -> Response:
    moderation.dismiss_notice(ctx, user, notice_id)
    return Response(status_code=204)


@router.get(
    "/moderation/queue",
    response_model=list[ModerationItem],
    summary="Reported photos and high sensitive-content scores (administrators)",
)
def moderation_queue(ctx: ContextDep, admin: AdminDep) -> list[ModerationItem]:
    return moderation.queue(ctx, admin)


@router.post(
    "/moderation/photos/{photo_id}/hide",
    response_model=PhotoPublic,
    summary="Hide a photo from everybody but its owner (administrators)",
)
def hide_photo(photo_id: PhotoId, body: HideRequest, ctx: ContextDep, admin: AdminDep) -> PhotoPublic:
    return moderation.hide_photo(ctx, admin, photo_id, body.reason)


@router.post(
    "/moderation/photos/{photo_id}/restore",
    response_model=PhotoPublic,
    summary="Show a hidden photo again, or keep a queued one (administrators)",
)
def restore_photo(photo_id: PhotoId, ctx: ContextDep, admin: AdminDep) -> PhotoPublic:
    return moderation.restore_photo(ctx, admin, photo_id)


@router.post("/moderation/users/{username}/warn", status_code=204, summary="Warn a user (administrators)")
def warn_user(username: Username, body: WarnRequest, ctx: ContextDep, admin: AdminDep) -> Response:
    moderation.warn_user(ctx, admin, username, body.message, body.photo)
    return Response(status_code=204)


@router.post(
    "/moderation/users/{username}/suspend", status_code=204, summary="Suspend an account (administrators)"
)
def suspend_user(username: Username, ctx: ContextDep, admin: AdminDep) -> Response:
    moderation.suspend_user(ctx, admin, username)
    return Response(status_code=204)


@router.post(
    "/moderation/users/{username}/unsuspend", status_code=204, summary="Lift a suspension (administrators)"
)
def unsuspend_user(username: Username, ctx: ContextDep, admin: AdminDep) -> Response:
    moderation.unsuspend_user(ctx, admin, username)
    return Response(status_code=204)


@router.get(
    "/moderation/users/suspended",
    response_model=list[SuspendedUser],
    summary="Suspended accounts (administrators)",
)
def suspended_users(ctx: ContextDep, admin: AdminDep) -> list[SuspendedUser]:
    return moderation.suspended_users(ctx, admin)
