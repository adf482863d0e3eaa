"""This process's index of photos by their stored embeddings, kept in step with the database.

Every process that asks (a server, a worker, `eyes import`) builds its own from the stored
embeddings on first use, and applies its own changes at once (an upload, a delete, a new
visibility). What other processes changed it learns by catching up: at most every
`similar_sync_s`, a query starts a catch-up in the background, which compares the index with
the database (which photos have an embedding, whose, public or not) and adds, removes and
updates what differs. So with several servers no index stays stale for longer than that.

The index only proposes: every result is checked against the database before it is shown, so a
photo made private elsewhere is never shown, even before the catch-up (services/similar.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from sqlalchemy import select

from eyes.db.models import Embedding, Photo
from eyes.domain import Visibility
from eyes.errors import NotFound
from eyes.ml import layout
from eyes.ml.vector_index import VectorIndex
from eyes.services.image_store import thumb_key

if TYPE_CHECKING:
    from eyes.context import Context

log = logging.getLogger(__name__)
CHUNK = 2000  # embeddings read (and added) at a time
T = TypeVar("T")


class LayoutCache:
    """`ctx.similar.layouts`: stored photos' layouts as candidates (eyes/ml/layout.py: 13 KB each)
    by photo id (ids are never given again), the most recently used kept. A bulk import of similar
    photos meets the same candidates again and again: each photo it stored is remembered, and any
    other is read back from its thumbnail once (2.8 ms) and summarised once (1.4 ms)."""

    def __init__(self, kept: int = 4096) -> None:
        self._kept = kept
        self._lock = threading.Lock()
        self._candidates: OrderedDict[int, layout.Candidate | None] = OrderedDict()

    def get(self, ctx: Context, photo_id: int) -> layout.Candidate | None:
        """A stored photo as a candidate (None: it lines up with nothing, or is gone)."""
        with self._lock:
            if photo_id in self._candidates:
                self._candidates.move_to_end(photo_id)
                return self._candidates[photo_id]
        grey = _thumbnail_signature(ctx, photo_id)
        if grey is None:
            return None
        return self.remember(photo_id, grey, layout.summaries(grey))

    def remember(
        self, photo_id: int, grey: np.ndarray, found: layout.Summaries | None
    ) -> layout.Candidate | None:
        """A photo's signature and its summaries (None: it lines up with nothing); returns what
        is kept of them."""
        candidate = None if found is None else layout.Candidate.of(grey, found)
        with self._lock:
            _keep(self._candidates, photo_id, candidate, self._kept)
        return candidate


def _thumbnail_signature(ctx: Context, photo_id: int) -> np.ndarray | None:
    """A stored photo's signature, from its grid thumbnail (the original is not read)."""
    with ctx.sessions() as session:
        sha = session.scalar(select(Photo.sha256).where(Photo.id == photo_id))
    if sha is None:
        return None
    try:
        with ctx.blobs.open(thumb_key(sha, "small")) as blob:
            return layout.open_signature(blob)
    except (NotFound, OSError) as exc:  # a thumbnail gone: no match with it
        log.warning("no thumbnail of %s to compare: %s", sha, exc)
        return None


def _keep(kept: OrderedDict[int, T], key: int, value: T, size: int) -> None:
    kept[key] = value
    kept.move_to_end(key)
    while len(kept) > size:
        kept.popitem(last=False)


