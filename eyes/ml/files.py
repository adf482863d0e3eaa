"""The backbone's files in a models folder: their names, and reading one with a clear error.

Shared by the export (which writes them, with torch) and the serving side (which reads them,
without torch)."""

from __future__ import annotations

from pathlib import Path

from eyes.ml.errors import backbone_file_error

BACKBONE_NAME = "efficientnet-lite0"
# input INPUT_NAME (N, 3, 224, 224); outputs OUTPUT_NAME (N, 1280) and ACTIVATION_NAME (N, C, H, W)
ONNX_FILE = f"{BACKBONE_NAME}.onnx"
HEAD_FILE = "imagenet-head.npz"  # the ImageNet classifier: W (1000, 1280), b (1000,)
CARD_FILE = "backbone.json"  # checksums and metadata; written last, it vouches for the others
INPUT_NAME = "image"
OUTPUT_NAME = "embedding"
# The input of the first fine-tuned block: a backbone output, and the input of a tuned top.
ACTIVATION_NAME = "activation"


def read_model_file(path: Path) -> bytes:
    """The file's bytes, or a ModelFileError naming the path and the command that rebuilds it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise backbone_file_error(path, "is missing") from None
    except OSError as err:
        raise backbone_file_error(path, f"cannot be read ({err})") from None
