"""Grouping and recognition (eyes/ml/people.py): the rules on stand-in descriptors (fast), the
figures a user would check on real dlib descriptors of lfw-40 photos (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from eyes.ml.people import (
    DLIB_THRESHOLD,
    PRIOR_THRESHOLD,
    Calibration,
    Recognizer,
    evaluate,
    group_faces,
    nearest_neighbour,
)
from tests.standin_people import people_faces


def named_and_rest(
    y: np.ndarray, per_person: int, people: list[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the first `per_person` faces of each person in `people` (all by default), and
    of every other face."""
    chosen = set(np.unique(y) if people is None else people)
    named = np.concatenate([np.flatnonzero(y == p)[:per_person] for p in sorted(chosen)])
    return named, np.setdiff1d(np.arange(len(y)), named)


# Fast: the rules, on stand-in people.


def test_faces_of_one_person_share_a_group_and_a_stranger_is_alone() -> None:
    x, y = people_faces(5, 6, seed=1)
    stranger, _ = people_faces(1, 1, seed=99)
    labels = group_faces(np.vstack([x, stranger]))
    assert labels[-1] == -1  # alone: in no group
    for person in range(5):
        assert len(set(labels[:-1][y == person])) == 1 and labels[:-1][y == person][0] >= 0
    assert len(set(labels[:-1])) == 5
    # Numbered from 0, largest group first.
    assert set(labels[:-1]) == set(range(5))


def test_grouping_nothing_or_one_face_gives_no_group() -> None:
    assert group_faces(np.zeros((0, 128), dtype=np.float32)).shape == (0,)
    assert group_faces(np.ones((1, 128), dtype=np.float32)).tolist() == [-1]


def test_named_people_are_suggested_and_a_stranger_is_not() -> None:
    x, y = people_faces(6, 8, seed=2)
    named, rest = named_and_rest(y, 3, people=[0, 1, 2, 3, 4])  # person 5 is never named
    recognizer = Recognizer.fit(x[named], y[named] + 100)  # person ids as the database has them
    suggested, distance = recognizer.suggest(x[rest])
    known = y[rest] != 5
    assert (suggested[known] == y[rest][known] + 100).all()
    assert (suggested[~known] == -1).all()
    assert np.isfinite(distance).all() and (distance[known] < recognizer.threshold).all()


def test_not_anna_keeps_anna_away_from_that_face_and_faces_like_it() -> None:
    x, y = people_faces(3, 6, seed=3)
    anna, bob = 0, 1
    # Bob's faces are close to Anna's in this draw: move them halfway to hers.
    x[y == bob] = 0.5 * x[y == bob] + 0.5 * x[y == anna].mean(axis=0)
    recognizer = Recognizer.fit(x[y == anna][:3], np.full(3, anna))
    bob_faces = x[y == bob]
    before, _ = recognizer.suggest(bob_faces)
    assert (before == anna).sum() >= 4  # wrongly Anna, before any correction
    # The owner says "not Anna" on two of Bob's faces.
    corrected = Recognizer.fit(
        x[y == anna][:3], np.full(3, anna), negatives=(bob_faces[:2], np.full(2, anna))
    )
    after, _ = corrected.suggest(bob_faces)
    assert (after[:2] == -1).all()  # the rejected faces themselves
    assert (after[2:] != anna).sum() >= 3  # and faces that look more like them than like Anna
    # Anna's own faces are still Anna.
    assert (corrected.suggest(x[y == anna][3:])[0] == anna).all()


def test_a_person_excluded_for_a_face_is_never_its_suggestion() -> None:
    x, y = people_faces(2, 5, seed=4)
    recognizer = Recognizer.fit(x[[0, 1, 5, 6]], y[[0, 1, 5, 6]])
    suggested, _ = recognizer.suggest(x[[2, 3]], exclude=[{0}, set()])
    assert suggested.tolist() == [-1, 0]


def test_the_threshold_follows_the_prior_with_few_names_and_the_owner_with_many() -> None:
    x, y = people_faces(1, 3, seed=5)
    assert Recognizer.fit(x, y).threshold == pytest.approx(PRIOR_THRESHOLD)  # one person: no measure
    x, y = people_faces(40, 5, seed=5)
    many = Recognizer.fit(x, y)
    assert many.calibration.samples == 200
    assert many.threshold != pytest.approx(PRIOR_THRESHOLD) and many.threshold <= DLIB_THRESHOLD
    # Closer people (a family) give a tighter threshold.
    family = Recognizer.fit(x * 0.7, y)
    assert family.threshold < many.threshold


def away(face: np.ndarray, distance: float, seed: int) -> np.ndarray:
    """A descriptor `distance` from `face`, in a random direction."""
    step = np.random.default_rng(seed).normal(size=face.shape)
    return (face + distance * step / np.linalg.norm(step)).astype(np.float32)


