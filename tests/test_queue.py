"""The embedded queue and the sweeper: what lets a pending photo or a lost message be repaired by
re-reading the database (ARCHITECTURE.md, "The database is the truth about work")."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from eyes.db.models import Photo
from eyes.db.session import transaction
from eyes.domain import TaggingState
from eyes.jobs.queue import ImmediateQueue, InProcessQueue, Sweeper
from eyes.jobs.tasks import sweep
from tests.conftest import CALTECH, context_of, sign_up, upload, wait_for_tagging


class Recorder:
    """A queue that only writes down what it was asked to run."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, tuple[object, ...]]] = []

    def enqueue(self, task: str, *args: object) -> None:
        self.tasks.append((task, args))

    def shutdown(self) -> None:
        pass


@pytest.fixture
def queue() -> Iterator[tuple[InProcessQueue, list[tuple[str, tuple[object, ...]]], threading.Event]]:
    """A one-thread queue whose tasks wait for `gate` and record their runs."""
    runs: list[tuple[str, tuple[object, ...]]] = []
    gate = threading.Event()

    def run(task: str, args: tuple[object, ...]) -> None:
        gate.wait(10)
        if task == "fail":
            raise RuntimeError("a task that fails")
        runs.append((task, args))

    q = InProcessQueue(run, threads=1)
    yield q, runs, gate
    gate.set()
    q.shutdown()


def test_the_same_task_queued_twice_at_once_runs_once(queue) -> None:  # type: ignore[no-untyped-def]
    q, runs, gate = queue
    q.enqueue("busy", 0)  # holds the only thread, so what follows waits in the queue
    for _ in range(3):
        q.enqueue("tag_photo", 7)
    q.enqueue("tag_photo", 8)
    gate.set()
    q.wait_idle(10)
    assert runs == [("busy", (0,)), ("tag_photo", (7,)), ("tag_photo", (8,))]
    q.enqueue("tag_photo", 7)  # once run, it may be asked for again
    q.wait_idle(10)
    assert runs[-1] == ("tag_photo", (7,))


def test_a_failing_task_is_logged_and_the_queue_goes_on(queue, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    q, runs, gate = queue
    gate.set()
    q.enqueue("fail", 1)
    q.enqueue("tag_photo", 2)
    q.wait_idle(10)
    assert runs == [("tag_photo", (2,))]
    assert "job fail(1,) failed" in caplog.text, "the failure names the task"


def test_the_immediate_queue_runs_in_the_callers_thread() -> None:
    threads: list[threading.Thread] = []
    ImmediateQueue(lambda task, args: threads.append(threading.current_thread())).enqueue("tag_photo", 1)
    assert threads == [threading.current_thread()]


def test_the_sweeper_sweeps_at_start_on_its_timer_and_after_a_failure() -> None:
    times: list[float] = []

    def flaky() -> None:
        times.append(time.monotonic())
        if len(times) == 2:
            raise RuntimeError("the database is restarting")

    sweeper = Sweeper(flaky, interval_s=0.05)
    started = time.monotonic()
    sweeper.start()
    deadline = started + 10
    while len(times) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    sweeper.stop()
    assert len(times) >= 4, "a failed sweep does not stop the next ones"
    assert times[0] - started < 1, "the first sweep runs at start, not after an interval"
    assert all(b - a >= 0.04 for a, b in zip(times, times[1:], strict=False)), "then on the timer"
    stopped = len(times)
    time.sleep(0.15)
    assert len(times) == stopped, "stop() ends the sweeps"


def test_a_sweep_queues_each_photo_the_database_says_is_pending(client: TestClient) -> None:
    sign_up(client, "sam")
    ids = [upload(client, path)["id"] for path in sorted((CALTECH / "airplanes").iterdir())[:3]]
    wait_for_tagging(client)
    ctx = context_of(client)
    with transaction(ctx.sessions) as session:  # as if the worker died, or the message was lost
        session.execute(
            update(Photo).where(Photo.public_id.in_(ids[:2])).values(tagging=TaggingState.PENDING)
        )
        pending = sorted(session.scalars(select(Photo.id).where(Photo.public_id.in_(ids[:2]))))
    recorder = Recorder()
    real, ctx.jobs = ctx.jobs, recorder
    try:
        sweep(ctx)
    finally:
        ctx.jobs = real
    assert sorted(args[0] for task, args in recorder.tasks if task == "tag_photo") == pending
    assert all(task != "train" for task, _ in recorder.tasks), "no run is under way"
