"""Classification metrics on label arrays: accuracy, per-class precision/recall/F1, confusion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ClassReport:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Report:
    accuracy: float
    macro_f1: float
    n: int
    per_class: dict[str, ClassReport]
    confusion: list[list[int]]  # rows: true class, columns: predicted class, in `labels` order
    labels: list[str]

    def as_dict(self) -> dict[str, object]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "n": self.n,
            "per_class": {k: vars(v) for k, v in self.per_class.items()},
            "confusion": self.confusion,
            "labels": self.labels,
        }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs; a prediction of -1 (no class) counts in no column."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    known = y_pred >= 0
    np.add.at(matrix, (y_true[known], y_pred[known]), 1)
    return matrix


def f1_score(precision: Any, recall: Any) -> Any:
    """The harmonic mean of precision and recall (0 where both are 0), for numbers or arrays."""
    p, r = np.asarray(precision, dtype=float), np.asarray(recall, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(f1) if f1.ndim == 0 else f1


def right_at(best: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """For each photo, whether the one tag given it (`best`, an index per photo) is one of its tags
    (`truth`: 0/1 per tag): the one definition of a top-1 hit."""
    return np.asarray(truth[np.arange(len(best)), best] > 0)


def top1_hits(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """For each photo, whether its best-scored tag is one of its tags (`truth`: 0/1 per tag)."""
    return right_at(scores.argmax(axis=1), truth)


def top1(scores: np.ndarray, truth: np.ndarray) -> float:
    """Top-1 accuracy: the share of photos with a tag whose best-scored tag is one of theirs."""
    labelled = truth.sum(axis=1) > 0
    return float(top1_hits(scores[labelled], truth[labelled]).mean()) if labelled.any() else 0.0


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> Report:
    """Top-1 metrics. Classes are indices into `labels`; -1 in `y_pred` means "no prediction"."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    true_pos = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    support = np.bincount(y_true, minlength=len(labels)).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        recall = np.where(support > 0, true_pos / support, 0.0)
    f1 = f1_score(precision, recall)
    present = support > 0  # macro averages over the classes that occur
    per_class = {
        label: ClassReport(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
        for i, label in enumerate(labels)
    }
    n = len(y_true)
    return Report(
        accuracy=float((y_true == y_pred).mean()) if n else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        n=n,
        per_class=per_class,
        confusion=matrix.tolist(),
        labels=labels,
    )
