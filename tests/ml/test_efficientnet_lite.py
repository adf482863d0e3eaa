"""The architecture: TF "SAME" padding, the pretrained weights load strictly, and they classify."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data

from eyes.ml.efficientnet_lite import Conv2dSame, EfficientNetLite0, load_pretrained, pretrained_weights_path
from eyes.ml.imagenet_words import load_class_names
from eyes.ml.preprocess import preprocess

# Torch is the subject here: the slow tier (the fast tier does not even collect this module).
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("size", "kernel", "stride"), [(224, 3, 2), (224, 5, 2), (225, 3, 2), (7, 5, 1), (9, 3, 2)]
)
def test_same_padding_matches_tensorflow(size: int, kernel: int, stride: int) -> None:
    conv = Conv2dSame(2, 3, kernel, stride=stride)
    x = torch.randn(1, 2, size, size)
    out = conv(x)
    assert out.shape[-2:] == (-(-size // stride), -(-size // stride))  # ceil(size / stride)
    # TF pads the odd pixel at the bottom/right.
    total = max((out.shape[-1] - 1) * stride + kernel - size, 0)
    padded = F.pad(x, [total // 2, total - total // 2] * 2)
    assert torch.allclose(out, F.conv2d(padded, conv.weight, None, stride), atol=1e-5)


def test_state_dict_names_match_the_packaged_weights() -> None:
    state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
    model_state = EfficientNetLite0().state_dict()
    assert len(state) == len(model_state) == 296
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        k: tuple(v.shape) for k, v in model_state.items()
    }


def test_features_and_head_split() -> None:
    model = EfficientNetLite0().eval()
    with torch.no_grad():
        features = model.forward_features(torch.zeros(2, 3, 224, 224))
        assert features.shape == (2, 1280)
        assert model.forward_head(features).shape == (2, 1000)


def test_pretrained_network_classifies_chelsea_and_coffee() -> None:
    model = load_pretrained()
    assert not model.training
    names = load_class_names()
    batch = torch.from_numpy(
        np.stack([preprocess(Image.fromarray(data.chelsea())), preprocess(Image.fromarray(data.coffee()))])
    )
    with torch.no_grad():
        probs = model(batch).softmax(dim=1)
    cat_top3 = {names[i] for i in probs[0].topk(3).indices.tolist()}
    assert cat_top3 & {"tiger cat", "Egyptian cat", "tabby"}
    assert names[int(probs[1].argmax())] == "espresso" and float(probs[1].max()) > 0.9
