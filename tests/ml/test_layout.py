"""The near-duplicate check's layouts (eyes/ml/layout.py): a stored photo kept as a 13 KB
candidate is judged exactly as by all its windows' summaries (1 MB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eyes.config import Settings
from eyes.ml import layout
from tests.conftest import CALTECH


def copies(path: Path) -> list[np.ndarray]:
    """A photo's signature, and those of its copies an import meets: halved, cropped by a tenth
    on two sides, and both."""
    with Image.open(path) as img:
        image = img.convert("RGB")
    w, h = image.size
    cropped = image.crop((w // 10, 0, w, h - h // 10))
    return [
        layout.signature(im)
        for im in (image, image.resize((w // 2, h // 2)), cropped, cropped.resize((w // 3, h // 3)))
    ]


@pytest.fixture(scope="module")
def signatures() -> list[np.ndarray]:
    photos = sorted(CALTECH.rglob("*.jpg"))[::40][:8]
    assert len(photos) == 8, CALTECH
    return [grey for path in photos for grey in copies(path)]


def test_a_candidate_matches_exactly_as_its_summaries(signatures: list[np.ndarray]) -> None:
    found = [layout.summaries(grey) for grey in signatures]
    pairs = 0
    for a in found:
        for grey, b in zip(signatures, found, strict=True):
            if a is None or b is None:
                continue
            whole = layout.matches(a, b)
            assert layout.matches(a, layout.Candidate.of(grey, b)) == pytest.approx(whole, abs=1e-5)
            pairs += 1
    assert pairs == len(signatures) ** 2, "every signature of a photo lines up with something"


def test_copies_line_up_and_other_photos_do_not(signatures: list[np.ndarray]) -> None:
    """What the figure is for: a resized or cropped copy above the setting's threshold, another
    photo below it."""
    threshold = Settings.model_fields["near_duplicate_similarity"].default
    candidates = [layout.Candidate.of(g, s) for g in signatures if (s := layout.summaries(g)) is not None]
    original = layout.summaries(signatures[0])
    scores = [layout.matches(original, c) for c in candidates]
    assert min(scores[:4]) >= threshold, scores[:4]  # itself and its three copies
    assert max(scores[4:]) < threshold, scores[4:]  # seven other photos and their copies


def test_a_flat_or_tiny_image_matches_nothing() -> None:
    flat = np.full((72, 96), 128, dtype=np.float32)
    tiny = np.arange(20 * 20, dtype=np.float32).reshape(20, 20)
    assert layout.summaries(flat) is None and layout.summaries(tiny) is None
    assert layout.matches(None, None) == 0.0


def product_shot(seed: int) -> np.ndarray:
    """A catalogue photo: an object against the left edge of a white backdrop, so that the
    windows a crop of the left fifth leaves are flat."""
    rng = np.random.default_rng(seed)
    pixels = np.full((900, 1200), 255, np.uint8)
    y = rng.integers(100, 400)
    pixels[y : y + 400, :200] = rng.integers(0, 200, (400, 200))
    return layout.signature(Image.fromarray(pixels).convert("RGB"))


def test_a_stored_photo_with_flat_windows_matches_as_its_summaries(signatures: list[np.ndarray]) -> None:
    """A flat window has no layout: it once divided rounding noise by a length near zero, and a
    catalogue photo on white "matched" unrelated photos with figures in the thousands."""
    for seed in range(4):
        grey = product_shot(seed)
        found = layout.summaries(grey)
        assert found is not None and (found.lengths < layout.FLAT).any(), "the backdrop is flat"
        candidate = layout.Candidate.of(grey, found)
        for other in signatures:
            mine = layout.summaries(other)
            figure = layout.matches(mine, candidate)
            assert figure == pytest.approx(layout.matches(mine, found), abs=1e-5)
            assert figure < 0.9, "a dataset photo is no copy of a catalogue photo"
