"""Face recognition per owner: versions of a model that suggests who an unnamed face is, learnt
from the faces the owner named and the names they rejected, and kept only when it does at least
as well as the one in service.

Each owner has their own versions (table `face_models`), built from their own faces alone: no
owner's names inform another's suggestions, the shared tag model or any export. A version keeps
which faces (and rejections) it was built from, not their descriptors: it is rebuilt from the
faces table, leaving out a face whose photo was deleted or which the owner named otherwise since,
so nothing of a deleted photo lives on in a model.

The gate judges on confirmed faces held out of their own judgement: each named face is suggested
from every other named face but itself (leave-one-out, exact for a nearest-neighbour gallery, and
no correction is kept out of the model to make a test set). A candidate replaces the champion
when its right-minus-wrong share on those faces is at least the champion's; the first version
when it beats naming nobody (or when nobody has two named faces yet to judge it on).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import cast

import numpy as np
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Table, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import Face, FaceModel, FaceRejection, Person, Photo, User, as_utc
from eyes.db.session import transaction
from eyes.domain import ModelStage
from eyes.ml.people import (
    FALSE_ACCEPT,
    PRIOR_THRESHOLD,
    Calibration,
    Evaluation,
    Recognizer,
    evaluate,
    nearest_neighbour,
)

log = logging.getLogger(__name__)
KEEP_VERSIONS = 10  # per owner, besides the champion: older retired and rejected ones are deleted
# Learn again after this share of the named faces changed (one correction in 20), at least one
# correction and at most LEARN_EVERY_MAX: an owner with few names learns from every correction.
LEARN_SHARE = 20
LEARN_EVERY_MAX = 25


@dataclass(frozen=True)
class LearnResult:
    """What one `learn` did."""

    version: int | None  # None: nothing was trained (nothing named, or nothing changed)
    promoted: bool
    reason: str
    faces: int = 0  # named faces trained on
    people: int = 0
    rejections: int = 0
    held_out: int = 0  # confirmed faces judged (each without itself)
    accuracy: float | None = None  # right suggestions on them
    baseline_accuracy: float | None = None  # the plain nearest neighbour at dlib's 0.6
    champion_accuracy: float | None = None  # the champion's, on the same faces
    threshold: float | None = None


class FaceModelPublic(BaseModel):
    """A version as its owner sees it."""

    version: int
    stage: str
    created_at: datetime
    faces: int
    people: int
    rejections: int
    held_out: int
    accuracy: float | None
    baseline_accuracy: float | None
    threshold: float
    reason: str


@dataclass
class _Labels:
    """An owner's named faces and rejections, with their descriptors."""

    face_ids: np.ndarray
    person_ids: np.ndarray
    descriptors: np.ndarray
    rejected_face_ids: np.ndarray
    rejected_person_ids: np.ndarray
    rejected_descriptors: np.ndarray


def _owned(owner_id: int) -> tuple[ColumnElement[bool], ...]:
    """A face in this owner's photos, named (or rejected) with one of this owner's people: both
    sides checked, so nothing another owner wrote can slip in."""
    return (Photo.owner_id == owner_id, Person.owner_id == owner_id)


def _vectors(blobs: Sequence[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, 128), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1).astype(np.float32)


def _read_labels(session: Session, owner_id: int) -> _Labels:
    named = session.execute(
        select(Face.id, Face.person_id, Face.descriptor)
        .join(Photo, Photo.id == Face.photo_id)
        .join(Person, Person.id == Face.person_id)
        .where(*_owned(owner_id), Face.not_a_face.is_(False))
        .order_by(Face.id)
    ).all()
    rejected = session.execute(
        select(FaceRejection.face_id, FaceRejection.person_id, Face.descriptor)
        .join(Face, Face.id == FaceRejection.face_id)
        .join(Photo, Photo.id == Face.photo_id)
        .join(Person, Person.id == FaceRejection.person_id)
        .where(*_owned(owner_id), Face.not_a_face.is_(False))
        .order_by(FaceRejection.face_id, FaceRejection.person_id)
    ).all()
    return _Labels(
        np.array([r[0] for r in named], dtype=np.int64),
        np.array([r[1] for r in named], dtype=np.int64),
        _vectors([r[2] for r in named]),
        np.array([r[0] for r in rejected], dtype=np.int64),
        np.array([r[1] for r in rejected], dtype=np.int64),
        _vectors([r[2] for r in rejected]),
    )


