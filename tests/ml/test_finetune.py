"""Fine-tuning the top of the backbone: it learns, its ONNX export is the torch model, the cut is
right, and the child-process entry point runs a job end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from eyes.ml.efficientnet_lite import Top, activation_shape, load_pretrained
from eyes.ml.embedder import Embedder
from eyes.ml.export import TUNE_FROM, top_onnx
from eyes.ml.finetune import FineTuneConfig, fine_tune, weighted_bce
from eyes.ml.head import Head
from eyes.ml.preprocess import open_for_model, preprocess
from eyes.ml.tuned import TunedTop
from tests.ml.conftest import caltech_photos

# Torch is the subject here: the slow tier (the fast tier does not even collect this module).
pytestmark = pytest.mark.slow

# From the conv head on: the cheapest top to train, so these tests take seconds.
FAST = FineTuneConfig(
    tune_from=16, probe_epochs=0, epochs=6, batch_size=8, learning_rate=1e-3, head_learning_rate=1e-2
)


def planted_tags(n: int, k: int, seed: int, tune_from: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Random activations in which tag j is given by a brighter channel j: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    shape = activation_shape(tune_from)
    x = rng.normal(0, 1, (n, *shape)).astype(np.float32)
    truth = rng.integers(0, k, n)
    x[np.arange(n), truth] += 1.5
    y = np.zeros((n, k), dtype=np.float32)
    y[np.arange(n), truth] = 1
    return x.astype(np.float16), y


def numpy_loss(head: Head, embeddings: np.ndarray, y: np.ndarray) -> float:
    logits = head.logits(embeddings)
    return float(
        weighted_bce(torch.from_numpy(logits), torch.from_numpy(y), torch.ones_like(torch.from_numpy(y)))
    )


def test_fine_tuning_lowers_the_loss_and_the_onnx_top_is_the_torch_top() -> None:
    x, y = planted_tags(32, 3, seed=0)
    progress: list[dict[str, object]] = []
    result = fine_tune(x, y, np.ones_like(y), ["a", "b", "c"], FAST, progress.append)

    assert len(result.history) == 6
    assert result.history[-1].train_loss < result.history[0].train_loss / 4
    # The head before tuning (probe_epochs=0: the base rates only) against the tuned result.
    tuned = TunedTop(result.top_onnx).embed(x)
    assert numpy_loss(result.head, tuned, y) < result.probe_loss / 4

    # The exported top computes what the tuned torch top does, and tuning changed it.
    with torch.no_grad():
        expected = result.top(torch.from_numpy(x.astype(np.float32))).numpy()
        pretrained = Top(load_pretrained(), 16).eval()(torch.from_numpy(x.astype(np.float32))).numpy()
    assert float(np.abs(tuned - expected).max()) < 1e-3
    assert float(np.abs(tuned - pretrained).max()) > 1e-2

    assert result.head.vocabulary == ["a", "b", "c"] and result.head.weight.shape == (1280, 3)
    assert np.all(result.head.thresholds == 0.5)
    assert [line["phase"] for line in progress] == ["probe"] + ["tune"] * 6
    assert progress[-1]["epoch"] == 6 and "train_accuracy" in progress[-1]


def test_zero_weights_teach_nothing() -> None:
    x, y = planted_tags(24, 2, seed=1)
    weights = np.ones_like(y)
    weights[:, 1] = 0  # nobody decided anything about tag "b"
    config = FineTuneConfig(tune_from=16, probe_epochs=20, epochs=1, batch_size=8)
    flipped = y.copy()
    flipped[:, 1] = 1 - flipped[:, 1]
    a = fine_tune(x, y, weights, ["a", "b"], config)
    b = fine_tune(x, flipped, weights, ["a", "b"], config)
    # Ignored entries cannot change anything: the same run whatever their targets say.
    np.testing.assert_allclose(a.head.weight, b.head.weight, atol=1e-6)
    assert a.top_onnx == b.top_onnx


def test_runs_repeat_exactly_with_the_same_seed() -> None:
    x, y = planted_tags(16, 2, seed=2)
    config = FineTuneConfig(tune_from=16, probe_epochs=5, epochs=1, batch_size=8, dropout=0.5)
    a = fine_tune(x, y, np.ones_like(y), ["a", "b"], config)
    b = fine_tune(x, y, np.ones_like(y), ["a", "b"], config)
    np.testing.assert_array_equal(a.head.weight, b.head.weight)
    assert [e.train_loss for e in a.history] == [e.train_loss for e in b.history]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"activations": np.zeros((4, 192, 7, 7), np.float16)}, "tune_from=16 must be"),
        ({"targets": np.zeros((4, 3), np.float32)}, "targets must be"),
        ({"targets": np.full((4, 2), 0.5, np.float32)}, "0 or 1"),
        ({"weights": np.zeros((4, 2), np.float32)}, "not all zero"),
        ({"weights": np.full((4, 2), -1.0, np.float32)}, "non-negative"),
    ],
)
def test_bad_inputs_are_refused_with_what_was_expected(change: dict[str, np.ndarray], message: str) -> None:
    args = {
        "activations": np.zeros((4, 320, 7, 7), np.float16),
        "targets": np.eye(2, dtype=np.float32)[[0, 1, 0, 1]],
        "weights": np.ones((4, 2), np.float32),
    }
    with pytest.raises(ValueError, match=message):
        fine_tune(**{**args, **change}, vocabulary=["a", "b"], config=FAST)


def test_config_refuses_unknown_settings() -> None:
    assert FineTuneConfig.from_dict({"epochs": 2}).epochs == 2
    with pytest.raises(ValueError, match="unknown fine-tuning settings \\['epoch'\\]"):
        FineTuneConfig.from_dict({"epoch": 2})


def test_backbone_activation_through_the_untrained_top_is_the_backbone_embedding(
    backbone_dir: Path, embedder: Embedder
) -> None:
    """The stored activation is exactly where the top starts: the cut is right."""
    batch = np.stack([preprocess(open_for_model(p)) for p in caltech_photos(per_class=2)])
    session = ort.InferenceSession(
        str(backbone_dir / "efficientnet-lite0.onnx"), providers=["CPUExecutionProvider"]
    )
    embedding, activation = session.run(["embedding", "activation"], {"image": batch})
    assert activation.shape == (6, *activation_shape(TUNE_FROM)) and activation.dtype == np.float32

    top = TunedTop(top_onnx(Top(load_pretrained(), TUNE_FROM)))
    assert float(np.abs(top.embed(activation) - embedding).max()) < 1e-3
    # Stored as float16 (what embed_with_activations gives) it still lands close.
    stored_embedding, stored = embedder.embed_with_activations(batch)
    assert stored.dtype == np.float16
    np.testing.assert_allclose(stored_embedding, embedding, atol=1e-5)
    assert float(np.abs(top.embed(stored) - embedding).max()) < 2e-3  # measured: 2.5e-4


def write_job(job_dir: Path, config: dict[str, object], n: int = 16) -> None:
    x, y = planted_tags(n, 2, seed=3)
    job_dir.mkdir()
    np.savez(
        job_dir / "job.npz",
        activations=x,
        targets=y,
        weights=np.ones_like(y),
        vocabulary=np.array(["cat", "dog"]),
    )
    (job_dir / "config.json").write_text(json.dumps(config))


def run_module(job_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eyes.ml.finetune", str(job_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_line_runs_a_job_end_to_end(tmp_path: Path) -> None:
    job = tmp_path / "job"
    write_job(job, {"tune_from": 16, "probe_epochs": 5, "epochs": 2, "batch_size": 8})
    res = run_module(job)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [line["phase"] for line in lines] == ["probe", "tune", "tune", "done"]

    head = Head.from_bytes((job / "head.npz").read_bytes())
    assert head.vocabulary == ["cat", "dog"]
    top = TunedTop((job / "top.onnx").read_bytes())
    with np.load(job / "job.npz") as data:
        assert head.probabilities(top.embed(data["activations"])).shape == (16, 2)
    history = json.loads((job / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2] and history["config"]["epochs"] == 2
    assert history["photos"] == 16


def test_command_line_fails_clearly(tmp_path: Path) -> None:
    res = run_module(tmp_path / "nowhere")
    assert res.returncode == 2 and "job.npz" in res.stderr and "is missing" in res.stderr

    job = tmp_path / "job"
    write_job(job, {"tune_from": 16, "epoch": 2})
    res = run_module(job)
    assert res.returncode == 2 and "unknown fine-tuning settings ['epoch']" in res.stderr
    assert not (job / "top.onnx").exists()


def test_progress_comes_within_an_epoch_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from eyes.ml import finetune

    monkeypatch.setattr(finetune, "PROGRESS_EVERY_S", 0.0)  # every step is "30 s later"
    x, y = planted_tags(16, 2, seed=4)
    progress: list[dict[str, object]] = []
    config = FineTuneConfig(tune_from=16, probe_epochs=1, epochs=1, batch_size=4)
    fine_tune(x, y, np.ones_like(y), ["a", "b"], config, progress.append)
    steps = [line["step"] for line in progress if line["phase"] == "tune"]
    assert steps == [1, 2, 3, 4, 4]  # one per step of 4 photos, then the epoch's own line
    assert "train_accuracy" in progress[-1] and "train_accuracy" not in progress[-2]
