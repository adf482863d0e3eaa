"""A deep run: the top of the backbone fine-tuned with the head, from stored activations.

Fine-tuning needs torch, which never loads into a serving process: each fit runs in a child
process (`python -m eyes.ml.finetune JOB_DIR`), fed the stored float16 activations, targets and
loss weights, and hands back the tuned top as ONNX and the head. Two fits: one without fold 0,
whose scores on fold 0 are the held-out evidence, then the served one on every label.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from eyes.context import Context
from eyes.errors import EyesError
from eyes.ml.head import Head
from eyes.ml.train import TrainConfig
from eyes.ml.tuned import TunedTop
from eyes.services.registry import TOP_FILE
from eyes.services.tagging import activations_for
from eyes.services.training_set import Dataset, Evidence, Trained


class TrainingFailed(EyesError):
    status_code = 500
    code = "training_failed"


def fit(ctx: Context, data: Dataset, config: TrainConfig) -> Trained:
    stored = activations_for(ctx, data.shas)
    activations = np.stack([stored[sha] for sha in data.shas])
    weights = data.weights(config)
    held = data.folds == 0
    limit_s = ctx.settings.training_max_s  # a child that hangs is killed with its run
    scores = np.zeros(data.y.shape, dtype=np.float32)
    if held.any() and (~held).any():
        top, head, _ = run_fine_tuning(
            activations[~held], data.y[~held], weights[~held], data.vocabulary, config, limit_s
        )
        scores[held] = head.probabilities(
            TunedTop(top, threads=ctx.settings.onnx_threads).embed(activations[held])
        )
    else:
        held[:] = False
    top, head, record = run_fine_tuning(activations, data.y, weights, data.vocabulary, config, limit_s)
    # The model page's curves: the served fit's loss and accuracy per epoch (it holds nothing out).
    curves = [{**e, "val_loss": None, "val_accuracy": None} for e in record.get("epochs", [])]
    notes = {"fine_tuning": {k: record.get(k) for k in ("config", "photos", "probe_loss", "seconds")}}
    return Trained(head, curves, Evidence(scores, held), {TOP_FILE: top}, notes)


def run_fine_tuning(
    activations: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    vocabulary: list[str],
    config: TrainConfig,
    limit_s: float,
) -> tuple[bytes, Head, dict[str, Any]]:
    """One fit in a child process (the run's heartbeat beats meanwhile: training.heartbeat),
    killed after `limit_s`.
    Returns the tuned top (ONNX), the head and the fit's record (its config, and loss per epoch)."""
    with tempfile.TemporaryDirectory(prefix="eyes-finetune-") as tmp:
        job = Path(tmp)
        np.savez(
            job / "job.npz",
            activations=activations.astype(np.float16),
            targets=targets.astype(np.float32),
            weights=weights.astype(np.float32),
            vocabulary=np.array(vocabulary, dtype=str),
        )
        (job / "config.json").write_text(
            json.dumps({"seed": config.seed, "target_precision": config.target_precision})
        )
        # Its progress lines are not needed (the heartbeat has its own thread); its errors are.
        try:
            process = subprocess.run(
                [sys.executable, "-m", "eyes.ml.finetune", str(job)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
                timeout=limit_s,
            )
        except subprocess.TimeoutExpired:
            raise TrainingFailed(
                f"fine-tuning took longer than {limit_s:.0f} s (EYES_TRAINING_MAX_S)"
            ) from None
        if process.returncode != 0:
            last = (process.stderr.strip().splitlines() or ["no output"])[-1]
            raise TrainingFailed(
                f"fine-tuning failed ({last}); is the training extra installed (make install)?"
            )
        history = json.loads((job / "history.json").read_text())
        return (job / "top.onnx").read_bytes(), Head.from_bytes((job / "head.npz").read_bytes()), history
