"""Faces: find the faces in a decoded image and describe each with 128 floats.

dlib's HOG detector (part of dlib itself), its 5-point landmark model and its ResNet descriptor
(`face-recognition-models`; licences in docs/faces.md: the 68-point model is not used). The
detector runs on a copy whose longest side is at most `DETECT_SIDE` pixels, so the work per photo
is bounded whatever its size; the boxes are mapped back to the image's own pixels.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
from PIL import Image, ImageOps

from eyes.ml.preprocess import to_rgb

DETECT_SIDE = 800
DESCRIPTOR_SIZE = 128
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"


@dataclass(frozen=True)
class Face:
    """One face: its box in the image's pixels (left, top, right, bottom) and its descriptor."""

    box: tuple[int, int, int, int]
    descriptor: np.ndarray  # (128,) float32


class FaceFinder(Protocol):
    def find(self, image: Image.Image) -> list[Face]: ...


def models_folder() -> Path:
    """Where `face-recognition-models` keeps its files (found without importing the package,
    whose __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package face-recognition-models is not installed (make install)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def downscaled(image: Image.Image, longest: int = DETECT_SIDE) -> tuple[np.ndarray, float]:
    """An RGB array of the image at most `longest` pixels on its longest side, and the factor
    that maps its coordinates back to the image's."""
    rgb = to_rgb(image)
    scale = max(rgb.size) / longest
    if scale > 1:
        rgb = rgb.resize((round(rgb.width / scale), round(rgb.height / scale)), Image.Resampling.BILINEAR)
    else:
        scale = 1.0
    return np.asarray(rgb, dtype=np.uint8), scale


class DlibFaceFinder:
    """The real models, loaded once (about 30 MB), used by one thread at a time: dlib's objects
    are not documented as safe to share between threads."""

    def __init__(self, folder: Path | None = None) -> None:
        import dlib  # type: ignore[import-not-found,unused-ignore]

        folder = folder or models_folder()
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(folder / LANDMARKS_FILE))
        self._describer = dlib.face_recognition_model_v1(str(folder / DESCRIPTOR_FILE))
        self._lock = threading.Lock()

    def find(self, image: Image.Image) -> list[Face]:
        pixels, scale = downscaled(image)
        faces = []
        with self._lock:
            # One upsampling: the small copy's faces of about 40 px are still found.
            for rect in self._detector(pixels, 1):
                shape = self._landmarks(pixels, rect)
                vector = np.asarray(self._describer.compute_face_descriptor(pixels, shape), dtype=np.float32)
                faces.append(Face(_box_back(rect, scale, image.size), vector))
        return faces


def _box_back(rect: object, scale: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A detector rectangle on the small copy as a box in the image's pixels, inside the image."""
    left, top = rect.left() * scale, rect.top() * scale  # type: ignore[attr-defined]
    right, bottom = rect.right() * scale, rect.bottom() * scale  # type: ignore[attr-defined]
    width, height = size
    return (
        max(0, min(width, round(left))),
        max(0, min(height, round(top))),
        max(0, min(width, round(right))),
        max(0, min(height, round(bottom))),
    )


def open_for_faces(source: BinaryIO) -> tuple[Image.Image, tuple[float, float]]:
    """Decode a stored original for the face finder, upright: a JPEG at the smallest reduced scale
    that keeps both sides at least `DETECT_SIDE` (a 12-megapixel photo decodes at a quarter of
    its pixels). Returns the image and the factors (x, y) from its pixels to the full upright
    image's, in which boxes are stored."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Corrupt EXIF data", UserWarning)
        with Image.open(source) as img:
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            full = img.size
            img.draft("RGB", (DETECT_SIDE, DETECT_SIDE))  # a no-op for other formats
            img.load()
            factors = (full[0] / img.width, full[1] / img.height)
            if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # turned a quarter: the axes swap
                factors = (factors[1], factors[0])
            ImageOps.exif_transpose(img, in_place=True)
            return img, factors


def find_in_file(finder: FaceFinder, source: BinaryIO) -> list[Face]:
    """The faces in an image file, boxes in the full upright image's pixels."""
    image, (fx, fy) = open_for_faces(source)
    try:
        faces = finder.find(image)
    finally:
        image.close()
    if (fx, fy) == (1.0, 1.0):
        return faces
    return [
        replace(
            f, box=(round(f.box[0] * fx), round(f.box[1] * fy), round(f.box[2] * fx), round(f.box[3] * fy))
        )
        for f in faces
    ]


def load_finder(spec: str) -> FaceFinder:
    """The face finder a setting names: empty for dlib's models, or `module:callable` returning
    another (the fast tests' stand-in)."""
    if not spec:
        return DlibFaceFinder()
    module, _, name = spec.partition(":")
    factory = getattr(importlib.import_module(module), name)
    finder: FaceFinder = factory()
    return finder
