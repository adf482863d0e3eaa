"""A stand-in face finder for the fast tier: the real finder's interface, a rule tests control.

It "finds" one face per pure-green square (see `faces_image`), scanning the image in 16-pixel
cells; every descriptor is the same constant vector.
The real models (dlib) are tested in tests/ml/test_faces.py, marked slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from eyes.ml.faces import DESCRIPTOR_SIZE, Face

SPEC = "tests.standin_faces:StandinFinder"
CELL = 16


class StandinFinder:
    def find(self, image: Image.Image) -> list[Face]:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
        green = (pixels[..., 1] > 200) & (pixels[..., 0] < 60) & (pixels[..., 2] < 60)
        faces = []
        # Each green face is a run of green cells along a row of cells, counted once at its
        # top-left cell (whose neighbours above and to the left are not green).
        rows, cols = green.shape[0] // CELL, green.shape[1] // CELL
        # A cell is green when nearly all of it is (a JPEG's edges ring a little).
        cells = green[: rows * CELL, : cols * CELL].reshape(rows, CELL, cols, CELL).mean(axis=(1, 3)) > 0.9
        for r, c in zip(*np.nonzero(cells), strict=True):
            if (r and cells[r - 1, c]) or (c and cells[r, c - 1]):
                continue
            right, bottom = c, r
            while right + 1 < cols and cells[r, right + 1]:
                right += 1
            while bottom + 1 < rows and cells[bottom + 1, c]:
                bottom += 1
            box = (int(c * CELL), int(r * CELL), int((right + 1) * CELL), int((bottom + 1) * CELL))
            faces.append(Face(box, np.full(DESCRIPTOR_SIZE, 0.5, dtype=np.float32)))
        return faces


def faces_image(
    path: Path, count: int, size: tuple[int, int] = (320, 240), seed: int = 0, scale: int = 1
) -> Path:
    """An image with `count` green squares (48 px, far apart; everything `scale` times larger)
    the stand-in finds as faces: PNG, or JPEG when `path` ends in .jpg."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(90, 140, (size[1] * scale, size[0] * scale, 3), dtype=np.uint8)
    for i in range(count):
        left, top = (16 + 64 * (i % 4)) * scale, (16 + 64 * (i // 4)) * scale
        pixels[top : top + 48 * scale, left : left + 48 * scale] = (0, 255, 0)
    Image.fromarray(pixels, "RGB").save(path, "JPEG" if path.suffix == ".jpg" else "PNG", quality=92)
    return path
