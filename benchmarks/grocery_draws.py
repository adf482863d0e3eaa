"""Grocery, several draws: Eyes' training runs against a logistic regression on the same labels.

    python -m benchmarks.grocery_draws [--draws 5] [--deep-seeds 3]

grocery's `train` is imported once (embeddings and activations stored); each draw then gives
owner labels to a subset (10 photos per class, or all of them), runs a real training run through
the service (head or deep), puts the version in service, and measures it on grocery's `val` (296
photos never uploaded) next to a logistic regression on the frozen embeddings of the same labels.
The val set is small (one photo is 0.34 points), so single draws move by a few points: the means
over draws are what to read. Writes the "Learning on grocery, several draws" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select, update

from benchmarks.report import write_section
from benchmarks.scratch import scratch_dir
from eyes.config import get_settings
from eyes.context import Context, build_context
from eyes.db.models import Photo, PhotoTag, User
from eyes.db.session import transaction
from eyes.domain import TagStatus, TrainingDepth
from eyes.jobs.queue import ImmediateQueue
from eyes.jobs.tasks import run_task
from eyes.ml.baseline import logistic_regression_top1
from eyes.ml.train import TrainConfig
from eyes.services import registry, training
from eyes.services.accounts import create_user
from eyes.services.classify import predict_among
from eyes.services.importer import find_images, import_tree
from eyes.services.tagging import embeddings_for
from eyes.services.tags import normalize_tag, set_owner_tag

ROOT = Path(__file__).resolve().parents[1]
GROCERY = (ROOT / ".." / "shared" / "datasets" / "grocery").resolve()


def setup() -> tuple[Context, dict[int, str], np.ndarray, np.ndarray, np.ndarray, list[str]]:
    home = scratch_dir("eyes-grocery-draws-")
    settings = get_settings(
        home=home, min_labels_per_tag=2, min_owners_per_tag=1, auto_train_after=0, open_vocabulary=True
    )
    ctx = build_context(settings)
    ctx.jobs = ImmediateQueue(partial(run_task, ctx))
    grocer = create_user(ctx, "grocer", "a long password", admin=True)
    with transaction(ctx.sessions) as session:  # an established account
        long_ago = datetime.now(UTC) - timedelta(days=365)
        session.execute(update(User).where(User.id == grocer.id).values(created_at=long_ago))
    import_tree(ctx, GROCERY / "train", owner="grocer", progress=True)
    ctx.jobs = None  # from here on, runs are run here, one at a time, and nothing is re-tagged
    files = find_images(GROCERY / "train")
    classes = sorted({normalize_tag(p.parent.name, 64) for p in files})
    by_sha = {hashlib.sha256(p.read_bytes()).hexdigest(): normalize_tag(p.parent.name, 64) for p in files}
    with ctx.sessions() as session:
        truth = {pid: by_sha[sha] for pid, sha in session.execute(select(Photo.id, Photo.sha256))}
    val = [p for p in find_images(GROCERY / "val")]
    tagger = ctx.tagger
    parts = [
        tagger.embed_with_activations(np.stack([tagger.prepare(p) for p in val[i : i + 32]]))
        for i in range(0, len(val), 32)
    ]
    val_x = np.concatenate([e for e, _ in parts])
    val_a = np.concatenate([a for _, a in parts])
    val_y = np.array([classes.index(normalize_tag(p.parent.name, 64)) for p in val])
    return ctx, truth, val_x, val_a, val_y, classes


def label(ctx: Context, chosen: list[int], truth: dict[int, str]) -> None:
    """Exactly these photos carry their owner's label; every earlier label is gone."""
    with transaction(ctx.sessions) as session:
        session.execute(delete(PhotoTag).where(PhotoTag.status != TagStatus.SUGGESTED))
        owner = session.scalars(select(User)).one()
        photos = {p.id: p for p in session.scalars(select(Photo).where(Photo.id.in_(chosen)))}
        for pid in chosen:
            set_owner_tag(session, photos[pid], owner, truth[pid])