def _pairs(session: Session, owner_id: int) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """The owner's (face, person) names and rejections, ids only: cheap enough for every
    correction (no descriptors are read)."""
    named = session.execute(
        select(Face.id, Face.person_id)
        .join(Photo, Photo.id == Face.photo_id)
        .join(Person, Person.id == Face.person_id)
        .where(*_owned(owner_id), Face.not_a_face.is_(False))
    ).all()
    rejected = session.execute(
        select(FaceRejection.face_id, FaceRejection.person_id)
        .join(Face, Face.id == FaceRejection.face_id)
        .join(Photo, Photo.id == Face.photo_id)
        .join(Person, Person.id == FaceRejection.person_id)
        .where(*_owned(owner_id), Face.not_a_face.is_(False))
    ).all()
    # (person_id is never None here: the join on people drops unnamed faces)
    return {(f, p) for f, p in named if p is not None}, {(f, p) for f, p in rejected}


def _latest(session: Session, owner_id: int) -> FaceModel | None:
    return session.scalars(
        select(FaceModel).where(FaceModel.owner_id == owner_id).order_by(FaceModel.version.desc()).limit(1)
    ).first()


def _champion(session: Session, owner_id: int) -> FaceModel | None:
    return session.scalars(
        select(FaceModel).where(FaceModel.owner_id == owner_id, FaceModel.stage == ModelStage.CHAMPION)
    ).first()


def _corrections_since(session: Session, owner_id: int) -> tuple[int, int]:
    """(how many corrections since the latest version was trained, how many names there are): a
    face named, unnamed or moved to somebody else counts one, as does a rejection given or taken
    back. Without a version, every name counts."""
    named, rejected = _pairs(session, owner_id)
    latest = _latest(session, owner_id)
    if latest is None:
        return len(named) + len(rejected), len(named)
    stored = json.loads(latest.training_set)
    then_named = {(int(f), int(p)) for f, p in stored.get("faces", [])}
    then_rejected = {(int(f), int(p)) for f, p in stored.get("rejections", [])}
    moved = {f for f, _ in named ^ then_named}
    return len(moved) + len(rejected ^ then_rejected), len(named)


def _due(corrections: int, count: int) -> bool:
    every = max(1, min(LEARN_EVERY_MAX, math.ceil(count / LEARN_SHARE)))
    return corrections >= every


def _rebuild(session: Session, version: FaceModel) -> Recognizer:
    """A stored version's recognizer, from the faces it was trained on that are still there and
    still named as then, and its rejections that still stand."""
    stored = json.loads(version.training_set)
    pairs = {(int(f), int(p)) for f, p in stored.get("faces", [])}
    refused = {(int(f), int(p)) for f, p in stored.get("rejections", [])}
    labels = _read_labels(session, version.owner_id)
    keep = np.array(
        [(int(f), int(p)) in pairs for f, p in zip(labels.face_ids, labels.person_ids, strict=True)],
        dtype=bool,
    )
    keep_neg = np.array(
        [
            (int(f), int(p)) in refused
            for f, p in zip(labels.rejected_face_ids, labels.rejected_person_ids, strict=True)
        ],
        dtype=bool,
    )
    return Recognizer(
        labels.descriptors[keep],
        labels.person_ids[keep],
        Calibration(**json.loads(version.calibration)),
        (labels.rejected_descriptors[keep_neg], labels.rejected_person_ids[keep_neg]),
    )


