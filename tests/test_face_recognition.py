"""Face recognition per owner (eyes/services/face_recognition.py): versions learnt from the
owner's names and rejections, the gate, suggestions, and privacy between owners.

Photos go through the real app and the real scan (the stand-in finder in the fast tier); the
faces' descriptors are then those of stand-in people (tests/standin_people.py), as naming is
the other half of issue 12 (services/people.py): the tests name faces by writing what naming
writes (Face.person_id, a FaceRejection). The slow test at the end runs dlib on lfw-40 photos.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from eyes.app import create_app
from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import Face, FaceModel, FaceRejection, Person, Photo, User
from eyes.jobs import tasks
from eyes.services import face_recognition as fr
from tests.conftest import context_of, sign_up, upload, wait_for_tagging
from tests.standin_faces import SPEC, faces_image
from tests.standin_people import people_faces

FACES_PER_PHOTO = 4


@pytest.fixture
def faces_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"faces": True, "faces_finder": SPEC})


def opt_in(client: TestClient) -> None:
    assert client.patch("/api/v1/me", json={"faces_enabled": True}).status_code == 200


def upload_faces(client: TestClient, tmp_path: Path, count: int, tag: str) -> list[str]:
    """Upload photos of FACES_PER_PHOTO stand-in faces each, `count` faces in all; their ids."""
    keys = []
    for i in range(0, count, FACES_PER_PHOTO):
        path = faces_image(
            tmp_path / f"{tag}{i}.png", min(FACES_PER_PHOTO, count - i), seed=hash(tag) % 1000 + i
        )
        keys.append(upload(client, path)["id"])
    wait_for_tagging(client)
    return keys


def faces_of(ctx: Context, username: str) -> list[int]:
    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(Face.id)
                .join(Photo, Photo.id == Face.photo_id)
                .join(User, User.id == Photo.owner_id)
                .where(User.username == username)
                .order_by(Face.id)
            )
        )


def owner_id(ctx: Context, username: str) -> int:
    with ctx.sessions() as session:
        found = session.scalar(select(User.id).where(User.username == username))
        assert found is not None
        return found


def give_descriptors(ctx: Context, face_ids: list[int], x: np.ndarray) -> None:
    with ctx.sessions() as session, session.begin():
        for face_id, vector in zip(face_ids, x, strict=True):
            session.execute(
                update(Face).where(Face.id == face_id).values(descriptor=vector.astype("<f4").tobytes())
            )


def person(ctx: Context, owner: int, name: str) -> int:
    with ctx.sessions() as session, session.begin():
        row = Person(owner_id=owner, name=name, slug=name.lower())
        session.add(row)
        session.flush()
        return row.id


def name(ctx: Context, face_ids: list[int], person_id: int | None) -> None:
    """What naming a group, confirming or moving faces writes."""
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(Face)
            .where(Face.id.in_(face_ids))
            .values(person_id=person_id, suggested_person_id=None, suggestion_distance=None)
        )


def reject(ctx: Context, face_id: int, person_id: int) -> None:
    """What "not Anna" writes."""
    with ctx.sessions() as session, session.begin():
        session.add(FaceRejection(face_id=face_id, person_id=person_id))
        session.execute(
            update(Face)
            .where(Face.id == face_id, Face.suggested_person_id == person_id)
            .values(suggested_person_id=None, suggestion_distance=None)
        )


def suggestions(ctx: Context, face_ids: list[int]) -> list[int | None]:
    with ctx.sessions() as session:
        rows = dict(
            session.execute(select(Face.id, Face.suggested_person_id).where(Face.id.in_(face_ids))).all()
        )
    return [rows[f] for f in face_ids]


@pytest.fixture
def anna(faces_settings: Settings, tmp_path: Path) -> Iterator[tuple[Context, list[int]]]:
    """Anna (faces on) with 40 stand-in faces: 5 people x 8 faces, in that order; the context
    has no job queue, so what is queued elsewhere runs at once here."""
    with TestClient(create_app(faces_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "anna")
        opt_in(client)
        upload_faces(client, tmp_path, 40, "anna")
    ctx = build_context(faces_settings)
    faces = faces_of(ctx, "anna")
    x, _ = people_faces(5, 8, seed=11)
    give_descriptors(ctx, faces, x)
    yield ctx, faces
    ctx.close()


def test_three_named_faces_each_name_the_rest_and_a_person_never_named_gets_nothing(
    anna: tuple[Context, list[int]],
) -> None:
    ctx, faces = anna
    owner = owner_id(ctx, "anna")
    people = [person(ctx, owner, n) for n in ("Anna", "Bert", "Cleo", "Dora")]  # the 5th: nobody
    for i, p in enumerate(people):
        name(ctx, faces[8 * i : 8 * i + 3], p)
        assert fr.after_correction(ctx, owner) == "learned"  # few names: learnt at once
    rest = [f for i in range(4) for f in faces[8 * i + 3 : 8 * i + 8]]
    assert suggestions(ctx, rest) == [p for p in people for _ in range(5)]
    assert suggestions(ctx, faces[32:]) == [None] * 8  # the person nobody named

    champion = fr.versions(ctx, owner)[0]
    assert champion.stage == "champion" and champion.version == 4
    assert champion.faces == 12 and champion.people == 4
    assert champion.held_out == 12 and champion.accuracy == 1.0 and champion.baseline_accuracy == 1.0
    with ctx.sessions() as session:
        distance = session.scalar(select(Face.suggestion_distance).where(Face.id == rest[0]))
    assert distance is not None and 0 < distance < champion.threshold
    # Nothing changed: asking again learns nothing new.
    assert fr.after_correction(ctx, owner) == "waiting"
    assert fr.learn(ctx, owner).version is None


def test_not_anna_is_never_suggested_again_for_that_face(anna: tuple[Context, list[int]]) -> None:
    ctx, faces = anna
    owner = owner_id(ctx, "anna")
    anna_id, bert_id = person(ctx, owner, "Anna"), person(ctx, owner, "Bert")
    name(ctx, faces[0:3], anna_id)
    name(ctx, faces[8:11], bert_id)
    fr.learn(ctx, owner)
    assert suggestions(ctx, faces[3:5]) == [anna_id, anna_id]

    reject(ctx, faces[3], anna_id)  # the owner: "not Anna"
    assert fr.after_correction(ctx, owner) == "learned"
    assert suggestions(ctx, faces[3:5]) == [None, anna_id]
    # Relearnt or not, a fresh pass over every face does not bring Anna back on it.
    fr.suggest(ctx, owner)
    fr.learn(ctx, owner, force=True)
    assert suggestions(ctx, [faces[3]]) == [None]
    with ctx.sessions() as session:
        versions = session.scalars(select(FaceModel).where(FaceModel.owner_id == owner)).all()
    assert max(v.n_rejections for v in versions) == 1


def test_the_gate_keeps_the_champion_when_a_worse_candidate_comes(
    faces_settings: Settings, tmp_path: Path
) -> None:
    with TestClient(create_app(faces_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "anna")
        opt_in(client)
        upload_faces(client, tmp_path, 40, "gate")
    ctx = build_context(faces_settings)
    try:
        faces = faces_of(ctx, "anna")
        # People whose faces vary as much as real ones do across years and light.
        x, _ = people_faces(5, 8, seed=12, same=0.5)
        give_descriptors(ctx, faces, x)
        owner = owner_id(ctx, "anna")
        people = [person(ctx, owner, n) for n in "ABCDE"]
        for i, p in enumerate(people):
            name(ctx, faces[8 * i : 8 * i + 5], p)
        first = fr.learn(ctx, owner)
        assert first.promoted and first.version == 1 and first.accuracy is not None
        before = suggestions(ctx, faces)

        # A candidate with a needlessly strict threshold: fewer right suggestions.
        worse = fr.learn(ctx, owner, force=True, false_accept=0.0, prior=0.0)
        assert worse.version == 2 and not worse.promoted
        assert worse.accuracy is not None and worse.accuracy < first.accuracy
        assert worse.champion_accuracy == first.accuracy
        stages = {v.version: v.stage for v in fr.versions(ctx, owner)}
        assert stages == {1: "champion", 2: "rejected"}
        assert "kept out" in fr.versions(ctx, owner)[0].reason
        assert suggestions(ctx, faces) == before  # still the champion's

        # More names: the next candidate knows more and is at least as good.
        name(ctx, faces[5:7], people[0])
        better = fr.learn(ctx, owner)
        assert better.promoted and better.version == 3
        assert {v.version: v.stage for v in fr.versions(ctx, owner)} == {
            1: "retired",
            2: "rejected",
            3: "champion",
        }
    finally:
        ctx.close()


def test_an_owner_with_many_names_learns_every_few_corrections(anna: tuple[Context, list[int]]) -> None:
    ctx, faces = anna
    owner = owner_id(ctx, "anna")
    people = [person(ctx, owner, n) for n in "ABCDE"]
    for i, p in enumerate(people):
        name(ctx, faces[8 * i : 8 * i + 8], p)  # 40 named faces: learn every 2 corrections
    assert fr.after_correction(ctx, owner) == "learned"
    name(ctx, [faces[0]], people[1])  # moved to another person: one correction
    assert fr.after_correction(ctx, owner) == "waiting"
    name(ctx, [faces[1]], None)  # unnamed: a second one
    assert fr.after_correction(ctx, owner) == "learned"
    assert [v.version for v in fr.versions(ctx, owner)] == [2, 1]


def test_a_face_marked_not_a_face_and_named_faces_get_no_suggestion(anna: tuple[Context, list[int]]) -> None:
    ctx, faces = anna
    owner = owner_id(ctx, "anna")
    a = person(ctx, owner, "Anna")
    name(ctx, faces[0:3], a)
    with ctx.sessions() as session, session.begin():
        session.execute(update(Face).where(Face.id == faces[3]).values(not_a_face=True))
    fr.learn(ctx, owner)
    assert suggestions(ctx, faces[0:5]) == [None, None, None, None, a]


def test_what_the_owner_says_while_suggestions_are_computed_wins(
    anna: tuple[Context, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, faces = anna
    owner = owner_id(ctx, "anna")
    a, b = person(ctx, owner, "Anna"), person(ctx, owner, "Boris")
    name(ctx, faces[0:3], a)
    name(ctx, faces[8:11], b)
    fr.learn(ctx, owner)
    assert suggestions(ctx, [faces[3], faces[11]]) == [a, b]
    name(ctx, faces[3:4] + faces[11:12], None)  # suggestions cleared, to be computed again

    rebuild = fr._rebuild

    def meanwhile(*args: object, **kwargs: object) -> object:
        built = rebuild(*args, **kwargs)  # type: ignore[arg-type]
        # After suggest read the faces, before it writes: one is marked "not a face", Boris is forgotten.
        with ctx.sessions() as session, session.begin():
            session.execute(update(Face).where(Face.id == faces[3]).values(not_a_face=True))
            session.execute(update(Face).where(Face.person_id == b).values(person_id=None))
            session.delete(session.get_one(Person, b))
        return built

    monkeypatch.setattr(fr, "_rebuild", meanwhile)
    fr.suggest(ctx, owner, [faces[3], faces[11]])
    assert suggestions(ctx, [faces[3], faces[11]]) == [None, None]


def test_a_deleted_photo_informs_no_suggestion(faces_settings: Settings, tmp_path: Path) -> None:
    with TestClient(create_app(faces_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "anna")
        opt_in(client)
        keys = upload_faces(client, tmp_path, 8, "del")  # two photos of four faces
        ctx = context_of(client)
        faces = faces_of(ctx, "anna")
        x, _ = people_faces(1, 8, seed=13)
        give_descriptors(ctx, faces, x)  # one person in both photos
        owner = owner_id(ctx, "anna")
        a = person(ctx, owner, "Anna")
        name(ctx, faces[0:4], a)  # every face of the first photo
        fr.learn(ctx, owner)
        assert suggestions(ctx, faces[4:]) == [a] * 4

        assert client.delete(f"/api/v1/photos/{keys[0]}").status_code == 204
        # The champion is rebuilt from the faces still there: nothing of the deleted photo.
        fr.suggest(ctx, owner)
        assert suggestions(ctx, faces[4:]) == [None] * 4
        assert fr.learn(ctx, owner).reason == "no face is named yet"


def test_one_owners_names_never_suggest_anything_to_another(faces_settings: Settings, tmp_path: Path) -> None:
    x, _ = people_faces(2, 8, seed=14)  # the same two people in both owners' photos
    with TestClient(create_app(faces_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "anna")
        opt_in(client)
        upload_faces(client, tmp_path, 16, "a")
        other = TestClient(client.app, base_url="http://127.0.0.1")  # the same app: one start and shutdown
        sign_up(other, "bob")
        opt_in(other)
        upload_faces(other, tmp_path, 16, "b")
    ctx = build_context(faces_settings)
    try:
        hers, his = faces_of(ctx, "anna"), faces_of(ctx, "bob")
        give_descriptors(ctx, hers, x)
        give_descriptors(ctx, his, x)
        owner_a, owner_b = owner_id(ctx, "anna"), owner_id(ctx, "bob")
        a = person(ctx, owner_a, "Anna")
        name(ctx, hers[:8], a)
        assert fr.after_correction(ctx, owner_a) == "learned"
        assert suggestions(ctx, hers[8:]) == [None] * 8 and fr.versions(ctx, owner_a)[0].people == 1
        assert suggestions(ctx, his) == [None] * 16  # the same faces, another owner
        assert fr.learn(ctx, owner_b).version is None and fr.versions(ctx, owner_b) == []
        # Asking for suggestions on somebody else's faces (counting ids) writes nothing on them.
        assert fr.suggest(ctx, owner_a, his) == 0
        assert suggestions(ctx, his) == [None] * 16
        # A name from another owner set on Bob's face (a bug elsewhere) is not learnt from.
        name(ctx, his[:8], a)
        assert fr.learn(ctx, owner_b).version is None
        # And Bob naming his own faces teaches nothing to Anna's.
        name(ctx, his[:8], None)
        b = person(ctx, owner_b, "Bea")
        name(ctx, his[8:16], b)
        fr.learn(ctx, owner_b)
        assert suggestions(ctx, hers[8:]) == [None] * 8
        assert suggestions(ctx, his[:8]) == [None] * 8  # his unnamed first person is not Bea
    finally:
        ctx.close()


def test_the_sweep_learns_for_names_whose_job_was_lost_and_a_scan_brings_suggestions(
    faces_settings: Settings, tmp_path: Path
) -> None:
    with TestClient(create_app(faces_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "anna")
        opt_in(client)
        upload_faces(client, tmp_path, 4, "s")
        ctx = context_of(client)
        faces = faces_of(ctx, "anna")  # the stand-in finder's descriptor, the same for all
        owner = owner_id(ctx, "anna")
        a = person(ctx, owner, "Anna")
        name(ctx, faces[:2], a)  # and no after_correction: as if its job were lost
        tasks.sweep(ctx)
        wait_for_tagging(client)
        deadline = time.monotonic() + 20
        while not fr.versions(ctx, owner) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [v.stage for v in fr.versions(ctx, owner)] == ["champion"]
        assert suggestions(ctx, faces[2:]) == [a, a]

        # A new photo: its faces get the champion's suggestion as soon as they are found.
        upload_faces(client, tmp_path, 1, "new")
        new = faces_of(ctx, "anna")[4:]
        assert len(new) == 1 and suggestions(ctx, new) == [a]


def test_turning_faces_off_deletes_the_recognition_versions(faces_settings: Settings, tmp_path: Path) -> None:
    with TestClient(create_app(faces_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "anna")
        opt_in(client)
        upload_faces(client, tmp_path, 4, "off")
        ctx = context_of(client)
        owner = owner_id(ctx, "anna")
        name(ctx, faces_of(ctx, "anna")[:2], person(ctx, owner, "Anna"))
        fr.learn(ctx, owner)
        assert len(fr.versions(ctx, owner)) == 1
        assert client.patch("/api/v1/me", json={"faces_enabled": False}).status_code == 200
        with ctx.sessions() as session:
            assert session.scalar(select(func.count(FaceModel.id)).where(FaceModel.owner_id == owner)) == 0


def test_old_versions_are_pruned_and_the_champion_kept(anna: tuple[Context, list[int]]) -> None:
    ctx, faces = anna
    owner = owner_id(ctx, "anna")
    a = person(ctx, owner, "Anna")
    name(ctx, faces[:3], a)
    fr.learn(ctx, owner)
    for _ in range(fr.KEEP_VERSIONS + 3):
        fr.learn(ctx, owner, force=True, false_accept=0.0, prior=0.0)  # never better: rejected
    kept = fr.versions(ctx, owner)
    assert len(kept) == fr.KEEP_VERSIONS + 1
    assert [v.version for v in kept if v.stage == "champion"] == [1]


# Slow: the real finder (dlib) on lfw-40 photos, through upload and scan.


@pytest.mark.slow
def test_lfw_photos_through_the_scan_named_three_each_name_the_rest(settings: Settings) -> None:
    from tests.lfw_faces import lfw_people, photos_of

    real = settings.model_copy(update={"faces": True, "faces_finder": ""})
    named_people, strangers = lfw_people(6, start=20), lfw_people(2, start=26)
    with TestClient(create_app(real), base_url="http://127.0.0.1") as client:
        sign_up(client, "anna")
        opt_in(client)
        keys: dict[str, list[str]] = {}
        for who in named_people + strangers:
            keys[who] = [upload(client, path)["id"] for path in photos_of(who)[:6]]
        wait_for_tagging(client, timeout=300)
        ctx = context_of(client)
        owner = owner_id(ctx, "anna")
        central = _central_faces(ctx, keys)
        ids = {who: person(ctx, owner, who) for who in named_people}
        for who in named_people:
            name(ctx, central[who][:3], ids[who])
        result = fr.learn(ctx, owner)
        assert result.promoted and result.people == 6 and result.faces == 18

        rest = [(f, ids[who]) for who in named_people for f in central[who][3:]]
        got = suggestions(ctx, [f for f, _ in rest])
        right = sum(g == want for g, (_, want) in zip(got, rest, strict=True))
        wrong = sum(g is not None and g != want for g, (_, want) in zip(got, rest, strict=True))
        assert right >= 0.95 * len(rest) and wrong == 0, (right, wrong, len(rest))
        unnamed = [f for who in strangers for f in central[who]]
        assert sum(s is None for s in suggestions(ctx, unnamed)) >= 0.9 * len(unnamed)

        # "Not <the first person>" on one of their faces: never suggested again for it.
        first = named_people[0]
        target = next(f for f in central[first][3:] if suggestions(ctx, [f]) == [ids[first]])
        reject(ctx, target, ids[first])
        fr.after_correction(ctx, owner)
        wait_for_tagging(client)
        fr.suggest(ctx, owner)
        assert suggestions(ctx, [target]) != [ids[first]]

        # Bob uploads the same photos of the first person: Anna's names suggest nothing to him.
        other = TestClient(client.app, base_url="http://127.0.0.1")  # the same app: one start and shutdown
        sign_up(other, "bob")
        opt_in(other)
        for path in photos_of(first)[:4]:
            upload(other, path)
        wait_for_tagging(other, timeout=120)
        his = faces_of(ctx, "bob")
        assert his and suggestions(ctx, his) == [None] * len(his)


def _central_faces(ctx: Context, keys: dict[str, list[str]]) -> dict[str, list[int]]:
    """Each person's face nearest the middle of each of their photos (lfw-40 centres the person)."""
    out: dict[str, list[int]] = {}
    with ctx.sessions() as session:
        for who, photos in keys.items():
            out[who] = []
            for key in photos:
                rows = session.execute(
                    select(Face.id, Face.left, Face.top, Face.right, Face.bottom)
                    .join(Photo, Photo.id == Face.photo_id)
                    .where(Photo.public_id == key)
                ).all()
                if rows:
                    best = min(
                        rows, key=lambda r: abs((r[1] + r[3]) / 2 - 125) + abs((r[2] + r[4]) / 2 - 125)
                    )
                    out[who].append(best[0])
    return out
