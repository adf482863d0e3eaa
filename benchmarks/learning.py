"""Learning-loop benchmark: learning curve, seed protocol, training time, re-tagging time.

    python -m benchmarks.learning [--quick]

Writes the curve to docs/learning-curve.{json,png} and the figures into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from benchmarks.harness import bench_learn, eyes_cmd
from benchmarks.report import write_section
from benchmarks.scratch import scratch_dir
from eyes.config import get_settings
from eyes.context import Context, build_context
from eyes.db.models import Activation, Embedding, Image, Photo, PhotoTag, Tag, User
from eyes.domain import TaggingState, TagSource, TagStatus
from eyes.jobs.queue import ImmediateQueue
from eyes.jobs.tasks import run_task

ROOT = Path(__file__).resolve().parents[1]
CALTECH = (ROOT / ".." / "shared" / "datasets" / "caltech101-23").resolve()
DOCS = ROOT / "docs"


def seed_protocol(train_per_class: int) -> dict[str, object]:
    """The protocol anyone can run: import TRAIN with folder tags, train, evaluate on TEST."""
    work = scratch_dir("eyes-seed-")
    for cls in sorted(p for p in CALTECH.iterdir() if p.is_dir()):
        files = sorted(cls.iterdir(), key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
        for part, chosen in (("train", files[:train_per_class]), ("test", files[train_per_class:])):
            (work / part / cls.name).mkdir(parents=True)
            for f in chosen:
                (work / part / cls.name / f.name).symlink_to(f)
    home = work / "home"
    env = {"EYES_MIN_OWNERS_PER_TAG": "1", "EYES_MIN_LABELS_PER_TAG": "3"}
    eyes_cmd(home, "users", "create", "seed")
    eyes_cmd(home, "import", str(work / "train"), "--tags-from-folders", "-q", env=env)
    trained = json.loads(eyes_cmd(home, "train", "--wait", "--json", env=env))
    report = json.loads(eyes_cmd(home, "evaluate", str(work / "test"), "--json", env=env))
    return {"train": trained, "evaluate": report}


def populate(
    ctx: Context, n: int, classes: int, rng: np.random.Generator, labelled: int, activations: bool = False
) -> None:
    """n stored photos with real-looking embeddings (class centres plus noise), in bulk, the first
    `labelled` of them with their owner's tag; with
    `activations`, the stored activations a deep version starts from too (the same idea)."""
    centres = rng.normal(0, 1, (classes, 1280)).astype(np.float32)
    shape = ctx.tagger.activation_shape
    act_centres = np.maximum(rng.normal(0, 1, (classes, *shape)), 0).astype(np.float16)
    now = datetime.now(UTC)
    backbone = ctx.tagger.backbone_id
    with ctx.sessions.begin() as session:
        session.execute(
            insert(User), [{"username": "bench", "password_hash": "x", "is_admin": True, "created_at": now}]
        )
        session.execute(
            insert(Tag), [{"id": j + 1, "name": f"class {j}", "approved_at": now} for j in range(classes)]
        )
    for start in range(0, n, 5000):
        ids = range(start, min(n, start + 5000))
        shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in ids]
        truth = rng.integers(0, classes, len(shas))
        vectors = np.maximum(centres[truth] + rng.normal(0, 1.5, (len(shas), 1280)), 0).astype("<f4")
        with ctx.sessions.begin() as session:
            session.execute(
                insert(Image),
                [
                    {
                        "sha256": s,
                        "format": "jpeg",
                        "width": 224,
                        "height": 224,
                        "size_bytes": 1,
                        "created_at": now,
                    }
                    for s in shas
                ],
            )
            session.execute(
                insert(Photo),
                [
                    {
                        "id": i + 1,
                        "owner_id": 1,
                        "sha256": s,
                        "title": "",
                        "description": "",
                        "visibility": "public",
                        "original_filename": "",
                        "camera": "",
                        "tagging": TaggingState.DONE,
                        "tagging_error": "",
                        "created_at": now,
                    }
                    for i, s in zip(ids, shas, strict=True)
                ],
            )
            session.execute(
                insert(Embedding),
                [
                    {"sha256": s, "backbone": backbone, "vector": v.tobytes()}
                    for s, v in zip(shas, vectors, strict=True)
                ],
            )
            if activations:
                noise = rng.random((len(shas), *shape), dtype=np.float32).astype(np.float16)
                session.execute(
                    insert(Activation),
                    [
                        {
                            "sha256": s,
                            "backbone": backbone,
                            "data": (act_centres[t] + a).astype("<f2").tobytes(),
                        }
                        for s, t, a in zip(shas, truth, noise, strict=True)
                    ],
                )
            if labelled > start:
                session.execute(
                    insert(PhotoTag),
                    [
                        {
                            "photo_id": i + 1,
                            "tag_id": int(t) + 1,
                            "source": TagSource.USER,
                            "status": TagStatus.CONFIRMED,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i, t in zip(ids, truth, strict=True)
                        if i < labelled
                    ],
                )


def timed_training(n: int) -> dict[str, float]:
    from eyes.services import training

    home = scratch_dir("eyes-train-")
    ctx = build_context(get_settings(home=home, min_owners_per_tag=1, auto_train_after=0))
    ctx.jobs = ImmediateQueue(partial(run_task, ctx))
    populate(ctx, n, 20, np.random.default_rng(0), labelled=n)
    ctx.jobs = None  # time the run alone, not the re-tag that a promotion queues
    version_id = training.start_run(ctx, None)
    started = time.perf_counter()
    training.run_training(ctx, version_id)
    seconds = time.perf_counter() - started
    ctx.close()
    return {"photos": n, "seconds": seconds}


def timed_retag(n: int) -> dict[str, float]:
    from eyes.services.tagging import retag_all

    home = scratch_dir("eyes-retag-")
    ctx = build_context(get_settings(home=home))
    populate(ctx, n, 20, np.random.default_rng(1), labelled=0)
    started = time.perf_counter()
    count = retag_all(ctx)
    seconds = time.perf_counter() - started
    ctx.close()
    return {"photos": count, "seconds": seconds}


def timed_deep(n_train: int, n_retag: int) -> dict[str, float]:
    """A deep run on `n_train` labelled photos (both fits, in the child process), then re-tagging
    `n_retag` photos with the deep version from their stored activations."""
    from eyes.domain import TrainingDepth
    from eyes.services import registry, training
    from eyes.services.tagging import retag_all

    home = scratch_dir("eyes-deep-")
    ctx = build_context(get_settings(home=home, min_owners_per_tag=1, auto_train_after=0, deep_train_after=0))
    populate(ctx, n_retag, 20, np.random.default_rng(2), labelled=n_train, activations=True)
    version_id = training.start_run(ctx, None, depth=TrainingDepth.DEEP)
    started = time.perf_counter()
    training.run_training(ctx, version_id)
    train_seconds = time.perf_counter() - started
    registry.promote(ctx, version_id)  # whatever the gate said: the re-tag is what is timed here
    assert ctx.tagger.champion(force_refresh=True).needs_activations
    started = time.perf_counter()
    count = retag_all(ctx)
    retag_seconds = time.perf_counter() - started
    ctx.close()
    return {"photos": n_train, "seconds": train_seconds, "retagged": count, "retag_seconds": retag_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    n_train, n_retag = (2000, 10_000) if args.quick else (10_000, 100_000)

    DOCS.mkdir(exist_ok=True)
    curve_out = DOCS / "learning-curve"
    curves = bench_learn(
        "--dataset", str(CALTECH), "--schedule", "2,5,10,20", "--noise", "0,0.1", out=curve_out
    )
    seed = seed_protocol(20)
    train = timed_training(n_train)
    retag = timed_retag(n_retag)
    deep = timed_deep(3000 if not args.quick else 600, n_retag)

    clean, noisy = curves["head, 0% wrong labels"]["rounds"], curves["head, 10% wrong labels"]["rounds"]
    rows = "\n".join(
        f"| {c['labelled_per_class']} | {c['accuracy']:.1%} | {c['baseline_accuracy']:.1%} | {c['macro_f1']:.3f} "
        f"| {n['accuracy']:.1%} | {n['baseline_accuracy']:.1%} |"
        for c, n in zip(clean, noisy, strict=True)
    )
    ev = seed["evaluate"]
    body = f"""
