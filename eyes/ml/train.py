"""Fit a tagging head on stored embeddings: reads top to bottom, numpy only, seconds on a CPU.

    result = train_head(x, y, w, vocabulary, TrainConfig())

`y` is a 0/1 matrix (photos x tags): a photo may carry several tags. `w` weighs each entry of the
loss: 1 for a decided yes or no, `TrainConfig.undecided_weight` where nobody decided (a photo
tagged `beach` is not known to be "not `sunset`", only likely), 0 to ignore it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from eyes.ml.head import Head, power_normalise, sigmoid
from eyes.ml.metrics import classification_report, f1_score, top1


@dataclass(frozen=True)
class TrainConfig:
    """Saved with every version, so a run can be repeated exactly."""

    # Adam needs about as many updates whatever the size of the set: few photos get more epochs,
    # many photos fewer (10,000 photos: 23 epochs; grocery's 2,640: 80, the most).
    steps: int = 900
    max_epochs: int = 80
    learning_rate: float = 0.003
    # L2 on the weights, at 10 labelled photos per class; it shrinks with the square root of the
    # labels per class (0.0055 at 33): few labels want a well-regularised head, many want less.
    # On grocery's val, mean of 4 draws: 68.9% at 10 per class (logistic regression 65.5%), 76.0%
    # with all 2,640 labels (74.7%); 50 epochs at a fixed 0.01 gave 67.8% and 74.7%.
    weight_decay: float = 0.01
    feature_power: float = 0.5  # square-rooted features (head.power_normalise)
    batch_size: int = 256
    undecided_weight: float = 0.5  # a tag nobody decided on: probably "no", not certainly
    # Unlabelled photos the model is sure of teach too, at a lower weight, unless the held-out
    # evidence says they hurt: +1.6 points on grocery with 10 labels per class.
    pseudo_label_threshold: float = 0.5
    pseudo_label_weight: float = 0.5
    max_unlabelled: int = 20_000
    seed: int = 0
    target_precision: float = 0.9  # per-tag thresholds are calibrated to reach this

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass
class Epoch:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None


@dataclass
class TrainResult:
    head: Head
    history: list[Epoch] = field(default_factory=list)


def loss_weights(y: np.ndarray, decided: np.ndarray, undecided_weight: float) -> np.ndarray:
    """1 where a label was decided (yes or no), `undecided_weight` elsewhere."""
    return np.where(decided, 1.0, undecided_weight).astype(np.float32)


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    vocabulary: list[str],
    config: TrainConfig,
    *,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    record_history: bool = True,
) -> TrainResult:
    """Fit the head on (x, y, w); `validation` (x, y) adds held-out curves to the history."""
    # Small matrices: one BLAS thread is 2.5 times faster than two here, and two threads that
    # wait on each other while the web server or a tagging job holds a core are 10 times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        return _train_head(x, y, w, vocabulary, config, validation, record_history)


def _train_head(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    vocabulary: list[str],
    config: TrainConfig,
    validation: tuple[np.ndarray, np.ndarray] | None,
    record_history: bool,
) -> TrainResult:
    rng = np.random.default_rng(config.seed)
    x = power_normalise(x, config.feature_power)
    mean, scale = standardisation(x)
    xt = (x - mean) / scale
    x_val, y_val = validation if validation is not None else (x[:0], y[:0])
    xv = (power_normalise(x_val, config.feature_power) - mean) / scale
    dim, k = xt.shape[1], len(vocabulary)
    weight = np.zeros((dim, k), dtype=np.float32)
    bias = np.zeros(k, dtype=np.float32)
    # Start each tag at its base rate, so early epochs do not just learn "mostly no".
    prior = np.clip((y * w).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-6), 1e-3, 1 - 1e-3)
    bias[:] = np.log(prior / (1 - prior))
    adam = Adam([weight, bias], config.learning_rate)
    history: list[Epoch] = []
    per_class = max(1.0, float(y.sum(axis=0).mean())) if len(y) else 1.0
    weight_decay = config.weight_decay * float(np.sqrt(10.0 / per_class))
    batches = max(1, -(-len(xt) // config.batch_size))
    epochs = int(np.clip(-(-config.steps // batches), 1, config.max_epochs))

    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(xt))
        xs, ys, ws = xt[order], y[order], w[order]  # one shuffled copy an epoch; batches are views
        for start in range(0, len(order), config.batch_size):
            batch = slice(start, start + config.batch_size)
            grad_w, grad_b = gradients(xs[batch], ys[batch], ws[batch], weight, bias, weight_decay)
            adam.step([grad_w, grad_b])
        if record_history:
            history.append(
                Epoch(
                    epoch=epoch,
                    train_loss=loss(xt, y, w, weight, bias),
                    train_accuracy=top1(xt @ weight + bias, y),
                    val_loss=loss(xv, y_val, np.ones_like(y_val), weight, bias) if len(xv) else None,
                    val_accuracy=top1(xv @ weight + bias, y_val) if len(xv) else None,
                )
            )

    head = Head(
        vocabulary, weight, bias, mean, scale, np.full(k, 0.5, dtype=np.float32), config.feature_power
    )
    return TrainResult(head, history)


def pseudo_labels(
    head: Head, x: np.ndarray, leaves: list[int], ancestors: list[list[int]], config: TrainConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unlabelled photos the head is sure of, as labels of their own: (x, y, w) for the photos
    whose best leaf tag scores at least `pseudo_label_threshold`. That tag (and its ancestors) is
    a yes; the rest is undecided; everything weighs `pseudo_label_weight` times less."""
    probs = head.probabilities(x)[:, leaves]
    best = probs.argmax(axis=1)
    keep = probs[np.arange(len(x)), best] >= config.pseudo_label_threshold
    k = len(head.vocabulary)
    y = np.zeros((int(keep.sum()), k), dtype=np.float32)
    for row, leaf in enumerate(np.asarray(leaves)[best[keep]]):
        y[row, [leaf, *ancestors[leaf]]] = 1.0
    w = np.where(y > 0, 1.0, config.undecided_weight).astype(np.float32) * config.pseudo_label_weight
    return x[keep], y, w


