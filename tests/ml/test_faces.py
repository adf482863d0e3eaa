"""The real face finder (dlib's HOG detector, 5-point landmarks, ResNet descriptor) on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eyes.ml.faces import DESCRIPTOR_SIZE, DETECT_SIDE, DlibFaceFinder
from tests.conftest import CALTECH

pytestmark = pytest.mark.slow
FACES_EASY = sorted((CALTECH / "Faces_easy").glob("*.jpg"))


@pytest.fixture(scope="module")
def finder() -> DlibFaceFinder:
    return DlibFaceFinder()


def test_finds_the_one_frontal_face_in_at_least_19_of_20_photos(finder: DlibFaceFinder) -> None:
    photos = FACES_EASY[:: len(FACES_EASY) // 20][:20]
    assert len(photos) == 20
    found = 0
    for path in photos:
        with Image.open(path) as img:
            faces = finder.find(img)
            width, height = img.size
        found += bool(faces)
        for face in faces:
            left, top, right, bottom = face.box
            assert 0 <= left < right <= width and 0 <= top < bottom <= height
            assert face.descriptor.shape == (DESCRIPTOR_SIZE,) and np.isfinite(face.descriptor).all()
    assert found >= 19, f"found a face in {found} of 20 photos"


def test_a_large_photo_is_searched_at_bounded_size_and_its_boxes_are_in_its_own_pixels(
    finder: DlibFaceFinder,
) -> None:
    with Image.open(FACES_EASY[0]) as img:
        small = img.convert("RGB")
    factor = 3 * DETECT_SIDE / max(small.size)  # well past the detection size
    large = small.resize((round(small.width * factor), round(small.height * factor)))
    (at_small,) = finder.find(small)
    (at_large,) = finder.find(large)
    scaled = np.array(at_small.box) * factor
    assert np.abs(np.array(at_large.box) - scaled).max() < 0.15 * (at_large.box[2] - at_large.box[0])
    # The same person at two sizes: dlib's own threshold for "same person" is a distance of 0.6.
    assert float(np.linalg.norm(at_small.descriptor - at_large.descriptor)) < 0.6


def test_a_photo_without_people_has_no_faces(finder: DlibFaceFinder, tmp_path: Path) -> None:
    plain = Image.new("RGB", (640, 480), (120, 160, 200))
    assert finder.find(plain) == []
