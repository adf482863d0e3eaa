"""Auto-tagging: on upload, /classify, `eyes classify`, `eyes evaluate`. What the network says about a
photo needs the real pretrained network (slow); the rest runs on the stand-in backbone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from eyes.app import create_app
from eyes.config import Settings
from eyes.db.models import Embedding, Photo, PhotoTag, Tag
from eyes.db.session import transaction
from eyes.ml.errors import ModelFileError
from eyes.ml.predictor import Suggestion
from eyes.services.classify import as_named
from eyes.services.tagging import replace_suggestions, retag_all
from tests.conftest import CALTECH, context_of, counts, sign_up, upload, wait_for_tagging
from tests.images_for_tests import encode
from tests.test_cli import eyes

LEOPARD = min((CALTECH / "Leopards").iterdir())
AIRPLANE = min((CALTECH / "airplanes").iterdir())


@pytest.mark.slow
def test_upload_is_tagged_in_the_background_and_embedding_stored(client: TestClient) -> None:
    sign_up(client, "tia")
    photo = upload(client, LEOPARD)
    wait_for_tagging(client)
    tagged = client.get(f"/api/v1/photos/{photo['id']}").json()
    assert tagged["tagging"] == "done"
    suggestions = [t for t in tagged["tags"] if t["source"] == "model"]
    assert suggestions, "the network suggested something"
    assert all(t["status"] == "suggested" and 0 < t["confidence"] <= 1 for t in suggestions)
    assert all(t["model_version"].startswith("imagenet") for t in suggestions)
    assert {"leopard", "big cat"} & {t["name"] for t in suggestions}
    confidences = [t["confidence"] for t in suggestions]
    assert confidences == sorted(confidences, reverse=True)

    with context_of(client).sessions() as session:
        row = session.scalars(select(Embedding)).one()
    vector = np.frombuffer(row.vector, dtype="<f4")
    assert vector.shape == (1280,) and np.isfinite(vector).all()


def test_owner_confirms_and_rejects_suggestions(client: TestClient) -> None:
    sign_up(client, "uma")
    photo = upload(client, AIRPLANE)
    wait_for_tagging(client)
    url = f"/api/v1/photos/{photo['id']}/tags"
    first, second, *_ = [t["name"] for t in client.get(url).json() if t["status"] == "suggested"]
    confirmed = client.post(url, json={"name": first}).json()
    assert next(t for t in confirmed if t["name"] == first)["status"] == "confirmed"
    after = client.delete(f"{url}/{second}").json()
    assert second not in [t["name"] for t in after], "a rejected suggestion is not shown"

    # Suggestions recomputed (as after a promotion) offer the rejected tag no more, and leave
    # the confirmed one as the owner said.
    retag_all(context_of(client))
    shown = {t["name"]: t["status"] for t in client.get(url).json()}
    assert second not in shown and shown[first] == "confirmed"
    assert second not in {t["name"] for t in client.get(f"/api/v1/photos/{photo['id']}").json()["tags"]}


def test_new_suggestions_replace_the_open_ones_and_leave_decisions_alone(client: TestClient) -> None:
    sign_up(client, "ida")
    photo = upload(client, AIRPLANE, tags="sky")
    wait_for_tagging(client)
    ctx = context_of(client)
    url = f"/api/v1/photos/{photo['id']}/tags"
    client.post(url, json={"name": "plane"})  # the owner's
    with ctx.sessions() as session:
        photo_id = session.scalar(select(Photo.id).where(Photo.public_id == photo["id"]))

    def suggest(*pairs: tuple[str, float]) -> dict[str, tuple[str, str, float | None]]:
        with transaction(ctx.sessions) as session:
            made = [Suggestion(name, confidence, "v9") for name, confidence in pairs]
            replace_suggestions(session, [photo_id], {photo_id: made})  # type: ignore[dict-item]
        with ctx.sessions() as session:
            rows = session.execute(
                select(Tag.name, PhotoTag.source, PhotoTag.status, PhotoTag.confidence)
                .join(Tag, Tag.id == PhotoTag.tag_id)
                .where(PhotoTag.photo_id == photo_id)
            )
            return {name: (source, status, confidence) for name, source, status, confidence in rows}

    assert suggest(("jet", 0.6))["jet"][1] == "suggested"
    assert client.delete(f"{url}/jet").status_code == 200  # the owner says no
    first = suggest(("runway", 0.9), ("sky", 0.8), ("plane", 0.7), ("jet", 0.6), ("runway", 0.1))
    assert first["runway"] == ("model", "suggested", 0.9), "one row a tag, the first suggestion's"
    assert first["sky"][:2] == ("user", "confirmed") and first["plane"][:2] == ("user", "confirmed")
    assert first["jet"][1] == "rejected", "a tag said no to is never suggested again"
    assert {n for n, (src, st, _) in first.items() if st == "suggested"} == {"runway"}
    second = suggest(("runway", 0.4), ("cloud", 0.3))
    assert second["runway"] == ("model", "suggested", 0.4) and second["cloud"] == ("model", "suggested", 0.3)
    third = suggest(("cloud", 0.5))
    assert "runway" not in third, "a suggestion the model no longer makes is gone"
    assert {n: v[1] for n, v in third.items()} == {
        "sky": "confirmed",
        "plane": "confirmed",
        "jet": "rejected",
        "cloud": "suggested",
    }


@pytest.mark.slow
def test_classify_api_returns_tags_and_stores_nothing(client: TestClient) -> None:
    sign_up(client, "val")
    before = counts(context_of(client))
    with open(LEOPARD, "rb") as f:
        res = client.post("/api/v1/classify", files={"file": ("x.jpg", f, "image/jpeg")})
    assert res.status_code == 200
    body = res.json()
    assert body["model_version"].startswith("imagenet")
    assert body["tags"] and {"leopard", "big cat"} & {t["name"] for t in body["tags"]}
    assert counts(context_of(client)) == before
    bad = client.post("/api/v1/classify", files={"file": ("x.jpg", b"not an image", "image/jpeg")})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "make",
    [
        lambda: encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"),
        lambda: encode(Image.fromarray(np.full((64, 64), 40000, dtype=np.uint16)), "PNG"),
        lambda: encode(Image.new("CMYK", (64, 64), (0, 100, 200, 0)), "JPEG"),
        lambda: encode(Image.new("L", (64, 64), 128), "JPEG"),
        lambda: encode(Image.new("RGBA", (64, 64), (255, 0, 0, 80)), "PNG"),
        lambda: encode(
            Image.new("P", (32, 32)),
            "GIF",
            save_all=True,
            append_images=[Image.new("P", (32, 32), 3)],
            duration=100,
            loop=0,
        ),
    ],
    ids=["1x1", "16-bit-png", "cmyk-jpeg", "greyscale", "alpha", "animated-gif"],
)
def test_awkward_images_are_stored_and_tagged_or_marked(client: TestClient, make) -> None:  # type: ignore[no-untyped-def]
    sign_up(client, "wes")
    res = client.post("/api/v1/photos", files={"file": ("odd.img", make(), "application/octet-stream")})
    assert res.status_code == 201, res.text
    wait_for_tagging(client)
    photo = client.get(f"/api/v1/photos/{res.json()['id']}").json()
    assert photo["tagging"] in ("done", "untaggable")
    assert client.get(photo["thumbnail_url"]).status_code == 200


@pytest.mark.slow
def test_classify_cli_json(settings: Settings) -> None:
    res = eyes(settings, "classify", str(LEOPARD), str(AIRPLANE), "--json")
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout)
    assert [r["file"] for r in results] == [str(LEOPARD), str(AIRPLANE)]
    for r in results:
        assert r["model_version"].startswith("imagenet")
        confidences = [t["confidence"] for t in r["tags"]]
        assert confidences == sorted(confidences, reverse=True)
    assert {"airliner", "airplane", "aircraft"} & {t["name"] for t in results[1]["tags"]}
    missing = eyes(settings, "classify", "/nonexistent.jpg")
    assert missing.returncode == 1 and "not a file" in missing.stderr


@pytest.mark.slow
def test_evaluate_cli_json(settings: Settings, tmp_path: Path) -> None:
    tree = tmp_path / "labelled"
    for cls in ("Leopards", "airplanes"):
        (tree / cls).mkdir(parents=True)
        for src in sorted((CALTECH / cls).iterdir())[:4]:
            (tree / cls / src.name).symlink_to(src)
    res = eyes(settings, "evaluate", str(tree), "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["n"] == 8 and set(report["per_class"]) == {"leopards", "airplanes"}
    # The day-one words say `leopard` and `airplane`; the folders are plural, as people name them.
    assert report["accuracy"] == 1.0 and report["macro_f1"] == 1.0
    assert report["confusion"] == [[4, 0], [0, 4]]
    shown = report["tags"]["airplanes"]
    assert shown["precision"] == 1.0 and shown["recall"] >= 0.5, "a shown `airplane` counts for airplanes"
    assert report["model_version"].startswith("imagenet") and report["ms_per_image"] > 0


@pytest.mark.parametrize(
    ("tag", "folder"),
    [
        ("leopard", "leopards"),
        ("airplanes", "airplane"),
        ("big cat", "big cats"),
        ("berry", "berries"),
        ("bus", "buses"),
        ("dog", "dog"),
    ],
)
def test_evaluation_reads_a_tag_in_either_number(tag: str, folder: str) -> None:
    assert as_named(tag, {folder, "something else"}) == folder
    assert as_named(folder, {tag}) == tag


def test_evaluation_prefers_the_exact_name_and_pairs_nothing_else() -> None:
    assert as_named("leopard", {"leopard", "leopards"}) == "leopard"
    assert as_named("cat", {"cattle", "cart", "category"}) is None
    assert as_named("airplane", set()) is None


def test_corrupt_model_file_is_reported_at_start_with_path_and_fix(
    settings: Settings, tmp_path: Path
) -> None:
    broken_home = tmp_path / "home2"
    models = broken_home / "models"
    models.mkdir(parents=True)
    for f in settings.models_dir.iterdir():
        (models / f.name).write_bytes(f.read_bytes())
    onnx = models / "efficientnet-lite0.onnx"
    onnx.write_bytes(onnx.read_bytes()[:1000])
    app = create_app(settings.model_copy(update={"home": broken_home}))
    with pytest.raises(ModelFileError) as err, TestClient(app):
        pass
    assert str(onnx) in str(err.value) and "eyes models export-backbone" in str(err.value)


@pytest.mark.slow  # the fast tier checks the same of its whole run (tests/conftest.py)
def test_serving_never_imports_torch(settings: Settings) -> None:
    script = f"""
