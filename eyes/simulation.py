"""`eyes bench learn`: a simulated community teaches Eyes, round after round.

Photos of a labelled folder tree (folder = true tag) arrive from several simulated users; a share
of them get their owner's tag (optionally wrong at some rate); the loop retrains after each round;
the champion is measured on a fixed held-out part that is never uploaded. The result is the
learning curve: held-out accuracy against labelled photos per class.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from eyes.config import get_settings
from eyes.context import Context, build_context
from eyes.db.models import Visibility
from eyes.db.session import transaction
from eyes.jobs.queue import ImmediateQueue
from eyes.jobs.tasks import run_task
from eyes.ml.metrics import classification_report
from eyes.services import training
from eyes.services.accounts import create_user
from eyes.services.classify import predict_among
from eyes.services.importer import find_images
from eyes.services.photos import PhotoDraft, upload_photo
from eyes.services.tagging import tag_photos
from eyes.services.tags import normalize_tag


@dataclass(frozen=True)
class Community:
    users: int = 5
    schedule: tuple[int, ...] = (2, 5, 10, 20, 40)  # labelled photos per class after each round
    label_share: float = 1.0  # share of arriving photos that get a label
    noise: float = 0.0  # share of labels that name a wrong class
    held_out_per_class: int = 20
    seed: int = 0


@dataclass
class Round:
    labelled_per_class: int
    labels: int
    version: str
    stage: str
    accuracy: float
    macro_f1: float
    train_seconds: float


@dataclass
class Curve:
    dataset: str
    community: dict[str, object]
    classes: list[str]
    held_out: int
    rounds: list[Round] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "rounds": [asdict(r) for r in self.rounds]}


def _stable_order(paths: list[Path], seed: int) -> list[Path]:
    return sorted(paths, key=lambda p: hashlib.sha256(f"{seed}:{p.name}".encode()).hexdigest())


def simulate(
    dataset: Path, community: Community, *, home: Path | None = None, say: Callable[[str], None] = print
) -> Curve:
    files = [p for p in find_images(dataset) if p.parent != dataset]
    by_class: dict[str, list[Path]] = {}
    for path in files:
        by_class.setdefault(normalize_tag(path.parent.name, 64), []).append(path)
    classes = sorted(by_class)
    held: dict[str, list[Path]] = {}
    pool: dict[str, list[Path]] = {}
    for name in classes:
        ordered = _stable_order(by_class[name], community.seed)
        held[name], pool[name] = (
            ordered[: community.held_out_per_class],
            ordered[community.held_out_per_class :],
        )

    settings = get_settings(
        home=home or Path(tempfile.mkdtemp(prefix="eyes-sim-")),
        min_labels_per_tag=2,
        min_owners_per_tag=min(2, community.users),
        auto_train_after=0,
        promotion_margin=0.0,
    )
    ctx = build_context(settings)
    ctx.jobs = ImmediateQueue(partial(run_task, ctx))
    rng = random.Random(community.seed)
    try:
        with transaction(ctx.sessions) as session:
            users = [
                create_user(session, f"user{i}", "simulated-password").id for i in range(community.users)
            ]
        say(f"embedding {sum(map(len, held.values()))} held-out photos (once)")
        held_x, held_y = _held_out_embeddings(ctx, held, classes)
        curve = Curve(str(dataset), asdict(community), classes, len(held_y))
        uploaded = {name: 0 for name in classes}
        labels = 0
        for target in community.schedule:
            for name in classes:
                arriving = pool[name][uploaded[name] : target]
                ids = []
                for k, path in enumerate(arriving):
                    label = name
                    if rng.random() < community.noise:
                        label = rng.choice([c for c in classes if c != name])
                    tags = (label,) if rng.random() < community.label_share else ()
                    owner = users[(uploaded[name] + k) % len(users)]
                    draft = PhotoDraft(filename=path.name, visibility=Visibility.PUBLIC, tags=tags)
                    ids.append(upload_photo(ctx, owner, path, draft).photo_id)
                    labels += len(tags)
                tag_photos(ctx, ids)
                uploaded[name] += len(arriving)
            started = time.perf_counter()
            version_id = training.start_run(ctx, None)
            seconds = time.perf_counter() - started
            with ctx.sessions() as session:
                from eyes.services import registry

                version = registry.get_version(session, version_id)
                stage = version.stage.value
            accuracy, macro_f1 = _measure(ctx, held_x, held_y, classes)
            per_class = min(uploaded.values())
            curve.rounds.append(
                Round(per_class, labels, f"v{version_id}", stage, accuracy, macro_f1, round(seconds, 2))
            )
            say(
                f"{per_class:>4} photos per class: v{version_id} {stage}, champion {ctx.tagger.version} "
                f"held-out top-1 {accuracy:.1%}, macro-F1 {macro_f1:.3f}"
            )
        return curve
    finally:
        ctx.close()


def _held_out_embeddings(
    ctx: Context, held: dict[str, list[Path]], classes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    tagger = ctx.tagger
    inputs, truth = [], []
    for j, name in enumerate(classes):
        for path in held[name]:
            inputs.append(tagger.prepare(path))
            truth.append(j)
    vectors = [tagger.embed(np.stack(inputs[i : i + 32])) for i in range(0, len(inputs), 32)]
    return np.concatenate(vectors), np.array(truth)


def _measure(ctx: Context, x: np.ndarray, y: np.ndarray, classes: list[str]) -> tuple[float, float]:
    report = classification_report(y, predict_among(ctx, x, classes), classes)
    return report.accuracy, report.macro_f1


def plot(curves: dict[str, Curve], path: Path) -> None:
    """The learning curve(s) as a PNG: held-out accuracy against labelled photos per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, curve in curves.items():
        xs = [r.labelled_per_class for r in curve.rounds]
        ax.plot(xs, [r.accuracy * 100 for r in curve.rounds], marker="o", label=label)
    ax.set_xlabel("labelled photos per class")
    ax.set_ylabel("held-out top-1 accuracy (%)")
    ax.set_title(f"Eyes learning curve: {Path(next(iter(curves.values())).dataset).name}")
    ax.grid(alpha=0.3)
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