def learn(
    ctx: Context,
    owner_id: int,
    *,
    force: bool = False,
    false_accept: float = FALSE_ACCEPT,
    prior: float = PRIOR_THRESHOLD,
) -> LearnResult:
    """Train a new version from the owner's named faces and rejections, judge it against the
    champion on their confirmed faces (each held out of its own judgement), keep it as champion
    only if at least as good, and refresh the suggestions when it is. Nothing is trained when no
    face is named, or when nothing changed since the latest version (unless `force`).
    `false_accept` and `prior` are the recognizer's calibration (ml/people.py)."""
    with ctx.sessions() as session:
        labels = _read_labels(session, owner_id)
        corrections, _ = _corrections_since(session, owner_id)
        latest = _latest(session, owner_id)
        champion_row = _champion(session, owner_id)
        champion = _rebuild(session, champion_row) if champion_row is not None else None
        champion_name = champion_row.version if champion_row is not None else None
        if latest is not None and not force and corrections == 0:
            return LearnResult(None, False, f"nothing changed since version {latest.version}")
    if len(labels.face_ids) == 0:
        return LearnResult(None, False, "no face is named yet")

    negatives = (labels.rejected_descriptors, labels.rejected_person_ids)
    candidate = Recognizer.fit(labels.descriptors, labels.person_ids, negatives, false_accept, prior)
    judged = evaluate(candidate, labels.descriptors, labels.person_ids, leave_out_copies=True)
    baseline = evaluate(
        nearest_neighbour(labels.descriptors, labels.person_ids),
        labels.descriptors,
        labels.person_ids,
        leave_out_copies=True,
    )
    held_out = _judgeable(judged)
    champion_eval = (
        evaluate(champion, labels.descriptors, labels.person_ids, leave_out_copies=True)
        if champion is not None
        else None
    )
    promoted, reason = _gate(judged, champion_eval, champion_name, held_out)

    people = len(candidate.people)
    summary = {
        "candidate": judged.as_dict(),
        "baseline": baseline.as_dict(),
        "champion": champion_eval.as_dict() if champion_eval is not None else None,
        "champion_version": champion_name,
    }
    training_set = {
        "faces": [[int(f), int(p)] for f, p in zip(labels.face_ids, labels.person_ids, strict=True)],
        "rejections": [
            [int(f), int(p)]
            for f, p in zip(labels.rejected_face_ids, labels.rejected_person_ids, strict=True)
        ],
    }
    try:
        with transaction(ctx.sessions) as session:
            number = int(
                session.scalar(select(func.max(FaceModel.version)).where(FaceModel.owner_id == owner_id)) or 0
            )
            if promoted:
                session.execute(
                    update(FaceModel)
                    .where(FaceModel.owner_id == owner_id, FaceModel.stage == ModelStage.CHAMPION)
                    .values(stage=ModelStage.RETIRED)
                )
            session.add(
                FaceModel(
                    owner_id=owner_id,
                    version=number + 1,
                    stage=ModelStage.CHAMPION if promoted else ModelStage.REJECTED,
                    threshold=candidate.threshold,
                    calibration=json.dumps(asdict(candidate.calibration)),
                    training_set=json.dumps(training_set),
                    n_faces=len(labels.face_ids),
                    n_people=people,
                    n_rejections=len(labels.rejected_face_ids),
                    n_held_out=held_out,
                    accuracy=judged.right if judged.known else None,
                    baseline_accuracy=baseline.right if baseline.known else None,
                    reason=reason,
                    summary=json.dumps(summary),
                )
            )
            session.flush()
            _prune(session, owner_id)
    except IntegrityError:  # another run for this owner wrote the same version number first
        return LearnResult(None, False, "another run for this owner finished first")

    if promoted:
        suggest(ctx, owner_id)
    log.info(
        "faces of owner %d: version %d %s (%s)",
        owner_id,
        number + 1,
        "promoted" if promoted else "kept out",
        reason,
    )
    return LearnResult(
        version=number + 1,
        promoted=promoted,
        reason=reason,
        faces=len(labels.face_ids),
        people=people,
        rejections=len(labels.rejected_face_ids),
        held_out=held_out,
        accuracy=judged.right if judged.known else None,
        baseline_accuracy=baseline.right if baseline.known else None,
        champion_accuracy=champion_eval.right if champion_eval is not None and champion_eval.known else None,
        threshold=candidate.threshold,
    )