Learning curve on `caltech101-23` (23 classes; 20 held-out photos per class never uploaded; 5
simulated users; `eyes bench learn --dataset ../shared/datasets/caltech101-23 --schedule 2,5,10,20
--noise 0,0.1 --out docs/learning-curve`):

![learning curve](learning-curve.png)

| labelled photos per class | top-1, clean labels | logistic regression, same labels | macro-F1 | top-1, 10% wrong labels | logistic regression, same labels |
| --- | --- | --- | --- | --- | --- |
{rows}

Target: at least 97% top-1 with 20 labelled photos per class: **{clean[-1]["accuracy"]:.1%}**. With 10% wrong
labels the drop is **{(clean[-1]["accuracy"] - noisy[-1]["accuracy"]) * 100:.1f} points** (target: at most 3).
A rejected version leaves the champion in service (the curve shows the champion): with 2 labels
per class the gate keeps the day-one model, whose ImageNet head is better on the tags both know.

Seed protocol (`eyes import TRAIN --tags-from-folders`, `eyes train --wait`, `eyes evaluate TEST --json`;
20 photos per class to train, the other {ev["n"]} to test): model {seed["train"]["version"]}
({seed["train"]["stage"]}), **top-1 {ev["accuracy"]:.1%}**, macro-F1 {ev["macro_f1"]:.3f},
{ev["ms_per_image"]:.1f} ms per image.

| measure | result | target |
| --- | --- | --- |
| training run on {train["photos"]:,} stored embeddings (20 tags; data set, fit, metrics, calibration, gate, files) | **{train["seconds"]:.1f} s** | ≤ 10 s |
| re-tagging {retag["photos"]:,} photos from stored embeddings (a head version) | **{retag["seconds"]:.1f} s** | ≤ 60 s |
| deep run on {deep["photos"]:,} labelled photos (both fits: held-out evidence and the served one) | **{deep["seconds"]:.0f} s** | ≤ 600 s |
| re-tagging {deep["retagged"]:,} photos from stored activations (a deep version) | **{deep["retag_seconds"]:.1f} s** | ≤ 60 s |

The training and re-tagging rows use synthetic stored embeddings and activations (class centres
plus noise, the shapes of real ones): their cost depends on sizes, not on the pixels.
"""
    write_section("Learning loop", "python -m benchmarks.learning" + (" --quick" if args.quick else ""), body)


if __name__ == "__main__":
    main()
