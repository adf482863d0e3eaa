"""A stand-in face finder for the fast tier: the real finder's interface, a rule tests control.

It "finds" one face per pure-green square (see `faces_image`), scanning the image in 16-pixel
cells. Who a face is, is the square's hint of red and blue (`faces_image(..., people=[...])`):
person 0 (pure green, the default) has a constant descriptor, person k one that differs from it
by 1.0 in coordinate k, so two faces of one person are at distance 0 and of two people at 1 or
more (dlib's own rule of thumb: the same person is closer than 0.6).
The real models (dlib) are tested in tests/ml/test_faces.py, marked slow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from eyes.ml.faces import DESCRIPTOR_SIZE, Face

SPEC = "tests.standin_faces:StandinFinder"
CELL = 16
PEOPLE = 9  # persons 0..8: red and blue each 0, 15 or 30 (still green to the finder)
_STEP = 15


def person_colour(person: int) -> tuple[int, int, int]:
    if not 0 <= person < PEOPLE:
        raise ValueError(f"the stand-in knows persons 0 to {PEOPLE - 1}")
    return (person // 3 * _STEP, 255, person % 3 * _STEP)


def descriptor_of(person: int) -> np.ndarray:
    """The descriptor the stand-in gives every face of `person`."""
    descriptor = np.full(DESCRIPTOR_SIZE, 0.5, dtype=np.float32)
    if person:
        descriptor[person] += 1.0
    return descriptor


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
            inside = pixels[box[1] : box[3], box[0] : box[2]]
            red, blue = (round(float(np.median(inside[..., i])) / _STEP) for i in (0, 2))
            faces.append(Face(box, descriptor_of(min(red, 2) * 3 + min(blue, 2))))
        return faces


def faces_image(
    path: Path,
    count: int,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    scale: int = 1,
    people: Sequence[int] = (),
) -> Path:
    """An image with `count` green squares (48 px, far apart; everything `scale` times larger)
    the stand-in finds as faces, the i-th of person `people[i]` (0 when not given): PNG, or JPEG
    when `path` ends in .jpg (persons other than 0 need PNG: JPEG's colour rings blur them). The
    squares run left to right, then top to bottom."""
    if path.suffix == ".jpg" and any(people):
        raise ValueError("persons other than 0 need a PNG")
    rng = np.random.default_rng(seed)
    pixels = rng.integers(90, 140, (size[1] * scale, size[0] * scale, 3), dtype=np.uint8)
    for i in range(count):
        left, top = (16 + 64 * (i % 4)) * scale, (16 + 64 * (i // 4)) * scale
        person = people[i] if i < len(people) else 0
        pixels[top : top + 48 * scale, left : left + 48 * scale] = person_colour(person)
    Image.fromarray(pixels, "RGB").save(path, "JPEG" if path.suffix == ".jpg" else "PNG", quality=92)
    return path
