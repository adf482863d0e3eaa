"""A stand-in backbone for the fast tier: the real backbone's files and interface, no torch.

The web and the services need a backbone that loads, embeds and tags; they do not need the
pretrained network's knowledge. This module writes the same three files as
`eyes.ml.export.export_backbone` (the ONNX network, the ImageNet head, the card), built with the
`onnx` package's helper API in milliseconds:

- input `image` (N, 3, 224, 224) float32, outputs `embedding` (N, 1280) and `activation`
  (N, 320, 7, 7) float32, a dynamic batch axis: what the real export gives;
- the embedding is a fixed random projection of each 32x32 cell's mean colour and mean squared
  colour (texture), through a ReLU: a smooth function of the pixels, so the same photo always
  embeds the same, similar photos embed close together, and a head trained on a few photos of two
  kinds of scene tells them apart;
- the ImageNet head is random too, scaled so that a photo's day-one words are confident: the
  day-one tags are arbitrary words, stable for a given photo.

Tests that check what the real network knows (a cat is a cat, accuracy figures) are marked `slow`
and use the real export; `tests/ml/test_export.py` checks that the stand-in's card still matches.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from eyes.ml import preprocess
from eyes.ml.files import ACTIVATION_NAME, CARD_FILE, HEAD_FILE, INPUT_NAME, ONNX_FILE, OUTPUT_NAME

NAME = "standin-backbone"
EMBEDDING_DIM = 1280
ACTIVATION_SHAPE = (320, 7, 7)  # the real export's: the input of the conv head (block 16)
CELL = preprocess.IMAGE_SIZE // ACTIVATION_SHAPE[1]  # 32 pixels: a 7x7 grid of cells
FEATURES = 2 * 3 * ACTIVATION_SHAPE[1] * ACTIVATION_SHAPE[2]  # mean and mean square, per colour
IMAGENET_CLASSES = 1000
SEED = 20240601
OPSET = 17


def build_onnx(seed: int = SEED) -> bytes:
    """The stand-in network as ONNX bytes (deterministic: the same seed gives the same bytes)."""
    rng = np.random.default_rng(seed)
    projection = rng.normal(0, 1 / np.sqrt(FEATURES), (FEATURES, EMBEDDING_DIM)).astype(np.float32)
    bias = rng.normal(0, 0.1, EMBEDDING_DIM).astype(np.float32)
    channels = rng.normal(0, 1, (ACTIVATION_SHAPE[0], 6, 1, 1)).astype(np.float32)
    pool = {"kernel_shape": [CELL, CELL], "strides": [CELL, CELL]}
    nodes = [
        helper.make_node("AveragePool", [INPUT_NAME], ["mean"], **pool),
        helper.make_node("Mul", [INPUT_NAME, INPUT_NAME], ["square"]),
        helper.make_node("AveragePool", ["square"], ["mean_square"], **pool),
        helper.make_node("Concat", ["mean", "mean_square"], ["cells"], axis=1),  # (N, 6, 7, 7)
        # The activation a tuned top would start from: a 1x1 convolution of the cells.
        helper.make_node("Conv", ["cells", "channels"], [ACTIVATION_NAME]),
        helper.make_node("Flatten", ["cells"], ["flat"], axis=1),  # (N, 294)
        helper.make_node("MatMul", ["flat", "projection"], ["projected"]),
        helper.make_node("Add", ["projected", "bias"], ["shifted"]),
        # Non-negative, as the real embedding (pooled ReLU6 features) is.
        helper.make_node("Relu", ["shifted"], [OUTPUT_NAME]),
    ]
    size = preprocess.IMAGE_SIZE
    graph = helper.make_graph(
        nodes,
        NAME,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, size, size])],
        [
            helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", EMBEDDING_DIM]),
            helper.make_tensor_value_info(ACTIVATION_NAME, TensorProto.FLOAT, ["batch", *ACTIVATION_SHAPE]),
        ],
        initializer=[
            numpy_helper.from_array(projection, "projection"),
            numpy_helper.from_array(bias, "bias"),
            numpy_helper.from_array(channels, "channels"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tests.standin_backbone"
    )
    model.ir_version = 8  # what onnxruntime >= 1.18 reads
    onnx.checker.check_model(model)
    return model.SerializeToString()


def build_head(seed: int = SEED) -> bytes:
    """An ImageNet-shaped head, `W` (1000, 1280) and `b` (1000,), as .npz bytes: random, scaled so
    that each photo's best class stands out (day-one words above the default threshold)."""
    rng = np.random.default_rng(seed + 1)
    out = io.BytesIO()
    np.savez(
        out,
        W=rng.normal(0, 0.5, (IMAGENET_CLASSES, EMBEDDING_DIM)).astype(np.float32),
        b=np.zeros(IMAGENET_CLASSES, dtype=np.float32),
    )
    return out.getvalue()


def card(onnx_sha256: str, head_sha256: str) -> dict[str, object]:
    """The card, with the fields of `eyes.ml.export.backbone_card` that serving reads."""
    size = preprocess.IMAGE_SIZE
    return {
        "name": NAME,
        "file": ONNX_FILE,
        "sha256": onnx_sha256,
        "input": {"name": INPUT_NAME, "shape": ["N", 3, size, size], "dtype": "float32"},
        "input_size": size,
        "output": {"name": OUTPUT_NAME, "shape": ["N", EMBEDDING_DIM], "dtype": "float32"},
        "activation": {
            "name": ACTIVATION_NAME,
            "block": 16,
            "shape": list(ACTIVATION_SHAPE),
            "dtype": "float32",
            "stored_dtype": "float16",
        },
        "embedding_dim": EMBEDDING_DIM,
        "preprocessing": {"description": preprocess.DESCRIPTION},
        "head": {"file": HEAD_FILE, "sha256": head_sha256, "classes": "imagenet-1k", "num_classes": 1000},
        "source": {"stand-in": "tests/standin_backbone.py", "seed": SEED},
    }


def write_standin_backbone(dest_dir: Path) -> Path:
    """Write the stand-in's ONNX file, head and card into `dest_dir`; returns the ONNX path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    onnx_bytes, head_bytes = build_onnx(), build_head()
    (dest_dir / HEAD_FILE).write_bytes(head_bytes)
    (dest_dir / ONNX_FILE).write_bytes(onnx_bytes)
    description = card(hashlib.sha256(onnx_bytes).hexdigest(), hashlib.sha256(head_bytes).hexdigest())
    (dest_dir / CARD_FILE).write_text(json.dumps(description, indent=2) + "\n")
    return dest_dir / ONNX_FILE
