"""The queue interface and its embedded implementation: a thread pool inside `eyes serve`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

log = logging.getLogger(__name__)

Runner = Callable[[str, tuple[object, ...]], None]


class JobQueue(Protocol):
    def enqueue(self, task: str, *args: object) -> None:
        """Ask for `task(*args)` to run soon. Tasks are idempotent: running one twice is harmless."""

    def shutdown(self) -> None: ...


class InProcessQueue:
    """Runs tasks on a small thread pool. The same (task, args) is not queued twice at once."""

    def __init__(self, run: Runner, threads: int) -> None:
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="eyes-job")
        self._lock = threading.Lock()
        self._queued: set[tuple[str, tuple[object, ...]]] = set()
        self._futures: set[Future[None]] = set()

    def enqueue(self, task: str, *args: object) -> None:
        key = (task, args)
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)
            future = self._pool.submit(self._call, key)
            self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def _call(self, key: tuple[str, tuple[object, ...]]) -> None:
        with self._lock:
            self._queued.discard(key)
        try:
            self._run(*key)
        except Exception:  # the row stays pending; the next sweep retries it
            log.exception("job %s%r failed", *key)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until every queued task has run (tests and the CLI use this)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                return
            for future in pending:
                future.result(timeout=max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ImmediateQueue:
    """Runs each task at once, in the caller's thread: for command-line tools that wait."""

    def __init__(self, run: Runner) -> None:
        self._run = run

    def enqueue(self, task: str, *args: object) -> None:
        self._run(task, args)

    def shutdown(self) -> None:
        pass


class Sweeper:
    """Re-reads the database for pending work at start and on a timer, and queues it.

    This is what repairs a lost message or a worker that died mid-task."""

    def __init__(self, sweep: Callable[[], None], interval_s: float) -> None:
        self._sweep = sweep
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="eyes-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self._sweep()
            except Exception:
                log.exception("sweep failed")
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
