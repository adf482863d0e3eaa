"""How much one address or account may ask, and how many expensive things run at once.

Rate limits count requests in a moving window with the `limits` library: in this process's memory
by default, in Redis when `EYES_RATE_LIMIT_URL` (or a `redis://` broker) names one, so that every
server of a site shares the counters. The rules themselves are read from the settings at each call
(limits notation, `30/minute;500/hour`), so a changed setting needs no new limiter.

Password hashes and full image decodes take tens of megabytes each: they run in a few `Slots`, and
a burst waits in a short queue instead of taking the memory; past the queue or the wait, the
request is answered 503 with `Retry-After` before it has done or stored anything.

One `Limits` per Context (`build_context`), so each test's app has its own counters.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from eyes.config import Settings
from eyes.errors import Busy, TooManyRequests

log = logging.getLogger(__name__)

QUEUE_PER_SLOT = 4  # requests that may wait, per hash or largest image at once; beyond, 503


# Below this many units (pixels) a decode's memory is small enough for the heap to reuse, and
# malloc_trim would cost more (about 1.5 ms) than a 224-pixel photo's whole decode.
RELEASE_AFTER = 2_000_000


class Slots:
    """A budget of `capacity` units (password hashes; pixels of images being decoded) shared by
    the requests that need it, first come first served. A request waits only if fewer than
    `queue` others are waiting, and for `wait_s` at most; otherwise it is refused with 503 (`Busy`),
    so a burst ties up a bounded number of server threads and a bounded amount of memory."""

    def __init__(
        self, what: str, capacity: int, wait_s: float, queue: int, *, release_memory: bool = False
    ) -> None:
        self.what = what
        self.capacity = capacity
        self.queue = queue
        self.wait_s = wait_s
        self._release_memory = release_memory
        self._free = capacity
        self._line: deque[object] = deque()
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, need: int = 1, *, patient: bool = False) -> Iterator[None]:
        """Run the block with `need` units (at most the whole budget). `patient` (background
        work) waits as long as it takes, even behind a full queue."""
        need = max(1, min(need, self.capacity))
        self._acquire(need, patient)
        try:
            yield
        finally:
            with self._changed:
                self._free += need
                self._changed.notify_all()
            if self._release_memory and need >= RELEASE_AFTER:
                give_memory_back()

    def _acquire(self, need: int, patient: bool) -> None:
        busy = Busy(f"the server is busy with other {self.what}; try again in a few seconds", retry_after=2)
        deadline = None if patient else time.monotonic() + self.wait_s
        with self._changed:
            if not patient and len(self._line) >= self.queue:
                raise busy
            ticket = object()
            self._line.append(ticket)
            try:
                while not (self._line[0] is ticket and self._free >= need):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise busy
                    self._changed.wait(remaining)
                self._free -= need
            finally:
                self._line.remove(ticket)
                self._changed.notify_all()


class Limits:
    """The rate limiter and the slots of one running Eyes."""

    def __init__(self, settings: Settings) -> None:
        url = settings.resolved_rate_limit_url
        options = {"key_prefix": settings.rate_limit_prefix} if not url.startswith("memory") else {}
        self.storage = storage_from_string(url, wrap_exceptions=True, **options)
        self.window = MovingWindowRateLimiter(self.storage)
        wait = settings.busy_wait_s
        hashes, decodes = settings.max_parallel_hashes, settings.max_parallel_decodes
        # Hashes each take the same memory: one unit each. Decodes take memory by the pixel, so
        # the budget is in pixels: `max_parallel_decodes` images of the largest size accepted,
        # or many more small ones at once.
        self.hashing = Slots("sign-ins", hashes, wait, hashes * QUEUE_PER_SLOT)
        self.decoding = Slots(
            "images",
            decodes * settings.max_image_pixels,
            wait,
            decodes * QUEUE_PER_SLOT,
            release_memory=True,
        )
        tune_allocator()

    def hit(self, rule: str, name: str, *key: str, what: str) -> None:
        """Count one request against `rule` (limits notation) for `name` and `key`; 429 when the
        rule is already spent. `what` names what is counted, for the message."""
        for item in parse_many(rule):
            if not self._safely(self.window.hit, item, name, *key):
                raise self._refusal(item, name, key, what)

    def check(self, rule: str, name: str, *key: str, what: str) -> None:
        """429 when `rule` is spent for `name` and `key`, without counting this request."""
        for item in parse_many(rule):
            if not self._safely(self.window.test, item, name, *key):
                raise self._refusal(item, name, key, what)

    def count(self, rule: str, name: str, *key: str) -> None:
        """Count one more (a failure, say) without refusing anything now."""
        for item in parse_many(rule):
            self._safely(self.window.hit, item, name, *key)

    def clear(self, rule: str, name: str, *key: str) -> None:
        """Forget the count of `name` and `key` (a sign-in that succeeded clears its failures)."""
        for item in parse_many(rule):
            self._safely(self.window.clear, item, name, *key)

    def _safely(self, call: object, item: RateLimitItem, *key: str) -> bool:
        # A shared store that is down must not take the site down with it: the limit is open
        # until it is back (the slots still bound the cost of a burst), and the log says so.
        try:
            result = call(item, *key)  # type: ignore[operator]
        except StorageError as exc:
            log.warning("rate limits are not enforced: the counter store failed (%s)", exc.storage_error)
            return True
        return result is not False

    def _refusal(self, item: RateLimitItem, name: str, key: tuple[str, ...], what: str) -> TooManyRequests:
        try:
            reset = self.window.get_window_stats(item, name, *key).reset_time
        except StorageError:
            reset = time.time() + item.get_expiry()
        retry_after = max(1, math.ceil(reset - time.time()))
        return TooManyRequests(
            f"too many {what} (at most {item.amount} per {_period(item)}); try again in {retry_after} s",
            retry_after=retry_after,
        )


def _period(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


# Memory that big decodes took goes back to the system.
#
# Pillow keeps an image in blocks of up to 16 MB from malloc. glibc raises its mmap threshold
# to the size of the last mmapped block freed (up to 32 MB), so after the first big image its
# blocks come from the heap arenas, which keep the freed pages: the server's memory then only grew
# (2.5 -> 3.7 GB over six large uploads, never given back). A fixed threshold keeps large blocks
# on mmap, returned to the system when freed; malloc_trim returns what the arenas still hold.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 1024 * 1024
_libc: ctypes.CDLL | None = None
_tuned = False


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name)
            libc.malloc_trim  # noqa: B018 (glibc only)
            libc.mallopt  # noqa: B018
        except (OSError, AttributeError, TypeError):
            return None
        _libc = libc
    return _libc


def tune_allocator() -> None:
    """Once per process: large allocations on mmap, so freed images leave the process."""
    global _tuned
    libc = _glibc()
    if libc is not None and not _tuned:
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        _tuned = True


def give_memory_back() -> None:
    """Return the heap's free pages to the system (after a big decode)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
