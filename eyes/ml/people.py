"""People: group an owner's unnamed faces, and recognise the people they named.

Arrays in, arrays out (dlib's 128-float descriptors, whose Euclidean distance is small for the
same person: dlib's own "same person" threshold is 0.6). No database, no torch.

How the constants were chosen: on half of lfw-40 (the 20 people at even positions in
alphabetical order, "the calibration half"), by the rules written next to each constant; the
figures in docs/benchmarks.md are reported on the other 20 (and on all 40), which were never used
to choose anything (`python -m benchmarks.faces`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

import numpy as np

# dlib's documented threshold: two descriptors closer than this are "the same person" (99.38% on
# LFW pairs). The plain nearest-neighbour baseline uses it; Eyes never suggests beyond it.
DLIB_THRESHOLD = 0.6

# Grouping: average linkage, cut where the mean distance between two groups reaches this. Rule:
# purity first (a group is named in one go, so a mixed group names somebody wrongly), then the
# most faces grouped: the largest value on a 0.05 grid whose purity on the calibration half,
# strangers' background faces included, is at least 99.5%. (0.55 gave 99.1%, 0.5 gave 99.6%.)
GROUP_DISTANCE = 0.5
MIN_GROUP = 2  # a face alone is in no group

# Recognition: who is the person whose nearest named face is nearest; whether depends on how many
# faces that person is named on (k). A stranger's smallest distance to k photos of somebody falls
# as k grows, while a real match of a person named once is often as far as 0.55-0.6: so the
# threshold is looser for a person named once than for one named ten times.
#
# PER_NAMED: the threshold falls by this for every e-fold more named faces, threshold(k) =
# threshold(1) - PER_NAMED * ln(k). Why ln(k): a stranger comes within t of at least one of k
# independent photos about k times as often as of one, and in the lower tail of the distances
# between different people's faces the share closer than t falls e-fold every PER_NAMED. Rule:
# on the calibration half, (the 1% quantile of those distances - the 0.1% one) / ln(10), where
# thresholds lie (0.621 - 0.563: 0.025).
#
# FALSE_ACCEPT: the share of faces of people nobody named that may get a suggestion, as estimated
# on the owner's own named faces (see `calibrate`). PRIOR_THRESHOLD: the threshold for a person
# named once until an owner has named enough faces to measure (PRIOR_THRESHOLD - PER_NAMED ln k
# for k faces); the owner's own estimate counts as much as the prior once PRIOR_WEIGHT of their
# named faces have a distance to somebody else's. Rule, on the calibration half (15 people named
# with 1 and with 3 photos each, 5 never named, 20 draws; and the 20 all named with 1 and with 3),
# on the grid prior 0.56..0.60 (0.01 steps) x false accept 0.02/0.05 x weight 20/50/100: among the
# triples where at least 95% of the never-named people's faces got no suggestion with 3 photos
# named of the others (the setting), the most right suggestions (mean of 1 and 3 photos,
# everybody named: 99.10%), and among those within 0.1 point of it (the spread of 20 draws) the
# one that left most never-named faces without a suggestion (0.58, 0.02, 100: 99.00%, 96.0%).
FALSE_ACCEPT = 0.02
PRIOR_THRESHOLD = 0.58
PRIOR_WEIGHT = 100
PER_NAMED = 0.025
LOWEST_THRESHOLD = 0.4  # however alike an owner's people are, a suggestion stays possible

_CHUNK = 1024  # query faces per block of distances (bounded memory)
_SAME_FACE = 1e-6  # a distance this small is the face itself (or an exact copy of its photo)


def distances(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Euclidean distances, (len(queries), len(gallery)), float32.

    Computed in float64: in float32 the expanded form's cancellation leaves a face up to about
    1e-3 from itself (depending on the BLAS kernel), and `_SAME_FACE` must tell a face from its copy."""
    q = np.asarray(queries, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    squared = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * (q @ g.T)
    return np.sqrt(np.maximum(squared, 0.0, out=squared)).astype(np.float32)


def group_faces(descriptors: np.ndarray, distance: float = GROUP_DISTANCE) -> np.ndarray:
    """Group faces that look like one person: (n,) labels 0, 1, ..., and -1 for a face in no group.

    Average-linkage agglomerative clustering (scikit-learn) cut at `distance`: two groups join
    while the mean distance between their faces is below it. Why this one, measured on lfw-40
    with the strangers in the background of its photos (docs/benchmarks.md): single linkage
    (which DBSCAN amounts to) chains different people together as soon as the cut passes 0.5;
    HDBSCAN needs no cut but grouped strangers' faces with named people more often (purity
    96.7% against 99.1%) and took 2.2 s for 3,000 faces against 0.4 s; complete linkage
    split each person into twice as many groups. Memory grows with the square of the number of
    faces (about 36 MB for 3,000), fine for one owner's few thousand faces.
    """
    # Imported at the first grouping: scikit-learn and SciPy cost a server 90 MB of memory, which
    # one whose users never turn faces on should not pay.
    from sklearn.cluster import AgglomerativeClustering

    x = np.asarray(descriptors, dtype=np.float64)
    if len(x) < MIN_GROUP:
        return np.full(len(x), -1, dtype=np.int64)
    labels = AgglomerativeClustering(
        n_clusters=None, distance_threshold=distance, linkage="average"
    ).fit_predict(x)
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes >= MIN_GROUP)
    # Renumber the groups 0.. by size (largest first: the one an owner names first), alone -> -1.
    order = big[np.argsort(-sizes[big], kind="stable")]
    renumber = np.full(len(sizes), -1, dtype=np.int64)
    renumber[order] = np.arange(len(order))
    return renumber[labels]


