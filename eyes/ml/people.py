"""People: group face descriptors that look like the same person."""

from __future__ import annotations

import numpy as np

GROUP_EPS = 0.5  # dlib's descriptors: the same person is usually closer than 0.6
GROUP_MIN_SAMPLES = 2


def group_faces(descriptors: np.ndarray) -> np.ndarray:
    """Labels for (n, 128) descriptors: faces with the same label look like one person; -1 is in
    no group. DBSCAN (scikit-learn), euclidean, deterministic for the same rows in the same order."""
    if len(descriptors) == 0:
        return np.empty(0, dtype=np.int64)
    from sklearn.cluster import DBSCAN  # only where faces are grouped: a slow import for serving

    labels = DBSCAN(eps=GROUP_EPS, min_samples=GROUP_MIN_SAMPLES, metric="euclidean").fit_predict(
        np.asarray(descriptors, dtype=np.float32)
    )
    return np.asarray(labels, dtype=np.int64)
