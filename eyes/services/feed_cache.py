"""The public feed's pages as anonymous visitors see them, kept for a moment.

Under load most requests are anonymous and ask for the same first pages, and reading one from the
database cost several times what serving it does. A page is kept at most `ttl` seconds, and any
commit through this process's sessions empties the cache at once, so what one does here shows at
once here; what another process writes (a second server, `eyes import`) shows within `ttl`.

A commit bumps the generation before and after it lands: a reader that started before it ends
with a different generation than it began with, and keeps nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


class FeedCache(Generic[T]):
    def __init__(self, ttl_s: float, size: int = 64, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self.generation = 0

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Empty the cache around every commit of `sessions`."""
        event.listen(sessions, "before_commit", self._changed)
        event.listen(sessions, "after_commit", self._changed)

    def _changed(self, _session: Any) -> None:
        with self._lock:
            self.generation += 1
            self._pages.clear()

    def get_or_read(self, key: Hashable, read: Callable[[], T]) -> T:
        if self.ttl_s <= 0:
            return read()
        now = self._clock()
        with self._lock:
            kept = self._pages.get(key)
            if kept is not None and now - kept[0] < self.ttl_s:
                return kept[1]
            began = self.generation
        value = read()
        with self._lock:
            if self.generation == began:  # nothing committed here while it was read
                self._pages[key] = (now, value)
                self._pages.move_to_end(key)
                while len(self._pages) > self.size:
                    self._pages.popitem(last=False)
        return value