def _judgeable(judged: Evaluation) -> int:
    """Confirmed faces the gate judged: those whose person has another named face, and those
    whose person has none (which should get no suggestion)."""
    return judged.known + judged.unknown


def _gate(
    candidate: Evaluation, champion: Evaluation | None, champion_version: int | None, held_out: int
) -> tuple[bool, str]:
    figures = f"right {candidate.right:.1%}, wrong {candidate.wrong:.1%} of {candidate.known} faces"
    if champion is None:
        if candidate.known == 0:
            return True, "first version; no person has two named faces to judge it on yet"
        if candidate.net > 0:
            return True, f"first version, better than naming nobody: {figures}"
        return False, f"no better than naming nobody: {figures}"
    verdict = candidate.net >= champion.net
    word = "promoted" if verdict else "kept out"
    return verdict, (
        f"{word}: right minus wrong on {held_out} confirmed faces (each without itself) "
        f"{candidate.net:.1%} against version {champion_version}'s {champion.net:.1%}; {figures}"
    )


def _prune(session: Session, owner_id: int) -> None:
    """Keep the champion and the newest KEEP_VERSIONS others."""
    keep = (
        select(FaceModel.id)
        .where(FaceModel.owner_id == owner_id, FaceModel.stage != ModelStage.CHAMPION)
        .order_by(FaceModel.version.desc())
        .limit(KEEP_VERSIONS)
    )
    session.execute(
        delete(FaceModel).where(
            FaceModel.owner_id == owner_id,
            FaceModel.stage != ModelStage.CHAMPION,
            FaceModel.id.not_in(keep.scalar_subquery()),
        )
    )


def suggest(ctx: Context, owner_id: int, face_ids: Sequence[int] | None = None) -> int:
    """Write who the owner's champion thinks each of their unnamed faces is (or nobody), for all
    of them or those of `face_ids` (others' faces in the list are ignored). Never a person the
    owner rejected for that face, never on a face marked "not a face". Returns how many faces
    got a suggestion."""
    with ctx.sessions() as session:
        champion_row = _champion(session, owner_id)
        query = (
            select(Face.id, Face.descriptor)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Photo.owner_id == owner_id, Face.person_id.is_(None), Face.not_a_face.is_(False))
            .order_by(Face.id)
        )
        if face_ids is not None:
            query = query.where(Face.id.in_(list(face_ids)))
        targets = session.execute(query).all()
        if not targets:
            return 0
        ids = [r[0] for r in targets]
        refused: dict[int, set[int]] = {}
        for face_id, person_id in session.execute(
            select(FaceRejection.face_id, FaceRejection.person_id).where(FaceRejection.face_id.in_(ids))
        ):
            refused.setdefault(face_id, set()).add(person_id)
        recognizer = _rebuild(session, champion_row) if champion_row is not None else None
    if recognizer is None:
        people, dists = np.full(len(ids), -1), np.full(len(ids), np.nan)
    else:
        people, dists = recognizer.suggest(
            _vectors([r[1] for r in targets]), [refused.get(i, set()) for i in ids]
        )
    rows = [
        {
            "fid": face_id,
            "pid": int(p) if p >= 0 else None,
            "dist": float(d) if p >= 0 else None,
        }
        for face_id, p, d in zip(ids, people, dists, strict=True)
    ]
    with transaction(ctx.sessions) as session:
        # Only where the face is still unnamed and still a face, the person still there and not
        # rejected for it meanwhile: the owner's word, written while this ran, wins.
        faces = cast(Table, Face.__table__)
        session.connection().execute(
            update(faces)
            .where(
                faces.c.id == bindparam("fid"),
                faces.c.person_id.is_(None),
                faces.c.not_a_face.is_(False),
                ~exists().where(
                    FaceRejection.face_id == bindparam("fid"), FaceRejection.person_id == bindparam("pid")
                ),
                or_(bindparam("pid").is_(None), exists().where(Person.id == bindparam("pid"))),
            )
            .values(suggested_person_id=bindparam("pid"), suggestion_distance=bindparam("dist")),
            rows,
        )
    return sum(1 for r in rows if r["pid"] is not None)


