"""Pages of the learning loop: the model dashboard and 'help Eyes learn'."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from eyes.domain import version_name
from eyes.errors import BadRequest
from eyes.services import dashboard as dashboard_service
from eyes.services import learn, registry, training, vocabulary
from eyes.web import charts
from eyes.web.deps import AdminDep, ContextDep, UserDep, ViewerDep
from eyes.web.pages import redirect, render
from eyes.web.routers import page_router

router = page_router()
MAX_HIERARCHY_BYTES = 1024 * 1024


@router.get("/models", response_class=HTMLResponse)
def dashboard(request: Request, ctx: ContextDep, viewer: ViewerDep) -> Response:
    info = dashboard_service.overview(ctx, admin=viewer is not None and viewer.is_admin)
    history = [v for v in reversed(info["versions"]) if v.get("metrics")]
    progress = charts.line_chart(
        {
            "accuracy": [v["metrics"].get("accuracy") for v in history],
            "logistic regression, same labels": [
                (v.get("baseline") or {}).get("logistic_regression_accuracy") for v in history
            ],
        },
        title="Held-out top-1 of each trained version, next to the frozen-embedding baseline",
        y_max=1.0,
        x_label="version",
        x_names=[v["version"] for v in history],
    )
    return render(request, "models.html", **info, progress=progress, settings=ctx.settings)


@router.post("/models/tags/approve")
def approve_tags(
    ctx: ContextDep,
    admin: AdminDep,
    names: Annotated[list[str], Form()],
    approve: Annotated[str, Form()] = "yes",
) -> Response:
    vocabulary.approve(ctx, admin, names, approved=approve == "yes")
    return redirect("/models")


@router.post("/models/tags/parent")
def set_parent(
    ctx: ContextDep, admin: AdminDep, child: Annotated[str, Form()], parent: Annotated[str, Form()] = ""
) -> Response:
    vocabulary.set_parent(ctx, admin, child, parent or None)
    return redirect("/models")


@router.post("/models/tags/hierarchy")
async def import_hierarchy(ctx: ContextDep, admin: AdminDep, file: Annotated[UploadFile, File()]) -> Response:
    text = (await file.read(MAX_HIERARCHY_BYTES + 1)).decode("utf-8", errors="replace")
    if len(text) > MAX_HIERARCHY_BYTES:
        raise BadRequest(f"a hierarchy file is at most {MAX_HIERARCHY_BYTES // 1024} KiB")
    await run_in_threadpool(vocabulary.import_hierarchy, ctx, admin, text)
    return redirect("/models")


@router.get("/models/{version}", response_class=HTMLResponse)
def model_page(version: str, request: Request, ctx: ContextDep, viewer: ViewerDep) -> Response:
    info = registry.describe_version(ctx, version, admin=viewer is not None and viewer.is_admin)
    history = info.get("history") or []
    metrics: dict[str, Any] = info.get("metrics") or {}
    per_tag = metrics.get("per_tag") or {}
    return render(
        request,
        "model.html",
        v=info,
        loss_chart=charts.line_chart(
            {"train": [e["train_loss"] for e in history], "validation": [e["val_loss"] for e in history]},
            title="Loss per epoch",
        ),
        accuracy_chart=charts.line_chart(
            {
                "train": [e["train_accuracy"] for e in history],
                "validation": [e["val_accuracy"] for e in history],
            },
            title="Top-1 accuracy per epoch",
            y_max=1.0,
        ),
        tag_chart=charts.bar_pairs(
            {name: (m["precision"], m["recall"]) for name, m in per_tag.items()},
            labels=("precision", "recall"),
        ),
        confusion=charts.confusion_heatmap(
            metrics.get("confusion") or [], metrics.get("confusion_labels") or info.get("vocabulary") or []
        ),
    )


@router.post("/models/train")
def start_training(ctx: ContextDep, admin: AdminDep, depth: Annotated[str, Form()] = "head") -> Response:
    version_id = training.start_run(ctx, admin, depth=training.parse_depth(depth))
    return redirect(f"/models/{version_name(version_id)}")


@router.post("/models/{version}/promote")
def promote(version: str, ctx: ContextDep, admin: AdminDep) -> Response:
    registry.promote(ctx, registry.parse_version(version), reason=f"promoted by {admin.username}")
    return redirect("/models")


@router.post("/models/rollback")
def rollback(ctx: ContextDep, admin: AdminDep) -> Response:
    registry.rollback(ctx)
    return redirect("/models")


@router.get("/learn", response_class=HTMLResponse)
def learn_page(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    return render(request, "learn.html", photos=learn.uncertain_photos(ctx, user))


@router.post("/learn/{photo_id}")
def answer(
    photo_id: str,
    ctx: ContextDep,
    user: UserDep,
    choice: Annotated[str, Form()],
    other: Annotated[str, Form()] = "",
) -> Response:
    learn.answer(ctx, user, photo_id, choice, other)
    return redirect("/learn")
