"""Pages of the learning loop: the model dashboard and 'help Eyes learn'."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from eyes.services import learn, registry, training
from eyes.services.jobs_status import job_status
from eyes.services.labels import training_labels, vocabulary
from eyes.web import charts
from eyes.web.deps import AdminDep, ContextDep, UserDep, ViewerDep, check_csrf
from eyes.web.pages import redirect, render
from eyes.web.schemas import PhotoPublic

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


@router.get("/models", response_class=HTMLResponse)
def dashboard(request: Request, ctx: ContextDep, viewer: ViewerDep) -> Response:
    with ctx.sessions() as session:
        champion = registry.champion_id(session)
        versions = [registry.describe(v, champion) for v in registry.list_versions_in(session)]
        labels = training_labels(session, ctx.settings)
    vocab = vocabulary(labels, ctx.settings)
    history = [v for v in reversed(versions) if v.get("metrics")]
    progress = charts.line_chart(
        {
            "accuracy": [v["metrics"].get("accuracy") for v in history],
            "macro-F1": [v["metrics"].get("macro_f1") for v in history],
        },
        title="Held-out accuracy of each trained version",
        y_max=1.0,
        x_label="version",
    )
    return render(
        request,
        "models.html",
        versions=versions,
        champion=ctx.tagger.version,
        n_labels=labels.count,
        vocabulary=vocab,
        since_last=training.labels_since_last_run(ctx),
        progress=progress,
        settings=ctx.settings,
        jobs=job_status(ctx),
    )


@router.get("/models/{version}", response_class=HTMLResponse)
def model_page(version: str, request: Request, ctx: ContextDep, viewer: ViewerDep) -> Response:
    with ctx.sessions() as session:
        v = registry.get_version(session, registry.parse_version(version))
        info = registry.describe(v, registry.champion_id(session))
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
        confusion=charts.confusion_heatmap(metrics.get("confusion") or [], info.get("vocabulary") or []),
    )


@router.post("/models/train")
def start_training(ctx: ContextDep, admin: AdminDep) -> Response:
    version_id = training.start_run(ctx, admin)
    return redirect(f"/models/v{version_id}")


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
    photos = [PhotoPublic.of(p, user) for p in learn.uncertain_photos(ctx, user)]
    return render(request, "learn.html", photos=photos)


@router.post("/learn/{photo_id}")
def answer(
    photo_id: int,
    ctx: ContextDep,
    user: UserDep,
    choice: Annotated[str, Form()],
    other: Annotated[str, Form()] = "",
) -> Response:
    learn.answer(ctx, user, photo_id, choice, other)
    return redirect("/learn")
