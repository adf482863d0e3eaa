"""The serving models: the backbone (ONNX) and the champion head, loaded once per process.

Serving never imports torch. If the backbone's ONNX file is missing it is exported once, in a
child process (which may import torch), into the data folder. Each process checks every
`model_refresh_s` which version is champion, so a promotion reaches every server without a restart.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

import numpy as np

from eyes.db.models import ModelVersion
from eyes.domain import TrainingDepth
from eyes.ml.errors import EXPORT_COMMAND, ModelFileError
from eyes.ml.files import HEAD_FILE, ONNX_FILE

if TYPE_CHECKING:
    from eyes.context import Context
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


class TaggerService:
    """Embeds images and suggests tags with the champion: a trained version for the platform's own
    tags, with the day-one ImageNet words for everything it does not know."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._imagenet: ImageNetTagger | None = None
        self._champion: Champion | None = None  # None: the day-one words
        self._checked_at = float("-inf")

    def load(self) -> None:
        """Load the models now (at start), so a broken model file is reported before serving."""
        with self._lock:
            if self._embedder is None:
                from eyes.ml.embedder import Embedder
                from eyes.ml.imagenet_words import ImageNetTagger

                models_dir = self._ctx.settings.models_dir
                onnx = ensure_backbone(models_dir)
                self._embedder = Embedder(onnx, threads=self._ctx.settings.onnx_threads)
                self._imagenet = ImageNetTagger(models_dir / HEAD_FILE)
        self.refresh()

    def refresh(self, force: bool = False) -> None:
        """Pick up a newly promoted champion (a cheap query, at most every `model_refresh_s`)."""
        now = time.monotonic()
        if not force and now - self._checked_at < self._ctx.settings.model_refresh_s:
            return
        from eyes.services import registry

        self._checked_at = now
        with self._ctx.sessions() as session:
            version_id = registry.champion_id(session)
            version = registry.get_version(session, version_id) if version_id is not None else None
        current = self._champion.version_id if self._champion else None
        if version_id == current:
            return
        if version is None:
            self._champion = None
            return
        try:
            self._champion = self._load_version(version)
        except ModelFileError:  # keep serving what we have; the dashboard shows the problem
            log.exception("cannot load the champion %s; still serving the previous model", version.name)

    def _load_version(self, version: ModelVersion) -> Champion:
        from eyes.services import registry

        head = registry.load_head(self._ctx, version)
        top = None
        if version.depth == TrainingDepth.DEEP:
            from eyes.ml.tuned import TunedTop

            top = TunedTop(
                registry.load_file(self._ctx, version, registry.TOP_FILE),
                threads=self._ctx.settings.onnx_threads,
            )
        return Champion(
            version.id, version.name, head.vocabulary, head, top, registry.training_set(self._ctx, version)
        )

    def _ready(self) -> tuple[Embedder, ImageNetTagger]:
        if self._embedder is None or self._imagenet is None:
            self.load()
        self.refresh()
        assert self._embedder is not None and self._imagenet is not None
        return self._embedder, self._imagenet

    def champion(self, force_refresh: bool = False) -> Champion:
        """The model in service now (the day-one words as a Champion when nothing was trained)."""
        _, imagenet = self._ready()
        if force_refresh:
            self.refresh(force=True)
        if self._champion is not None:
            return self._champion
        return Champion(None, imagenet.version, list(imagenet.words))

    @property
    def backbone_id(self) -> str:
        return self._ready()[0].backbone_id

    @property
    def day_one_version(self) -> str:
        return self._ready()[1].version

    @property
    def version(self) -> str:
        """The champion's name: a trained version, or the day-one model."""
        return self.champion().name

    @property
    def activation_shape(self) -> tuple[int, ...]:
        """Shape of one stored activation (where the fine-tuned top starts), from the backbone card."""
        return tuple(self._ready()[0].card["activation"]["shape"])

    @property
    def needs_activations(self) -> bool:
        """True when the champion runs on stored activations (a deep version)."""
        return self.champion().needs_activations

    def prepare(self, source: Path | BinaryIO) -> np.ndarray:
        """Decode (at reduced scale where the format allows) and preprocess one image."""
        from eyes.ml.preprocess import open_for_model, preprocess

        return preprocess(open_for_model(source))

    def embed(self, batch: np.ndarray) -> np.ndarray:
        return self._ready()[0].embed(batch)

    def features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """What the champion reads: embeddings, and activations too when it is a deep version."""
        if self.needs_activations:
            return self.embed_with_activations(batch)
        return self.embed(batch), None

    def embed_with_activations(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and the float16 activations a fine-tuned top starts from."""
        return self._ready()[0].embed_with_activations(batch)

    def scores(
        self, champion: Champion, embeddings: np.ndarray, activations: np.ndarray | None
    ) -> np.ndarray:
        """The champion's probability for each tag it knows, in `champion.vocabulary` order."""
        _, imagenet = self._ready()
        if champion.head is None:
            return imagenet.word_scores(embeddings)
        features = embeddings
        if champion.top is not None:
            if activations is None:
                raise ValueError(f"model {champion.name} needs the stored activations of these photos")
            features = champion.top.embed(activations)
        return champion.head.probabilities(features)

    def suggest(
        self, embeddings: np.ndarray, activations: np.ndarray | None = None
    ) -> list[list[Suggestion]]:
        """The champion's tags for each embedding, best first, each above its threshold."""
        return self._combine(embeddings, activations, ranked=False)

    def rank(self, embeddings: np.ndarray, activations: np.ndarray | None = None) -> list[list[Suggestion]]:
        """Every tag the champion knows for each embedding, best first, no threshold."""
        return self._combine(embeddings, activations, ranked=True)

    def _combine(
        self, embeddings: np.ndarray, activations: np.ndarray | None, *, ranked: bool
    ) -> list[list[Suggestion]]:
        _, imagenet = self._ready()
        settings = self._ctx.settings
        top_k = 50 if ranked else settings.max_suggestions
        words = imagenet.tags(embeddings, threshold=0.0 if ranked else settings.tag_threshold, top_k=top_k)
        champion = self.champion()
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
