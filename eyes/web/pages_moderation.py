"""The pages of moderation: the report form and sensitive mark on a photo, the viewer's
preference and notices, and the administrators' queue at /moderation."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from eyes.domain import ReportReason
from eyes.services import accounts, moderation
from eyes.web.deps import AdminDep, ContextDep, UserDep
from eyes.web.pages import redirect, render
from eyes.web.routers import page_router

router = page_router()


@router.post("/photos/{photo_id}/report")
def report_photo(
    photo_id: str,
    ctx: ContextDep,
    user: UserDep,
    reason: Annotated[str, Form(max_length=20)],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    moderation.report_photo(ctx, photo_id, user, ReportReason.parse(reason), note)
    return redirect(f"/photos/{photo_id}?reported=1")


@router.post("/photos/{photo_id}/sensitive")
def mark_sensitive(
    photo_id: str, ctx: ContextDep, user: UserDep, marked: Annotated[str, Form()] = ""
) -> Response:
    moderation.mark_sensitive(ctx, photo_id, user, marked == "on")
    return redirect(f"/photos/{photo_id}")


@router.post("/settings/sensitive")
def set_show_sensitive(
    ctx: ContextDep, user: UserDep, show_sensitive: Annotated[str, Form()] = ""
) -> Response:
    accounts.update_preferences(ctx, user, show_sensitive=show_sensitive == "on")
    return redirect("/settings")


@router.post("/settings/faces")
def set_faces_enabled(ctx: ContextDep, user: UserDep, faces_enabled: Annotated[str, Form()] = "") -> Response:
    accounts.update_preferences(ctx, user, faces_enabled=faces_enabled == "on")
    return redirect("/settings")


@router.post("/notices/{notice_id}/dismiss")
def dismiss_notice(notice_id: int, ctx: ContextDep, user: UserDep) -> Response:
    moderation.dismiss_notice(ctx, user, notice_id)
    return redirect("/")


@router.get("/moderation", response_class=HTMLResponse)
def queue_page(request: Request, ctx: ContextDep, admin: AdminDep) -> Response:
    return render(
        request,
        "moderation.html",
        items=moderation.queue(ctx, admin),
        suspended=moderation.suspended_users(ctx, admin),
        threshold=ctx.settings.sensitive_threshold,
    )


@router.post("/moderation/photos/{photo_id}/hide")
def hide_photo(
    photo_id: str, ctx: ContextDep, admin: AdminDep, reason: Annotated[str, Form(max_length=2000)] = ""
) -> Response:
    moderation.hide_photo(ctx, admin, photo_id, reason)
    return redirect("/moderation")


@router.post("/moderation/photos/{photo_id}/restore")
def restore_photo(photo_id: str, ctx: ContextDep, admin: AdminDep) -> Response:
    moderation.restore_photo(ctx, admin, photo_id)
    return redirect("/moderation")


@router.post("/moderation/users/{username}/warn")
def warn_user(
    username: str,
    ctx: ContextDep,
    admin: AdminDep,
    message: Annotated[str, Form(max_length=2000)],
    photo: Annotated[str, Form(max_length=22)] = "",
) -> Response:
    moderation.warn_user(ctx, admin, username, message, photo or None)
    return redirect("/moderation")


@router.post("/moderation/users/{username}/suspend")
def suspend_user(username: str, ctx: ContextDep, admin: AdminDep) -> Response:
    moderation.suspend_user(ctx, admin, username)
    return redirect("/moderation")


@router.post("/moderation/users/{username}/unsuspend")
def unsuspend_user(username: str, ctx: ContextDep, admin: AdminDep) -> Response:
    moderation.unsuspend_user(ctx, admin, username)
    return redirect("/moderation")
