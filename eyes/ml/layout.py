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


def _windows(grey: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) of every window a crop could leave, the whole image first."""
    h, w = grey.shape
    out = []
    for fx in FRACTIONS:
        for fy in FRACTIONS:
            for ax in ANCHORS if fx < 1 else (0.0,):
                for ay in ANCHORS if fy < 1 else (0.0,):
                    x0, y0 = (w - w * fx) * ax, (h - h * fy) * ay
                    out.append((x0, y0, x0 + w * fx, y0 + h * fy))
    return np.array(out)


def _summaries(grey: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Each window as CELL x CELL averages, centred and of unit length: (windows, CELL * CELL)."""
    h, w = grey.shape
    integral = np.zeros((h + 1, w + 1), dtype=np.float32)  # 96 x 96 grey levels: exact in float32
    integral[1:, 1:] = grey.cumsum(0).cumsum(1)
    steps = np.linspace(0.0, 1.0, CELL + 1)
    xs = np.rint(windows[:, 0:1] + (windows[:, 2:3] - windows[:, 0:1]) * steps).astype(int).clip(0, w)
    ys = np.rint(windows[:, 1:2] + (windows[:, 3:4] - windows[:, 1:2]) * steps).astype(int).clip(0, h)
    corner = integral[ys[:, :, None], xs[:, None, :]]  # (n, CELL+1, CELL+1)
    sums = corner[:, 1:, 1:] - corner[:, :-1, 1:] - corner[:, 1:, :-1] + corner[:, :-1, :-1]
    area = np.maximum(np.diff(ys)[:, :, None] * np.diff(xs)[:, None, :], 1)
    cells = (sums / area).astype(np.float32).reshape(len(windows), -1)
    cells -= cells.mean(axis=1, keepdims=True)
    return cells / np.maximum(np.linalg.norm(cells, axis=1, keepdims=True), 1e-6)


def summaries(grey: np.ndarray) -> np.ndarray | None:
    """Every window of a signature, summarised (the whole image first): what `matches` compares,
    computed once per image however many it is compared with. None for an image too small or too
    flat to line up (it matches nothing)."""
    if min(grey.shape) < CELL or grey.std() < 1.0:
        return None
    return _summaries(grey, _windows(grey))


def matches(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """How well one image lines up with a crop of the other, from their `summaries`: 1.0 is the
    same picture."""
    if a is None or b is None:
        return 0.0
    return float(max((a @ b[0]).max(), (b @ a[0]).max()))


def match(a: np.ndarray, b: np.ndarray) -> float:
    """`matches` of two signatures."""
    return matches(summaries(a), summaries(b))