import sys
from fastapi.testclient import TestClient
from eyes.app import create_app
from eyes.config import get_settings
from tests.conftest import sign_up, upload, wait_for_tagging
from pathlib import Path
with TestClient(create_app(get_settings(home=Path({str(settings.home)!r}))), base_url="http://127.0.0.1") as c:
    sign_up(c, "xena")
    upload(c, Path({str(LEOPARD)!r}))
    wait_for_tagging(c)
    assert c.post("/api/v1/classify", files={{"file": open({str(LEOPARD)!r}, "rb")}}).status_code == 200
print("torch" in sys.modules)
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


@pytest.mark.sqlite
def test_photos_named_by_key_are_looked_up_by_it_not_through_the_tagging_state(client: TestClient) -> None:
    """SQLite keeps no statistics: given `tagging = 'done'` it walked every done photo through
    ix_photos_tagging for each chunk of a re-tag (quadratic) instead of using the content hash."""
    from sqlalchemy import text

    from eyes.domain import TaggingState
    from eyes.services.tagging import _in_state

    ctx = context_of(client)
    # SQLite's planner, without statistics: PostgreSQL analyses its tables (its run leaves this out).
    assert ctx.engine.dialect.name == "sqlite", (
        "a test of SQLite's planner: select it out with -m 'not sqlite'"
    )
    statement = select(Photo.id).where(Photo.sha256.in_(["a" * 64, "b" * 64]), _in_state(TaggingState.DONE))
    compiled = statement.compile(ctx.engine, compile_kwargs={"literal_binds": True})
    with ctx.engine.connect() as connection:
        plan = " ".join(row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_photos_sha256" in plan and "ix_photos_tagging" not in plan, plan