def measure(
    ctx: Context,
    depth: TrainingDepth,
    config: TrainConfig,
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    classes: list[str],
) -> tuple[float, float]:
    registry.promote(ctx, None)  # each draw is judged alone, not against the previous draw's model
    version_id = training.start_run(ctx, None, depth=depth)
    started = time.perf_counter()
    training.run_training(ctx, version_id, config)
    seconds = time.perf_counter() - started
    registry.promote(ctx, version_id)
    ctx.tagger.refresh(force=True)
    x, activations, y = val
    features = activations if ctx.tagger.needs_activations else None
    predicted = predict_among(ctx, x, classes, features)
    return float((predicted == y).mean()), seconds


def baseline(ctx: Context, chosen: list[int], truth: dict[int, str], val: tuple, classes: list[str]) -> float:
    with ctx.sessions() as session:
        shas = dict(session.execute(select(Photo.id, Photo.sha256).where(Photo.id.in_(chosen))).all())
    vectors, _ = embeddings_for(ctx, sorted(set(shas.values())))
    x = np.stack([vectors[shas[pid]] for pid in chosen])
    labels = np.array([classes.index(truth[pid]) for pid in chosen])
    val_x, _, val_y = val
    result = logistic_regression_top1(x, labels, val_x, np.eye(len(classes), dtype=np.float32)[val_y])
    assert result is not None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--draws", type=int, default=5, help="draws of 10 labels per class")
    parser.add_argument("--deep-seeds", type=int, default=3, help="deep runs on all labels, one per seed")
    args = parser.parse_args()
    ctx, truth, val_x, val_a, val_y, classes = setup()
    val = (val_x, val_a, val_y)
    by_class: dict[str, list[int]] = {}
    for pid, name in sorted(truth.items()):
        by_class.setdefault(name, []).append(pid)
    rows = []

    def row(what: str, draw: int, chosen: list[int], depth: TrainingDepth, config: TrainConfig) -> None:
        label(ctx, chosen, truth)
        accuracy, seconds = measure(ctx, depth, config, val, classes)
        lr = baseline(ctx, chosen, truth, val, classes)
        rows.append((what, draw, accuracy, lr, seconds))
        print(
            f"{what} draw {draw}: Eyes {accuracy:.1%}, logistic regression {lr:.1%}, {seconds:.0f} s",
            flush=True,
        )

    for draw in range(args.draws):
        rng = np.random.default_rng(draw)
        chosen = [int(pid) for ids in by_class.values() for pid in rng.permutation(ids)[:10]]
        row(
            "10 per class, no unlabelled photos",
            draw,
            chosen,
            TrainingDepth.HEAD,
            TrainConfig(seed=draw, max_unlabelled=0),
        )
        row(
            "10 per class, the other photos unlabelled",
            draw,
            chosen,
            TrainingDepth.HEAD,
            TrainConfig(seed=draw),
        )
    everything = sorted(truth)
    for seed in range(args.deep_seeds):
        row("all 2,640 labels, head", seed, everything, TrainingDepth.HEAD, TrainConfig(seed=seed))
        row("all 2,640 labels, deep run", seed, everything, TrainingDepth.DEEP, TrainConfig(seed=seed))
    ctx.close()

    lines = []
    for what in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == what]
        eyes = np.mean([r[2] for r in mine])
        lr = np.mean([r[3] for r in mine])
        each = ", ".join(f"{r[2]:.1%}/{r[3]:.1%}" for r in mine)
        lines.append(
            f"| {what} | {len(mine)} | **{eyes:.1%}** | {lr:.1%} | {(eyes - lr) * 100:+.1f} | "
            f"{np.mean([r[4] for r in mine]):.0f} s | {each} |"
        )
    body = f"""
grocery `train` imported once; each draw labels photos through the owner, runs a real training
run, puts it in service and measures it on `val` (296 photos never uploaded), next to a logistic
regression (scikit-learn, standardised features) on the frozen Lite0 embeddings of the same labels.
"Unlabelled" means the other `train` photos are on the platform without a label (the training
run's pseudo-labels use them when its held-out evidence does not object).

| labels | draws | Eyes top-1, mean | logistic regression, mean | points | training run | each draw (Eyes/LR) |
| --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(lines)}
"""
    write_section("Learning on grocery, several draws", "python -m benchmarks.grocery_draws", body)


if __name__ == "__main__":
    main()
