"""ML fixtures: the backbone is exported once per test session into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from eyes.ml.embedder import Embedder
from eyes.ml.imagenet_words import ImageNetTagger
from tests.conftest import fast_tier

# Modules whose subject is torch itself (the architecture, the export, fine-tuning): marked slow,
# and not even collected by the fast tier, which runs without torch (tests/conftest.py).
TORCH_MODULES = {
    "test_efficientnet_lite.py",
    "test_export.py",
    "test_finetune.py",
    "test_tuned.py",
    "test_bundle.py",
}

ROOT = Path(__file__).resolve().parents[2]
CALTECH = (ROOT / ".." / "shared" / "datasets" / "caltech101-23").resolve()


def caltech_photos(
    per_class: int, classes: tuple[str, ...] = ("Leopards", "airplanes", "car_side")
) -> list[Path]:
    """A few real photos of each class, read in place from the shared datasets (never copied)."""
    if not CALTECH.is_dir():
        pytest.fail(f"the shared datasets are missing: expected {CALTECH}")
    return [p for name in classes for p in sorted((CALTECH / name).glob("*.jpg"))[:per_class]]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    return True if fast_tier(config) and collection_path.name in TORCH_MODULES else None


@pytest.fixture(scope="session")
def backbone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pretrained backbone exported once (ONNX, ImageNet head, card), shared read-only."""
    from eyes.ml.export import export_backbone

    dest = tmp_path_factory.mktemp("backbone")
    export_backbone(dest)
    return dest


@pytest.fixture(scope="session")
def embedder(backbone_dir: Path) -> Embedder:
    return Embedder(backbone_dir / "efficientnet-lite0.onnx")


@pytest.fixture(scope="session")
def imagenet(backbone_dir: Path) -> ImageNetTagger:
    return ImageNetTagger(backbone_dir / "imagenet-head.npz")