def test_a_person_named_once_is_suggested_where_a_person_named_ten_times_is_not() -> None:
    x, y = people_faces(2, 10, seed=9)
    once, often = x[y == 0][:1], x[y == 1]  # Anna named on one face, Bert on ten
    recognizer = Recognizer.fit(np.vstack([once, often]), np.array([0] + [1] * 10))
    loose, strict = recognizer.calibration.threshold_for(np.array([1, 10]))
    assert strict < loose <= DLIB_THRESHOLD
    at = (loose + strict) / 2  # between the two thresholds
    like_anna, like_bert = away(once[0], at, seed=1), away(often[0], at, seed=2)
    # As near Anna's one face as to Bert's nearest of ten: Anna is suggested, Bert is not (a
    # stranger comes that near one of ten faces far more often than near one).
    suggested, distance = recognizer.suggest(np.vstack([like_anna, like_bert]))
    assert distance == pytest.approx([at, at], abs=1e-4)
    assert suggested.tolist() == [0, -1]
    # One threshold for everybody (a version stored before per-person thresholds) names both.
    flat = Calibration(loose, None, 0)
    old = Recognizer(np.vstack([once, often]), np.array([0] + [1] * 10), flat)
    assert old.suggest(np.vstack([like_anna, like_bert]))[0].tolist() == [0, 1]


def test_a_calibration_stored_before_per_person_thresholds_still_loads() -> None:
    stored = {"threshold": 0.55, "measured": 0.57, "samples": 30, "false_accept": 0.02, "prior": 0.52}
    calibration = Calibration(**stored)
    assert calibration.threshold_for(np.array([1, 3, 10])).tolist() == [0.55, 0.55, 0.55]


def test_a_recognizer_comes_back_the_same_from_its_bytes() -> None:
    x, y = people_faces(4, 5, seed=6)
    recognizer = Recognizer.fit(x[:12], y[:12], negatives=(x[15:17], np.array([0, 1])))
    again = Recognizer.from_bytes(recognizer.to_bytes())
    assert again.calibration == recognizer.calibration
    for a, b in zip(recognizer.suggest(x), again.suggest(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_evaluation_counts_right_wrong_and_silent_and_strangers() -> None:
    x, y = people_faces(3, 4, seed=7)
    recognizer = Recognizer.fit(x[[0, 4]], y[[0, 4]])  # persons 0 and 1 named; 2 is a stranger
    report = evaluate(recognizer, x, y)
    assert report.known == 8 and report.unknown == 4
    assert report.right == 1.0 and report.wrong == 0.0 and report.unknown_no_suggestion == 1.0
    # Leave-one-out: each named face judged without itself; a person named once counts as unknown.
    loo = evaluate(recognizer, x[[0, 1, 4]], y[[0, 1, 4]], leave_out_copies=True)
    assert loo.known == 1 and loo.unknown == 2
    # The named face 0 without itself: person 0 is unknown, so face 0 must get no suggestion.
    assert loo.unknown_no_suggestion == 1.0


def test_no_names_means_no_suggestions() -> None:
    x, _ = people_faces(2, 3, seed=8)
    suggested, distance = Recognizer.fit(x[:0], np.zeros(0, dtype=np.int64)).suggest(x)
    assert (suggested == -1).all() and np.isnan(distance).all()


# Slow: real dlib descriptors of lfw-40 photos.


@pytest.mark.slow
def test_lfw_groups_are_pure_and_hold_nearly_every_face() -> None:
    from tests.lfw_faces import lfw_faces, lfw_people

    x, y = lfw_faces(lfw_people(8, start=10))
    labels = group_faces(x)
    grouped = labels >= 0
    majority = sum(np.bincount(y[labels == g]).max() for g in set(labels[grouped]))
    assert majority / grouped.sum() >= 0.95  # purity
    assert grouped.mean() >= 0.90


@pytest.mark.slow
def test_lfw_three_named_photos_name_the_rest_and_an_unnamed_person_gets_nothing() -> None:
    from tests.lfw_faces import lfw_faces, lfw_people

    x, y = lfw_faces(lfw_people(8, start=20))
    named, rest = named_and_rest(y, 3, people=list(range(6)))  # the last two are never named
    recognizer = Recognizer.fit(x[named], y[named])
    ours = evaluate(recognizer, x[rest], y[rest])
    assert ours.known >= 40 and ours.unknown >= 15
    assert ours.right >= 0.97 and ours.wrong <= 0.01
    assert ours.unknown_no_suggestion >= 0.9
    # As right as dlib's plain nearest neighbour on the named people, and quieter on the others.
    plain = evaluate(nearest_neighbour(x[named], y[named]), x[rest], y[rest])
    assert ours.right >= plain.right - 0.03
    assert ours.unknown_no_suggestion >= plain.unknown_no_suggestion


@pytest.mark.slow
def test_lfw_not_anna_is_never_suggested_again_for_that_face() -> None:
    from tests.lfw_faces import lfw_faces, lfw_people

    x, y = lfw_faces(lfw_people(6, start=30))
    named, rest = named_and_rest(y, 1)
    recognizer = Recognizer.fit(x[named], y[named])
    suggested, _ = recognizer.suggest(x[rest])
    face = int(np.flatnonzero(suggested >= 0)[0])
    anna = int(suggested[face])
    negatives = (x[rest][[face]], np.array([anna]))
    corrected = Recognizer.fit(x[named], y[named], negatives=negatives)
    assert corrected.suggest(x[rest][[face]])[0][0] != anna
