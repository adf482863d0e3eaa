"""Export the pretrained backbone once: ONNX for serving, the ImageNet head as numpy, and a card.

This is the one serving-related module that imports torch. The server runs it in a child process
(`python -m eyes.ml.export DEST_DIR`) so that torch never loads into the serving process.

Files written into `dest_dir`:

- `efficientnet-lite0.onnx`: input `image` (N, 3, 224, 224) float32, outputs `embedding` (N, 1280)
  and `activation` (N, C, H, W), the input of block TUNE_FROM: what a fine-tuned top starts from
- `imagenet-head.npz`: `W` (1000, 1280) and `b` (1000,) float32, so that the day-one classifier
  is `softmax(embedding @ W.T + b)` in numpy
- `backbone.json`: the card (name, sha256 of the ONNX file, input size, preprocessing, the
  activation's name, block and shape, source)

The fine-tuned top of the network is exported here too (`top_onnx`, used by eyes.ml.finetune):
input `activation`, output `embedding`, so that serving runs it with onnxruntime on stored
activations.

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
    Top,
    activation_shape,
    load_pretrained,
    pretrained_weights_path,
    weights_package_version,
)
from eyes.ml.files import (
    ACTIVATION_NAME,
    BACKBONE_NAME,
    CARD_FILE,
    HEAD_FILE,
    INPUT_NAME,
    ONNX_FILE,
    OUTPUT_NAME,
)

OPSET = 17
# How far onnxruntime may drift from torch on the check batch before the export is refused.
MAX_EXPORT_DIFF = 1e-3
# Fine-tuning trains `_blocks[TUNE_FROM:]`, `_conv_head` and `_bn1`; the backbone stores the input
# of `_blocks[TUNE_FROM]` for every photo. 16 = len(_blocks): no block, the input of `_conv_head`
# (7x7x320, 30.6 KiB per photo in float16). Chosen by measurement: see eyes/ml/finetune.py.
TUNE_FROM = 16


@dataclass(frozen=True)
class BackboneFiles:
    """Where an export put its files, and the ONNX file's checksum."""

    onnx: Path
    head: Path
    card: Path
    sha256: str


class _Embedding(nn.Module):
    """The network up to the pooled embedding, and the activation at the cut point on the way:
    what gets exported (the ImageNet head travels as numpy)."""

    def __init__(self, model: EfficientNetLite0, tune_from: int) -> None:
        super().__init__()
        self.model = model
        self.tune_from = tune_from

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        activation = self.model.forward_until(image, self.tune_from)
        return self.model.forward_from(activation, self.tune_from), activation


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


def onnx_export(model: EfficientNetLite0, tune_from: int = TUNE_FROM) -> bytes:
    """The embedding network as ONNX bytes, with a dynamic batch dimension and two outputs:
    `embedding` (N, 1280) and `activation`, the input of `_blocks[tune_from]` (N, C, H, W)."""
    example = torch.zeros(1, 3, preprocess.IMAGE_SIZE, preprocess.IMAGE_SIZE)
    return _to_onnx(_Embedding(model, tune_from), model, example, INPUT_NAME, [OUTPUT_NAME, ACTIVATION_NAME])


def top_onnx(top: Top) -> bytes:
    """A (fine-tuned) top of the network as ONNX bytes: input `activation` (N, C, H, W) float32,
    output `embedding` (N, 1280), dynamic batch."""
    example = torch.zeros(1, *activation_shape(top.start))
    return _to_onnx(top, top, example, ACTIVATION_NAME, [OUTPUT_NAME])


def _to_onnx(
    wrapper: nn.Module, model: nn.Module, example: torch.Tensor, input_name: str, outputs: list[str]
) -> bytes:
    wrapper.eval()  # eval on the wrapper too: export traces in its mode
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is what we want (dynamo=False): it needs no onnxscript and
        # gives a plain, stable graph. It warns, from inside torch, that it and some of its own
        # helpers are deprecated; those notices are silenced here, during this call only.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # "SAME" padding is computed from the input's height and width, which the trace records as
        # constants. That is right here: only the batch axis is dynamic, the size is fixed.
        warnings.filterwarnings(
            "ignore", "Converting a tensor to a Python integer", category=torch.jit.TracerWarning
        )
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(
            wrapper,
            (example,),
            path,
            input_names=[input_name],
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in [input_name, *outputs]},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
        onnx_bytes = path.read_bytes()
    model.eval()  # the exporter may leave the model in another mode
    return onnx_bytes


def check_onnx(onnx_bytes: bytes, model: EfficientNetLite0, tune_from: int = TUNE_FROM) -> None:
    """Refuse an export that is malformed or that computes something other than torch does:
    both the embedding and the activation at the cut point."""
    batch = torch.rand(
        2, 3, preprocess.IMAGE_SIZE, preprocess.IMAGE_SIZE, generator=torch.Generator().manual_seed(0)
    )
    batch = batch * 2 - 1
    with torch.no_grad():
        activation = model.forward_until(batch, tune_from)
        expected = {
            OUTPUT_NAME: model.forward_from(activation, tune_from).numpy(),
            ACTIVATION_NAME: activation.numpy(),
        }
    _check_against_torch(onnx_bytes, INPUT_NAME, batch.numpy(), expected, "backbone")


def check_top_onnx(onnx_bytes: bytes, top: Top) -> None:
    """Refuse a top export that is malformed or that computes something other than torch does."""
    top.eval()
    # Values of the order of real activations (block outputs are linear bottlenecks, not clipped).
    x = torch.rand(2, *activation_shape(top.start), generator=torch.Generator().manual_seed(0)) * 6 - 3
    with torch.no_grad():
        expected = {OUTPUT_NAME: top(x).numpy()}
    _check_against_torch(onnx_bytes, ACTIVATION_NAME, x.numpy(), expected, "tuned top")


def _check_against_torch(
    onnx_bytes: bytes, input_name: str, batch: np.ndarray, expected: dict[str, np.ndarray], what: str
) -> None:
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load_from_string(onnx_bytes))
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    # A batch of 2 checks the dynamic batch axis as well as the numbers.
    got = session.run(list(expected), {input_name: batch})
    for (name, want), have in zip(expected.items(), got, strict=True):
        if have.shape != want.shape or have.dtype != np.float32:
            raise RuntimeError(
                f"the exported {what} gives {name} of shape {have.shape} {have.dtype}, "
                f"expected {want.shape} float32"
            )
        diff = float(np.abs(have - want).max())
        if diff > MAX_EXPORT_DIFF:
            raise RuntimeError(
                f"the exported {what} differs from torch in {name} by {diff:.2e} (limit {MAX_EXPORT_DIFF})"
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
        "activation": {
            "name": ACTIVATION_NAME,
            "block": TUNE_FROM,
            "shape": list(activation_shape(TUNE_FROM, preprocess.IMAGE_SIZE)),
            "dtype": "float32",
            "stored_dtype": "float16",
        },
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
