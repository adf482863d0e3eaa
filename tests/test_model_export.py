"""The community's model: a version exported as one ONNX file that plain onnxruntime runs, giving
the server's own tags and scores for the same photos; its card; the command, the API and the page.

Fast tier: the stand-in backbone (the composition is the same whatever the backbone computes);
tests/ml/test_bundle.py repeats the check on the real network."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper

from eyes.app import create_app
from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import ModelVersion
from eyes.db.session import transaction
from eyes.domain import ModelStage, TrainingDepth
from eyes.errors import BadRequest, Conflict, NotFound
from eyes.jobs.queue import ImmediateQueue
from eyes.jobs.tasks import run_task
from eyes.ml.head import Head
from eyes.services import model_export, registry, training
from eyes.services.accounts import create_user
from eyes.services.classify import classify_file
from eyes.services.importer import import_tree
from tests.conftest import CALTECH, LEARN_AT_ONCE, context_of, sign_up
from tests.standin_backbone import ACTIVATION_SHAPE
from tests.test_cli import eyes

CLASSES = ["Leopards", "airplanes", "watch"]
TRAIN_PER_CLASS = 8


@pytest.fixture
def export_settings(settings: Settings) -> Settings:
    return settings.model_copy(update=LEARN_AT_ONCE)


@pytest.fixture
def ctx(export_settings: Settings) -> Iterator[Context]:
    context = build_context(export_settings)
    context.jobs = ImmediateQueue(partial(run_task, context))
    create_user(context, "owner", "a long password", admin=True)
    yield context
    context.close()


def unseen_photos(per_class: int = 2) -> list[Path]:
    """Photos of the trained classes that no run saw."""
    return [p for cls in CLASSES for p in sorted((CALTECH / cls).iterdir())[-per_class:]]


def train_head_version(ctx: Context, tmp_path: Path) -> int:
    tree = tmp_path / "labelled"
    for cls in CLASSES:
        (tree / cls).mkdir(parents=True)
        for src in sorted((CALTECH / cls).iterdir())[:TRAIN_PER_CLASS]:
            (tree / cls / src.name).symlink_to(src)
    import_tree(ctx, tree, owner="owner", tags_from_folders=True, progress=False)
    version_id = training.start_run(ctx, None)
    with ctx.sessions() as session:
        version = session.get_one(ModelVersion, version_id)
        assert version.stage == ModelStage.CHAMPION, version.reason
    return version_id


def standin_top(seed: int = 7) -> bytes:
    """A tuned top of the stand-in's shape: activation (N, 320, 7, 7) -> embedding (N, 1280)."""
    rng = np.random.default_rng(seed)
    channels = ACTIVATION_SHAPE[0]
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["activation"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["projected"]),
            helper.make_node("Relu", ["projected"], ["embedding"]),
        ],
        "standin-top",
        [helper.make_tensor_value_info("activation", TensorProto.FLOAT, ["batch", *ACTIVATION_SHAPE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 1280])],
        initializer=[
            numpy_helper.from_array(
                rng.normal(0, 1 / np.sqrt(channels), (channels, 1280)).astype(np.float32), "w"
            )
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def make_deep_version(ctx: Context, vocabulary: list[str]) -> int:
    """A deep version as a deep run leaves it (a tuned top and a head on its embeddings), made
    without torch: what is checked here is the composition, not the fine-tuning."""
    rng = np.random.default_rng(3)
    k, dim = len(vocabulary), 1280
    head = Head(
        vocabulary, rng.normal(0, 0.05, (dim, k)).astype(np.float32), rng.normal(0, 0.5, k).astype(np.float32),
        rng.normal(0.5, 0.1, dim).astype(np.float32), rng.uniform(0.5, 1.5, dim).astype(np.float32),
        np.full(k, 0.3, np.float32), power=0.5,
    )  # fmt: skip
    with transaction(ctx.sessions) as session:
        version = ModelVersion(
            stage=ModelStage.CANDIDATE, depth=TrainingDepth.DEEP, backbone=ctx.tagger.backbone_id
        )
        session.add(version)
        session.flush()
        version_id = version.id
    card = {"parent": "v1", "depth": "deep", "thresholds": dict.fromkeys(vocabulary, 0.3)}
    sha = registry.store_version_files(
        ctx, version_id, head, card, ["a" * 64], {registry.TOP_FILE: standin_top()}
    )
    with transaction(ctx.sessions) as session:
        session.get_one(ModelVersion, version_id).head_sha256 = sha
    return version_id


def run_exported(path: Path, photos: list[Path], ctx: Context) -> tuple[np.ndarray, list[str], list[float]]:
    """Scores of the exported file alone (plain onnxruntime) on the server's preprocessed pixels,
    with the labels and thresholds its metadata carries."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    pixels = np.stack([ctx.tagger.prepare(p) for p in photos])
    scores = session.run(["scores"], {"image": pixels})[0]
    return scores, json.loads(meta["labels"]), json.loads(meta["thresholds"])


def shown(scores: np.ndarray, labels: list[str], thresholds: list[float]) -> list[list[str]]:
    return [[labels[j] for j in np.argsort(-row, kind="stable") if row[j] >= thresholds[j]] for row in scores]


def server_scores(ctx: Context, photos: list[Path]) -> np.ndarray:
    """What the server computes for these photos with the model in service."""
    champion = ctx.tagger.champion(force_refresh=True)
    batch = np.stack([ctx.tagger.prepare(p) for p in photos])
    return ctx.tagger.scores(champion, *ctx.tagger.features(batch, champion))


def test_a_trained_version_exported_gives_the_servers_tags_and_scores(ctx: Context, tmp_path: Path) -> None:
    version_id = train_head_version(ctx, tmp_path)
    exported, files = model_export.export_to(ctx, f"v{version_id}", tmp_path / "out")
    assert sorted(f.name for f in files) == ["README.md", "card.json", f"eyes-v{version_id}.onnx"]
    onnx_file = tmp_path / "out" / f"eyes-v{version_id}.onnx"
    onnx.checker.check_model(str(onnx_file))

    photos = unseen_photos()
    scores, labels, thresholds = run_exported(onnx_file, photos, ctx)
    head = registry.load_head(ctx, registry.get_version(ctx, version_id))
    assert labels == head.vocabulary == ["airplanes", "leopards", "watch"]
    assert thresholds == pytest.approx(head.thresholds.tolist(), abs=1e-6)
    expected = server_scores(ctx, photos)
    np.testing.assert_allclose(scores, expected, atol=1e-5)

    # The tags `eyes classify` shows from this version are those the file shows, in its order.
    for photo, tags in zip(photos, shown(scores, labels, thresholds), strict=True):
        served = classify_file(ctx, photo)
        assert served.model_version == f"v{version_id}"
        own = [name for name, _ in served.tags if name in labels]
        assert own == tags[: ctx.settings.max_suggestions], photo

    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card["model"] == f"v{version_id}" and card["kind"] == "head" and card["champion"] is True
    assert card["labels"] == labels and set(card["thresholds"]) == set(labels)
    assert card["training_data"]["n_labelled_photos"] == 3 * TRAIN_PER_CLASS
    assert card["training_data"]["n_positive"] >= 3 * TRAIN_PER_CLASS
    assert set(card["metrics"]["per_tag"]) == set(labels) and card["metrics"]["accuracy"] is not None
    assert card["gate"]["decision"].startswith("promoted") or "knows none" in card["gate"]["decision"]
    assert card["parent"] == ctx.tagger.day_one_version
    assert card["backbone"]["id"] == ctx.tagger.backbone_id
    assert card["file"]["sha256"] == exported.card["file"]["sha256"]
    assert card["preprocessing"]["resize_short_side"] == 256 and card["preprocessing"]["center_crop"] == 224
    # Which photos it learnt from stays on the platform: no ids, no content hashes.
    text = (tmp_path / "out" / "card.json").read_text() + (tmp_path / "out" / "README.md").read_text()
    assert "photo_ids" not in text
    with ctx.sessions() as session:
        from sqlalchemy import select

        from eyes.db.models import Photo

        for photo_id, sha in session.execute(select(Photo.public_id, Photo.sha256)).all():
            assert str(photo_id) not in text and sha not in text


def test_the_readme_recipe_alone_tags_photos_as_the_server_does(ctx: Context, tmp_path: Path) -> None:
    """A person with only the export folder, onnxruntime, numpy and Pillow: the README's code."""
    version_id = train_head_version(ctx, tmp_path)
    out = tmp_path / "out"
    model_export.export_to(ctx, f"v{version_id}", out)
    readme = (out / "README.md").read_text()
    for heading in ("## Input and outputs", "## Training data", "## Metrics", "## The promotion gate"):
        assert heading in readme
    code = re.search(r"```python\n(.*?)```", readme, re.S)
    assert code, "the README shows how to run the file"
    (out / "use_model.py").write_text(code.group(1))
    photos = unseen_photos()
    res = subprocess.run(
        [sys.executable, "use_model.py", *map(str, photos)],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    printed = json.loads(res.stdout)
    for photo in photos:
        served = classify_file(ctx, photo)
        labels = set(json.loads(ort.InferenceSession(str(out / f"eyes-v{version_id}.onnx")).get_modelmeta()
                                .custom_metadata_map["labels"]))  # fmt: skip
        own = [(n, c) for n, c in served.tags if n in labels]
        got = printed[str(photo)][: ctx.settings.max_suggestions]
        assert [n for n, _ in got] == [n for n, _ in own], photo
        assert [c for _, c in got] == pytest.approx([c for _, c in own], abs=1e-5)


def test_a_deep_version_exports_backbone_tuned_top_and_head_in_one_file(ctx: Context, tmp_path: Path) -> None:
    version_id = make_deep_version(ctx, ["leopards", "watch"])
    registry.promote(ctx, version_id)
    model_export.export_to(ctx, f"v{version_id}", tmp_path / "out")
    onnx_file = tmp_path / "out" / f"eyes-v{version_id}.onnx"
    model = onnx.load(str(onnx_file))
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["scores", "embedding"]
    assert any(i.name.startswith("top/") for i in model.graph.initializer), "the tuned top is inside"
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["kind"] == "deep" and json.loads(meta["labels"]) == ["leopards", "watch"]

    photos = unseen_photos()
    scores, labels, thresholds = run_exported(onnx_file, photos, ctx)
    assert ctx.tagger.champion().needs_activations, "the server runs the tuned top on activations"
    np.testing.assert_allclose(scores, server_scores(ctx, photos), atol=1e-5)
    for photo, tags in zip(photos, shown(scores, labels, thresholds), strict=True):
        served = classify_file(ctx, photo)
        assert [n for n, _ in served.tags if n in labels] == tags[: ctx.settings.max_suggestions]
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card["kind"] == "deep" and card["parent"] == "v1"


def test_the_day_one_model_exports_when_nothing_was_trained(ctx: Context, tmp_path: Path) -> None:
    exported, _ = model_export.export_to(ctx, "champion", tmp_path / "out")
    day_one = ctx.tagger.day_one_version
    assert exported.card["model"] == day_one and exported.card["kind"] == "day-one"
    assert exported.card["champion"] is True
    photos = unseen_photos(1)
    scores, labels, thresholds = run_exported(tmp_path / "out" / f"eyes-{day_one}.onnx", photos, ctx)
    assert labels == ctx.tagger.predictor.day_one.words
    np.testing.assert_allclose(scores, server_scores(ctx, photos), atol=1e-5)
    for photo, tags in zip(photos, shown(scores, labels, thresholds), strict=True):
        served = classify_file(ctx, photo)
        assert [n for n, _ in served.tags] == tags[: ctx.settings.max_suggestions]
    again, _ = model_export.export_to(ctx, "day-one", tmp_path / "again")
    assert again.onnx_bytes == exported.onnx_bytes, "the same model gives the same bytes"


def test_the_day_one_export_follows_a_changed_tag_threshold(
    ctx: Context, export_settings: Settings, tmp_path: Path
) -> None:
    model_export.export_to(ctx, "day-one", tmp_path / "before")  # kept in the blob store
    stricter = build_context(export_settings.model_copy(update={"tag_threshold": 0.5}))
    try:
        exported, _ = model_export.export_to(stricter, "day-one", tmp_path / "after")
        name = f"eyes-{stricter.tagger.day_one_version}.onnx"
        _, labels, thresholds = run_exported(tmp_path / "after" / name, unseen_photos(1), stricter)
    finally:
        stricter.close()
    assert set(exported.card["thresholds"].values()) == {0.5}
    assert thresholds == [0.5] * len(labels), "the file's thresholds are the card's and the server's"


def test_names_that_name_nothing_exportable_are_clear_errors(ctx: Context, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no model v99"):
        model_export.export_to(ctx, "v99", tmp_path / "out")
    for bad in ("../../etc", "v1/../v2", "x" * 10_000, "v-1", ""):
        with pytest.raises(BadRequest):
            model_export.export_to(ctx, bad, tmp_path / "out")
    with pytest.raises(NotFound):
        model_export.export_to(ctx, "v" + "9" * 40, tmp_path / "out")
    jobs, ctx.jobs = ctx.jobs, None  # queued, never run: a run under way
    try:
        training_id = training.start_run(ctx, None)
    finally:
        ctx.jobs = jobs
    with pytest.raises(Conflict, match="training"):
        model_export.export_to(ctx, f"v{training_id}", tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing is written for a refused export"
    (tmp_path / "a-file").write_text("")
    with pytest.raises(BadRequest, match="is a file"):
        model_export.export_to(ctx, "day-one", tmp_path / "a-file")


def test_cli_models_export(ctx: Context, export_settings: Settings, tmp_path: Path) -> None:
    version_id = train_head_version(ctx, tmp_path)
    res = eyes(export_settings, "models", "export", f"v{version_id}", str(tmp_path / "cli"), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["model"] == f"v{version_id}" and info["labels"] == ["airplanes", "leopards", "watch"]
    assert {Path(f).name for f in info["files"]} == {"README.md", "card.json", f"eyes-v{version_id}.onnx"}
    assert all(Path(f).is_file() for f in info["files"])
    plain = eyes(export_settings, "models", "export", "champion", str(tmp_path / "plain"))
    assert plain.returncode == 0 and f"exported v{version_id}" in plain.stdout
    unknown = eyes(export_settings, "models", "export", "v99", str(tmp_path / "none"))
    assert unknown.returncode == 1 and "no model v99" in unknown.stderr
    assert not (tmp_path / "none").exists()
    helped = eyes(export_settings, "models", "export", "--help")
    assert helped.returncode == 0 and "self-contained ONNX" in helped.stdout


def test_api_and_page_offer_the_card_to_all_and_the_file_to_members(
    export_settings: Settings, tmp_path: Path
) -> None:
    with TestClient(create_app(export_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "admin")
        ctx = context_of(client)
        version_id = train_head_version_via(ctx, tmp_path)
        name = f"v{version_id}"
        visitor = TestClient(client.app, base_url="http://127.0.0.1")
        card = visitor.get(f"/api/v1/models/{name}/card")
        assert card.status_code == 200 and card.json()["labels"] == ["airplanes", "leopards", "watch"]
        readme = visitor.get(f"/api/v1/models/{name}/card", params={"format": "markdown"})
        assert readme.status_code == 200 and readme.text.startswith(f"# Eyes model {name}")
        assert readme.headers["content-type"].startswith("text/markdown")
        assert visitor.get(f"/api/v1/models/{name}/export").status_code == 401

        got = client.get(f"/api/v1/models/{name}/export")
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "application/octet-stream"
        assert f'filename="eyes-{name}.onnx"' in got.headers["content-disposition"]
        session = ort.InferenceSession(got.content, providers=["CPUExecutionProvider"])
        assert json.loads(session.get_modelmeta().custom_metadata_map["labels"]) == card.json()["labels"]
        assert card.json()["file"]["sha256"] == __import__("hashlib").sha256(got.content).hexdigest()

        page = visitor.get(f"/models/{name}")
        assert f'href="/api/v1/models/{name}/card?format=markdown"' in page.text
        assert f'href="/api/v1/models/{name}/export"' not in page.text, "the download is for members"
        member_page = client.get(f"/models/{name}")
        assert f'href="/api/v1/models/{name}/export"' in member_page.text

        for bad, status in (("v99", 404), ("nonsense", 400), ("v" + "9" * 30, 404), ("%2e%2e", 400)):
            res = client.get(f"/api/v1/models/{bad}/export")
            assert res.status_code == status, (bad, res.text)
            assert client.get(f"/api/v1/models/{bad}/card").status_code == status
        day_one = client.get("/api/v1/models/day-one/export")
        assert day_one.status_code == 200 and len(day_one.content) > 1000


def train_head_version_via(ctx: Context, tmp_path: Path) -> int:
    """train_head_version on an app's context (its owner is the signed-up administrator)."""
    tree = tmp_path / "labelled"
    for cls in CLASSES:
        (tree / cls).mkdir(parents=True)
        for src in sorted((CALTECH / cls).iterdir())[:TRAIN_PER_CLASS]:
            (tree / cls / src.name).symlink_to(src)
    import_tree(ctx, tree, owner="admin", tags_from_folders=True, progress=False)
    version_id = training.start_run(ctx, None)
    ctx.jobs.wait_idle(120)  # type: ignore[union-attr]
    with ctx.sessions() as session:
        assert session.get_one(ModelVersion, version_id).stage == ModelStage.CHAMPION
    return version_id
