"""Auto-tagging with the real pretrained network: on upload, /classify, `eyes classify`, `eyes evaluate`."""

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
from eyes.db.models import Embedding
from eyes.ml.errors import ModelFileError
from tests.conftest import CALTECH, context_of, counts, sign_up, upload, wait_for_tagging
from tests.images_for_tests import encode
from tests.test_cli import eyes

pytestmark = pytest.mark.slow

LEOPARD = min((CALTECH / "Leopards").iterdir())
AIRPLANE = min((CALTECH / "airplanes").iterdir())


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
    tags = client.get(f"/api/v1/photos/{photo['id']}/tags").json()
    first, *rest = [t["name"] for t in tags if t["status"] == "suggested"]
    confirmed = client.post(f"/api/v1/photos/{photo['id']}/tags", json={"name": first}).json()
    assert next(t for t in confirmed if t["name"] == first)["status"] == "confirmed"
    if rest:
        after = client.delete(f"/api/v1/photos/{photo['id']}/tags/{rest[0]}").json()
        assert rest[0] not in [t["name"] for t in after], "a rejected suggestion is not shown"


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
    for key in ("accuracy", "macro_f1", "model_version", "ms_per_image"):
        assert key in report
    assert 0 <= report["accuracy"] <= 1 and report["ms_per_image"] > 0


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
