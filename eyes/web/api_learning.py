"""The learning loop's JSON API: votes, training runs, model versions, 'help Eyes learn'."""

from __future__ import annotations

from typing import Any, Literal

from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from eyes.domain import version_name
from eyes.services import dashboard, labels, learn, model_card, model_export, registry, training, vocabulary
from eyes.services.jobs_status import job_status
from eyes.services.views import PhotoPublic
from eyes.web.deps import AdminDep, ContextDep, PhotoId, UserDep, ViewerDep
from eyes.web.routers import api_router

router = api_router("/api/v1", errors=(400, 401, 403, 404, 409, 429))


class VoteCreate(BaseModel):
    tag: str
    agrees: bool = Field(strict=True, description="true: the photo shows this tag; false: it does not")


class VoteTally(BaseModel):
    tag: str
    agree: int
    disagree: int


@router.post("/photos/{photo_id}/votes", response_model=list[VoteTally], summary="Confirm or reject a tag")
def vote(photo_id: PhotoId, body: VoteCreate, ctx: ContextDep, user: UserDep) -> list[VoteTally]:
    """One vote per user, photo and tag (a new vote replaces the old). The owner's vote is final."""
    tally = labels.cast_vote(ctx, photo_id, user, body.tag, body.agrees)
    return [VoteTally(tag=t, agree=a, disagree=d) for t, (a, d) in sorted(tally.items())]


@router.get("/models", summary="Every model version, newest first")
def list_models(ctx: ContextDep, viewer: ViewerDep) -> dict[str, Any]:
    admin = viewer is not None and viewer.is_admin
    versions = registry.describe_versions(ctx, admin=admin)
    for v in versions:
        v.pop("history", None)
    return {"champion": ctx.tagger.version, "items": versions}


@router.get("/models/{version}", summary="One model version, with its metrics and training curves")
def show_model(version: str, ctx: ContextDep, viewer: ViewerDep) -> dict[str, Any]:
    return registry.describe_version(ctx, version, admin=viewer is not None and viewer.is_admin)


@router.get(
    "/models/{version}/card",
    summary="A model's card: how to run its export, its training data, metrics and the gate's evidence",
    response_model=None,
)
def model_card_of(
    version: str, ctx: ContextDep, format: Literal["json", "markdown"] = "json"
) -> dict[str, Any] | Response:
    """`version` is v3, `champion` or `day-one`. The card is as public as the model's page;
    `format=markdown` gives the README that travels with the export."""
    card = model_export.build(ctx, version).card
    if format == "markdown":
        return PlainTextResponse(model_card.markdown(card), media_type="text/markdown; charset=utf-8")
    return card


@router.get(
    "/models/{version}/export",
    summary="A model as one self-contained ONNX file (members)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def export_model(version: str, ctx: ContextDep, user: UserDep) -> Response:
    """Backbone, tuned layers and head in one ONNX file; labels and thresholds in its metadata.
    The community's model is for its members: signed in, not for anonymous bulk downloads."""
    exported = model_export.build(ctx, version)
    return Response(
        exported.onnx_bytes,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{exported.onnx_name}"'},
    )


class TrainRequest(BaseModel):
    depth: Literal["head", "deep"] = Field(
        "head",
        description="head: a head on the stored embeddings (seconds); deep: the top of the backbone "
        "fine-tuned with the head, from stored activations (minutes)",
    )


@router.post("/models/train", status_code=202, summary="Start a training run (administrators)")
def train(ctx: ContextDep, admin: AdminDep, body: TrainRequest | None = None) -> dict[str, str]:
    depth = training.parse_depth(body.depth if body else "head")
    version_id = training.start_run(ctx, admin, depth=depth)
    return {
        "version": version_name(version_id),
        "stage": "training",
        "depth": depth.value,
        "url": f"/api/v1/models/{version_name(version_id)}",
    }


class TagApproval(BaseModel):
    names: list[str] = Field(min_length=1, max_length=500, description="tags to approve as classes")
    approved: bool = Field(True, strict=True, description="false withdraws the approval")


@router.post("/tags/approve", summary="Approve tags as classes the network learns (administrators)")
def approve_tags(body: TagApproval, ctx: ContextDep, admin: AdminDep) -> dict[str, Any]:
    return {
        "tags": vocabulary.approve(ctx, admin, body.names, approved=body.approved),
        "approved": body.approved,
    }


class TagParent(BaseModel):
    parent: str | None = Field(None, description="the parent tag; null puts the tag at the top")


@router.put("/tags/{name}/parent", summary="Put a tag under a parent (administrators)")
def set_parent(name: str, body: TagParent, ctx: ContextDep, admin: AdminDep) -> dict[str, Any]:
    vocabulary.set_parent(ctx, admin, name, body.parent)
    return {"tag": name, "parent": body.parent}


@router.get("/tags", summary="Every tag with its parent and approval (administrators)")
def list_tags(ctx: ContextDep, admin: AdminDep) -> list[dict[str, Any]]:
    return vocabulary.tags_overview(ctx)


@router.get("/vocabulary", summary="The classes the next model learns, and those waiting for approval")
def model_vocabulary(ctx: ContextDep, viewer: ViewerDep) -> dict[str, Any]:
    info = dashboard.overview(ctx, admin=viewer is not None and viewer.is_admin)
    return {"classes": info["classes"], "waiting": info["waiting"], "n_waiting": info["n_waiting"]}


@router.post("/models/{version}/promote", summary="Put a version in service (administrators)")
def promote(version: str, ctx: ContextDep, admin: AdminDep) -> dict[str, str]:
    registry.promote(ctx, registry.parse_version(version), reason=f"promoted by {admin.username}")
    return {"champion": version}


@router.post("/models/rollback", summary="Put the previous champion back (administrators)")
def rollback(ctx: ContextDep, admin: AdminDep) -> dict[str, str]:
    previous = registry.rollback(ctx)
    return {"champion": version_name(previous) if previous else ctx.tagger.day_one_version}


@router.get(
    "/jobs", summary="Background work: photos waiting for tags, training runs under way (administrators)"
)
def jobs(ctx: ContextDep, admin: AdminDep) -> dict[str, Any]:
    return job_status(ctx, admin=True)


@router.get("/learn", response_model=list[PhotoPublic], summary="Photos the model is least sure of")
def to_learn(ctx: ContextDep, user: UserDep) -> list[PhotoPublic]:
    return learn.uncertain_photos(ctx, user)
