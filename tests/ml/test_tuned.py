"""The serving side of a tuned top: onnxruntime on stored activations, float16 in, float32 out."""

from __future__ import annotations

import numpy as np
import pytest

from eyes.ml.efficientnet_lite import Top, activation_shape, load_pretrained
from eyes.ml.export import onnx_export, top_onnx
from eyes.ml.tuned import TunedTop

# Torch is the subject here: the slow tier (the fast tier does not even collect this module).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pretrained_top() -> bytes:
    return top_onnx(Top(load_pretrained(), 16))


def test_accepts_float16_and_batches_like_one_run(pretrained_top: bytes) -> None:
    rng = np.random.default_rng(0)
    stored = rng.normal(0, 1, (5, *activation_shape(16))).astype(np.float16)
    whole = TunedTop(pretrained_top, batch_size=64)
    out = whole.embed(stored)
    assert out.shape == (5, 1280) and out.dtype == np.float32
    np.testing.assert_allclose(out, whole.embed(stored.astype(np.float32)), atol=1e-6)
    np.testing.assert_allclose(
        TunedTop(pretrained_top, threads=1, batch_size=2).embed(stored), out, atol=1e-5
    )
    assert whole.embed(stored[:0]).shape == (0, 1280)
    assert whole.activation_shape == activation_shape(16) and whole.dim == 1280


def test_refuses_activations_of_another_cut(pretrained_top: bytes) -> None:
    with pytest.raises(ValueError, match="expected activations of shape \\(N, 320, 7, 7\\)"):
        TunedTop(pretrained_top).embed(np.zeros((2, 192, 7, 7), dtype=np.float16))


def test_refuses_a_model_that_is_not_a_top() -> None:
    with pytest.raises(ValueError, match="takes 'image'"):
        TunedTop(onnx_export(load_pretrained()))
