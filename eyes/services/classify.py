"""Classify images without storing anything: the API's /classify, `eyes classify` and `eyes evaluate`."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eyes.context import Context
from eyes.errors import EyesError, InvalidImage
from eyes.images import check_header, pixel_count
from eyes.ml.metrics import Report, classification_report, f1_score
from eyes.services.importer import find_images
from eyes.services.tags import normalize_tag
from eyes.services.vocabulary import hierarchy


@dataclass
class Classification:
    tags: list[tuple[str, float]]
    model_version: str
    ms: float


def prepare_checked(ctx: Context, path: Path) -> np.ndarray:
    """The network's input for the image at `path`, or a clear 4xx error."""
    check_header(path, max_pixels=ctx.settings.max_image_pixels)
    try:
        # A burst waits for decoding memory, or is 503 (services/limits.py).
        with ctx.limits.decoding.hold(pixel_count(path)):
            return ctx.tagger.prepare(path)
    except EyesError:
        raise
    except Exception as exc:  # Pillow raises many kinds for damaged files
        raise InvalidImage(f"the image is damaged and cannot be decoded ({exc})") from None


def classify_file(ctx: Context, path: Path) -> Classification:
    started = time.perf_counter()
    batch = prepare_checked(ctx, path)[None]
    champion = ctx.tagger.champion()  # one for the whole answer, whatever is promoted meanwhile
    tags = ctx.tagger.suggest(*ctx.tagger.features(batch, champion), champion=champion)[0]
    return Classification(
        [(s.name, s.confidence) for s in tags], champion.name, (time.perf_counter() - started) * 1000
    )


def word_forms(name: str) -> set[str]:
    """`name` and the forms a person reads as the same word: its plural and its singular, on the
    last word of a phrase (leopard and leopards, big cat and big cats, berry and berries, bus and
    buses). Generous on purpose: it only pairs a folder's name with a tag that already exists."""
    forms = {name, f"{name}s", f"{name}es"}
    if name.endswith("y"):
        forms.add(f"{name[:-1]}ies")
    if name.endswith("ies"):
        forms.add(f"{name[:-3]}y")
    if name.endswith("es"):
        forms.add(name[:-2])
    if name.endswith("s"):
        forms.add(name[:-1])
    return forms


def as_named(name: str, names: Collection[str]) -> str | None:
    """The one of `names` that tag `name` stands for: itself, else the same word in the other
    number (a folder `leopards` is what the tag `leopard` says); None when none is."""
    if name in names:
        return name
    return next((form for form in sorted(word_forms(name)) if form in names), None)


def predict_among(
    ctx: Context, embeddings: np.ndarray, labels: list[str], activations: np.ndarray | None = None
) -> np.ndarray:
    """For each embedding, the index in `labels` of the champion's best-ranked tag among them
    (-1 if it ranks none of them): top-1 over a labelled set's own classes. A tag names a class in
    the singular or the plural alike."""
    index = {name: j for j, name in enumerate(labels)}
    ranked = ctx.tagger.rank(embeddings, activations)
    return np.array(
        [next((index[label] for s in tags if (label := as_named(s.name, index))), -1) for tags in ranked],
        dtype=np.int64,
    )


@dataclass
class Evaluation:
    report: Report
    model_version: str
    ms_per_image: float
    skipped: list[tuple[str, str]]
    # Several tags per photo: the folder's tag and its ancestors (granny-smith, apple) against the
    # tags the champion shows (above their thresholds), per tag.
    tags: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, object]:
        out = self.report.as_dict()
        out.update(
            model_version=self.model_version,
            ms_per_image=round(self.ms_per_image, 2),
            skipped=[{"file": f, "reason": r} for f, r in self.skipped],
            tags=self.tags,
        )
        return out


def _per_tag(truths: list[set[str]], shown: list[set[str]]) -> dict[str, dict[str, float]]:
    out = {}
    for name in sorted(set().union(*truths)) if truths else []:
        tp = sum(1 for t, s in zip(truths, shown, strict=True) if name in t and name in s)
        n_shown = sum(1 for s in shown if name in s)
        support = sum(1 for t in truths if name in t)
        precision = tp / n_shown if n_shown else 0.0
        recall = tp / support if support else 0.0
        f1 = f1_score(precision, recall)
        out[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def evaluate_tree(ctx: Context, root: Path, *, batch: int = 32, progress: bool = False) -> Evaluation:
    """The champion on a labelled folder tree (folder name = true tag); stores nothing. Top-1
    among the folders' tags, and per tag, with the folder's tag and its ancestors as the photo's
    tags, the precision and recall of the tags it shows."""
    from tqdm import tqdm

    files = [p for p in find_images(root) if p.parent != root]
    labels = sorted({normalize_tag(p.parent.name, ctx.settings.max_tag_length) for p in files})
    index = {name: i for i, name in enumerate(labels)}
    y_true: list[int] = []
    y_pred: list[int] = []
    skipped: list[tuple[str, str]] = []
    tagger = ctx.tagger
    tagger.load()
    with ctx.sessions() as session:
        tree = hierarchy(session)
    named = tree.expand(set(labels))  # every tag a photo here truly has
    expected: list[set[str]] = []
    shown: list[set[str]] = []
    started = time.perf_counter()
    with tqdm(total=len(files), desc="evaluating", unit="photo", disable=not progress) as bar:
        for start in range(0, len(files), batch):
            inputs, truths = [], []
            for path in files[start : start + batch]:
                try:
                    inputs.append(prepare_checked(ctx, path))
                    truths.append(index[normalize_tag(path.parent.name, ctx.settings.max_tag_length)])
                except EyesError as exc:
                    skipped.append((str(path.relative_to(root)), exc.message))
            if inputs:
                y_true += truths
                embeddings, activations = tagger.features(np.stack(inputs))
                y_pred += predict_among(ctx, embeddings, labels, activations).tolist()
                expected.extend(tree.expand({labels[t]}) for t in truths)
                # A shown tag counts for the folder's tag it names, in either number.
                shown.extend(
                    {as_named(s.name, named) or s.name for s in tags}
                    for tags in tagger.suggest(embeddings, activations)
                )
            bar.update(len(files[start : start + batch]))
    seconds = time.perf_counter() - started
    n = max(1, len(y_true))
    return Evaluation(
        classification_report(np.array(y_true), np.array(y_pred), labels),
        tagger.version,
        seconds * 1000 / n,
        skipped,
        _per_tag(expected, shown),
    )
