"""A stand-in sensitive-content model for the fast tier: open_nsfw's interface, a rule tests control.

open_nsfw reads (N, 224, 224, 3) float32, BGR less the mean (104, 117, 123), and answers
(N, 2): P(safe), P(sensitive). The stand-in answers from the mean colour alone: an image whose red
outweighs its green by far (a photo of a red wall: `red_image`) scores near 1, ordinary photos
near 0. The real model (a 23 MB ResNet-50, about 40 ms a photo) is tested in tests/ml/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

FILE = "standin-sensitive.onnx"
OPSET = 17


def build_onnx() -> bytes:
    # logit(sensitive) = (R - G - 150) / 10 on the mean colour (after the mean subtraction, so a
    # pure red image is 132 - (-117) = 249 -> 9.9; greys and ordinary photos far below zero).
    weights = np.array([[0.0, 0.0], [0.0, -0.1], [0.0, 0.1]], dtype=np.float32)  # B, G, R rows
    bias = np.array([0.0, -15.0], dtype=np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["input:0"], ["colour"], axes=[1, 2], keepdims=0),  # (N, 3)
        helper.make_node("MatMul", ["colour", "weights"], ["projected"]),
        helper.make_node("Add", ["projected", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["outputs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "standin-sensitive",
        [helper.make_tensor_value_info("input:0", TensorProto.FLOAT, ["batch", 224, 224, 3])],
        [helper.make_tensor_value_info("outputs", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_standin_sensitive(folder: Path) -> Path:
    path = folder / FILE
    path.write_bytes(build_onnx())
    return path


def red_image(path: Path, size: tuple[int, int] = (320, 240), seed: int = 0) -> Path:
    """A JPEG the stand-in scores sensitive (a little noise, so each seed is other bytes)."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    pixels[..., 0] = 230
    pixels[..., 1:] = rng.integers(0, 12, (size[1], size[0], 2), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path, "JPEG", quality=90)
    return path
