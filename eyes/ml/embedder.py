"""The serving backbone: the exported ONNX network run by onnxruntime. No torch here.

Besides the embedding, the network gives the activation a fine-tuned top starts from (the input
of block `tune_from`, its name and shape in the card), for photos whose activations are stored.

The ONNX file is checked against the sha256 in its card (`backbone.json` beside it) before it is
loaded, so a truncated or swapped file is refused at start with a message that names it, rather
than failing (or silently changing every embedding) later.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from eyes.ml.errors import backbone_file_error
from eyes.ml.files import ACTIVATION_NAME, CARD_FILE, INPUT_NAME, OUTPUT_NAME, read_model_file
from eyes.ml.preprocess import IMAGE_SIZE, preprocess

# Measured on the 2-core CPU: one to four images per run cost 8.4 ms each, sixteen 10.9 ms
# (a small batch stays in the cache). Callers still pass whole batches.
DEFAULT_BATCH_SIZE = 1


def default_threads() -> int:
    """Two threads: more gives little for one small network and starves the web workers."""
    return max(1, min(2, os.cpu_count() or 1))


def read_card(onnx_path: Path) -> dict[str, Any]:
    """The backbone's card (`backbone.json` beside the ONNX file), or ModelFileError naming it."""
    card_path = onnx_path.parent / CARD_FILE
    try:
        card = json.loads(card_path.read_text())
    except FileNotFoundError:
        raise backbone_file_error(card_path, "(the card that vouches for the ONNX file) is missing") from None
    except (OSError, ValueError) as err:
        raise backbone_file_error(card_path, f"cannot be read ({err})") from None
    if not isinstance(card, dict) or not isinstance(card.get("sha256"), str):
        raise backbone_file_error(card_path, "has no sha256 of the ONNX file")
    return card


class Embedder:
    """Turns preprocessed images into 1280-float embeddings with onnxruntime on the CPU.

    One instance is safe to share between threads: onnxruntime allows concurrent `run` calls on
    one session.
    """

    def __init__(
        self, onnx_path: Path | str, threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE
    ):
        import onnxruntime as ort  # imported here so that importing this module stays cheap

        self.path = Path(onnx_path)
        self.batch_size = batch_size
        model_bytes = read_model_file(self.path)
        self.card = read_card(self.path)
        # Hash and load the same bytes, so the file cannot change in between.
        self.sha256 = hashlib.sha256(model_bytes).hexdigest()
        if self.sha256 != self.card["sha256"]:
            raise backbone_file_error(
                self.path, f"does not match the checksum in {CARD_FILE}: it is corrupt or was replaced"
            )

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle onnxruntime threads must not spin: they would fight numpy's BLAS threads (and the
        # web server) for the two cores and double the latency of a single classification.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: onnxruntime's notices are not ours to show
        try:
            self._session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own untyped errors for a bad graph
            raise backbone_file_error(self.path, f"cannot be loaded by onnxruntime ({err})") from None
        self.dim = int(self.card.get("embedding_dim", 1280))
        outputs = [o.name for o in self._session.get_outputs()]
        activation = self.card.get("activation")
        # None for a backbone exported before activations were stored: embed() still works.
        self.activation_shape: tuple[int, ...] | None = (
            tuple(int(d) for d in activation["shape"])
            if isinstance(activation, dict) and ACTIVATION_NAME in outputs
            else None
        )

    @property
    def backbone_id(self) -> str:
        """Names the exact network: embeddings from different ids must never be mixed."""
        return f"{self.card.get('name', 'backbone')}-{self.sha256[:12]}"

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, 224, 224) preprocessed images -> (N, 1280) float32 embeddings.

        Large batches run in chunks of `batch_size` to bound the memory onnxruntime uses.
        """
        return self._run(batch, [OUTPUT_NAME])[0]

    def embed_with_activations(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3, 224, 224) preprocessed images -> embeddings (N, 1280) float32 and the activations
        a tuned top starts from, (N, C, H, W) float16 (the form they are stored in)."""
        if self.activation_shape is None:
            raise backbone_file_error(
                self.path, f"gives no '{ACTIVATION_NAME}' output (it was exported by an older version)"
            )
        embeddings, activations = self._run(batch, [OUTPUT_NAME, ACTIVATION_NAME])
        return embeddings, activations

    def _run(self, batch: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(
                f"expected a batch of shape (N, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), got {batch.shape}"
            )
        shapes = {OUTPUT_NAME: (self.dim,), ACTIVATION_NAME: self.activation_shape or ()}
        dtypes = {OUTPUT_NAME: np.float32, ACTIVATION_NAME: np.float16}
        results = [np.zeros((len(batch), *shapes[name]), dtype=dtypes[name]) for name in outputs]
        for start in range(0, len(batch), self.batch_size):
            chunk = np.ascontiguousarray(batch[start : start + self.batch_size])
            for result, got in zip(results, self._session.run(outputs, {INPUT_NAME: chunk}), strict=True):
                result[start : start + len(chunk)] = got  # float16 activations are cast here
        return results

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Preprocess and embed decoded images, `batch_size` at a time: (N, 1280) float32."""
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            part = images[start : start + self.batch_size]
            out[start : start + len(part)] = self.embed(np.stack([preprocess(image) for image in part]))
        return out
