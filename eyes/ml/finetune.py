"""Fine-tune the top of the backbone with a tagging head, from stored activations (torch, CPU).

    result = fine_tune(activations, targets, weights, vocabulary, FineTuneConfig())

`activations` are what the backbone stored for each photo (float16, the input of block
`tune_from`), so training never decodes an image. The tuned part is the pretrained
`_blocks[tune_from:]`, `_conv_head`, `_bn1` and the pool, then a linear head with one sigmoid per
tag (a photo may carry several). Training goes in two steps (LP-FT, Kumar et al. 2022): the head
is first fitted on the frozen embeddings, then the whole tuned part trains with a small learning
rate, so the new head does not tear up the pretrained features in the first steps.

Only a training worker imports this (torch is slow to import and large); the web server runs
`python -m eyes.ml.finetune JOB_DIR` in a child process, which reads `job.npz` and `config.json`
and writes `top.onnx`, `head.npz` and `history.json`.

Why these defaults (tune from 16 = the conv head; 5 epochs), measured on the 2-core CPU. Grocery:
2,640 train photos, 81 fine classes, top-1 on its 296 val photos (one photo = 0.34 points, one
standard error about 2.5); the frozen embeddings with a logistic regression get 74.7%.

    tune from          stored/photo  top ms/photo*  epoch s**  top-1 % (seeds or settings)
    16 (7x7x320 in)    30.6 KiB      0.245 (0.50)   3.2        76.0 75.3 77.4 76.0   mean 76.2
    15 (7x7x192 in)    18.4 KiB      0.55  (1.0)    10         76.4 75.7 78.0 (lr 1e-3), 74.0
    12 (7x7x192 in)    18.4 KiB      1.26  (2.4)    44         77.4 77.4 78.4        mean 77.7

    *  the tuned part in onnxruntime, 2 threads, runs of 64; idle machine (busy one)
    ** one pass over 2,640 photos, one torch thread (two: 1.85 s at 16, 6.2 s at 15)

Re-tagging 100,000 photos must take under a minute: only 16 fits (25 s idle, 53 s busy, head
included); 12 and 15 gain 0.5 to 1.5 points, within the noise. A whole fit on 2,936 photos in
its child process took 28 s on the busy machine. With 10 labels per class (3 draws): regression
67.9 64.9 65.2, fine-tuned 67.9 65.2 66.9; lr 1e-4 for 3 epochs 65.5 63.5 67.2: a tie. No gain at
16 from 10 or 20 epochs, lr 1e-3, mixup or mirrored maps, BatchNorm batch statistics, or
averaging the weights of 4 seeds. (Int8 static quantisation ran the 15-top 2.9 times faster:
the way to a deeper cut, not taken.)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eyes.ml.efficientnet_lite import Top, activation_shape, load_pretrained
from eyes.ml.export import TUNE_FROM, check_top_onnx, top_onnx, write_atomic
from eyes.ml.head import Head
from eyes.ml.metrics import top1_hits

Progress = Callable[[dict[str, object]], None]
PROGRESS_EVERY_S = 30.0  # within an epoch, so that a person watching a long epoch sees it move

JOB_FILE = "job.npz"  # activations (N, C, H, W) float16, targets (N, k), weights (N, k), vocabulary (k,)
CONFIG_FILE = "config.json"  # FineTuneConfig fields; those left out keep their defaults
TOP_FILE = "top.onnx"
HEAD_FILE = "head.npz"
HISTORY_FILE = "history.json"


@dataclass(frozen=True)
class FineTuneConfig:
    """Saved with every version, so a run can be repeated exactly."""

    tune_from: int = TUNE_FROM  # the first tuned block; the activations must be its input
    probe_epochs: int = 100  # full-batch steps fitting the head on frozen embeddings first
    probe_learning_rate: float = 0.01
    epochs: int = 5  # then passes over the photos training everything
    learning_rate: float = 3e-4  # of the pretrained layers (AdamW, cosine decay)
    head_learning_rate: float = 1e-3  # of the linear head
    weight_decay: float = 0.05  # decoupled (AdamW) decay of the tuned layers' weights
    head_weight_decay: float = 1e-3  # L2 on the head while it is fitted on frozen embeddings
    dropout: float = 0.2  # on the embedding before the head, while training
    train_batchnorm: bool = False  # False: BatchNorm keeps its ImageNet statistics
    batch_size: int = 32
    seed: int = 0
    # One torch thread: next to a busy process on 2 cores, two threads ran an epoch 2.4 times
    # slower than one (OpenMP threads wait for a core); alone, two are 1.7 times faster.
    threads: int = 1
    target_precision: float = 0.9  # for the caller's threshold calibration; unused here

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> FineTuneConfig:
        """From a JSON object; an unknown key is refused so that a typo is not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown fine-tuning settings {unknown}; known: {sorted(known)}")
        return cls(**values)  # type: ignore[arg-type]


