"""A tagging head: a linear layer with one sigmoid per tag, over backbone embeddings.

Pure numpy, so serving can load and apply it without torch. The file format is an .npz that
carries the vocabulary and calibrated thresholds with the weights.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np


@dataclass
class Head:
    vocabulary: list[str]
    weight: np.ndarray  # (dim, k)
    bias: np.ndarray  # (k,)
    mean: np.ndarray  # (dim,) feature standardisation learnt on the training set
    scale: np.ndarray  # (dim,)
    thresholds: np.ndarray  # (k,) per-tag cut-offs calibrated on held-out photos
    power: float = 1.0  # features are raised to this power first (0.5: see `power_normalise`)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        x = (power_normalise(embeddings, self.power) - self.mean) / self.scale
        return np.asarray(x @ self.weight + self.bias, dtype=np.float32)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, k) independent probabilities: a photo may carry several tags."""
        return sigmoid(self.logits(embeddings))

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        np.savez(
            out,
            vocabulary=np.array(self.vocabulary, dtype=str),
            weight=self.weight.astype(np.float32),
            bias=self.bias.astype(np.float32),
            mean=self.mean.astype(np.float32),
            scale=self.scale.astype(np.float32),
            thresholds=self.thresholds.astype(np.float32),
            power=np.float32(self.power),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Head:
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            return cls(
                vocabulary=[str(v) for v in f["vocabulary"]],
                weight=f["weight"],
                bias=f["bias"],
                mean=f["mean"],
                scale=f["scale"],
                thresholds=f["thresholds"],
                power=float(f["power"]) if "power" in f else 1.0,
            )


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), dtype=np.float32)  # stable for large |x|


def power_normalise(embeddings: np.ndarray, power: float) -> np.ndarray:
    """Pooled ReLU6 features raised to `power`, sign kept.

    The square root tames the few very large activations that dominate a pooled embedding: on
    grocery's 81 classes with 10 labels each it lifted a linear head from 66.5% to 69.6%
    (logistic regression on the raw features: 64.2%), and with all labels from 75.3% to 76.4%."""
    x = embeddings.astype(np.float32, copy=False)
    if power == 1.0:
        return x
    return np.sign(x) * np.abs(x) ** np.float32(power)