def suggest_for_photos(ctx: Context, photo_ids: Sequence[int]) -> int:
    """Suggestions for the unnamed faces of these photos, each from its own owner's champion
    (after a scan found them). Owners without a champion are left alone."""
    if not photo_ids:
        return 0
    with ctx.sessions() as session:
        owners = session.execute(
            select(Photo.owner_id, Face.id)
            .join(Face, Face.photo_id == Photo.id)
            .where(
                Photo.id.in_(list(photo_ids)),
                exists().where(FaceModel.owner_id == Photo.owner_id, FaceModel.stage == ModelStage.CHAMPION),
            )
        ).all()
    by_owner: dict[int, list[int]] = {}
    for owner_id, face_id in owners:
        by_owner.setdefault(owner_id, []).append(face_id)
    return sum(suggest(ctx, owner_id, faces) for owner_id, faces in by_owner.items())


def after_correction(ctx: Context, owner_id: int) -> str:
    """Call after the owner named, confirmed, rejected or moved faces (after the commit). Cheap:
    two counts decide whether enough changed since the latest version (every correction for an
    owner with few names, one in 20 of their names otherwise, at most 25); if so, learning is
    queued on the job queue (run here, bounded by the owner's few names, where there is none).
    Returns "queued", "learned" or "waiting"."""
    with ctx.sessions() as session:
        corrections, count = _corrections_since(session, owner_id)
    if corrections == 0 or not _due(corrections, count):
        return "waiting"
    if ctx.jobs is not None:
        ctx.jobs.enqueue("learn_faces", owner_id)
        return "queued"
    learn(ctx, owner_id)
    return "learned"


def owners_to_learn(ctx: Context) -> list[int]:
    """Owners with faces on whose names changed enough since their latest version (the sweep
    queues them: a lost job or a worker that died is repaired)."""
    with ctx.sessions() as session:
        owners = list(
            session.scalars(
                select(User.id).where(User.faces_enabled.is_(True), User.id.in_(select(Person.owner_id)))
            )
        )
        due = []
        for owner_id in owners:
            corrections, count = _corrections_since(session, owner_id)
            if corrections and _due(corrections, count):
                due.append(owner_id)
    return due


def versions(ctx: Context, owner_id: int) -> list[FaceModelPublic]:
    """The owner's versions, newest first."""
    with ctx.sessions() as session:
        rows = session.scalars(
            select(FaceModel).where(FaceModel.owner_id == owner_id).order_by(FaceModel.version.desc())
        ).all()
        return [_public(r) for r in rows]


def _public(row: FaceModel) -> FaceModelPublic:
    created = as_utc(row.created_at)
    assert created is not None
    return FaceModelPublic(
        version=row.version,
        stage=row.stage.value,
        created_at=created,
        faces=row.n_faces,
        people=row.n_people,
        rejections=row.n_rejections,
        held_out=row.n_held_out,
        accuracy=row.accuracy,
        baseline_accuracy=row.baseline_accuracy,
        threshold=row.threshold,
        reason=row.reason,
    )


def forget(session: Session, owner_id: int) -> None:
    """Delete every version of the owner's model (faces turned off: services/faces.forget_faces)."""
    session.execute(delete(FaceModel).where(FaceModel.owner_id == owner_id))
