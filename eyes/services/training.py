"""The learning loop's training run: labels -> data set -> head -> metrics -> gate -> promotion.

A run is a `model_versions` row. It is `training` while under way (with a heartbeat), and only
becomes usable (`candidate`) once its files are completely written, so a run killed in the middle
leaves the champion in service and nothing half-written marked usable.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from eyes.context import Context
from eyes.db.models import ModelStage, ModelVersion, User
from eyes.db.session import transaction
from eyes.errors import Conflict, EyesError
from eyes.ml.head import Head
from eyes.ml.train import TrainConfig, evaluate_head, train_head
from eyes.services import registry
from eyes.services.labels import Labels, require_vocabulary, training_labels, vocabulary
from eyes.services.tagging import embeddings_for

log = logging.getLogger(__name__)


def is_validation(sha256: str, percent: int) -> bool:
    """Held out or not, decided by the content hash: a photo never moves between the two."""
    return int(sha256[:8], 16) % 100 < percent


@dataclass
class Dataset:
    vocabulary: list[str]
    train_shas: list[str]
    val_shas: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    photo_ids: list[int]

    @property
    def fingerprint(self) -> str:
        import hashlib

        digest = hashlib.sha256()
        for sha in sorted(self.train_shas + self.val_shas):
            digest.update(sha.encode())
        digest.update(json.dumps(self.vocabulary).encode())
        return digest.hexdigest()


def build_dataset(ctx: Context, labels: Labels, vocab: list[str]) -> Dataset:
    """Stored embeddings and 0/1 targets; no image is decoded again (unless never embedded)."""
    index = {name: j for j, name in enumerate(vocab)}
    shas = sorted(sha for sha, names in labels.positives.items() if names & index.keys())
    vectors, _ = embeddings_for(ctx, shas)
    shas = [sha for sha in shas if sha in vectors]  # a photo deleted meanwhile simply drops out
    y = np.zeros((len(shas), len(vocab)), dtype=np.float32)
    for i, sha in enumerate(shas):
        for name in labels.positives[sha] & index.keys():
            y[i, index[name]] = 1.0
    x = np.stack([vectors[sha] for sha in shas]) if shas else np.zeros((0, 1280), np.float32)
    held = np.array([is_validation(sha, ctx.settings.validation_percent) for sha in shas], dtype=bool)
    photo_ids = sorted(pid for sha in shas for pid in labels.photos[sha])
    return Dataset(
        vocab,
        [s for s, h in zip(shas, held, strict=True) if not h],
        [s for s, h in zip(shas, held, strict=True) if h],
        x[~held],
        y[~held],
        x[held],
        y[held],
        photo_ids,
    )


def start_run(ctx: Context, user: User | None, trigger: str = "manual") -> int:
    """Record a new run (one at a time) and queue it; returns the version id."""
    with transaction(ctx.sessions) as session:
        _fail_stale_runs(ctx, session)
        session.flush()
        running = session.scalar(select(ModelVersion).where(ModelVersion.stage == ModelStage.TRAINING))
        if running is not None:
            raise Conflict(f"training run {running.name} is already under way; wait for it to finish")
        n_labels = training_labels(session, ctx.settings).count
        version = ModelVersion(
            stage=ModelStage.TRAINING,
            created_by_id=user.id if user else None,
            trigger=trigger,
            heartbeat_at=datetime.now(UTC),
            n_labels_at_start=n_labels,
        )
        session.add(version)
        try:
            session.flush()
        except IntegrityError:  # another server started one a moment ago
            raise Conflict("a training run is already under way; wait for it to finish") from None
        version_id = version.id
    if ctx.jobs is not None:
        ctx.jobs.enqueue("train", version_id)
    return version_id


def fail_stale_runs(ctx: Context) -> None:
    with transaction(ctx.sessions) as session:
        _fail_stale_runs(ctx, session)


def _fail_stale_runs(ctx: Context, session: Any) -> None:
    cutoff = datetime.now(UTC) - timedelta(seconds=ctx.settings.training_timeout_s)
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.stage == ModelStage.TRAINING, ModelVersion.heartbeat_at < cutoff)
        .values(stage=ModelStage.FAILED, reason="the run stopped answering (its worker died)")
    )


def run_training(ctx: Context, version_id: int, config: TrainConfig | None = None) -> None:
    """Train, evaluate, store and judge version `version_id`. Idempotent: only a run still
    marked `training` is worked on."""
    config = config or TrainConfig(target_precision=ctx.settings.target_precision)
    if not _claim(ctx, version_id):
        return  # another worker has it, or it is over: a duplicate message is harmless
    # The gate must judge against the champion in the database now, not the one this process
    # last loaded (another server may have promoted one since).
    ctx.tagger.refresh(force=True)
    parent = ctx.tagger.version
    try:
        started = time.perf_counter()
        with ctx.sessions() as session:
            labels = training_labels(session, ctx.settings)
        vocab = vocabulary(labels, ctx.settings)
        require_vocabulary(vocab, ctx.settings)
        data = build_dataset(ctx, labels, vocab)
        _heartbeat(ctx, version_id)
        result = train_head(data.x_train, data.y_train, data.x_val, data.y_val, vocab, config)
        metrics = evaluate_head(result.head, data.x_val, data.y_val) if len(data.x_val) else {}
        comparison = compare_with_champion(ctx, result.head, data)
        summary = {
            "vocabulary": vocab,
            "n_train": len(data.train_shas),
            "n_val": len(data.val_shas),
            "training_set": data.fingerprint,
            "config": config.as_dict(),
            "history": [vars(e) for e in result.history],
            "metrics": metrics,
            "comparison": comparison,
            "seconds": round(time.perf_counter() - started, 3),
        }
        card = {
            **summary,
            "backbone": ctx.tagger.backbone_id,
            "parent": parent,
            "created_at": datetime.now(UTC).isoformat(),
            "photo_ids": data.photo_ids,
            "thresholds": dict(zip(vocab, map(float, result.head.thresholds), strict=True)),
        }
        head_sha = registry.store_version_files(ctx, version_id, result.head, card)
    except Exception as exc:
        reason = exc.message if isinstance(exc, EyesError) else f"{type(exc).__name__}: {exc}"
        log.warning("training run v%s failed: %s", version_id, reason)
        _finish(ctx, version_id, ModelStage.FAILED, after=ModelStage.TRAINING, reason=reason)
        return
    _finish(
        ctx,
        version_id,
        ModelStage.CANDIDATE,
        after=ModelStage.TRAINING,
        head_sha256=head_sha,
        backbone=ctx.tagger.backbone_id,
        parent=parent,
        summary=json.dumps(summary, default=float),
    )
    if comparison["promote"]:
        registry.promote(ctx, version_id, reason=comparison["reason"])
    else:
        _finish(ctx, version_id, ModelStage.REJECTED, after=ModelStage.CANDIDATE, reason=comparison["reason"])


def _claim(ctx: Context, version_id: int) -> bool:
    """Take the run for this worker, atomically: exactly one worker trains each version."""
    me = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    with transaction(ctx.sessions) as session:
        claimed = session.execute(
            update(ModelVersion)
            .where(
                ModelVersion.id == version_id,
                ModelVersion.stage == ModelStage.TRAINING,
                ModelVersion.worker.is_(None),
            )
            .values(worker=me, heartbeat_at=datetime.now(UTC))
        ).rowcount  # type: ignore[attr-defined]
    return claimed == 1


def _heartbeat(ctx: Context, version_id: int) -> None:
    with transaction(ctx.sessions) as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.id == version_id).values(heartbeat_at=datetime.now(UTC))
        )


def _finish(ctx: Context, version_id: int, stage: ModelStage, *, after: ModelStage, **values: Any) -> None:
    """Move the run from `after` to `stage`; a run that was moved meanwhile (failed as stale,
    say) is left as it is."""
    with transaction(ctx.sessions) as session:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.id == version_id, ModelVersion.stage == after)
            .values(stage=stage, finished_at=datetime.now(UTC), **values)
        )


def compare_with_champion(ctx: Context, head: Head, data: Dataset) -> dict[str, Any]:
    """The promotion gate: top-1 accuracy of candidate and champion on the same held-out photos,
    counting only the tags both know, each choosing among those tags alone."""
    champion_scores, champion_vocab, champion_name = ctx.tagger.champion_scores(data.x_val)
    shared = sorted(set(head.vocabulary) & set(champion_vocab))
    margin = ctx.settings.promotion_margin
    base = {"champion": champion_name, "shared_tags": shared, "margin": margin}
    if not len(data.x_val):
        return {**base, "promote": False, "reason": "no held-out photos to judge the candidate on"}
    if not shared:
        return {
            **base,
            "promote": True,
            "reason": f"the champion knows none of these tags; the candidate adds {len(head.vocabulary)}",
        }
    cand_cols = [head.vocabulary.index(t) for t in shared]
    champ_cols = [champion_vocab.index(t) for t in shared]
    truth = data.y_val[:, [data.vocabulary.index(t) for t in shared]]
    rows = truth.sum(axis=1) > 0
    if not rows.any():
        return {**base, "promote": True, "reason": "no held-out photo carries a shared tag"}
    candidate_acc = _restricted_top1(head.probabilities(data.x_val)[:, cand_cols], truth, rows)
    champion_acc = _restricted_top1(champion_scores[:, champ_cols], truth, rows)
    promote = candidate_acc >= champion_acc - margin
    verdict = "promoted" if promote else "rejected"
    return {
        **base,
        "n": int(rows.sum()),
        "candidate_accuracy": candidate_acc,
        "champion_accuracy": champion_acc,
        "promote": bool(promote),
        "reason": f"{verdict}: top-1 on {len(shared)} shared tags, {int(rows.sum())} held-out photos: "
        f"candidate {candidate_acc:.1%} vs champion {champion_acc:.1%} (margin {margin:.1%})",
    }


def _restricted_top1(scores: np.ndarray, truth: np.ndarray, rows: np.ndarray) -> float:
    best = scores[rows].argmax(axis=1)
    return float(truth[rows][np.arange(len(best)), best].mean())


def labels_since_last_run(ctx: Context) -> int:
    with ctx.sessions() as session:
        last = session.scalar(
            select(ModelVersion.n_labels_at_start).order_by(ModelVersion.id.desc()).limit(1)
        )
        current = training_labels(session, ctx.settings).count
    return current - (last or 0)


def maybe_start_automatic_run(ctx: Context) -> int | None:
    """Start a run when enough new training-grade labels have arrived since the last one."""
    k = ctx.settings.auto_train_after
    if k <= 0 or labels_since_last_run(ctx) < k:
        return None
    try:
        return start_run(ctx, None, trigger="automatic")
    except Conflict:
        return None
