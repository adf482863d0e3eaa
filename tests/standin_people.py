"""Stand-in face descriptors for the fast tier: "people" whose faces sit as dlib's do (faces of
one person about 0.35 apart, of two people about 0.9), drawn from a seed. The real descriptors
(dlib on lfw-40 photos) are in tests/lfw_faces.py, for the slow tier."""

from __future__ import annotations

import numpy as np

from eyes.ml.faces import DESCRIPTOR_SIZE

SAME = 0.35  # typical distance between two faces of one person
APART = 0.9  # typical distance between two people


def people_faces(people: int, faces: int, seed: int = 0, same: float = SAME) -> tuple[np.ndarray, np.ndarray]:
    """(people * faces, 128) float32 descriptors and their person numbers 0..people-1; `same`:
    the typical distance between two faces of one person."""
    rng = np.random.default_rng(seed)
    # Two independent Gaussian vectors in 128 dimensions lie about sqrt(2 * 128) sigma apart.
    spread = np.sqrt(2 * DESCRIPTOR_SIZE)
    centres = rng.normal(0, APART / spread, (people, DESCRIPTOR_SIZE))
    x = centres.repeat(faces, axis=0) + rng.normal(0, same / spread, (people * faces, DESCRIPTOR_SIZE))
    return x.astype(np.float32), np.arange(people).repeat(faces)
