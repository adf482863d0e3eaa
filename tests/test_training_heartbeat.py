"""A training run's heartbeat beats from its own thread while the run is under way, however long one
step takes, and stops when the run ends; a run whose beats stopped is failed by the sweep
(tests/test_learning.py: a killed worker). Fast tier: the stand-in backbone."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import ModelVersion, User, as_utc
from eyes.db.session import transaction
from eyes.domain import ModelStage
from eyes.jobs.queue import ImmediateQueue
from eyes.jobs.tasks import run_task, sweep
from eyes.services import training, training_set
from eyes.services.importer import import_tree
from tests.conftest import LEARN_AT_ONCE
from tests.test_learning import labelled_tree

TIMEOUT_S = 1.0  # the staleness limit of these tests: beats every 0.1 s
INTERVAL_S = TIMEOUT_S / training.BEATS_PER_TIMEOUT


@pytest.fixture
def ctx(settings: Settings, tmp_path: Path) -> Iterator[Context]:
    context = build_context(settings.model_copy(update=LEARN_AT_ONCE))
    context.jobs = ImmediateQueue(partial(run_task, context))
    with transaction(context.sessions) as session:  # an owner who never signs in needs no password
        session.add(User(username="owner", password_hash="-", is_admin=True))
    import_tree(context, labelled_tree(tmp_path, 6), owner="owner", tags_from_folders=True, progress=False)
    context.settings = context.settings.model_copy(update={"training_timeout_s": TIMEOUT_S})
    yield context
    context.close()


def run_under_way(ctx: Context) -> tuple[int, datetime] | None:
    """The run under way and its last beat, as the sweep sees them."""
    runs = training.runs_under_way(ctx)
    if not runs:
        return None
    heartbeat = as_utc(runs[0].heartbeat_at)
    assert heartbeat is not None
    return runs[0].id, heartbeat


def stage_of(ctx: Context, version_id: int) -> tuple[ModelStage, str | None]:
    with ctx.sessions() as session:
        version = session.get_one(ModelVersion, version_id)
        return version.stage, version.reason


def heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("eyes-heartbeat-")]


def slow_embeddings(
    ctx: Context, seen: list[tuple[int, datetime] | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Make the run's embedding step last twice the staleness limit, sweeping as the sweeper
    would every half limit, and record what each sweep left under way."""
    real = training_set.embeddings_for

    def embeddings_for(*args: Any, **kwargs: Any) -> Any:
        seen.append(run_under_way(ctx))
        for _ in range(4):
            time.sleep(TIMEOUT_S / 2)
            sweep(ctx)
            seen.append(run_under_way(ctx))
        return real(*args, **kwargs)

    monkeypatch.setattr(training_set, "embeddings_for", embeddings_for)


def test_a_long_step_keeps_beating_and_the_sweep_leaves_the_run_alone(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, datetime] | None] = []
    slow_embeddings(ctx, seen, monkeypatch)
    version_id = training.start_run(ctx, None)
    stage, reason = stage_of(ctx, version_id)
    assert all(s is not None and s[0] == version_id for s in seen), (
        f"a sweep during the step took the run for dead: {stage}, {reason}"
    )
    assert stage == ModelStage.CHAMPION, reason
    beats = [s[1] for s in seen if s is not None]
    assert beats[-1] > beats[0], "the heartbeat advanced while the step ran"
    assert not heartbeat_threads()


