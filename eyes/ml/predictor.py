"""The predictor: the backbone (ONNX), the day-one ImageNet words and a champion, turned into
embeddings and tag suggestions. Pure machine learning: no database, no registry, no torch (if the
backbone's ONNX file is missing it is exported once, in a child process that may import torch).
Which champion it serves is decided by a service (services/serving.py).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

import numpy as np

from eyes.ml.errors import EXPORT_COMMAND, ModelFileError
from eyes.ml.files import HEAD_FILE, ONNX_FILE

if TYPE_CHECKING:
    from eyes.ml.embedder import Embedder
    from eyes.ml.head import Head
    from eyes.ml.imagenet_words import ImageNetTagger
    from eyes.ml.tuned import TunedTop

log = logging.getLogger(__name__)


class Suggestion(NamedTuple):
    name: str
    confidence: float
    model_version: str  # which model said so: a trained version ("v3") or the day-one model


@dataclass(frozen=True)
class Champion:
    """The model in service: a trained version (a head, and for a deep version the fine-tuned top
    of the backbone), or the day-one ImageNet words when nothing was trained yet."""

    version_id: int | None
    name: str
    vocabulary: list[str]
    head: Head | None = None
    top: TunedTop | None = None  # runs on stored activations instead of the embedding
    trained_on: frozenset[str] = field(default_factory=frozenset)

    @property
    def needs_activations(self) -> bool:
        return self.top is not None


def ensure_backbone(models_dir: Path) -> Path:
    """The backbone's ONNX file, exported first (in a child process) if it is not there yet."""
    onnx = models_dir / ONNX_FILE
    if onnx.exists() and (models_dir / HEAD_FILE).exists():
        return onnx
    models_dir.mkdir(parents=True, exist_ok=True)
    log.info("exporting the backbone to %s (once)", onnx)
    result = subprocess.run(
        [sys.executable, "-m", "eyes.ml.export", str(models_dir)], capture_output=True, text=True
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelFileError(
            f"the backbone model file {onnx} is missing and exporting it failed ({last}); "
            f"install the training extras (make install) and run '{EXPORT_COMMAND}'",
            path=onnx,
        )
    return onnx


class Predictor:
    """Embeds images and scores tags. The backbone and the day-one words load once, under a lock;
    the champion is whatever `serve` was last given (None: the day-one words alone)."""

    def __init__(self, models_dir: Path, *, threads: int) -> None:
        self.models_dir = models_dir
        self.threads = threads
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._imagenet: ImageNetTagger | None = None
        self.trained: Champion | None = None

    def load(self) -> None:
        if self._embedder is not None:  # loaded: no lock on every call
            return
        with self._lock:
            if self._embedder is None:
                from eyes.ml.embedder import Embedder
                from eyes.ml.imagenet_words import ImageNetTagger

                onnx = ensure_backbone(self.models_dir)
                embedder = Embedder(onnx, threads=self.threads)
                self._imagenet = ImageNetTagger(self.models_dir / HEAD_FILE)
                # The embedder last: it is what the lock-free check above reads, so a thread
                # that sees it set must find the day-one words set too.
                self._embedder = embedder

    def serve(self, champion: Champion | None) -> None:
        self.trained = champion

    def _models(self) -> tuple[Embedder, ImageNetTagger]:
        if self._embedder is None or self._imagenet is None:
            self.load()
        assert self._embedder is not None and self._imagenet is not None
        return self._embedder, self._imagenet

    @property
    def champion(self) -> Champion:
        """The model in service (the day-one words as a Champion when nothing was trained)."""
        imagenet = self._models()[1]
        return self.trained or Champion(None, imagenet.version, list(imagenet.words))

    @property
    def backbone_id(self) -> str:
        return self._models()[0].backbone_id

    @property
    def day_one_version(self) -> str:
        return self._models()[1].version

    @property
    def day_one(self) -> ImageNetTagger:
        """The day-one words (the backbone's ImageNet classifier), loaded."""
        return self._models()[1]

    @property
    def embedding_dim(self) -> int:
        return self._models()[0].dim

    @property
    def activation_shape(self) -> tuple[int, ...]:
        """Shape of one stored activation (where the fine-tuned top starts), from the backbone card."""
        return tuple(self._models()[0].card["activation"]["shape"])

    def prepare(self, source: Path | BinaryIO) -> np.ndarray:
        """Decode (at reduced scale where the format allows) and preprocess one image."""
        from eyes.ml.preprocess import open_for_model, preprocess

        return preprocess(open_for_model(source))

    def embed(self, batch: np.ndarray) -> np.ndarray:
        return self._models()[0].embed(batch)

    def embed_with_activations(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and the float16 activations a fine-tuned top starts from."""
        return self._models()[0].embed_with_activations(batch)

    def scores(
        self, champion: Champion, embeddings: np.ndarray, activations: np.ndarray | None
    ) -> np.ndarray:
        """The champion's probability for each tag it knows, in `champion.vocabulary` order."""
        if champion.head is None:
            return self._models()[1].word_scores(embeddings)
        features = embeddings
        if champion.top is not None:
            if activations is None:
                raise ValueError(f"model {champion.name} needs the stored activations of these photos")
            features = champion.top.embed(activations)
        return champion.head.probabilities(features)

    def suggestions(
        self,
        champion: Champion,
        embeddings: np.ndarray,
        activations: np.ndarray | None,
        *,
        ranked: bool,
        top_k: int,
        threshold: float,
    ) -> list[list[Suggestion]]:
        """The champion's tags for each embedding, best first: above their thresholds and at most
        `top_k`, or (`ranked`) every tag it knows. The day-one words fill in what it does not know.
        The caller names the champion: the one whose features it computed (a promotion between
        the two must not pair a deep version with features that lack its activations)."""
        imagenet = self._models()[1]
        words = imagenet.tags(embeddings, threshold=0.0 if ranked else threshold, top_k=top_k)
        if champion.head is None:
            return [[Suggestion(n, c, imagenet.version) for n, c in tags] for tags in words]
        head = champion.head
        known = set(head.vocabulary)
        probs = self.scores(champion, embeddings, activations)
        out = []
        for row, tags in zip(probs, words, strict=True):
            order = np.argsort(-row)
            own = [
                Suggestion(head.vocabulary[j], float(row[j]), champion.name)
                for j in order
                if ranked or row[j] >= head.thresholds[j]
            ]
            # The trained head speaks for its own tags; the day-one words fill in the rest.
            extra = [Suggestion(n, c, imagenet.version) for n, c in tags if n not in known]
            # Ranked: every tag the head knows (evaluation needs them all); else the top few.
            out.append(own + extra if ranked else (own + extra)[:top_k])
        return out
