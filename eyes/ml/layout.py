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
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

SIDE = 96  # the thumbnail's longer side, in pixels
CELL = 24  # windows are compared as CELL x CELL grey averages
FRACTIONS = (1.0, 0.95, 0.9, 0.85, 0.8)  # of a side a crop may keep
ANCHORS = (0.0, 0.25, 0.5, 0.75, 1.0)  # where a crop may sit along a side
_REDUCIBLE = {"L", "LA", "RGB", "RGBA", "RGBX", "CMYK"}  # modes Image.reduce takes
# A window whose centred cells are shorter than this (an RMS deviation of 1/24 of a grey level) has
# no layout: it lines up with nothing, rather than with whatever its rounding noise points at.
FLAT = 1.0


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


@dataclass(frozen=True)
class Summaries:
    """Every window of a signature (a vertical span by a horizontal span; the whole image first)
    as CELL x CELL averages, centred and of unit length: what a photo being checked is compared
    by (about 1 MB)."""

    cells: np.ndarray  # (windows, CELL * CELL)
    lengths: np.ndarray  # (windows,): before scaling; a window shorter than FLAT stays 0


@dataclass(frozen=True)
class Candidate:
    """What a stored photo is compared by, kept from its summaries (about 13 KB where they take
    1 MB): its signature, each window's length, and its whole image summarised. `matches` of a
    photo with it gives the same figure as with its summaries."""

    grey: np.ndarray  # uint8
    lengths: np.ndarray
    whole: np.ndarray  # (CELL * CELL,)

    @classmethod
    def of(cls, grey: np.ndarray, found: Summaries) -> Candidate:
        return cls(grey.astype(np.uint8), found.lengths, found.cells[0].copy())


def _averages(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The signature averaged over each vertical span's cells (rows @ grey: (y spans, CELL,
    width)), the horizontal spans' averaging matrix (x spans, CELL, width), and the span counts."""
    height, width = grey.shape
    rows, columns = _averaging(height), _averaging(width)
    n_y, n_x = len(rows) // CELL, len(columns) // CELL
    by_rows = (rows @ grey.astype(np.float32)).reshape(n_y, CELL, width)
    return by_rows, columns.reshape(n_x, CELL, width), n_y, n_x


def _summaries(grey: np.ndarray) -> Summaries:
    """Two matrix products average the cells of all windows at once, about three times faster
    than gathering them from an integral image, with the same cells."""
    by_rows, columns, n_y, n_x = _averages(grey)
    averages = by_rows.reshape(n_y * CELL, -1) @ columns.reshape(n_x * CELL, -1).T
    cells = averages.reshape(n_y, CELL, n_x, CELL).transpose(0, 2, 1, 3).reshape(n_y * n_x, -1)
    cells -= cells.mean(axis=1, keepdims=True)
    # In place, the lengths by einsum: np.linalg.norm and a division made three times the work.
    lengths = np.sqrt(np.einsum("ij,ij->i", cells, cells))
    cells *= _inverse(lengths)[:, None]
    return Summaries(cells, lengths)


def _inverse(lengths: np.ndarray) -> np.ndarray:
    """1 / length, and 0 for a flat window."""
    return np.where(lengths < FLAT, 0.0, 1.0 / np.maximum(lengths, FLAT)).astype(np.float32)


def summaries(grey: np.ndarray) -> Summaries | None:
    """Every window of a signature, summarised: what `matches` compares, computed once per image
    however many it is compared with. None for an image too small or too flat to line up (it
    matches nothing)."""
    if min(grey.shape) < CELL or grey.std() < 1.0:
        return None
    return _summaries(grey)


def _windows_against(other: Candidate, whole: np.ndarray) -> np.ndarray:
    """Each window of `other` (as its summaries hold them) times a whole image's summary W,
    without making the windows: window (i, j) is the sum over its cells of (R_i G C_j^T) * W,
    that is of (R_i G) * (W C_j), less its mean times the sum of W (zero but for rounding, which
    a window's length would magnify)."""
    by_rows, columns, n_y, n_x = _averages(other.grey)
    weighted = np.matmul(whole.reshape(CELL, CELL), columns)  # (x spans, CELL, width)
    products = by_rows.reshape(n_y, -1) @ weighted.reshape(n_x, -1).T
    sums = by_rows.sum(axis=1) @ columns.sum(axis=1).T  # each window's cells added up
    products -= sums * (float(whole.sum()) / (CELL * CELL))
    return products.reshape(n_y * n_x) * _inverse(other.lengths)


def matches(a: Summaries | None, b: Summaries | Candidate | None) -> float:
    """How well one image lines up with a crop of the other (each window of one against the
    whole of the other, both ways round): 1.0 is the same picture."""
    if a is None or b is None:
        return 0.0
    if isinstance(b, Candidate):
        return float(max((a.cells @ b.whole).max(), _windows_against(b, a.cells[0]).max()))
    return float(max((a.cells @ b.cells[0]).max(), (b.cells @ a.cells[0]).max()))


def match(a: np.ndarray, b: np.ndarray) -> float:
    """`matches` of two signatures."""
    return matches(summaries(a), summaries(b))