def out_of_fold(
    folds: np.ndarray, fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray], k: int, which: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Scores for every photo of the folds in `which`, each from a model fitted without its fold.

    Returns (scores (n, k), covered mask): the evidence the gate and the thresholds rest on.
    (`k` is the width of what `fit_predict` returns.)"""
    scores = np.zeros((len(folds), k), dtype=np.float32)
    covered = np.zeros(len(folds), dtype=bool)
    for fold in which:
        held = folds == fold
        if held.any() and (~held).any():
            scores[held] = fit_predict(~held, held)
            covered |= held
    return scores, covered


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0).astype(np.float32)
    scale = x.std(axis=0).astype(np.float32)
    return mean, np.where(scale < 1e-6, 1.0, scale).astype(np.float32)


def gradients(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, weight: np.ndarray, bias: np.ndarray, weight_decay: float
) -> tuple[np.ndarray, np.ndarray]:
    """Of the weighted binary cross-entropy summed over tags and averaged over photos, plus L2."""
    error = (sigmoid(x @ weight + bias) - y) * w
    grad_w = x.T @ error / len(x) + weight_decay * weight
    return grad_w.astype(np.float32), error.mean(axis=0).astype(np.float32)


def loss(x: np.ndarray, y: np.ndarray, w: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> float:
    if not len(x):
        return 0.0
    z = x @ weight + bias
    # log(1 + e^z) - y z, computed stably
    per_item = (np.logaddexp(0.0, z) - y * z) * w
    return float(per_item.sum(axis=1).mean())


class Adam:
    def __init__(self, params: list[np.ndarray], lr: float, betas: tuple[float, float] = (0.9, 0.999)):
        self.params, self.lr, self.betas = params, lr, betas
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.betas
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1**self.t)
            v_hat = v / (1 - b2**self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def calibrate_thresholds(probs: np.ndarray, y: np.ndarray, target_precision: float) -> np.ndarray:
    """Per tag, the lowest cut-off whose validation precision reaches the target.

    Where no cut-off reaches it, the one with the best F1; with no validation positives, 0.5."""
    k = probs.shape[1]
    thresholds = np.full(k, 0.5, dtype=np.float32)
    for j in range(k):
        positives = y[:, j].sum()
        if positives == 0:
            continue
        order = np.argsort(-probs[:, j], kind="stable")
        p_sorted, hits = probs[order, j], y[order, j]
        true_pos = np.cumsum(hits)
        precision = true_pos / np.arange(1, len(hits) + 1)
        recall = true_pos / positives
        reaching = np.flatnonzero((precision >= target_precision) & (hits == 1))
        if len(reaching):
            # Every cut-off between this positive and the next lower score keeps the same
            # validation precision: take the lowest such one, but not below 0.5 (a tag shown
            # more often than not when the model is unsure would be noise).
            last = int(reaching.max())
            below = np.float32(p_sorted[last + 1] if last + 1 < len(p_sorted) else 0.0)
            just_above = np.nextafter(below, np.float32(1.0))  # in float32, as thresholds are kept
            thresholds[j] = min(p_sorted[last], max(just_above, np.float32(0.5)))
        else:
            thresholds[j] = p_sorted[int(f1_score(precision, recall).argmax())]
    return thresholds


def average_precision(scores: np.ndarray, hits: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = hits[order]
    if hits.sum() == 0:
        return 0.0
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision_at * hits).sum() / hits.sum())


def leaf_columns(vocabulary: list[str], ancestors: Callable[[str], list[str]]) -> list[int]:
    """Columns of the most specific tags: those no other tag of the vocabulary sits under.

    Top-1 is judged among these, so naming `apple` for a Granny Smith does not count as right."""
    inner = {a for name in vocabulary for a in ancestors(name)}
    return [j for j, name in enumerate(vocabulary) if name not in inner]


def evaluate_scores(
    probs: np.ndarray,
    y: np.ndarray,
    vocabulary: list[str],
    thresholds: np.ndarray,
    leaves: list[int] | None = None,
) -> dict[str, object]:
    """Held-out metrics: top-1 accuracy and macro-F1 among the leaf tags, per-tag precision,
    recall and F1 at the calibrated thresholds, mAP and the top-1 confusion matrix."""
    cols = leaves if leaves is not None else list(range(len(vocabulary)))
    leaf_y = y[:, cols]
    labelled = leaf_y.sum(axis=1) > 0
    y_true = leaf_y[labelled].argmax(axis=1)  # for photos with several leaf tags, their first
    best = probs[labelled][:, cols].argmax(axis=1)
    y_pred = np.where(leaf_y[labelled][np.arange(len(best)), best] == 1, y_true, best)
    top1 = classification_report(y_true, y_pred, [vocabulary[j] for j in cols])
    shown = probs >= thresholds
    per_tag = {}
    for j, name in enumerate(vocabulary):
        tp = float((shown[:, j] & (y[:, j] == 1)).sum())
        precision = tp / shown[:, j].sum() if shown[:, j].any() else 0.0
        recall = tp / y[:, j].sum() if y[:, j].any() else 0.0
        f1 = f1_score(precision, recall)
        per_tag[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": int(y[:, j].sum()),
            "threshold": float(thresholds[j]),
            "average_precision": average_precision(probs[:, j], y[:, j]),
        }
    present = [j for j in range(len(vocabulary)) if y[:, j].any()]
    return {
        "n": int(labelled.sum()),
        "accuracy": top1.accuracy,
        "macro_f1": top1.macro_f1,
        "map": float(np.mean([per_tag[vocabulary[j]]["average_precision"] for j in present]))
        if present
        else 0.0,
        "per_tag": per_tag,
        "confusion": top1.confusion,
        "confusion_labels": top1.labels,
    }


def evaluate_head(head: Head, x: np.ndarray, y: np.ndarray) -> dict[str, object]:
    """`evaluate_scores` of a head on embeddings it did not train on."""
    return evaluate_scores(head.probabilities(x), y, head.vocabulary, head.thresholds)
