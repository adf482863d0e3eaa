"""The serving embedder: checks its model file, agrees with torch, batches and shares safely."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eyes.ml.embedder import Embedder, default_threads
from eyes.ml.errors import ModelFileError
from eyes.ml.preprocess import open_for_model, preprocess
from tests.ml.conftest import caltech_photos

ONNX = "efficientnet-lite0.onnx"


def write_card(folder: Path, onnx_bytes: bytes) -> None:
    card = {
        "name": "efficientnet-lite0",
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "embedding_dim": 1280,
    }
    (folder / "backbone.json").write_text(json.dumps(card))


def assert_names_file_and_fix(err: pytest.ExceptionInfo[ModelFileError], path: Path) -> None:
    message = str(err.value)
    assert str(path) in message
    assert "eyes models export-backbone" in message
    assert err.value.status_code == 503


def test_missing_onnx_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as err:
        Embedder(tmp_path / ONNX)
    assert_names_file_and_fix(err, tmp_path / ONNX)
    assert err.value.path == tmp_path / ONNX


def test_missing_card(tmp_path: Path) -> None:
    (tmp_path / ONNX).write_bytes(b"not a model")
    with pytest.raises(ModelFileError) as err:
        Embedder(tmp_path / ONNX)
    assert_names_file_and_fix(err, tmp_path / "backbone.json")


def test_file_that_matches_its_card_but_is_not_onnx(tmp_path: Path) -> None:
    garbage = b"\x08\x07garbage" * 100
    (tmp_path / ONNX).write_bytes(garbage)
    write_card(tmp_path, garbage)
    with pytest.raises(ModelFileError, match="cannot be loaded") as err:
        Embedder(tmp_path / ONNX)
    assert_names_file_and_fix(err, tmp_path / ONNX)


@pytest.mark.slow
def test_truncated_onnx_file_is_refused_by_checksum(backbone_dir: Path, tmp_path: Path) -> None:
    onnx = tmp_path / ONNX
    onnx.write_bytes((backbone_dir / ONNX).read_bytes()[:1000])
    (tmp_path / "backbone.json").write_bytes((backbone_dir / "backbone.json").read_bytes())
    with pytest.raises(ModelFileError, match="checksum") as err:
        Embedder(onnx)
    assert_names_file_and_fix(err, onnx)


def test_default_threads_is_small() -> None:
    assert 1 <= default_threads() <= 2


@pytest.mark.slow
def test_embeddings_have_the_right_shape(embedder: Embedder) -> None:
    batch = np.random.default_rng(0).uniform(-1, 1, (3, 3, 224, 224)).astype(np.float32)
    out = embedder.embed(batch)
    assert out.shape == (3, 1280) and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all()  # pooled ReLU6 activations
    assert embedder.embed(batch[:0]).shape == (0, 1280)
    assert embedder.backbone_id.startswith("efficientnet-lite0-")
    with pytest.raises(ValueError, match="shape"):
        embedder.embed(np.zeros((1, 224, 224, 3), dtype=np.float32))


@pytest.mark.slow
def test_torch_and_onnxruntime_agree_on_real_photos(embedder: Embedder) -> None:
    import torch

    from eyes.ml.efficientnet_lite import load_pretrained

    photos = caltech_photos(per_class=2)
    batch = np.stack([preprocess(open_for_model(p)) for p in photos])
    with torch.no_grad():
        expected = load_pretrained().forward_features(torch.from_numpy(batch)).numpy()
    got = embedder.embed(batch)
    assert float(np.abs(got - expected).max()) < 1e-3


@pytest.mark.slow
def test_embed_images_batches_like_embed(embedder: Embedder) -> None:
    images = [open_for_model(p) for p in caltech_photos(per_class=6)]  # 18: more than one batch of 16
    got = embedder.embed_images(images)
    expected = embedder.embed(np.stack([preprocess(img) for img in images]))
    assert got.shape == (18, 1280)
    assert np.allclose(got, expected, atol=1e-5)
    assert embedder.embed_images([]).shape == (0, 1280)


@pytest.mark.slow
def test_one_embedder_is_safe_to_share_between_threads(embedder: Embedder) -> None:
    rng = np.random.default_rng(1)
    batches = [rng.uniform(-1, 1, (2, 3, 224, 224)).astype(np.float32) for _ in range(8)]
    serial = [embedder.embed(b) for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(embedder.embed, batches))
    for a, b in zip(serial, parallel, strict=True):
        assert np.allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_greyscale_photo_embeds(embedder: Embedder) -> None:
    (path,) = caltech_photos(per_class=1, classes=("car_side",))  # car_side is all greyscale
    img = open_for_model(path)
    assert img.mode == "L"
    assert embedder.embed_images([img, Image.new("RGB", (5, 5))]).shape == (2, 1280)


@pytest.mark.slow
def test_embed_with_activations_gives_the_stored_form(embedder: Embedder) -> None:
    images = [open_for_model(p) for p in caltech_photos(per_class=1)]
    batch = np.stack([preprocess(img) for img in images])
    embeddings, activations = embedder.embed_with_activations(batch)
    assert embeddings.dtype == np.float32 and activations.dtype == np.float16
    assert embedder.activation_shape == tuple(embedder.card["activation"]["shape"])
    assert activations.shape == (3, *embedder.activation_shape)
    np.testing.assert_allclose(embeddings, embedder.embed(batch), atol=1e-5)
    assert np.abs(activations).max() > 0.1  # real values, not the zeros the result starts as
    empty_embeddings, empty_activations = embedder.embed_with_activations(batch[:0])
    assert empty_embeddings.shape == (0, 1280) and empty_activations.shape == (0, *embedder.activation_shape)
