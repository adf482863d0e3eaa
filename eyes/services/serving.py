"""Which model is in service: the champion the registry names, loaded into the predictor and kept
current. Each process checks every `model_refresh_s`, so a promotion reaches every server without
a restart. The predicting itself is machine learning (eyes/ml/predictor.py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

import numpy as np

from eyes.db.models import ModelVersion
from eyes.domain import TrainingDepth
from eyes.ml.errors import ModelFileError
from eyes.ml.predictor import Champion, Predictor, Suggestion
from eyes.ml.sensitive import SensitiveModel
from eyes.services import registry

if TYPE_CHECKING:
    from eyes.context import Context

log = logging.getLogger(__name__)


class ModelInputs(NamedTuple):
    """One decoded image as both networks read it: the backbone's input and the
    sensitive-content model's (one decode serves the two). No sensitive input: the image is
    scored later, by the background job that scores what has no score (a bulk import)."""

    backbone: np.ndarray
    sensitive: np.ndarray | None


class ServingModels:
    """The predictor with the champion in service (`ctx.tagger`): embeds images and suggests
    tags, a trained version for the platform's own tags and the day-one words for the rest."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.predictor = Predictor(ctx.settings.models_dir, threads=ctx.settings.onnx_threads)
        custom = ctx.settings.sensitive_model
        self.sensitive = SensitiveModel(Path(custom) if custom else None, threads=ctx.settings.onnx_threads)
        self._checked_at = float("-inf")

    def load(self) -> None:
        """Load the models now (at start), so a broken model file is reported before serving."""
        self.predictor.load()
        self.sensitive.load()
        self.refresh()

    def refresh(self, force: bool = False) -> None:
        """Pick up a newly promoted champion (a cheap query, at most every `model_refresh_s`)."""
        now = time.monotonic()
        if not force and now - self._checked_at < self._ctx.settings.model_refresh_s:
            return
        self._checked_at = now
        version_id = registry.champion_id(self._ctx)
        current = self.predictor.trained.version_id if self.predictor.trained else None
        if version_id == current:
            return
        if version_id is None:
            self.predictor.serve(None)
            return
        version = registry.get_version(self._ctx, version_id)  # only when the champion changed
        try:
            self.predictor.serve(self._load_version(version))
        except ModelFileError:  # keep serving what we have; the dashboard shows the problem
            log.exception("cannot load the champion %s; still serving the previous model", version.name)

    def _load_version(self, version: ModelVersion) -> Champion:
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

    def champion(self, force_refresh: bool = False) -> Champion:
        """The model in service now (the day-one words as a Champion when nothing was trained)."""
        self.predictor.load()
        self.refresh(force=force_refresh)
        return self.predictor.champion

    @property
    def backbone_id(self) -> str:
        return self.predictor.backbone_id

    @property
    def day_one_version(self) -> str:
        return self.predictor.day_one_version

    @property
    def version(self) -> str:
        """The champion's name: a trained version, or the day-one model."""
        return self.champion().name

    @property
    def activation_shape(self) -> tuple[int, ...]:
        return self.predictor.activation_shape

    @property
    def needs_activations(self) -> bool:
        """True when the champion runs on stored activations (a deep version)."""
        return self.champion().needs_activations

    def prepare(self, source: Path | BinaryIO) -> np.ndarray:
        return self.predictor.prepare(source)

    def prepare_inputs(self, source: Path | BinaryIO, *, sensitive: bool = True) -> ModelInputs:
        """Decode once (at reduced scale where the format allows) for both networks, or for the
        backbone alone when the sensitive-content score is left to the background job."""
        from eyes.ml import sensitive as sensitive_model
        from eyes.ml.preprocess import open_for_model, preprocess

        image = open_for_model(source)
        try:
            return ModelInputs(preprocess(image), sensitive_model.prepare(image) if sensitive else None)
        finally:
            image.close()

    def prepare_sensitive(self, source: Path | BinaryIO) -> np.ndarray:
        """Decode for the sensitive-content model alone (an image embedded but not yet scored)."""
        from eyes.ml import sensitive
        from eyes.ml.preprocess import open_for_model

        image = open_for_model(source)
        try:
            return sensitive.prepare(image)
        finally:
            image.close()

    def embed(self, batch: np.ndarray) -> np.ndarray:
        return self.predictor.embed(batch)

    def embed_with_activations(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.predictor.embed_with_activations(batch)

    def features(
        self, batch: np.ndarray, champion: Champion | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """What the champion reads: embeddings, and activations too when it is a deep version."""
        if (champion or self.champion()).needs_activations:
            return self.embed_with_activations(batch)
        return self.embed(batch), None

    def scores(
        self, champion: Champion, embeddings: np.ndarray, activations: np.ndarray | None
    ) -> np.ndarray:
        return self.predictor.scores(champion, embeddings, activations)

    def suggest(
        self, embeddings: np.ndarray, activations: np.ndarray | None = None, champion: Champion | None = None
    ) -> list[list[Suggestion]]:
        """The champion's tags for each embedding, best first, each above its threshold. Pass the
        champion the features were computed for when there is one."""
        s = self._ctx.settings
        return self.predictor.suggestions(
            champion or self.champion(),
            embeddings,
            activations,
            ranked=False,
            top_k=s.max_suggestions,
            threshold=s.tag_threshold,
        )

    def rank(
        self, embeddings: np.ndarray, activations: np.ndarray | None = None, champion: Champion | None = None
    ) -> list[list[Suggestion]]:
        """Every tag the champion knows for each embedding, best first, no threshold."""
        return self.predictor.suggestions(
            champion or self.champion(), embeddings, activations, ranked=True, top_k=50, threshold=0.0
        )
