"""Where fine-tuning should start: each candidate cut's cost and accuracy on grocery.

    python -m benchmarks.finetune_cut [--cuts 16 15 12] [--seeds 2] [--few] [--cache DIR]

For grocery's train and val photos (read in place), the frozen embeddings and the activations at
each cut are computed once with torch and cached as .npy in --cache. Then, per cut: the tuned
top's cost in onnxruntime (2 threads, runs of 64), seconds per epoch, and top-1 on val after
fine-tuning with the default FineTuneConfig (one line per seed), beside a logistic regression on
the frozen embeddings of the same photos. --few repeats the comparison with 10 labelled photos per
class (three draws). The figures behind TUNE_FROM are in eyes/ml/finetune.py's docstring.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from eyes.ml.efficientnet_lite import Top, activation_shape, load_pretrained
from eyes.ml.export import top_onnx
from eyes.ml.finetune import FineTuneConfig, fine_tune
from eyes.ml.preprocess import open_for_model, preprocess
from eyes.ml.tuned import TunedTop

ROOT = Path(__file__).resolve().parents[1]
GROCERY = (ROOT / ".." / "shared" / "datasets" / "grocery").resolve()
CUTS = (16, 15, 12)


def cache_features(cache: Path, cuts: tuple[int, ...]) -> None:
    """Embeddings, labels and activations at every cut, for train and val (skipped when cached)."""
    classes = sorted(p.name for p in (GROCERY / "train").iterdir())
    model = load_pretrained()
    for split in ("train", "val"):
        if all((cache / f"{split}_act{c}.npy").exists() for c in cuts):
            continue
        files = [(p, i) for i, c in enumerate(classes) for p in sorted((GROCERY / split / c).glob("*"))]
        acts: dict[int, list[np.ndarray]] = {c: [] for c in cuts}
        embeddings = []
        for start in range(0, len(files), 32):
            batch = torch.from_numpy(
                np.stack([preprocess(open_for_model(p)) for p, _ in files[start : start + 32]])
            )
            with torch.no_grad():  # one pass: from each cut on to the next
                ordered = sorted(cuts)
                h = model.forward_until(batch, ordered[0])
                for cut, upto in zip(ordered, [*ordered[1:], None], strict=True):
                    acts[cut].append(h.half().numpy())
                    for block in model._blocks[cut:upto] if upto is not None else []:
                        h = block(h)
                embeddings.append(model.forward_from(h, ordered[-1]).numpy())
        np.save(cache / f"{split}_y.npy", np.array([i for _, i in files]))
        np.save(cache / f"{split}_emb.npy", np.concatenate(embeddings))
        for c in cuts:
            np.save(cache / f"{split}_act{c}.npy", np.concatenate(acts[c]))
        print(f"cached {split}: {len(files)} photos")


def baseline(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> float:
    """The frozen-embedding logistic regression every run is measured against."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    return float((clf.predict(x_val) == y_val).mean())


def top_ms_per_photo(cut: int, activations: np.ndarray) -> float:
    top = TunedTop(top_onnx(Top(load_pretrained(), cut)), threads=2)
    sample = activations[:1024]
    top.embed(sample[:64])
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        top.embed(sample)
        best = min(best, time.perf_counter() - start)
    return best / len(sample) * 1000


def fine_tuned_accuracy(
    x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, config: FineTuneConfig
) -> tuple[float, float]:
    """Top-1 on val after fine-tuning, served as in production; and the mean seconds per epoch."""
    targets = np.eye(int(y.max()) + 1, dtype=np.float32)[y]
    vocabulary = [str(i) for i in range(targets.shape[1])]
    result = fine_tune(x, targets, np.ones_like(targets), vocabulary, config)
    logits = result.head.logits(TunedTop(result.top_onnx, threads=2).embed(x_val))
    seconds = float(np.mean([e.seconds for e in result.history])) if result.history else 0.0
    return float((logits.argmax(axis=1) == y_val).mean()), seconds


def ten_per_class(y: np.ndarray, draw: int) -> np.ndarray:
    rng = np.random.default_rng(draw)
    return np.concatenate(
        [
            rng.choice(np.flatnonzero(y == c), min(10, int((y == c).sum())), replace=False)
            for c in np.unique(y)
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.finetune_cut", description=__doc__)
    parser.add_argument("--cuts", type=int, nargs="+", default=list(CUTS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--few", action="store_true", help="also 10 labels per class, 3 draws")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/eyes-finetune-cut"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    cache_features(args.cache, tuple(args.cuts))

    def load(name: str) -> np.ndarray:
        return np.load(args.cache / f"{name}.npy")

    y, y_val = load("train_y"), load("val_y")
    print(
        f"logistic regression on frozen embeddings: {baseline(load('train_emb'), y, load('val_emb'), y_val):.1%}"
    )
    for cut in args.cuts:
        x, x_val = load(f"train_act{cut}"), load(f"val_act{cut}")
        kib = np.prod(activation_shape(cut)) * 2 / 1024
        print(
            f"tune from {cut} {activation_shape(cut)}: {kib:.1f} KiB/photo, top {top_ms_per_photo(cut, x):.3f} ms/photo"
        )
        for seed in range(args.seeds):
            config = replace(FineTuneConfig(), tune_from=cut, seed=seed)
            accuracy, seconds = fine_tuned_accuracy(x, y, x_val, y_val, config)
            print(f"  seed {seed}: top-1 {accuracy:.1%}, {seconds:.1f} s/epoch")
        if args.few:
            for draw in range(3):
                rows = ten_per_class(y, draw)
                config = replace(FineTuneConfig(), tune_from=cut)
                accuracy, _ = fine_tuned_accuracy(x[rows], y[rows], x_val, y_val, config)
                base = baseline(load("train_emb")[rows], y[rows], load("val_emb"), y_val)
                print(f"  10 per class, draw {draw}: fine-tuned {accuracy:.1%}, regression {base:.1%}")


if __name__ == "__main__":
    main()
