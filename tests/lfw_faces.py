"""Real descriptors for the slow tier: dlib's (eyes/ml/faces.py, as a scan stores them) for the
photos of a few lfw-40 people, computed once per test session."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from eyes.ml.faces import FaceFinder
from tests.conftest import DATASETS

LFW = DATASETS / "lfw-40"
CENTRE = 125  # lfw-40 photos are 250x250 with the named person's face in the middle


def lfw_people(count: int, start: int = 0) -> list[str]:
    """`count` people of lfw-40, in alphabetical order from `start`."""
    return sorted(p.name for p in LFW.iterdir() if p.is_dir())[start : start + count]


def photos_of(person: str) -> list[Path]:
    return sorted((LFW / person).glob("*.jpg"))


@cache
def descriptors_of(person: str) -> np.ndarray:
    """(photos, 128): the centred face of each of the person's photos where one was found."""
    from eyes.ml.faces import find_in_file

    found = []
    for path in photos_of(person):
        with open(path, "rb") as f:
            faces = find_in_file(_finder(), f)
        if faces:
            centre = min(
                faces,
                key=lambda x: (
                    abs((x.box[0] + x.box[2]) / 2 - CENTRE) + abs((x.box[1] + x.box[3]) / 2 - CENTRE)
                ),
            )
            found.append(centre.descriptor)
    return np.array(found, dtype=np.float32)


@cache
def _finder() -> FaceFinder:
    from eyes.ml.faces import DlibFaceFinder

    return DlibFaceFinder()


def lfw_faces(people: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of these people's photos and their person numbers (their order in `people`)."""
    parts = [descriptors_of(p) for p in people]
    return np.concatenate(parts), np.concatenate([np.full(len(x), i) for i, x in enumerate(parts)])
