"""A run's training set and what a fit gives back: the stored embeddings of the labelled photos,
their yes/no targets and which were decided, each photo's fold (by its content hash), and the
held-out scores a fit leaves for the gate (`Evidence`). Shared by the head run (training.py),
the deep run (deep_training.py) and the gate (gate.py), none of which imports another for them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eyes.context import Context
from eyes.ml.head import Head
from eyes.ml.train import TrainConfig, leaf_columns, loss_weights
from eyes.services.labels import Labels
from eyes.services.tagging import embeddings_for
from eyes.services.vocabulary import Hierarchy


def fold_of(sha256: str, folds: int) -> int:
    """A photo's fold, decided by its content hash: it never moves, and copies stay together."""
    return int(sha256[:8], 16) % folds


@dataclass
class Dataset:
    vocabulary: list[str]
    shas: list[str]
    x: np.ndarray  # (n, 1280) stored embeddings
    y: np.ndarray  # (n, k) 1 = yes
    decided: np.ndarray  # (n, k) True where someone decided, yes or no
    folds: np.ndarray  # (n,) fold of each photo
    leaves: list[int]  # columns of the most specific tags: top-1 is judged among these
    ancestors: list[list[int]]  # for each column, the columns of its ancestors
    photo_ids: list[int]

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for sha, row, known in zip(self.shas, self.y, self.decided, strict=True):
            digest.update(sha.encode() + row.tobytes() + known.tobytes())
        digest.update(json.dumps(self.vocabulary).encode())
        return digest.hexdigest()

    def weights(self, config: TrainConfig) -> np.ndarray:
        return loss_weights(self.y, self.decided, config.undecided_weight)


def build_dataset(ctx: Context, labels: Labels, vocab: list[str], tree: Hierarchy) -> Dataset:
    """Stored embeddings, yes/no targets and which of them were decided; no image is decoded
    again (unless never embedded). A photo enters with a yes or a no for any class."""
    index = {name: j for j, name in enumerate(vocab)}
    shas = sorted(
        sha
        for sha in set(labels.positives) | set(labels.negatives)
        if (labels.positives.get(sha, set()) | labels.negatives.get(sha, set())) & index.keys()
    )
    vectors, _ = embeddings_for(ctx, shas)
    shas = [sha for sha in shas if sha in vectors]  # a photo deleted meanwhile simply drops out
    y = np.zeros((len(shas), len(vocab)), dtype=np.float32)
    decided = np.zeros((len(shas), len(vocab)), dtype=bool)
    for i, sha in enumerate(shas):
        for name in labels.positives.get(sha, set()) & index.keys():
            y[i, index[name]] = 1.0
            decided[i, index[name]] = True
        for name in labels.negatives.get(sha, set()) & index.keys():
            decided[i, index[name]] = True
    x = np.stack([vectors[sha] for sha in shas]) if shas else np.zeros((0, 1280), np.float32)
    folds = np.array([fold_of(sha, ctx.settings.training_folds) for sha in shas], dtype=np.int64)
    photo_ids = sorted(pid for sha in shas for pid in labels.photos[sha])
    leaves = leaf_columns(vocab, tree.ancestors)
    ancestors = [[index[a] for a in tree.ancestors(name) if a in index] for name in vocab]
    return Dataset(vocab, shas, x, y, decided, folds, leaves, ancestors, photo_ids)


@dataclass
class Evidence:
    """Held-out scores: each covered photo scored by a model that did not train on it."""

    scores: np.ndarray  # (n, k)
    covered: np.ndarray  # (n,) bool


@dataclass
class Trained:
    head: Head
    history: list[dict[str, Any]]
    evidence: Evidence
    files: dict[str, bytes]  # extra files of the version beside head.npz (a deep run's tuned top)
    notes: dict[str, Any] = field(default_factory=dict)  # how it was fitted, for the card
