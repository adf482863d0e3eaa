"""`eyes bench learn`: a simulated community teaches Eyes, round after round.

Photos of a labelled folder tree (folder = true tag) arrive from several simulated users; a share
of them get their owner's tag (optionally wrong at some rate); fresh accounts may attack, voting a
wrong class onto every new photo; the loop retrains after each round (a head, or a deep run); the
champion is measured on photos that are never uploaded (a fixed part of each class, or another
tree such as grocery's `val`), next to a logistic regression on the frozen embeddings of the same
labels, measured on the same photos. The result is the learning curve: held-out accuracy against
labelled photos per class.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
from sqlalchemy import update

from eyes.config import get_settings
from eyes.context import Context, build_context
from eyes.db.models import Photo, User
from eyes.db.session import transaction
from eyes.domain import Account, TrainingDepth, Visibility, version_name
from eyes.jobs.queue import ImmediateQueue
from eyes.jobs.tasks import run_task
from eyes.ml.baseline import logistic_regression_top1
from eyes.ml.metrics import classification_report
from eyes.services import registry, training, vocabulary
from eyes.services.accounts import create_user
from eyes.services.classify import predict_among
from eyes.services.importer import find_images
from eyes.services.labels import vote
from eyes.services.photos import PhotoDraft, upload_photo
from eyes.services.tagging import embeddings_for, tag_photos
from eyes.services.tags import normalize_tag


@dataclass(frozen=True)
class Community:
    users: int = 5
    schedule: tuple[int, ...] = (2, 5, 10, 20, 40)  # labelled photos per class after each round
    label_share: float = 1.0  # share of arriving photos that get a label
    noise: float = 0.0  # share of labels that name a wrong class
    held_out_per_class: int = 20
    seed: int = 0
    depth: str = "head"  # or "deep": the top of the backbone fine-tuned with the head
    sybils: int = 0  # fresh accounts that vote a wrong class onto every photo, each round
    held_out_dir: str = ""  # photos to measure on (folder = class) instead of a part of each class
    upload_rest: bool = False  # the photos no round labels are uploaded too, without a label


@dataclass
class Round:
    labelled_per_class: int
    labels: int
    version: str
    stage: str
    accuracy: float
    macro_f1: float
    train_seconds: float
    baseline_accuracy: float | None  # logistic regression, frozen embeddings, the same labels


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
    measured_on = Path(community.held_out_dir) if community.held_out_dir else None
    for name in classes:
        ordered = _stable_order(by_class[name], community.seed)
        cut = 0 if measured_on else community.held_out_per_class
        held[name], pool[name] = ordered[:cut], ordered[cut:]
    if measured_on:
        for path in find_images(measured_on):
            name = normalize_tag(path.parent.name, 64)
            if name in held:
                held[name].append(path)

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
        users = [create_user(ctx, f"user{i}", "simulated-password").id for i in range(community.users)]
        with transaction(ctx.sessions) as session:  # the community has been here a while; the sybils are new
            session.execute(
                update(User)
                .where(User.id.in_(users))
                .values(created_at=datetime.now(UTC) - timedelta(days=365))
            )
        sybils = [create_user(ctx, f"sybil{i}", "simulated-password") for i in range(community.sybils)]
        vocabulary.approve(ctx, None, classes)  # the community's administrator approves the real classes
        say(f"embedding {sum(map(len, held.values()))} held-out photos (once)")
        held_x, held_a, held_y = _held_out_features(ctx, held, classes)
        curve = Curve(str(dataset), asdict(community), classes, len(held_y))
        uploaded = {name: 0 for name in classes}
        labels = 0
        given: dict[int, str] = {}  # photo id -> the label its owner gave (right or wrong)
        if community.upload_rest:  # most photos on a platform carry no label
            rest = [p for name in classes for p in pool[name][max(community.schedule) :]]
            say(f"uploading {len(rest)} photos without a label")
            draft = PhotoDraft(visibility=Visibility.PUBLIC)
            tag_photos(
                ctx, [upload_photo(ctx, users[i % len(users)], p, draft).photo_id for i, p in enumerate(rest)]
            )
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
                    if tags:
                        given[ids[-1]] = label
                tag_photos(ctx, ids)
                for sybil in sybils:  # the attack: a wrong class on every new photo
                    wrong = classes[(classes.index(name) + 1) % len(classes)]
                    for photo_id in ids:
                        _vote_unlimited(ctx, photo_id, sybil, wrong)
                uploaded[name] += len(arriving)
            started = time.perf_counter()
            version_id = training.start_run(ctx, None, depth=TrainingDepth(community.depth))
            seconds = time.perf_counter() - started
            stage = registry.get_version(ctx, version_id).stage.value
            accuracy, macro_f1 = _measure(ctx, held_x, held_a, held_y, classes)
            baseline = _baseline(ctx, given, classes, held_x, held_y)
            per_class = min(uploaded.values())
            curve.rounds.append(
                Round(
                    per_class,
                    labels,
                    version_name(version_id),
                    stage,
                    accuracy,
                    macro_f1,
                    round(seconds, 2),
                    baseline,
                )
            )
            shown = f"{baseline:.1%}" if baseline is not None else "n/a"
            say(
                f"{per_class:>4} photos per class: {version_name(version_id)} {stage} ({community.depth}, {seconds:.0f} s), "
                f"champion {ctx.tagger.version} held-out top-1 {accuracy:.1%}, macro-F1 {macro_f1:.3f}; "
                f"logistic regression on the same labels {shown}"
            )
        return curve
    finally:
        ctx.close()


def _held_out_features(
    ctx: Context, held: dict[str, list[Path]], classes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings and activations of the photos measured on (never uploaded), and their classes."""
    tagger = ctx.tagger
    inputs, truth = [], []
    for j, name in enumerate(classes):
        for path in held[name]:
            inputs.append(tagger.prepare(path))
            truth.append(j)
    parts = [tagger.embed_with_activations(np.stack(inputs[i : i + 32])) for i in range(0, len(inputs), 32)]
    return np.concatenate([e for e, _ in parts]), np.concatenate([a for _, a in parts]), np.array(truth)