@dataclass(frozen=True)
class Calibration:
    """How a recognizer's thresholds were set (kept with the version).

    `threshold` is the threshold for a person named on one face; a person named on k faces gets
    `threshold - per_named * ln(k)` (`threshold_for`). A version stored before per-k thresholds
    has per_named 0: one threshold for everybody, as it was built."""

    threshold: float
    measured: float | None  # the owner's own estimate, None when it could not be measured
    samples: int  # named faces with a distance to somebody else's
    false_accept: float = FALSE_ACCEPT
    prior: float = PRIOR_THRESHOLD
    per_named: float = 0.0

    def threshold_for(self, named: np.ndarray | int) -> np.ndarray:
        """The threshold for a person named on `named` faces (one or more), as an array."""
        k = np.maximum(np.asarray(named, dtype=np.float64), 1.0)
        return threshold_for(self.threshold, self.per_named, k)


def threshold_for(base: float, per_named: float, named: np.ndarray) -> np.ndarray:
    """`base` for a person named once, `per_named` less each time their named faces grow e-fold,
    never under LOWEST_THRESHOLD (a suggestion stays possible)."""
    t = base - per_named * np.log(np.maximum(named, 1.0))
    return np.maximum(t, min(LOWEST_THRESHOLD, base))


def calibrate(
    descriptors: np.ndarray,
    person_ids: np.ndarray,
    false_accept: float = FALSE_ACCEPT,
    prior: float = PRIOR_THRESHOLD,
    per_named: float = PER_NAMED,
) -> Calibration:
    """The thresholds under which a face gets a suggestion, from the owner's own named faces.

    Each named face, with its own person left out, plays a face of somebody nobody named: it
    would be suggested as the person whose nearest face is nearest, at that distance, if that
    person's threshold (which depends on how many faces they have, k) were above it. The base at
    which that happens is the distance plus `per_named * ln(k)`; the threshold for a person named
    once is the `false_accept` quantile of those bases (so about that share of strangers get a
    name), shrunk towards `prior` while there are few of them. It tightens by itself as an owner
    names more people or more faces of each (a stranger then has more faces to look like)."""
    ids = np.asarray(person_ids)
    people, counts = np.unique(ids, return_counts=True)
    named = counts[np.searchsorted(people, ids)] if len(ids) else np.zeros(0, dtype=np.int64)
    needed = np.full(len(ids), np.inf, dtype=np.float64)
    for start in range(0, len(ids), _CHUNK):
        block = distances(descriptors[start : start + _CHUNK], descriptors)
        block[ids[start : start + _CHUNK, None] == ids[None, :]] = np.inf
        nearest = block.argmin(axis=1) if block.shape[1] else np.zeros(len(block), dtype=np.int64)
        d = block[np.arange(len(block)), nearest] if block.shape[1] else np.full(len(block), np.inf)
        needed[start : start + _CHUNK] = d + per_named * np.log(named[nearest]) if len(d) else d
    finite = needed[np.isfinite(needed)]
    if len(finite) == 0:
        return Calibration(float(prior), None, 0, false_accept, prior, per_named)
    measured = float(np.quantile(finite, false_accept))
    n = len(finite)
    threshold = (PRIOR_WEIGHT * prior + n * measured) / (PRIOR_WEIGHT + n)
    threshold = float(np.clip(threshold, LOWEST_THRESHOLD, DLIB_THRESHOLD))
    return Calibration(threshold, measured, n, false_accept, prior, per_named)


