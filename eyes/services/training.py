"""The learning loop's training run: labels -> data set -> evidence -> model -> gate -> promotion.

Every label counts: the served model is fitted on every training-grade label. What judges it (the
promotion gate, the per-tag thresholds, the metrics on the model page) comes from photos a model
did not train on: folds by content hash, each scored by a model fitted on the other folds (for a
deep run, one fold, since each fit takes minutes), then one final fit on everything.

A run is a `model_versions` row. It is `training` while under way, and only becomes usable
(`candidate`) once its files are completely written, so a run killed in the middle leaves the
champion in service and nothing half-written marked usable. While a run is under way a thread of
its worker beats its heartbeat (`heartbeat`), however long one step takes; a run whose heartbeat
stops (its process died) is failed by the sweep.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError

from eyes.config import Settings
from eyes.context import Context
from eyes.db.models import Embedding, ModelVersion, Photo, User, as_utc
from eyes.db.session import transaction
from eyes.domain import Account, ModelStage, TrainingDepth, version_name
from eyes.errors import BadRequest, Conflict, EyesError
from eyes.ml.baseline import logistic_regression_top1
from eyes.ml.head import Head
from eyes.ml.metrics import top1
from eyes.ml.train import (
    TrainConfig,
    calibrate_thresholds,
    evaluate_scores,
    out_of_fold,
    pseudo_labels,
    train_head,
)
from eyes.services import deep_training, label_clock, registry
from eyes.services.gate import compare_with_champion
from eyes.services.labels import (
    Labels,
    class_vocabulary,
    countable_labels,
    require_vocabulary,
    teaching_photos,
    training_labels,
)
from eyes.services.training_set import Dataset, Evidence, Trained, build_dataset
from eyes.services.vocabulary import hierarchy

log = logging.getLogger(__name__)
# A run beats this many times per `training_timeout_s`: nine beats in a row may fail (a busy or
# unreachable database) before the sweep takes a healthy run for a dead one.
BEATS_PER_TIMEOUT = 10


def start_run(
    ctx: Context, user: Account | None, trigger: str = "manual", depth: TrainingDepth = TrainingDepth.HEAD
) -> int:
    """Record a new run (one at a time) and queue it; returns the version id."""
    with transaction(ctx.sessions) as session:
        _fail_stale_runs(ctx, session)
        session.flush()
        running = session.scalar(_under_way())
        if running is not None:
            raise Conflict(f"training run {running.name} is already under way; wait for it to finish")
        n_labels = _countable(ctx, session)
        version = ModelVersion(
            stage=ModelStage.TRAINING,
            created_by_id=user.id if user else None,
            trigger=trigger,
            depth=depth,
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


def _under_way() -> Select[ModelVersion]:
    """The runs under way: one at most (a unique index on the stage sees to that)."""
    return select(ModelVersion).where(ModelVersion.stage == ModelStage.TRAINING)


def runs_under_way(ctx: Context) -> list[ModelVersion]:
    """The versions whose run is under way (the sweep hands them to a worker again)."""
    with ctx.sessions() as session:
        return list(session.scalars(_under_way()))


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
    depth = _claim(ctx, version_id)
    if depth is None:
        return  # another worker has it, or it is over: a duplicate message is harmless
    with heartbeat(ctx, version_id):
        try:
            # The gate must judge against the champion in the database now, not the one this
            # process last loaded (another server may have promoted one since).
            champion = ctx.tagger.champion(force_refresh=True)
            started = time.perf_counter()
            with ctx.sessions() as session:
                labels = training_labels(session, ctx.settings)
                vocab = class_vocabulary(session, labels, ctx.settings, known=set(champion.vocabulary))
                tree = hierarchy(session)
            require_vocabulary(vocab, ctx.settings)
            data = build_dataset(ctx, labels, vocab.classes, tree)
            trained = (
                _fit_deep(ctx, data, config) if depth == TrainingDepth.DEEP else _fit_head(ctx, data, config)
            )
            evidence = trained.evidence
            head = trained.head
            head.thresholds = calibrate_thresholds(
                evidence.scores[evidence.covered], data.y[evidence.covered], config.target_precision
            )
            metrics = (
                evaluate_scores(
                    evidence.scores[evidence.covered],
                    data.y[evidence.covered],
                    data.vocabulary,
                    head.thresholds,
                    data.leaves,
                )
                if evidence.covered.any()
                else {}
            )
            comparison = compare_with_champion(ctx, champion, data, evidence, head)
            summary = {
                "depth": depth.value,
                "vocabulary": data.vocabulary,
                "waiting_for_approval": vocab.waiting,
                "n_labelled_photos": len(data.shas),
                "n_labels": int(data.decided.sum()),
                "n_positive": int(data.y.sum()),
                "n_negative": int((data.decided & (data.y == 0)).sum()),
                "n_held_out": int(evidence.covered.sum()),
                "folds": ctx.settings.training_folds,
                "training_set": data.fingerprint,
                "config": config.as_dict(),
                "history": trained.history,
                **trained.notes,
                "metrics": metrics,
                "baseline": baseline_on_fold(data, evidence),
                "comparison": comparison,
                "seconds": round(time.perf_counter() - started, 3),
            }
            card = {
                **summary,
                "backbone": ctx.tagger.backbone_id,
                "parent": champion.name,
                "created_at": datetime.now(UTC).isoformat(),
                "photo_ids": data.photo_ids,
                "thresholds": dict(zip(data.vocabulary, map(float, head.thresholds), strict=True)),
            }
            head_sha = registry.store_version_files(ctx, version_id, head, card, data.shas, trained.files)
        except Exception as exc:
            reason = exc.message if isinstance(exc, EyesError) else f"{type(exc).__name__}: {exc}"
            log.warning("training run %s failed: %s", version_name(version_id), reason)
            _finish(ctx, version_id, ModelStage.FAILED, after=ModelStage.TRAINING, reason=reason)
            return
        finished = _finish(
            ctx,
            version_id,
            ModelStage.CANDIDATE,
            after=ModelStage.TRAINING,
            head_sha256=head_sha,
            backbone=ctx.tagger.backbone_id,
            parent=champion.name,
            summary=json.dumps(summary, default=float),
        )
    if not finished:  # the sweep failed it meanwhile (silent too long): what it made is not used
        log.warning(
            "training run %s was failed while it ran; its version is not judged", version_name(version_id)
        )
        return
    if comparison["promote"]:
        registry.promote(ctx, version_id, reason=comparison["reason"])
    else:
        _finish(ctx, version_id, ModelStage.REJECTED, after=ModelStage.CANDIDATE, reason=comparison["reason"])


def _fit_head(ctx: Context, data: Dataset, config: TrainConfig) -> Trained:
    """Held-out scores from every fold (seconds each), then the served head on every label.

    Where the platform holds unlabelled photos, each fold is also fitted again with the ones its
    head is sure of; those pseudo-labels are kept unless the held-out evidence says they hurt (beyond its noise)."""
    w = data.weights(config)
    unlabelled = unlabelled_embeddings(ctx, set(data.shas), config.max_unlabelled)
    k = len(data.vocabulary)
    history: list[dict[str, Any]] = []

    def fit(x: np.ndarray, y: np.ndarray, weights: np.ndarray, validation: Any = None) -> Head:
        result = train_head(
            x,
            y,
            weights,
            data.vocabulary,
            config,
            validation=validation,
            record_history=validation is not None,
        )
        history.extend(vars(e) for e in result.history)
        return result.head

    def with_pseudo_labels(head: Head, x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> Head:
        px, py, pw = pseudo_labels(head, unlabelled, data.leaves, data.ancestors, config)
        return fit(np.concatenate([x, px]), np.concatenate([y, py]), np.concatenate([weights, pw]))

    def fit_predict(train: np.ndarray, held: np.ndarray) -> np.ndarray:
        # The curves on the model page come from the first fold's fit, measured each epoch on the
        # photos it does not train on (the final fit has none left to measure on).
        curves = (data.x[held], data.y[held]) if not history else None
        head = fit(data.x[train], data.y[train], w[train], curves)
        plain = head.probabilities(data.x[held])
        if not len(unlabelled):
            return plain
        pseudo = with_pseudo_labels(head, data.x[train], data.y[train], w[train])
        return np.concatenate([plain, pseudo.probabilities(data.x[held])], axis=1)

    width = 2 * k if len(unlabelled) else k
    both, covered = out_of_fold(data.folds, fit_predict, width, list(range(ctx.settings.training_folds)))
    scores, use_pseudo, notes = both[:, :k], False, {}
    final = fit(data.x, data.y, w)
    if len(unlabelled) and covered.any():
        leaf_y = data.y[covered][:, data.leaves]
        rows = leaf_y.sum(axis=1) > 0
        without = top1(both[covered][rows][:, data.leaves], leaf_y[rows])
        with_them = top1(both[covered][rows][:, [k + j for j in data.leaves]], leaf_y[rows])
        # A difference within the noise of this many photos is a tie, and a tie keeps them.
        noise = float(np.sqrt(without * (1 - without) / max(1, int(rows.sum()))))
        use_pseudo = with_them >= without - noise
        notes = {"accuracy_with": with_them, "accuracy_without": without, "noise": noise}
        if use_pseudo:
            scores = both[:, k:]
            final = with_pseudo_labels(final, data.x, data.y, w)
    trained = Trained(final, history, Evidence(scores, covered), {})
    trained.notes["unlabelled"] = {"available": len(unlabelled), "used": bool(use_pseudo), **notes}
    return trained


def unlabelled_embeddings(ctx: Context, labelled: set[str], limit: int) -> np.ndarray:
    """Stored embeddings of photos that may teach but carry no label the run uses (at most `limit`).

    Only established accounts' photos: a burst of uploads from accounts made for the purpose
    would otherwise steer the pseudo-labels."""
    established = datetime.now(UTC) - timedelta(days=ctx.settings.trust_min_account_age_days)
    with ctx.sessions() as session:
        rows = session.execute(
            select(Embedding.sha256, Embedding.vector)
            .join(Photo, Photo.sha256 == Embedding.sha256)
            .join(User, User.id == Photo.owner_id)
            .where(
                Embedding.backbone == ctx.tagger.backbone_id,
                teaching_photos(),
                User.created_at <= established,
            )
            .distinct()
            .order_by(Embedding.sha256)
            .limit(limit + len(labelled))
        ).all()
    vectors = [np.frombuffer(v, dtype="<f4") for sha, v in rows if sha not in labelled][:limit]
    return np.stack(vectors) if vectors else np.zeros((0, 1280), dtype=np.float32)


def _fit_deep(ctx: Context, data: Dataset, config: TrainConfig) -> Trained:
    return deep_training.fit(ctx, data, config)


def baseline_on_fold(data: Dataset, evidence: Evidence) -> dict[str, Any]:
    """The frozen-embedding logistic regression on the same labels, judged on the same held-out
    photos as the candidate: fold 0, which neither trained on."""
    held = (data.folds == 0) & evidence.covered
    leaf_y = data.y[:, data.leaves]
    train = (data.folds != 0) & (leaf_y.sum(axis=1) > 0)
    test = held & (leaf_y.sum(axis=1) > 0)
    if not test.any():
        return {}
    lr = logistic_regression_top1(data.x[train], leaf_y[train].argmax(axis=1), data.x[test], leaf_y[test])
    candidate = top1(evidence.scores[test][:, data.leaves], leaf_y[test])
    return {"n": int(test.sum()), "candidate_accuracy": candidate, "logistic_regression_accuracy": lr}


def _claim(ctx: Context, version_id: int) -> TrainingDepth | None:
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
        if claimed != 1:
            return None
        return session.get_one(ModelVersion, version_id).depth


@contextmanager
def heartbeat(ctx: Context, version_id: int) -> Iterator[None]:
    """Beat run `version_id`'s heartbeat from a background thread for as long as the block runs,
    whatever its steps do; the thread is stopped and joined however the block ends.

    The thread is a daemon: when the process dies, so do the beats, and the sweep finds the run
    stale. A beat that fails is logged and tried again at the next one. A run still under way
    after `training_max_s` is marked failed and beats no more (a step that hangs would otherwise
    beat for ever and hold the one run slot); what it makes after that is not used."""
    # Never a busy loop, even with a timeout of nothing.
    interval = max(ctx.settings.training_timeout_s / BEATS_PER_TIMEOUT, 0.01)
    deadline = time.monotonic() + ctx.settings.training_max_s
    name = version_name(version_id)
    stop = threading.Event()

    def beat_until_stopped() -> None:
        while not stop.wait(interval):
            if time.monotonic() > deadline:
                reason = f"the run took longer than {ctx.settings.training_max_s:.0f} s (EYES_TRAINING_MAX_S)"
                log.warning("training run %s: %s; stopped", name, reason)
                _finish(ctx, version_id, ModelStage.FAILED, after=ModelStage.TRAINING, reason=reason)
                return
            try:
                _beat(ctx, version_id)
            except Exception:  # the database or its pool: a missed beat, not a dead run
                log.warning(
                    "training run %s: heartbeat failed, next try in %.1f s", name, interval, exc_info=True
                )

    thread = threading.Thread(target=beat_until_stopped, name=f"eyes-heartbeat-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _beat(ctx: Context, version_id: int) -> None:
    """One beat, its own short transaction: the run is alive now (unless it is over)."""
    with transaction(ctx.sessions) as session:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.id == version_id, ModelVersion.stage == ModelStage.TRAINING)
            .values(heartbeat_at=datetime.now(UTC))
        )


def _finish(ctx: Context, version_id: int, stage: ModelStage, *, after: ModelStage, **values: Any) -> bool:
    """Move the run from `after` to `stage`; a run that was moved meanwhile (failed as stale,
    say) is left as it is. Returns whether it was moved."""
    with transaction(ctx.sessions) as session:
        moved = session.execute(
            update(ModelVersion)
            .where(ModelVersion.id == version_id, ModelVersion.stage == after)
            .values(stage=stage, finished_at=datetime.now(UTC), **values)
        ).rowcount  # type: ignore[attr-defined]
    return bool(moved == 1)


@dataclass(frozen=True)
class LabelGrowth:
    """What decides an automatic run, read once: labels that may teach, counted as runs count them."""

    since_last: int  # since the last run of any depth
    since_last_deep: int  # since the last deep run that did not fail
    yes_labels: int  # over every tag with one
    tags: int  # with a yes-label

    @property
    def per_class(self) -> float:
        """Yes-labels per tag, on average."""
        return self.yes_labels / self.tags if self.tags else 0.0

    def at_most(self, more: int) -> LabelGrowth:
        """The most this can be after `more` labels changed: each adds a label, or takes away the
        only yes of a tag (fewer tags raise the average)."""
        return LabelGrowth(
            self.since_last + more,
            self.since_last_deep + more,
            self.yes_labels + more,
            max(self.tags - more, 1),
        )


def label_growth(ctx: Context, labels: Labels | None = None) -> LabelGrowth:
    """`labels`: the training labels when the caller has read them already."""
    known = set(ctx.tagger.champion().vocabulary)
    with ctx.sessions() as session:
        labels = labels or training_labels(session, ctx.settings)
        current = countable_labels(session, labels, ctx.settings, known)
        newest = select(ModelVersion.n_labels_at_start).order_by(ModelVersion.id.desc()).limit(1)
        last = session.scalar(newest) or 0
        last_deep = (
            session.scalar(
                newest.where(
                    ModelVersion.depth == TrainingDepth.DEEP, ModelVersion.stage != ModelStage.FAILED
                )
            )
            or 0
        )
    counts = labels.positive_counts()
    return LabelGrowth(current - last, current - last_deep, sum(counts.values()), len(counts))


@dataclass(frozen=True)
class _Counted:
    """The label growth as last counted, and what it was counted at."""

    clock: label_clock.Reading
    runs: tuple[Any, ...]  # the newest run, how many runs failed, the champion
    at: float  # time.monotonic()
    growth: LabelGrowth
    reach: int  # the most labels one decision can add (vocabulary.Hierarchy.reach)


def _runs(ctx: Context) -> tuple[Any, ...]:
    """What moves the baseline of the growth: a new run, a run failed (a deep run that failed no
    longer counts as the last deep run), another champion."""
    with ctx.sessions() as session:
        newest, failed = session.execute(
            select(
                func.max(ModelVersion.id),
                func.count(ModelVersion.id).filter(ModelVersion.stage == ModelStage.FAILED),
            )
        ).one()
    return newest, failed, ctx.tagger.version


def automatic_depth(
    settings: Settings, growth: LabelGrowth, hours_since_deep: Callable[[], float]
) -> TrainingDepth | None:
    """The rule of automatic runs: deep when many labels arrived since the last deep run (or it
    is old) and there are enough per class, since deep runs pay off only then (with few, a head
    on frozen features wins); a head run when enough arrived since the last run of any depth."""
    deep_due = (settings.deep_train_after > 0 and growth.since_last_deep >= settings.deep_train_after) or (
        settings.deep_train_every_h > 0
        and growth.since_last_deep > 0
        and hours_since_deep() >= settings.deep_train_every_h
    )
    if deep_due and growth.per_class >= settings.deep_min_labels_per_tag:
        return TrainingDepth.DEEP
    if settings.auto_train_after > 0 and growth.since_last >= settings.auto_train_after:
        return TrainingDepth.HEAD
    return None


def growth_if_a_run_may_be_due(ctx: Context, hours_since_deep: Callable[[], float]) -> LabelGrowth | None:
    """The label growth, or None when it cannot have reached an automatic run: the labels are
    counted again only when the decisions since the last count, each worth at most `reach`
    labels, could have taken the growth to a threshold, or when anything else they rest on moved
    (label_clock). A stream of votes from accounts nobody trusts costs a count per threshold's
    worth of votes, not one per sweep."""
    clock, runs, now = label_clock.read(ctx), _runs(ctx), time.monotonic()
    kept = ctx.label_memo.get("growth")
    if (
        isinstance(kept, _Counted)
        and (kept.clock.ticks, kept.runs) == (clock.ticks, runs)
        and now - kept.at < label_clock.RECHECK_S
    ):
        if clock.decisions == kept.clock.decisions:
            return kept.growth
        most = (clock.decisions - kept.clock.decisions) * kept.reach
        if automatic_depth(ctx.settings, kept.growth.at_most(most), hours_since_deep) is None:
            return None
    growth = label_growth(ctx)
    with ctx.sessions() as session:
        reach = hierarchy(session).reach()
    ctx.label_memo["growth"] = _Counted(clock, runs, now, growth, reach)
    return growth


def _countable(ctx: Context, session: Any) -> int:
    known = set(ctx.tagger.champion().vocabulary)
    return countable_labels(session, training_labels(session, ctx.settings), ctx.settings, known)


def _hours_since_deep_run(ctx: Context) -> float:
    with ctx.sessions() as session:
        last = session.scalar(
            select(func.max(ModelVersion.created_at)).where(
                ModelVersion.depth == TrainingDepth.DEEP, ModelVersion.stage != ModelStage.FAILED
            )
        )
    if last is None:
        return float("inf")
    return (datetime.now(UTC) - (as_utc(last) or last)).total_seconds() / 3600


def maybe_start_automatic_run(ctx: Context) -> int | None:
    """Start a run when enough new training-grade labels have arrived since the last one."""
    hours_since_deep = partial(_hours_since_deep_run, ctx)
    growth = growth_if_a_run_may_be_due(ctx, hours_since_deep)
    depth = None if growth is None else automatic_depth(ctx.settings, growth, hours_since_deep)
    if depth is None:
        return None
    try:
        return start_run(ctx, None, trigger="automatic", depth=depth)
    except Conflict:
        return None


def parse_depth(raw: str) -> TrainingDepth:
    try:
        return TrainingDepth(raw.lower())
    except ValueError:
        raise BadRequest(f"depth is 'head' or 'deep', not {raw!r}") from None
