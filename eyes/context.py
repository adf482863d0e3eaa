"""The parts of a running Eyes, built once per process and handed to the services."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from threadpoolctl import threadpool_limits

from eyes.config import Settings
from eyes.db.migrate import upgrade
from eyes.db.session import make_engine, make_sessionmaker
from eyes.services.feed_cache import FeedCache
from eyes.services.limits import Limits
from eyes.storage import BlobStore, open_blob_store

if TYPE_CHECKING:
    from eyes.jobs.queue import JobQueue
    from eyes.ml.faces import FaceFinder
    from eyes.services.serving import ServingModels
    from eyes.services.similar_index import SimilarIndex


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
    limits: Limits  # rate limits and the slots for hashing and decoding (services/limits.py)
    feed_cache: FeedCache[Any]  # anonymous visitors' pages of the public feed (services/feed_cache.py)
    jobs: JobQueue | None = None  # set by whoever runs work: the server, a worker, the CLI
    # Monotonic time of this process's last orphan sweep; a start counts as one, so that starting
    # (every server, every worker) never lists the whole blob store.
    storage_swept_at: float = field(default_factory=time.monotonic)
    # What this process computed from the labels, by purpose, with what it was computed at
    # (services/label_clock.py, and the automatic-run check in services/training.py).
    label_memo: dict[str, Any] = field(default_factory=dict, repr=False)
    _tagger: ServingModels | None = field(default=None, repr=False)
    _similar: SimilarIndex | None = field(default=None, repr=False)
    _faces: FaceFinder | None = field(default=None, repr=False)

    @property
    def tagger(self) -> ServingModels:
        """The serving models (backbone and champion head), loaded on first use."""
        if self._tagger is None:
            from eyes.services.serving import ServingModels

            self._tagger = ServingModels(self)
        return self._tagger

    @property
    def similar(self) -> SimilarIndex:
        """This process's index of photos by their embeddings (services/similar_index.py)."""
        if self._similar is None:
            from eyes.services.similar_index import SimilarIndex

            self._similar = SimilarIndex(self)
        return self._similar

    @property
    def faces(self) -> FaceFinder:
        """The face finder (EYES_FACES_FINDER), loaded on first use: only where faces are on."""
        if self._faces is None:
            from eyes.ml.faces import load_finder

            self._faces = load_finder(self.settings.faces_finder)
        return self._faces

    def close(self) -> None:
        if self.jobs is not None:
            self.jobs.shutdown()
        self.engine.dispose()


def build_context(settings: Settings, *, migrate: bool = True) -> Context:
    """Open the database (bringing its schema up to date) and the blob store."""
    # Many small numeric calls run at once here (requests, import threads, jobs) on few cores:
    # OpenBLAS's own threads per call, idle and spinning, only took the cores from one another
    # (a bulk import: 6.9 photos/s with them, 11.3 without; docs/benchmarks.md).
    threadpool_limits(limits=1, user_api="blas")
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    if migrate:
        upgrade(engine)
    sessions = make_sessionmaker(engine)
    feed_cache: FeedCache[Any] = FeedCache(settings.feed_cache_s)
    feed_cache.watch(sessions)
    return Context(
        settings=settings,
        engine=engine,
        sessions=sessions,
        blobs=open_blob_store(settings.resolved_storage_url),
        limits=Limits(settings),
        feed_cache=feed_cache,
    )
