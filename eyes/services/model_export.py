"""The community's model: a version (or the day-one model) as one ONNX file and its card.

`eyes models export VERSION DIR`, `GET /api/v1/models/{version}/export` and `/card`. A name is a
version (`v3`), `champion` (what is in service, the day-one model when nothing was trained) or
`day-one`. The ONNX file is built from the version's checked files (eyes/ml/bundle.py) once per
version and backbone (and, for the day-one model, tag threshold) and kept in the blob store:
versions never change, and the file's bytes do not depend on when it was built.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eyes.context import Context
from eyes.db.models import ModelVersion
from eyes.domain import TrainingDepth
from eyes.errors import BadRequest, Conflict, NotFound
from eyes.ml import bundle
from eyes.services import model_card, registry

CHAMPION = "champion"
DAY_ONE = "day-one"
README = "README.md"
CARD_JSON = "card.json"


@dataclass(frozen=True)
class Target:
    """What a name resolved to: a trained version, or the day-one model (version None)."""

    name: str
    version: ModelVersion | None
    in_service: bool


@dataclass(frozen=True)
class Exported:
    onnx_name: str
    onnx_bytes: bytes
    card: dict[str, Any]

    @property
    def readme(self) -> str:
        return model_card.markdown(self.card)


def resolve(ctx: Context, name: str) -> Target:
    """The model a name names; BadRequest for a malformed name, NotFound for an unknown version,
    Conflict for a version that has no usable files (under way, or failed)."""
    name = name.strip()
    if len(name) > 64:
        raise BadRequest("a model name is a version such as v3, 'champion' or 'day-one'")
    champion = registry.champion_id(ctx)
    lowered = name.lower()
    if lowered == CHAMPION and champion is None or lowered in (DAY_ONE, ctx.tagger.day_one_version):
        return Target(ctx.tagger.day_one_version, None, champion is None)
    version_id = champion if lowered == CHAMPION else registry.parse_version(name)
    assert version_id is not None
    version = registry.get_version(ctx, version_id)
    if version.stage not in registry.USABLE or not version.head_sha256:
        raise Conflict(f"model {version.name} is {version.stage.value}: it has no files to export")
    return Target(version.name, version, version.id == champion)


def build(ctx: Context, name: str) -> Exported:
    """The ONNX file and card of the model `name` (built once, then read from the blob store)."""
    target = resolve(ctx, name)
    backbone = bundle.read_backbone(ctx.settings.models_dir)
    version = target.version
    if version is not None and version.backbone and version.backbone != backbone.backbone_id:
        raise Conflict(
            f"model {version.name} was trained on the backbone {version.backbone}, and this server has "
            f"{backbone.backbone_id}: its weights do not fit, so it cannot be exported from here"
        )
    onnx_name = f"eyes-{target.name}.onnx"
    # The day-one file carries EYES_TAG_THRESHOLD in its metadata: a new threshold is a new file.
    made_with = f"-t{float(ctx.settings.tag_threshold)!r}" if version is None else ""
    key = f"models/exports/{target.name}-{backbone.sha256[:16]}{made_with}.onnx"
    try:
        with ctx.blobs.open(key) as f:
            data = f.read()
    except NotFound:
        data = _bundle(ctx, target, backbone)
        ctx.blobs.put_bytes(key, data)
    file = {"name": onnx_name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if version is None:
        day_one = ctx.tagger.predictor.day_one
        card = model_card.day_one_card(
            target.name, day_one.words, ctx.settings.tag_threshold, target.in_service, backbone.card, file
        )
    else:
        info = registry.describe_version(ctx, version.id, admin=False)
        card = model_card.trained_card(
            info, version.depth.value, registry.load_card(ctx, version.id), backbone.card, file
        )
    return Exported(onnx_name, data, card)


def _bundle(ctx: Context, target: Target, backbone: bundle.Backbone) -> bytes:
    metadata = {
        "version": target.name,
        "backbone": backbone.backbone_id,
        "preprocessing": json.dumps(model_card.interface(0, 0)["preprocessing"]),
    }
    version = target.version
    if version is None:
        day_one = ctx.tagger.predictor.day_one
        return bundle.bundle_day_one(
            backbone,
            day_one.weight,
            day_one.bias,
            day_one.word_matrix(),
            day_one.words,
            ctx.settings.tag_threshold,
            {**metadata, "kind": DAY_ONE},
        )
    head = registry.load_head(ctx, version)
    deep = version.depth == TrainingDepth.DEEP
    top = registry.load_file(ctx, version, registry.TOP_FILE) if deep else None
    return bundle.bundle_trained(backbone, head, top, {**metadata, "kind": version.depth.value})


def export_to(ctx: Context, name: str, dest: Path) -> tuple[Exported, list[Path]]:
    """Write the model's ONNX file, README.md and card.json into `dest` (made if missing; files of
    the same names are replaced, each atomically). Returns what was written."""
    if dest.exists() and not dest.is_dir():
        raise BadRequest(f"{dest} is a file; name a folder to export into")
    exported = build(ctx, name)
    dest.mkdir(parents=True, exist_ok=True)
    files = {
        exported.onnx_name: exported.onnx_bytes,
        README: exported.readme.encode(),
        CARD_JSON: (json.dumps(exported.card, indent=2, default=str) + "\n").encode(),
    }
    for file_name, data in files.items():
        write_atomic(dest / file_name, data)
    return exported, [dest / file_name for file_name in files]


def write_atomic(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one (eyes.ml.export has the same, but imports torch)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an export is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