def _measure(
    ctx: Context, x: np.ndarray, activations: np.ndarray, y: np.ndarray, classes: list[str]
) -> tuple[float, float]:
    features = activations if ctx.tagger.needs_activations else None
    report = classification_report(y, predict_among(ctx, x, classes, features), classes)
    return report.accuracy, report.macro_f1


def _baseline(
    ctx: Context, given: dict[int, str], classes: list[str], x: np.ndarray, y: np.ndarray
) -> float | None:
    """A logistic regression on the frozen embeddings of the labels the owners gave (wrong ones
    too), measured on the same photos as the champion."""
    from sqlalchemy import select

    from eyes.db.models import Photo

    with ctx.sessions() as session:
        shas = dict(session.execute(select(Photo.id, Photo.sha256).where(Photo.id.in_(list(given)))).all())
    vectors, _ = embeddings_for(ctx, sorted(set(shas.values())))
    ids = [pid for pid in given if shas.get(pid) in vectors]
    train_x = np.stack([vectors[shas[pid]] for pid in ids])
    train_y = np.array([classes.index(given[pid]) for pid in ids])
    truth = np.eye(len(classes), dtype=np.float32)[y]
    return logistic_regression_top1(train_x, train_y, x, truth)


def _vote_unlimited(ctx: Context, photo_id: int, user: Account, name: str) -> None:
    """A sybil's vote, without the per-account rate limit (an attacker spreads votes over time)."""
    with transaction(ctx.sessions) as session:
        vote(session, session.get_one(Photo, photo_id), user, name, True)


def plot(curves: dict[str, Curve], path: Path) -> None:
    """The learning curve(s) as a PNG: held-out accuracy against labelled photos per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, curve in curves.items():
        xs = [r.labelled_per_class for r in curve.rounds]
        line = ax.plot(xs, [r.accuracy * 100 for r in curve.rounds], marker="o", label=label)[0]
        baseline = [
            (x, r.baseline_accuracy * 100)
            for x, r in zip(xs, curve.rounds, strict=True)
            if r.baseline_accuracy is not None
        ]
        if baseline:
            ax.plot(
                *zip(*baseline, strict=True),
                marker="x",
                linestyle="--",
                color=line.get_color(),
                alpha=0.6,
                label=f"{label}: logistic regression, same labels",
            )
    ax.set_xlabel("labelled photos per class")
    ax.set_ylabel("held-out top-1 accuracy (%)")
    dataset = Path(next(iter(curves.values())).dataset)
    name = f"{dataset.parent.name}/{dataset.name}" if dataset.name in ("train", "val") else dataset.name
    ax.set_title(f"Eyes learning curve: {name}")
    ax.grid(alpha=0.3)
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
