"""The one-file export on the real network: the torch-exported backbone and tuned top, merged with a
head by the `onnx` package, give in plain onnxruntime what serving computes from the parts.
(tests/test_model_export.py checks the same through the services on the stand-in backbone.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from skimage import data

from eyes.ml.bundle import bundle_day_one, bundle_trained, read_backbone
from eyes.ml.efficientnet_lite import Top, load_pretrained
from eyes.ml.embedder import Embedder
from eyes.ml.export import TUNE_FROM, top_onnx
from eyes.ml.imagenet_words import ImageNetTagger
from eyes.ml.preprocess import open_for_model, preprocess
from eyes.ml.train import TrainConfig, train_head
from eyes.ml.tuned import TunedTop
from tests.ml.conftest import caltech_photos

pytestmark = pytest.mark.slow
CLASSES = ("Leopards", "airplanes", "car_side")


def pixels(paths: list[Path]) -> np.ndarray:
    return np.stack([preprocess(open_for_model(p)) for p in paths])


def run(onnx_bytes: bytes, batch: np.ndarray) -> tuple[np.ndarray, dict[str, str]]:
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(["scores"], {"image": batch})[0], session.get_modelmeta().custom_metadata_map


def fitted_head(features: np.ndarray, per_class: int):  # type: ignore[no-untyped-def]
    y = np.repeat(np.eye(len(CLASSES), dtype=np.float32), per_class, axis=0)
    vocabulary = [c.lower() for c in CLASSES]
    head = train_head(features, y, np.ones_like(y), vocabulary, TrainConfig(), record_history=False).head
    head.thresholds = np.full(len(vocabulary), 0.5, np.float32)
    return head


def test_a_head_version_in_one_file_is_the_served_backbone_and_head(
    backbone_dir: Path, embedder: Embedder
) -> None:
    train = caltech_photos(6, CLASSES)
    head = fitted_head(embedder.embed(pixels(train)), 6)
    onnx_bytes = bundle_trained(read_backbone(backbone_dir), head, None, {"version": "v1", "kind": "head"})
    unseen = [p for c in CLASSES for p in sorted((train[0].parents[1] / c).glob("*.jpg"))[-2:]]
    batch = pixels(unseen)
    scores, meta = run(onnx_bytes, batch)
    np.testing.assert_allclose(scores, head.probabilities(embedder.embed(batch)), atol=1e-5)
    assert json.loads(meta["labels"]) == ["leopards", "airplanes", "car_side"] and meta["kind"] == "head"
    assert [json.loads(meta["labels"])[j] for j in scores.argmax(axis=1)] == [
        c.lower() for c in CLASSES for _ in range(2)
    ], "unseen photos of each class get their class"


def test_a_deep_version_in_one_file_rounds_the_activation_as_serving_stores_it(
    backbone_dir: Path, embedder: Embedder
) -> None:
    top_bytes = top_onnx(Top(load_pretrained(), TUNE_FROM))
    top = TunedTop(top_bytes)
    train = caltech_photos(4, CLASSES)
    head = fitted_head(top.embed(embedder.embed_with_activations(pixels(train))[1]), 4)
    onnx_bytes = bundle_trained(
        read_backbone(backbone_dir), head, top_bytes, {"version": "v2", "kind": "deep"}
    )
    batch = pixels(caltech_photos(1, CLASSES))
    scores, _ = run(onnx_bytes, batch)
    _, stored = embedder.embed_with_activations(batch)  # float16, as the server stores them
    np.testing.assert_allclose(scores, head.probabilities(top.embed(stored)), atol=1e-5)


def test_the_day_one_model_in_one_file_names_the_cat_and_the_coffee(
    backbone_dir: Path, embedder: Embedder, imagenet: ImageNetTagger
) -> None:
    onnx_bytes = bundle_day_one(
        read_backbone(backbone_dir),
        imagenet.weight,
        imagenet.bias,
        imagenet.word_matrix(),
        imagenet.words,
        0.2,
        {"version": imagenet.version, "kind": "day-one"},
    )
    batch = np.stack(
        [preprocess(Image.fromarray(data.chelsea())), preprocess(Image.fromarray(data.coffee()))]
    )
    scores, meta = run(onnx_bytes, batch)
    np.testing.assert_allclose(scores, imagenet.word_scores(embedder.embed(batch)), atol=1e-5)
    words = json.loads(meta["labels"])
    assert "cat" in {words[j] for j in np.argsort(-scores[0])[:5]}
    assert "espresso" in {words[j] for j in np.argsort(-scores[1])[:3]}
