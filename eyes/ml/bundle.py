"""One self-contained ONNX file for a model version: what the community takes away.

Serving composes a model from parts (the backbone's ONNX file, a deep version's tuned top, a numpy
head; or the day-one ImageNet words). Here the same parts become one graph, built with the `onnx`
package (no torch), that plain onnxruntime runs on preprocessed pixels:

- input `image` (N, 3, 224, 224) float32, preprocessed as the backbone's card says;
- output `scores` (N, k) float32: one probability per label, exactly what the server computes;
- output `embedding` (N, 1280) float32: the features the scores are computed from (the backbone's
  pooled embedding, or the tuned top's for a deep version).

Labels, per-tag thresholds, the backbone and the preprocessing travel in the file's
`metadata_props`, so the file alone is enough to tag a photo. The bytes are deterministic: the same
parts always give the same file (no timestamp inside), so a cached export stays valid.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, compose, helper, numpy_helper

from eyes.ml.embedder import read_card
from eyes.ml.errors import backbone_file_error
from eyes.ml.files import ACTIVATION_NAME, CARD_FILE, ONNX_FILE, OUTPUT_NAME, read_model_file
from eyes.ml.head import Head

SCORES_NAME = "scores"
FORMAT = "eyes-model/1"


@dataclass(frozen=True)
class Backbone:
    """The backbone's ONNX bytes, checked against its card, and the card."""

    onnx_bytes: bytes
    card: dict[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.card["sha256"])

    @property
    def backbone_id(self) -> str:
        """The id a version's card names (eyes.ml.embedder.Embedder.backbone_id)."""
        return f"{self.card.get('name', 'backbone')}-{self.sha256[:12]}"


def read_backbone(models_dir: Path) -> Backbone:
    """The backbone's ONNX file and card from `models_dir`, refused if they do not match."""
    path = models_dir / ONNX_FILE
    data = read_model_file(path)
    card = read_card(path)
    if hashlib.sha256(data).hexdigest() != card["sha256"]:
        raise backbone_file_error(
            path, f"does not match the checksum in {CARD_FILE}: it is corrupt or was replaced"
        )
    return Backbone(data, card)


def bundle_trained(backbone: Backbone, head: Head, top_onnx: bytes | None, metadata: dict[str, str]) -> bytes:
    """Backbone, the tuned top if the version has one, and the head, as one ONNX file.

    A deep version's top reads the activation as the server stores it (float16): the graph
    rounds it the same way, so the file gives the server's scores, not nearly them."""
    model = _prefixed(backbone.onnx_bytes, "backbone/", rename_inputs=False)
    features = f"backbone/{OUTPUT_NAME}"
    if top_onnx is not None:
        rounding = _graph_model(
            "float16-storage",
            [
                helper.make_node("Cast", ["round/in"], ["round/half"], to=TensorProto.FLOAT16),
                helper.make_node("Cast", ["round/half"], ["round/out"], to=TensorProto.FLOAT),
            ],
            [_tensor("round/in", ["batch", *_shape_of(model, f"backbone/{ACTIVATION_NAME}")])],
            [_tensor("round/out", ["batch", *_shape_of(model, f"backbone/{ACTIVATION_NAME}")])],
            [],
            model,
        )
        model = _merge(model, rounding, [(f"backbone/{ACTIVATION_NAME}", "round/in")], ["round/out"])
        top = _prefixed(top_onnx, "top/")
        model = _merge(model, top, [("round/out", f"top/{ACTIVATION_NAME}")], [f"top/{OUTPUT_NAME}"])
        features = f"top/{OUTPUT_NAME}"
    return _finish(model, features, _head_model(head, model), {**metadata, **_head_metadata(head)})


def bundle_day_one(
    backbone: Backbone,
    weight: np.ndarray,
    bias: np.ndarray,
    word_classes: np.ndarray,
    words: list[str],
    threshold: float,
    metadata: dict[str, str],
) -> bytes:
    """The day-one model: the backbone's ImageNet classifier, its classes summed into words.

    `weight` (1000, dim) and `bias` (1000,) are the ImageNet head; `word_classes` (1000, n_words)
    is 1 where a class lists a word (eyes.ml.imagenet_words): a word's score is the sum of its
    classes' softmax probabilities, clipped to 1, as the server computes it."""
    model = _prefixed(backbone.onnx_bytes, "backbone/", rename_inputs=False)
    dim = weight.shape[1]
    nodes = [
        helper.make_node("MatMul", ["features", "day_one/weight"], ["day_one/product"]),
        helper.make_node("Add", ["day_one/product", "day_one/bias"], ["day_one/logits"]),
        helper.make_node("Softmax", ["day_one/logits"], ["day_one/classes"], axis=1),
        helper.make_node("MatMul", ["day_one/classes", "day_one/words"], ["day_one/summed"]),
        helper.make_node("Min", ["day_one/summed", "day_one/one"], [SCORES_NAME]),
        helper.make_node("Identity", ["features"], [OUTPUT_NAME]),
    ]
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(weight.T, dtype=np.float32), "day_one/weight"),
        numpy_helper.from_array(bias.astype(np.float32), "day_one/bias"),
        numpy_helper.from_array(word_classes.astype(np.float32), "day_one/words"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "day_one/one"),
    ]
    head = _graph_model(
        "day-one-words",
        nodes,
        [_tensor("features", ["batch", dim])],
        [_tensor(SCORES_NAME, ["batch", len(words)]), _tensor(OUTPUT_NAME, ["batch", dim])],
        initializers,
        model,
    )
    labels = {"labels": json.dumps(words), "thresholds": json.dumps([float(threshold)] * len(words))}
    return _finish(model, f"backbone/{OUTPUT_NAME}", head, {**metadata, **labels})


