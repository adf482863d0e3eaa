"""Nearest neighbours among stored embeddings: an HNSW graph (faiss) that knows who may see what.

Keys are integers (the photos' internal ids); each entry carries its owner and whether it is public,
so that a search keeps to what one audience may see. The graph walks past entries the audience may
not see (a faiss selector) and fetches deeper when the neighbourhood is crowded with them; when
few entries are allowed at all, they are compared with the query exactly instead. HNSW cannot
remove an entry: a removed one is a tombstone no search returns, and the graph is rebuilt
without them once they are many. Arrays in, arrays out: no database here.

Why faiss, and why HNSW with float16 storage: docs/similar.md.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import faiss
import numpy as np

CONNECTIVITY = 16  # HNSW's M: links per node
EF_CONSTRUCTION = 64
EF_SEARCH = 128  # candidates a search keeps: recall above 99% at 100,000 entries
EXACT_BELOW = 4096  # fewer allowed entries than this: compare each with the query instead
MAX_EF = 8192
REBUILD_FRACTION = 0.25  # rebuild when a quarter of the slots are tombstones
NOBODY = -1  # owner of a tombstone


@dataclass(frozen=True)
class Audience:
    """Whose entries a search may return: public ones (if `public`) and those of `owner`."""

    owner: int | None
    public: bool


@dataclass(frozen=True)
class Neighbours:
    keys: np.ndarray  # int64, nearest first
    similarity: np.ndarray  # cosine similarity, float32


def normalised(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32).reshape(-1, np.shape(vectors)[-1])
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class VectorIndex:
    """A cosine index over embeddings of one dimension, safe to use from several threads."""

    def __init__(self, ndim: int) -> None:
        self.ndim = ndim
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        # One query at a time gains nothing from OpenMP's threads, whose idle spinning took the
        # cores from the network in a bulk import (14.4 photos/s with one thread, 6.9 with two).
        faiss.omp_set_num_threads(1)
        # faiss's bundled stubs lag its SWIG API (the quantizer type is an int there).
        index = faiss.IndexHNSWSQ(
            self.ndim,
            faiss.ScalarQuantizer.QT_fp16,  # type: ignore[arg-type]
            CONNECTIVITY,
            faiss.METRIC_INNER_PRODUCT,
        )
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.train(np.zeros((1, self.ndim), dtype=np.float32))  # float16 needs no statistics
        self._index = index
        # By slot (faiss's sequential id): the key, its owner (NOBODY: a tombstone), public or not.
        self._keys = np.zeros(0, dtype=np.int64)
        self._owner = np.zeros(0, dtype=np.int64)
        self._public = np.zeros(0, dtype=bool)
        self._slot: dict[int, int] = {}
        self._used = 0

    def __len__(self) -> int:
        return len(self._slot)

    def keys(self) -> set[int]:
        with self._lock:
            return set(self._slot)

    def audience_of(self, key: int) -> tuple[int, bool] | None:
        """(owner, public) of an entry; None when it is not indexed."""
        with self._lock:
            slot = self._slot.get(key)
            return None if slot is None else (int(self._owner[slot]), bool(self._public[slot]))

    def vector(self, key: int) -> np.ndarray | None:
        with self._lock:
            slot = self._slot.get(key)
            return None if slot is None else np.asarray(self._index.reconstruct(slot), dtype=np.float32)

    def add(self, keys: np.ndarray, vectors: np.ndarray, owners: np.ndarray, public: np.ndarray) -> None:
        """Add entries; a key already there is replaced."""
        keys = np.asarray(keys, dtype=np.int64).reshape(-1)
        if not len(keys):
            return
        x = normalised(vectors)
        with self._lock:
            self._bury([int(k) for k in keys if int(k) in self._slot])
            start, end = self._used, self._used + len(keys)
            self._grow(end)
            self._index.add(x)
            self._keys[start:end] = keys
            self._owner[start:end] = owners
            self._public[start:end] = public
            self._slot.update(zip(keys.tolist(), range(start, end), strict=True))
            self._used = end

    def set_audience(self, key: int, owner: int, public: bool) -> None:
        with self._lock:
            slot = self._slot.get(key)
            if slot is not None:
                self._owner[slot] = owner
                self._public[slot] = public

    def remove(self, keys: list[int]) -> None:
        with self._lock:
            self._bury([k for k in keys if k in self._slot])
            if self._used > 1000 and self._used - len(self._slot) > REBUILD_FRACTION * self._used:
                self._compact()

    def _bury(self, keys: list[int]) -> None:
        for key in keys:
            slot = self._slot.pop(key)
            self._owner[slot] = NOBODY
            self._public[slot] = False

    def _compact(self) -> None:
        """The graph again, without its tombstones (their slots would otherwise stay for good)."""
        alive = np.flatnonzero(self._owner[: self._used] != NOBODY)
        vectors = self._index.reconstruct_batch(alive) if len(alive) else np.zeros((0, self.ndim), np.float32)
        keys, owners, public = self._keys[alive], self._owner[alive], self._public[alive]
        self._reset()
        self.add(keys, vectors, owners, public)

    def _grow(self, size: int) -> None:
        if size <= len(self._keys):
            return
        capacity = max(size, 2 * len(self._keys), 1024)
        for name, fill in (("_keys", 0), ("_owner", NOBODY), ("_public", False)):
            old = getattr(self, name)
            grown = np.full(capacity, fill, dtype=old.dtype)
            grown[: self._used] = old[: self._used]
            setattr(self, name, grown)

    def _allowed(self, audience: Audience, exclude: frozenset[int]) -> np.ndarray:
        owner = self._owner[: self._used]
        allowed = owner == (audience.owner if audience.owner is not None else NOBODY)
        if audience.public:
            allowed |= self._public[: self._used]
        allowed &= owner != NOBODY
        for key in exclude:
            slot = self._slot.get(key)
            if slot is not None:
                allowed[slot] = False
        return allowed

    def search(
        self,
        vector: np.ndarray,
        count: int,
        audience: Audience,
        *,
        exclude: frozenset[int] = frozenset(),
        min_similarity: float | None = None,
    ) -> Neighbours:
        """The `count` nearest entries `audience` may see (none of `exclude`), nearest first; with
        `min_similarity`, only those at least that similar."""
        query = normalised(vector)
        with self._lock:
            allowed = self._allowed(audience, exclude)
            n_allowed = int(allowed.sum())
            if n_allowed < max(EXACT_BELOW, count):
                slots, similarity = self._exact(query, allowed, count)
            else:
                slots, similarity = self._walk(query, allowed, count)
            keys = self._keys[slots]
        if min_similarity is not None:
            keep = similarity >= min_similarity
            keys, similarity = keys[keep], similarity[keep]
        return Neighbours(keys, similarity)

    def _exact(self, query: np.ndarray, allowed: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Every allowed entry compared with the query, on the stored codes (ten times faster than
        decoding them first): the graph's flat storage, searched through the same bitmap."""
        if not allowed.any():
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        storage = faiss.downcast_index(self._index.storage)
        bitmap = np.packbits(allowed, bitorder="little")
        params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap)))  # type: ignore[call-arg]
        similarity, slots = storage.search(query, count, params=params)
        found = slots[0] >= 0
        return slots[0][found].astype(np.int64), similarity[0][found].astype(np.float32)

    def _walk(self, query: np.ndarray, allowed: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The graph's search, passing over what is not allowed. Where the query's neighbourhood
        is mostly entries this audience may not see, a walk that keeps `EF_SEARCH` candidates can
        come back short: it is repeated keeping more, and past MAX_EF, compared exactly."""
        bitmap = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        ef = max(EF_SEARCH, 2 * count)
        while ef <= MAX_EF:
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)  # type: ignore[attr-defined]
            similarity, slots = self._index.search(query, count, params=params)
            if (slots[0] >= 0).all():
                return slots[0].astype(np.int64), similarity[0].astype(np.float32)
            ef *= 8
        return self._exact(query, allowed, count)