class Recognizer:
    """Suggests who a face is, from the faces one owner named, or nobody.

    A face gets the person whose nearest named face is nearest, if that is closer than that
    person's threshold (looser the fewer faces they are named on: `Calibration.threshold_for`)
    and closer than any face rejected for that person: "not Anna" on a face keeps Anna away from
    it and from faces that look more like it than like Anna."""

    def __init__(
        self,
        descriptors: np.ndarray,
        person_ids: np.ndarray,
        calibration: Calibration,
        negatives: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        ids = np.asarray(person_ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")  # each person's faces side by side
        self.gallery = np.asarray(descriptors, dtype=np.float32).reshape(-1, 128)[order]
        self.gallery_ids = ids[order]
        self.people, self._starts, self.named = np.unique(
            self.gallery_ids, return_index=True, return_counts=True
        )
        self.calibration = calibration
        neg_x, neg_ids = negatives if negatives is not None else (np.zeros((0, 128)), np.zeros(0))
        self.negatives = np.asarray(neg_x, dtype=np.float32).reshape(-1, 128)
        self.negative_ids = np.asarray(neg_ids, dtype=np.int64)

    @property
    def threshold(self) -> float:
        """The threshold for a person named on one face (the loosest)."""
        return self.calibration.threshold

    @classmethod
    def fit(
        cls,
        descriptors: np.ndarray,
        person_ids: np.ndarray,
        negatives: tuple[np.ndarray, np.ndarray] | None = None,
        false_accept: float = FALSE_ACCEPT,
        prior: float = PRIOR_THRESHOLD,
        per_named: float = PER_NAMED,
    ) -> Recognizer:
        """A recognizer from one owner's named faces (descriptors, person ids) and the faces
        they rejected for a person (descriptors, person ids), its thresholds calibrated on them."""
        x = np.asarray(descriptors, dtype=np.float32).reshape(-1, 128)
        calibration = calibrate(x, np.asarray(person_ids), false_accept, prior, per_named)
        return cls(x, person_ids, calibration, negatives)

    def suggest(
        self,
        descriptors: np.ndarray,
        exclude: Sequence[Collection[int]] | None = None,
        *,
        leave_out_copies: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each face, (the suggested person id or -1, the distance to the nearest person it
        could be suggested as: NaN where there is none). `exclude[i]`: people never to suggest
        for face i (the owner rejected them). `leave_out_copies`: ignore named faces identical
        to the query (judging the recognizer on the faces it was built from: leave-one-out)."""
        q = np.asarray(descriptors, dtype=np.float32).reshape(-1, 128)
        suggested = np.full(len(q), -1, dtype=np.int64)
        nearest = np.full(len(q), np.nan, dtype=np.float64)
        if len(self.people) == 0 or len(q) == 0:
            return suggested, nearest
        for start in range(0, len(q), _CHUNK):
            block = slice(start, start + _CHUNK)
            per_person, named = self._per_person(q[block], leave_out_copies)
            if len(self.negatives):
                per_person[self._rejected(q[block], per_person, leave_out_copies)] = np.inf
            if exclude is not None:
                for row, people in enumerate(exclude[block]):
                    if people:
                        per_person[row, np.isin(self.people, list(people))] = np.inf
            best = per_person.argmin(axis=1)
            d = per_person[np.arange(len(best)), best]
            finite = np.isfinite(d)
            nearest[block] = np.where(finite, d, np.nan)
            # Who: the nearest person. Whether: under that person's threshold, looser the fewer
            # faces they are named on (a stranger has fewer faces of theirs to look like).
            limit = self.calibration.threshold_for(named[np.arange(len(best)), best])
            suggested[block] = np.where(finite & (d < limit), self.people[best], -1)
        return suggested, nearest

    def _per_person(self, q: np.ndarray, leave_out_copies: bool) -> tuple[np.ndarray, np.ndarray]:
        """(len(q), len(people)) twice: each query's distance to each person's nearest named
        face, and how many named faces of each person it was compared with (copies of the query
        left out)."""
        d = distances(q, self.gallery)
        named = np.broadcast_to(self.named, (len(q), len(self.people)))
        if leave_out_copies:
            copy = d < _SAME_FACE
            d[copy] = np.inf
            named = named - np.add.reduceat(copy, self._starts, axis=1)
        return np.minimum.reduceat(d, self._starts, axis=1), named

    def _rejected(self, q: np.ndarray, per_person: np.ndarray, leave_out_copies: bool) -> np.ndarray:
        """Where a face is at least as near a face rejected for a person as to that person."""
        d = distances(q, self.negatives)
        if leave_out_copies:
            d[d < _SAME_FACE] = np.inf
        nearest_negative = np.full_like(per_person, np.inf)
        column = np.searchsorted(self.people, self.negative_ids)
        known = (column < len(self.people)) & (
            self.people[np.minimum(column, len(self.people) - 1)] == self.negative_ids
        )
        for j in np.unique(column[known]):
            nearest_negative[:, j] = d[:, known & (column == j)].min(axis=1)
        return nearest_negative <= per_person

    def to_bytes(self) -> bytes:
        """The whole recognizer, as one .npz (arrays, and the calibration as JSON)."""
        out = io.BytesIO()
        np.savez_compressed(
            out,
            gallery=self.gallery,
            gallery_ids=self.gallery_ids,
            negatives=self.negatives,
            negative_ids=self.negative_ids,
            calibration=np.frombuffer(json.dumps(asdict(self.calibration)).encode(), dtype=np.uint8),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Recognizer:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            calibration = Calibration(**json.loads(z["calibration"].tobytes().decode()))
            return cls(z["gallery"], z["gallery_ids"], calibration, (z["negatives"], z["negative_ids"]))


def nearest_neighbour(descriptors: np.ndarray, person_ids: np.ndarray) -> Recognizer:
    """The plain baseline: the nearest named face's person within dlib's 0.6, no calibration,
    no rejections."""
    return Recognizer(descriptors, person_ids, Calibration(DLIB_THRESHOLD, None, 0, 0.0, DLIB_THRESHOLD))


@dataclass(frozen=True)
class Evaluation:
    """How a recognizer does on faces whose person is known.

    known: faces of people the recognizer knows; right / wrong / no_suggestion: their shares.
    unknown: faces of people it does not know; unknown_no_suggestion: the share of those with no
    suggestion (NaN when there are none)."""

    known: int
    right: float
    wrong: float
    no_suggestion: float
    unknown: int
    unknown_no_suggestion: float

    @property
    def net(self) -> float:
        """Right minus wrong suggestions, per judged face (known or not): what the gate compares.
        A wrong name costs the owner a rejection as a missing one costs a naming."""
        total = self.known + self.unknown
        if total == 0:
            return 0.0
        wrong = self.wrong * self.known + (
            (1 - self.unknown_no_suggestion) * self.unknown if self.unknown else 0.0
        )
        return (self.right * self.known - wrong) / total

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "net": self.net}


def evaluate(
    recognizer: Recognizer,
    descriptors: np.ndarray,
    person_ids: np.ndarray,
    *,
    leave_out_copies: bool = False,
) -> Evaluation:
    """Right / wrong / no-suggestion shares on faces of people the recognizer knows, and the share
    of faces of people it does not know that got no suggestion. With `leave_out_copies`, each
    face is judged without itself (a person whose only named face it is counts as unknown)."""
    truth = np.asarray(person_ids, dtype=np.int64)
    suggested, _ = recognizer.suggest(descriptors, leave_out_copies=leave_out_copies)
    known = np.isin(truth, recognizer.people)
    if leave_out_copies and len(truth):
        known &= _has_another_named_face(recognizer, np.asarray(descriptors, dtype=np.float32), truth)
    k, u = int(known.sum()), int((~known).sum())
    right = int((suggested[known] == truth[known]).sum())
    none = int((suggested[known] == -1).sum())
    return Evaluation(
        known=k,
        right=right / k if k else 0.0,
        wrong=(k - right - none) / k if k else 0.0,
        no_suggestion=none / k if k else 0.0,
        unknown=u,
        unknown_no_suggestion=float((suggested[~known] == -1).mean()) if u else float("nan"),
    )


def _has_another_named_face(recognizer: Recognizer, q: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Whether each face's person has a named face other than (a copy of) this one."""
    out = np.zeros(len(q), dtype=bool)
    for start in range(0, len(q), _CHUNK):
        d = distances(q[start : start + _CHUNK], recognizer.gallery)
        same_person = truth[start : start + _CHUNK, None] == recognizer.gallery_ids[None, :]
        out[start : start + _CHUNK] = (same_person & (d >= _SAME_FACE)).any(axis=1)
    return out
