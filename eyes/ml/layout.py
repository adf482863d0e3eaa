"""Is one image a re-encoded, resized or slightly cropped copy of another? A check on the layout.

The backbone's embedding says what a photo shows, not which photo it is: on caltech101-23 two
distinct photos of one class are often more alike by embedding (up to 0.99) than a photo and its
own re-encoded, halved copy (down to 0.65; docs/benchmarks.md). So the embedding only proposes
candidates, and this decides: both images as small grey thumbnails, and the best correlation of
one with every window of the other that a crop of up to a fifth of each side could leave (kept
fractions in steps of 5%, placed at 0, 1/4, 1/2, 3/4 or all of the room along each side), both
ways round. A resize or a new encoding changes a
24x24 grey summary of the frame very little; a crop changes it little once the right window is
compared; another photo of the same kind of scene rarely lines up as well.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageOps

SIDE = 96  # the thumbnail's longer side, in pixels
CELL = 24  # windows are compared as CELL x CELL grey averages
FRACTIONS = (1.0, 0.95, 0.9, 0.85, 0.8)  # of a side a crop may keep
ANCHORS = (0.0, 0.25, 0.5, 0.75, 1.0)  # where a crop may sit along a side
_REDUCIBLE = {"L", "LA", "RGB", "RGBA", "RGBX", "CMYK"}  # modes Image.reduce takes


def signature(image: Image.Image) -> np.ndarray:
    """A small grey thumbnail (float32, the longer side SIDE) of an upright image: what `match`
    compares. Reduced before it is converted: a copy of a 49-megapixel photo at full size would
    cost more memory than its decode."""
    factor = min(image.size) // (2 * SIDE)
    small = image.reduce(factor) if factor > 1 and image.mode in _REDUCIBLE else image
    grey = small.convert("L")
    grey.thumbnail((SIDE, SIDE), Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float32)


def open_signature(source: object) -> np.ndarray:
    """The signature of an image file (a path or a file object), decoded at a reduced scale."""
    with Image.open(source) as img:  # type: ignore[arg-type]
        img.draft("L", (2 * SIDE, 2 * SIDE))
        return signature(ImageOps.exif_transpose(img))


def _spans(length: int) -> np.ndarray:
    """(start, end) along one side of every span a crop could keep, the whole side first."""
    return np.array(
        [
            (start, start + length * kept)
            for kept in FRACTIONS
            for start in ((length - length * kept) * a for a in (ANCHORS if kept < 1 else (0.0,)))
        ]
    )


def _cell_edges(length: int) -> np.ndarray:
    """The pixel edges of each span's CELL cells: (spans, CELL + 1) integers."""
    spans = _spans(length)
    steps = np.linspace(0.0, 1.0, CELL + 1)
    return np.rint(spans[:, :1] + (spans[:, 1:] - spans[:, :1]) * steps).astype(int).clip(0, length)


@functools.lru_cache(maxsize=16)
def _averaging(length: int) -> np.ndarray:
    """For one side of a signature: a matrix whose product with it averages each cell of each span
    along that side, (spans * CELL, length). A few shapes cover nearly every photo: built once."""
    edges = _cell_edges(length)
    pixel = np.arange(length)
    inside = (pixel >= edges[:, :-1, None]) & (pixel < edges[:, 1:, None])  # (spans, CELL, length)
    counts = np.maximum(np.diff(edges), 1)[:, :, None]  # an empty cell averages to 0
    return (inside / counts).reshape(-1, length).astype(np.float32)


def _summaries(grey: np.ndarray) -> np.ndarray:
    """Every window (a vertical span by a horizontal span; the whole image first) as CELL x CELL
    averages, centred and of unit length: (windows, CELL * CELL). Two matrix products average the
    cells of all windows at once, about three times faster than gathering them from an integral
    image, with the same cells."""
    height, width = grey.shape
    rows, columns = _averaging(height), _averaging(width)
    n_y, n_x = len(rows) // CELL, len(columns) // CELL
    averages = (rows @ grey.astype(np.float32)) @ columns.T  # (y spans * CELL, x spans * CELL)
    cells = averages.reshape(n_y, CELL, n_x, CELL).transpose(0, 2, 1, 3).reshape(n_y * n_x, -1)
    cells -= cells.mean(axis=1, keepdims=True)
    # In place, the lengths by einsum: np.linalg.norm and a division made three times the work.
    lengths = np.sqrt(np.einsum("ij,ij->i", cells, cells))
    cells *= (1.0 / np.maximum(lengths, 1e-6))[:, None]
    return cells


def summaries(grey: np.ndarray) -> np.ndarray | None:
    """Every window of a signature, summarised (the whole image first): what `matches` compares,
    computed once per image however many it is compared with. None for an image too small or too
    flat to line up (it matches nothing)."""
    if min(grey.shape) < CELL or grey.std() < 1.0:
        return None
    return _summaries(grey)


def matches(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """How well one image lines up with a crop of the other, from their `summaries`: 1.0 is the
    same picture."""
    if a is None or b is None:
        return 0.0
    return float(max((a @ b[0]).max(), (b @ a[0]).max()))


def match(a: np.ndarray, b: np.ndarray) -> float:
    """`matches` of two signatures."""
    return matches(summaries(a), summaries(b))
