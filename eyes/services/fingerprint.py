"""What the network and the near-duplicate check take from a photo, from the decode that
validated it (services/photos.py): its embedding and activation, its layout signature and, when
asked, its sensitive-content score. One decode serves these and the thumbnails."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from eyes.context import Context
from eyes.ml import layout, sensitive
from eyes.ml.preprocess import preprocess, reduced_for_model
from eyes.services.tagging import Features

log = logging.getLogger(__name__)


@dataclass
class NetworkInputs:
    """A decoded image as the networks take it: taken while it is decoded, run once it is closed."""

    backbone: np.ndarray  # (3, 224, 224)
    grey: np.ndarray  # its layout signature (eyes/ml/layout.py)
    sensitive: np.ndarray | None  # the sensitive-content model's input, when asked


@dataclass
class Fingerprint:
    """What a near-duplicate check compares: the embedding (and activation, to be stored), the layout."""

    features: Features
    grey: np.ndarray  # its layout signature (eyes/ml/layout.py)
    sensitive_score: float | None = None  # scored from the same decode when asked

    @cached_property
    def layout(self) -> layout.Summaries | None:
        """Its windows summarised (about 1 MB), once: for its own check and the layout cache."""
        return layout.summaries(self.grey)


def network_inputs(image: Image.Image, *, score_sensitive: bool) -> NetworkInputs | None:
    """The inputs of a decoded, upright image at any scale; None when the network cannot read it
    (its tagging then records why)."""
    small = reduced_for_model(image)
    try:
        return NetworkInputs(
            preprocess(small),
            layout.signature(small),
            sensitive.prepare(small) if score_sensitive else None,
        )
    except (OSError, ValueError) as exc:
        log.info("no network inputs for a %s image of %s: %s", image.mode, image.size, exc)
        return None
    finally:
        if small is not image:
            small.close()


def fingerprint(ctx: Context, inputs: NetworkInputs) -> Fingerprint:
    """Run the networks on one image's inputs."""
    embeddings, activations = ctx.tagger.embed_with_activations(inputs.backbone[None])
    score = (
        None if inputs.sensitive is None else float(ctx.tagger.sensitive.scores(inputs.sensitive[None])[0])
    )
    return Fingerprint((embeddings[0], activations[0]), inputs.grey, score)