class SimilarIndex:
    """`ctx.similar`: the photos' index, built on first use and caught up in the background."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._index: VectorIndex | None = None
        self._backbone = ""
        self._build_lock = threading.Lock()  # one build or catch-up at a time
        self._synced_at = float("-inf")
        self._catching_up: threading.Thread | None = None
        self.layouts = LayoutCache()  # for the near-duplicate check (services/similar.py)

    def index(self) -> VectorIndex:
        """The index, built now if this process has none yet (or the backbone changed), and a
        catch-up started in the background when the last one is older than `similar_sync_s`."""
        backbone = self._ctx.tagger.backbone_id
        if self._index is None or self._backbone != backbone:
            self.catch_up()
        elif time.monotonic() - self._synced_at > self._ctx.settings.similar_sync_s:
            self._start_catch_up()
        assert self._index is not None
        return self._index

    def loaded(self) -> VectorIndex | None:
        """The index if this process has built it (changes to apply need no index built for them)."""
        if self._index is None:  # nothing to keep current (and no model to load for it)
            return None
        return self._index if self._backbone == self._ctx.tagger.backbone_id else None

    def warm_up(self) -> None:
        """Build the index in the background now (at start), so that queries rarely wait for it."""
        self._start_catch_up()

    def stop(self, timeout: float = 30.0) -> None:
        """Wait for a catch-up under way (before the database it reads is closed)."""
        thread = self._catching_up
        if thread is not None:
            thread.join(timeout)

    def _start_catch_up(self) -> None:
        with self._build_lock:
            if self._catching_up is not None and self._catching_up.is_alive():
                return
            self._synced_at = time.monotonic()  # one try per period, even if it fails
            self._catching_up = threading.Thread(
                target=self._catch_up_logged, name="similar-sync", daemon=True
            )
            self._catching_up.start()

    def _catch_up_logged(self) -> None:
        try:
            self.catch_up()
        except Exception:  # the next period tries again; queries go on with what is indexed
            log.exception("the index of similar photos could not catch up")

    def catch_up(self) -> None:
        """Bring the index in line with the database (build it if there is none)."""
        with self._build_lock:
            started = time.monotonic()
            backbone = self._ctx.tagger.backbone_id
            index = self._index if self._index is not None and self._backbone == backbone else None
            fresh = index is None
            if index is None:
                index = VectorIndex(self._ctx.tagger.predictor.embedding_dim)
            # What it holds first: a photo this process adds meanwhile is then not taken away.
            known = index.keys()
            stored = self._audiences(backbone)
            index.remove([key for key in known if key not in stored])
            for key in known & stored.keys():
                owner, public, _ = stored[key]
                if index.audience_of(key) != (owner, public):
                    index.set_audience(key, owner, public)
            self._add(index, backbone, [key for key in stored if key not in known], stored)
            if fresh:
                self._index, self._backbone = index, backbone
            self._synced_at = started

    def _audiences(self, backbone: str) -> dict[int, tuple[int, bool, str]]:
        """Every photo with a stored embedding: its owner, whether it is public, its image."""
        with self._ctx.sessions() as session:
            rows = session.execute(
                select(Photo.id, Photo.owner_id, Photo.visibility, Photo.sha256).join(
                    Embedding, (Embedding.sha256 == Photo.sha256) & (Embedding.backbone == backbone)
                )
            ).all()
        return {pid: (owner, vis == Visibility.PUBLIC, sha) for pid, owner, vis, sha in rows}

    def _add(
        self, index: VectorIndex, backbone: str, keys: list[int], stored: dict[int, tuple[int, bool, str]]
    ) -> None:
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            shas = sorted({stored[k][2] for k in chunk})
            with self._ctx.sessions() as session:
                vectors = {
                    sha: data
                    for sha, data in session.execute(
                        select(Embedding.sha256, Embedding.vector).where(
                            Embedding.sha256.in_(shas), Embedding.backbone == backbone
                        )
                    )
                }
            chunk = [k for k in chunk if stored[k][2] in vectors]  # an image deleted meanwhile
            if not chunk:
                continue
            index.add(
                np.array(chunk),
                np.stack([np.frombuffer(vectors[stored[k][2]], dtype="<f4") for k in chunk]),
                np.array([stored[k][0] for k in chunk]),
                np.array([stored[k][1] for k in chunk]),
            )

    # What this process changed, applied at once (when it has an index).

    def added(self, photo_id: int, owner_id: int, public: bool, vector: np.ndarray) -> None:
        index = self.loaded()
        if index is not None:
            index.add(np.array([photo_id]), vector[None], np.array([owner_id]), np.array([public]))

    def removed(self, photo_id: int) -> None:
        index = self.loaded()
        if index is not None:
            index.remove([photo_id])

    def visibility_changed(self, photo_id: int, owner_id: int, visibility: Visibility) -> None:
        index = self.loaded()
        if index is not None:
            index.set_audience(photo_id, owner_id, visibility == Visibility.PUBLIC)