def test_a_run_that_stops_beating_is_failed_and_stays_failed(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that goes silent (here alive, its beats lost) is failed by the sweep; when it
    finishes after all, the verdict stands and the run ends quietly (it used to go on to promote
    the failed version, which the registry refuses, and end in an error)."""
    seen: list[tuple[int, datetime] | None] = []
    slow_embeddings(ctx, seen, monkeypatch)
    monkeypatch.setattr(training, "_beat", lambda c, v: None)
    version_id = training.start_run(ctx, None)
    assert seen[0] is not None and seen[-1] is None, "the sweep took the silent run for dead"
    assert stage_of(ctx, version_id) == (ModelStage.FAILED, "the run stopped answering (its worker died)")
    assert ctx.tagger.champion(force_refresh=True).name != f"v{version_id}"
    assert not heartbeat_threads()


def test_a_beat_the_database_refuses_is_logged_and_tried_again(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[int, datetime] | None] = []
    slow_embeddings(ctx, seen, monkeypatch)
    real = training._beat
    refusals = [2]

    def flaky_beat(context: Context, version_id: int) -> None:
        if refusals[0]:
            refusals[0] -= 1
            raise OperationalError("UPDATE model_versions", {}, Exception("database is locked"))
        real(context, version_id)

    monkeypatch.setattr(training, "_beat", flaky_beat)
    with caplog.at_level(logging.WARNING, logger="eyes.services.training"):
        version_id = training.start_run(ctx, None)
    assert stage_of(ctx, version_id)[0] == ModelStage.CHAMPION, stage_of(ctx, version_id)
    assert all(s is not None for s in seen), "two refused beats did not make the run look dead"
    assert sum("heartbeat failed" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.parametrize("ending", ["succeeds", "fails", "raises"])
def test_the_heartbeat_stops_when_the_run_ends(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    beats: list[float] = []
    real = training._beat
    monkeypatch.setattr(training, "_beat", lambda c, v: (beats.append(time.monotonic()), real(c, v)))
    real_embeddings = training_set.embeddings_for

    def embeddings_for(*args: Any, **kwargs: Any) -> Any:
        time.sleep(5 * INTERVAL_S)  # long enough for a few beats
        if ending == "fails":  # caught by the run: marked failed, with the reason
            raise MemoryError("out of memory in the middle")
        return real_embeddings(*args, **kwargs)

    monkeypatch.setattr(training_set, "embeddings_for", embeddings_for)
    real_finish = training._finish

    def finish(c: Context, v: int, stage: ModelStage, **values: Any) -> bool:
        if ending == "raises" and stage == ModelStage.CANDIDATE:  # after the steps: not caught
            raise RuntimeError("the database went away as the run was filed")
        return real_finish(c, v, stage, **values)

    monkeypatch.setattr(training, "_finish", finish)
    if ending == "raises":
        with pytest.raises(RuntimeError):
            training.start_run(ctx, None)
        version_id = max(training.runs_under_way(ctx), key=lambda v: v.id).id
    else:
        version_id = training.start_run(ctx, None)
    expected = {"succeeds": ModelStage.CHAMPION, "fails": ModelStage.FAILED, "raises": ModelStage.TRAINING}
    assert stage_of(ctx, version_id)[0] == expected[ending], stage_of(ctx, version_id)
    assert beats, "it beat while the run was under way"
    assert not heartbeat_threads(), "the beating thread was stopped and joined"
    after = len(beats)
    time.sleep(5 * INTERVAL_S)
    assert len(beats) == after, "no beat after the run ended"
    if ending == "raises":  # a run left `training` by a crash is the sweep's once silent too long
        time.sleep(TIMEOUT_S)
        training.fail_stale_runs(ctx)
        assert stage_of(ctx, version_id)[0] == ModelStage.FAILED


def test_a_run_that_hangs_is_stopped_after_training_max_s(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beating from its own thread, a run stuck in one step would beat for ever and hold the only
    run slot: after `training_max_s` it is failed with the reason, beats no more, and what it
    makes once the step comes back is not used."""
    ctx.settings = ctx.settings.model_copy(update={"training_max_s": 5 * INTERVAL_S})
    champion_before = ctx.tagger.champion(force_refresh=True).name
    beats: list[float] = []
    real_beat = training._beat
    monkeypatch.setattr(training, "_beat", lambda c, v: (beats.append(time.monotonic()), real_beat(c, v)))
    real = training_set.embeddings_for
    stopped: list[tuple[ModelStage, str | None]] = []

    def hung(*args: Any, **kwargs: Any) -> Any:
        time.sleep(3 * TIMEOUT_S)  # six times the limit
        stopped.append(stage_of(ctx, version[0]))  # as it stood while the step hung
        return real(*args, **kwargs)

    version: list[int] = []
    real_claim = training._claim
    monkeypatch.setattr(training, "_claim", lambda c, v: (version.append(v), real_claim(c, v))[1])
    monkeypatch.setattr(training_set, "embeddings_for", hung)
    version_id = training.start_run(ctx, None)

    stage, reason = stopped[0]
    assert stage == ModelStage.FAILED and "took longer than" in (reason or ""), "failed while it hung"
    assert len(beats) <= 5, "no beat after the limit"
    assert training.runs_under_way(ctx) == [], "the slot is free for the next run"
    assert stage_of(ctx, version_id)[0] == ModelStage.FAILED, "what it made later is not used"
    assert ctx.tagger.champion(force_refresh=True).name == champion_before
    assert not heartbeat_threads()


def test_a_champion_that_cannot_be_loaded_fails_the_run_at_once(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not left `training` for the sweep to find a timeout later: failed now, with the reason."""

    real = ctx.tagger.champion

    def champion(force_refresh: bool = False) -> Any:
        if force_refresh:  # the run's own load of the champion in the database now
            raise RuntimeError("the champion's files cannot be read")
        return real()

    monkeypatch.setattr(ctx.tagger, "champion", champion)
    version_id = training.start_run(ctx, None)
    stage, reason = stage_of(ctx, version_id)
    assert stage == ModelStage.FAILED and "cannot be read" in (reason or "")
    assert not heartbeat_threads()