def _head_model(head: Head, like: ModelProto) -> ModelProto:
    """Head.probabilities as a graph: power-normalise, standardise, linear layer, sigmoid."""
    dim = head.weight.shape[0]
    nodes = []
    x = "features"
    if head.power != 1.0:
        # sign(x) * |x| ** power, as eyes.ml.head.power_normalise; Sqrt for the usual 0.5 (what
        # numpy computes for ** 0.5 too).
        power = (
            helper.make_node("Sqrt", ["head/abs"], ["head/powered"])
            if head.power == 0.5
            else helper.make_node("Pow", ["head/abs", "head/power"], ["head/powered"])
        )
        nodes += [
            helper.make_node("Abs", [x], ["head/abs"]),
            power,
            helper.make_node("Sign", [x], ["head/sign"]),
            helper.make_node("Mul", ["head/sign", "head/powered"], ["head/normalised"]),
        ]
        x = "head/normalised"
    nodes += [
        helper.make_node("Sub", [x, "head/mean"], ["head/centred"]),
        helper.make_node("Div", ["head/centred", "head/scale"], ["head/standard"]),
        helper.make_node("MatMul", ["head/standard", "head/weight"], ["head/product"]),
        helper.make_node("Add", ["head/product", "head/bias"], ["head/logits"]),
        helper.make_node("Sigmoid", ["head/logits"], [SCORES_NAME]),
        helper.make_node("Identity", ["features"], [OUTPUT_NAME]),
    ]
    arrays = {
        "head/mean": head.mean,
        "head/scale": head.scale,
        "head/weight": head.weight,
        "head/bias": head.bias,
        "head/power": np.array(head.power),
    }
    initializers = [numpy_helper.from_array(np.asarray(a, dtype=np.float32), n) for n, a in arrays.items()]
    return _graph_model(
        "head",
        nodes,
        [_tensor("features", ["batch", dim])],
        [_tensor(SCORES_NAME, ["batch", len(head.vocabulary)]), _tensor(OUTPUT_NAME, ["batch", dim])],
        initializers,
        like,
    )


def _head_metadata(head: Head) -> dict[str, str]:
    return {
        "labels": json.dumps(head.vocabulary),
        "thresholds": json.dumps([round(float(t), 6) for t in head.thresholds]),
    }


def _finish(model: ModelProto, features: str, head: ModelProto, metadata: dict[str, str]) -> bytes:
    model = _merge(model, head, [(features, "features")], [SCORES_NAME, OUTPUT_NAME])
    _prune(model)
    model.graph.name = metadata.get("version", "eyes-model")
    model.producer_name = "eyes"
    model.doc_string = (
        "Eyes model: input 'image' (N, 3, 224, 224) float32 preprocessed as the metadata's "
        "'preprocessing' says; output 'scores' (N, k), one probability per label in 'labels' "
        "(a tag is shown when its score reaches its entry in 'thresholds'), and 'embedding'."
    )
    del model.metadata_props[:]
    helper.set_model_props(model, {"format": FORMAT, **metadata})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _prefixed(onnx_bytes: bytes, prefix: str, *, rename_inputs: bool = True) -> ModelProto:
    model = onnx.load_from_string(onnx_bytes)
    return compose.add_prefix(model, prefix, rename_inputs=rename_inputs)


def _merge(
    first: ModelProto, second: ModelProto, io_map: list[tuple[str, str]], outputs: list[str]
) -> ModelProto:
    # merge_models wants one IR version: the newer of the two reads both (both come from the
    # same exporters and opset).
    ir_version = max(first.ir_version, second.ir_version)
    first.ir_version = second.ir_version = ir_version
    return compose.merge_models(first, second, io_map=io_map, outputs=outputs)


def _graph_model(
    name: str,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: list[TensorProto],
    like: ModelProto,
) -> ModelProto:
    """A small graph with the opsets and IR version of `like`, so that the two merge."""
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=list(like.opset_import))
    model.ir_version = like.ir_version
    return model


def _tensor(name: str, shape: list[Any]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _shape_of(model: ModelProto, output: str) -> list[Any]:
    """The dimensions after the batch axis of one of the model's outputs."""
    for value in model.graph.output:
        if value.name == output:
            dims = value.type.tensor_type.shape.dim
            return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims][1:]
    raise ValueError(f"the model has no output {output!r}")


def _prune(model: ModelProto) -> None:
    """Drop what no output needs: a deep version never reads the backbone's own embedding."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    infos = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(infos)