@dataclass
class Epoch:
    epoch: int
    train_loss: float  # weighted BCE, summed over tags, averaged over photos, during the epoch
    train_accuracy: float  # top-1 among photos with a tag, during the epoch (dropout on)
    seconds: float


@dataclass
class FineTuned:
    top_onnx: bytes  # input "activation" (N, C, H, W) float32 -> output "embedding" (N, 1280)
    head: Head  # over the tuned embedding; thresholds 0.5 (the caller calibrates them)
    history: list[Epoch]
    config: FineTuneConfig
    probe_loss: float  # training loss of the head on the frozen embeddings, before tuning
    top: Top  # the tuned torch module top_onnx was exported from, in eval mode


def fine_tune(
    activations: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    vocabulary: list[str],
    config: FineTuneConfig,
    progress: Progress | None = None,
) -> FineTuned:
    """Tune `_blocks[config.tune_from:]` + `_conv_head` + `_bn1` and a linear head on stored
    activations, with binary cross-entropy weighted per entry by `weights` (1: a decided yes or
    no; less: nobody decided; 0: ignored)."""
    check_inputs(activations, targets, weights, vocabulary, config)
    report = progress or (lambda _: None)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    started = time.monotonic()
    y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    w = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32))

    top = Top(load_pretrained(), config.tune_from)
    # 1. The head on frozen embeddings: the standardisation it needs and a good start.
    frozen = embed(top, activations, config.batch_size * 4)
    mean, scale = frozen.mean(dim=0), frozen.std(dim=0).clamp_min(1e-6)
    head = nn.Linear(frozen.shape[1], len(vocabulary))
    probe_loss = fit_probe(head, (frozen - mean) / scale, y, w, config)
    report({"phase": "probe", "loss": probe_loss, "elapsed_s": round(time.monotonic() - started, 1)})

    # 2. Everything together, a few passes over the photos.
    optimizer = torch.optim.AdamW(
        [
            {
                "params": list(top.parameters()),
                "lr": config.learning_rate,
                "weight_decay": config.weight_decay,
            },
            {"params": list(head.parameters()), "lr": config.head_learning_rate, "weight_decay": 0.0},
        ]
    )
    base_rates = [config.learning_rate, config.head_learning_rate]
    steps_per_epoch = math.ceil(len(activations) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    history: list[Epoch] = []
    step, last_report = 0, time.monotonic()
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.monotonic()
        set_train_mode(top, config.train_batchnorm)
        order = rng.permutation(len(activations))
        loss_sum, hits, labelled = 0.0, 0, 0
        for start in range(0, len(order), config.batch_size):
            rows = np.sort(order[start : start + config.batch_size])  # sorted: faster gathers
            x, y_batch, w_batch = get_batch(activations, y, w, rows)
            z = (top(x) - mean) / scale
            logits = head(F.dropout(z, config.dropout, training=True))
            loss = weighted_bce(logits, y_batch, w_batch)

            set_learning_rate(optimizer, base_rates, cosine(step, total_steps))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1

            loss_sum += loss.item() * len(rows)
            tagged = (y_batch.sum(dim=1) > 0).numpy()  # photos with a tag: the only ones judged
            hits += int(top1_hits(logits.detach().numpy()[tagged], y_batch.numpy()[tagged]).sum())
            labelled += int(tagged.sum())
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                seen = start + len(rows)
                report(progress_line(epoch, step, total_steps, loss_sum / seen, started, config))
        seconds = round(time.monotonic() - epoch_start, 2)
        history.append(Epoch(epoch, loss_sum / len(order), hits / max(labelled, 1), seconds))
        last_report = time.monotonic()
        report(
            {
                **progress_line(epoch, step, total_steps, history[-1].train_loss, started, config),
                "train_accuracy": history[-1].train_accuracy,
            }
        )

    top.eval()
    onnx_bytes = top_onnx(top)
    check_top_onnx(onnx_bytes, top)
    return FineTuned(onnx_bytes, to_head(head, mean, scale, vocabulary), history, config, probe_loss, top)


def check_inputs(
    activations: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    vocabulary: list[str],
    config: FineTuneConfig,
) -> None:
    """Refuse inputs that would train on nothing or on the wrong layer, with what was expected."""
    expected = activation_shape(config.tune_from)
    if activations.ndim != 4 or activations.shape[1:] != expected:
        raise ValueError(
            f"activations for tune_from={config.tune_from} must be (N, {', '.join(map(str, expected))}), "
            f"got {activations.shape}"
        )
    n, k = len(activations), len(vocabulary)
    if n == 0 or k == 0:
        raise ValueError(f"nothing to train on: {n} photos, {k} tags")
    for name, array in (("targets", targets), ("weights", weights)):
        if array.shape != (n, k):
            raise ValueError(f"{name} must be (photos, tags) = ({n}, {k}), got {array.shape}")
    if not np.isin(targets, (0, 1)).all():
        raise ValueError("targets must be 0 or 1")
    if not (np.isfinite(weights).all() and (weights >= 0).all()) or not weights.any():
        raise ValueError("weights must be finite, non-negative, and not all zero")


def get_batch(
    activations: np.ndarray, y: torch.Tensor, w: torch.Tensor, rows: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The photos `rows`: activations as float32 (stored as float16), targets and loss weights."""
    return torch.from_numpy(activations[rows].astype(np.float32)), y[rows], w[rows]


@torch.no_grad()
def embed(top: Top, activations: np.ndarray, batch_size: int) -> torch.Tensor:
    """(N, 1280) embeddings of the stored activations through the top as it is now, in eval mode."""
    top.eval()
    return torch.cat(
        [
            top(torch.from_numpy(activations[i : i + batch_size].astype(np.float32)))
            for i in range(0, len(activations), batch_size)
        ]
    )


def fit_probe(
    head: nn.Linear, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, config: FineTuneConfig
) -> float:
    """Fit the head on standardised frozen embeddings: full-batch Adam with L2 (seconds)."""
    with torch.no_grad():
        head.weight.zero_()
        # Each tag starts at its (weighted) base rate, so early steps do not just learn "mostly no".
        prior = ((y * w).sum(0) / w.sum(0).clamp_min(1e-6)).clamp(1e-3, 1 - 1e-3)
        head.bias.copy_(torch.log(prior / (1 - prior)))
    optimizer = torch.optim.Adam(head.parameters(), lr=config.probe_learning_rate)
    for _ in range(config.probe_epochs):
        loss = weighted_bce(head(x), y, w) + 0.5 * config.head_weight_decay * head.weight.pow(2).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float(weighted_bce(head(x), y, w))


def weighted_bce(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy, one sigmoid per tag, weighted per entry, summed over tags and
    averaged over photos (as the numpy head's loss in eyes.ml.train)."""
    per_entry = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return (per_entry * w).sum(dim=1).mean()


def set_train_mode(top: Top, train_batchnorm: bool) -> None:
    top.train()
    if not train_batchnorm:
        # Batch statistics of a few hundred photos are noisier than ImageNet's; the affine
        # scale and shift of each BatchNorm still train.
        for module in top.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()


def cosine(step: int, total: int) -> float:
    """Learning-rate factor: a short linear warm-up (5% of the steps), then cosine decay to 0."""
    warmup = max(1, total // 20)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def set_learning_rate(optimizer: torch.optim.Optimizer, base_rates: list[float], factor: float) -> None:
    for group, rate in zip(optimizer.param_groups, base_rates, strict=True):
        group["lr"] = rate * factor


def progress_line(
    epoch: int, step: int, steps: int, loss: float, started: float, config: FineTuneConfig
) -> dict[str, object]:
    return {
        "phase": "tune",
        "epoch": epoch,
        "epochs": config.epochs,
        "step": step,
        "steps": steps,
        "loss": round(loss, 5),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def to_head(head: nn.Linear, mean: torch.Tensor, scale: torch.Tensor, vocabulary: list[str]) -> Head:
    """The numpy head serving applies to the tuned embeddings: standardise, then the linear layer."""
    return Head(
        vocabulary=list(vocabulary),
        weight=head.weight.detach().numpy().T.astype(np.float32).copy(),  # (dim, k)
        bias=head.bias.detach().numpy().astype(np.float32).copy(),
        mean=mean.numpy().astype(np.float32),
        scale=scale.numpy().astype(np.float32),
        thresholds=np.full(len(vocabulary), 0.5, dtype=np.float32),
    )


def run_job(job_dir: Path, progress: Progress | None = None) -> FineTuned:
    """Read `job.npz` and `config.json` in `job_dir`, fine-tune, write `top.onnx`, `head.npz`
    and `history.json` there (each atomically, the history last)."""
    config_path = job_dir / CONFIG_FILE
    config = (
        FineTuneConfig.from_dict(json.loads(config_path.read_text()))
        if config_path.exists()
        else FineTuneConfig()
    )
    with np.load(job_dir / JOB_FILE, allow_pickle=False) as job:
        activations, targets, weights = job["activations"], job["targets"], job["weights"]
        vocabulary = [str(v) for v in job["vocabulary"]]
    started = time.monotonic()
    result = fine_tune(activations, targets, weights, vocabulary, config, progress)
    history = {
        "config": config.as_dict(),
        "photos": len(activations),
        "probe_loss": result.probe_loss,
        "epochs": [asdict(e) for e in result.history],
        "seconds": round(time.monotonic() - started, 1),
    }
    write_atomic(job_dir / TOP_FILE, result.top_onnx)
    write_atomic(job_dir / HEAD_FILE, result.head.to_bytes())
    write_atomic(job_dir / HISTORY_FILE, (json.dumps(history, indent=2) + "\n").encode())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eyes.ml.finetune",
        description=f"Fine-tune the top of the backbone: reads JOB_DIR/{JOB_FILE} and JOB_DIR/{CONFIG_FILE}, "
        f"writes {TOP_FILE}, {HEAD_FILE} and {HISTORY_FILE} there, one JSON progress line per report.",
    )
    parser.add_argument("job_dir", type=Path)
    args = parser.parse_args(argv)

    def emit(line: dict[str, object]) -> None:
        print(json.dumps(line), flush=True)

    try:
        run_job(args.job_dir, emit)
    except FileNotFoundError as err:
        print(f"error: {err.filename or err} is missing (a job folder holds {JOB_FILE})", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError) as err:
        print(f"error: the job in {args.job_dir} is not valid: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # anything else still ends in one line the parent can show
        print(f"error: fine-tuning failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    emit({"phase": "done", "files": [TOP_FILE, HEAD_FILE, HISTORY_FILE]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
