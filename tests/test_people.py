"""People: an owner's unnamed faces grouped by likeness, named, merged, split and corrected, and
a named person as a `person:` tag the owner can search for. The fast tier's stand-in finder
(tests/standin_faces.py) gives every face of one stand-in person the same descriptor, so the
groups are known in advance. Who else may see a person's tag: tests/test_people_privacy.py."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from eyes.app import create_app
from eyes.config import Settings
from eyes.db.models import Face, FaceRejection, Photo
from eyes.errors import NotFound
from eyes.services import people
from eyes.services.accounts import get_user_by_name
from tests.conftest import context_of, sign_up, upload, wait_for_tagging
from tests.standin_faces import SPEC, faces_image
from tests.test_cli import eyes

ANNA, BORIS, CLARA = 1, 2, 3  # stand-in persons


@pytest.fixture
def faces_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"faces": True, "faces_finder": SPEC})


@pytest.fixture
def app_client(faces_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(faces_settings), base_url="http://127.0.0.1") as c:
        yield c


def opt_in(client: TestClient) -> None:
    assert client.patch("/api/v1/me", json={"faces_enabled": True}).status_code == 200


_seed = iter(range(10_000))


def upload_people(client: TestClient, tmp_path: Path, who: Sequence[int], **fields: str) -> str:
    """Upload a photo of these stand-in persons (left to right) and wait until its faces are
    found and grouped; returns the photo's id."""
    seed = next(_seed)
    photo = upload(client, faces_image(tmp_path / f"p{seed}.png", len(who), seed=seed, people=who), **fields)
    wait_for_tagging(client)
    return str(photo["id"])


def overview(client: TestClient) -> dict[str, Any]:
    res = client.get("/api/v1/me/people/overview")
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


def faces_by_photo(client: TestClient) -> dict[str, list[int]]:
    """The owner's face ids by photo, left to right (the order `upload_people` drew them)."""
    found: dict[str, list[tuple[int, int, int]]] = {}
    for f in client.get("/api/v1/me/faces").json():
        found.setdefault(f["photo"], []).append((f["top"], f["left"], f["id"]))
    return {photo: [i for _, _, i in sorted(faces)] for photo, faces in found.items()}


def group_of(view: dict[str, Any], face_id: int) -> dict[str, Any]:
    for g in view["groups"]:
        if face_id in [f["id"] for f in g["faces"]]:
            return g
    raise AssertionError(f"face {face_id} is in no group")


def person_tags(client: TestClient, photo: str) -> list[str]:
    return [p["tag"] for p in client.get(f"/api/v1/photos/{photo}").json()["people"]]


def search(client: TestClient, *tags: str) -> set[str]:
    res = client.get("/api/v1/photos", params=[("tag", t) for t in tags])
    assert res.status_code == 200, res.text
    return {p["id"] for p in res.json()["items"]}


@pytest.fixture
def three_people(app_client: TestClient, tmp_path: Path) -> dict[str, Any]:
    """anna's photos: Anna in three, Boris in two of them, Clara alone in a fourth."""
    sign_up(app_client, "owner")
    opt_in(app_client)
    photos = [
        upload_people(app_client, tmp_path, [ANNA, BORIS]),
        upload_people(app_client, tmp_path, [ANNA, BORIS]),
        upload_people(app_client, tmp_path, [ANNA]),
        upload_people(app_client, tmp_path, [CLARA]),
    ]
    faces = faces_by_photo(app_client)
    return {
        "photos": photos,
        "anna": [faces[photos[0]][0], faces[photos[1]][0], faces[photos[2]][0]],
        "boris": [faces[photos[0]][1], faces[photos[1]][1]],
        "clara": faces[photos[3]][0],
    }


def test_the_faces_of_one_person_are_grouped_and_a_face_alone_is_in_no_group(
    app_client: TestClient, three_people: dict[str, Any]
) -> None:
    view = overview(app_client)
    groups = {tuple(sorted(f["id"] for f in g["faces"])) for g in view["groups"]}
    assert groups == {tuple(sorted(three_people["anna"])), tuple(sorted(three_people["boris"]))}
    assert [g["size"] for g in view["groups"]] == [3, 2]  # the biggest first
    # A group is named by its first face, so grouping again keeps its id.
    assert group_of(view, three_people["anna"][0])["id"] == min(three_people["anna"])
    assert [f["id"] for f in view["singles"]] == [three_people["clara"]]
    assert view["people"] == [] and view["single_count"] == 1


def test_grouping_again_keeps_the_groups_and_their_ids(
    app_client: TestClient, three_people: dict[str, Any], tmp_path: Path
) -> None:
    before = overview(app_client)["groups"]
    res = app_client.post("/api/v1/me/people/grouping")
    assert res.status_code == 200 and res.json() == {"faces": 6, "groups": 2}
    assert overview(app_client)["groups"] == before
    # A new photo of Clara: her two faces are a group now; the others keep theirs.
    upload_people(app_client, tmp_path, [CLARA])
    after = overview(app_client)
    assert [g for g in after["groups"] if g["id"] != three_people["clara"]] == before
    assert group_of(after, three_people["clara"])["size"] == 2
    assert after["singles"] == []


def test_the_owner_names_a_group_and_finds_the_person_by_tag(
    app_client: TestClient, three_people: dict[str, Any]
) -> None:
    group = group_of(overview(app_client), three_people["anna"][0])["id"]
    res = app_client.post(f"/api/v1/me/people/groups/{group}/name", json={"name": "  Anna   Maria "})
    assert res.status_code == 200, res.text
    anna = res.json()
    assert anna["name"] == "Anna Maria" and anna["tag"] == "person:anna-maria"
    assert (anna["face_count"], anna["photo_count"], anna["audience"]) == (3, 3, "owner")
    assert anna["cover_url"] == f"/people/faces/{min(three_people['anna'])}.jpg"

    view = overview(app_client)
    assert [p["name"] for p in view["people"]] == ["Anna Maria"]
    assert [g["size"] for g in view["groups"]] == [2]  # Boris is left
    photos = three_people["photos"]
    assert person_tags(app_client, photos[0]) == ["person:anna-maria"]
    assert person_tags(app_client, photos[3]) == []
    assert search(app_client, "person:anna-maria") == set(photos[:3])
    assert search(app_client, "Person:Anna-Maria") == set(photos[:3])  # normalised like any tag
    assert search(app_client, "person:boris") == set()
    page = app_client.get(f"/photos/{photos[0]}").text
    assert 'id="people-tags"' in page and "person:anna-maria" in page
    assert "person:anna-maria" in app_client.get("/search", params={"q": "person:anna-maria"}).text
    tag_page = app_client.get("/tags/person:anna-maria").text
    assert all(f"/photos/{p}" in tag_page for p in photos[:3]) and f"/photos/{photos[3]}" not in tag_page
    # Their page lists their photos.
    person_page = app_client.get(anna["url"])
    assert person_page.status_code == 200 and all(f"/photos/{p}" in person_page.text for p in photos[:3])
    listed = app_client.get(f"/api/v1/me/people/{anna['id']}/photos").json()["items"]
    assert {p["id"] for p in listed} == set(photos[:3])


def test_naming_a_group_with_a_name_already_given_joins_that_person(
    app_client: TestClient, three_people: dict[str, Any]
) -> None:
    view = overview(app_client)
    first = app_client.post(
        f"/api/v1/me/people/groups/{group_of(view, three_people['anna'][0])['id']}/name",
        json={"name": "Anna"},
    ).json()
    second = app_client.post(
        f"/api/v1/me/people/groups/{group_of(view, three_people['boris'][0])['id']}/name",
        json={"name": "ANNA "},
    ).json()
    assert second["id"] == first["id"] and second["name"] == "Anna"  # the first spelling stays
    assert second["face_count"] == 5
    assert overview(app_client)["groups"] == []


def test_merge_two_groups_then_split_them_again(app_client: TestClient, three_people: dict[str, Any]) -> None:
    view = overview(app_client)
    anna, boris = (group_of(view, three_people[k][0])["id"] for k in ("anna", "boris"))
    res = app_client.post(f"/api/v1/me/people/groups/{boris}/merge", json={"into_group": anna})
    assert res.status_code == 200 and res.json() == {"group": min(anna, boris)}
    view = overview(app_client)
    assert [g["size"] for g in view["groups"]] == [5]

    merged = view["groups"][0]["id"]
    res = app_client.post(f"/api/v1/me/people/groups/{merged}/split", json={"faces": three_people["boris"]})
    assert res.status_code == 200, res.text
    assert res.json() == {"group": min(three_people["boris"]), "rest": min(three_people["anna"])}
    groups = {g["id"]: sorted(f["id"] for f in g["faces"]) for g in overview(app_client)["groups"]}
    assert groups == {
        min(three_people["anna"]): sorted(three_people["anna"]),
        min(three_people["boris"]): sorted(three_people["boris"]),
    }
    # Splitting off every face, or a face of another group, is refused.
    whole = app_client.post(
        f"/api/v1/me/people/groups/{min(three_people['boris'])}/split", json={"faces": three_people["boris"]}
    )
    assert whole.status_code == 400
    other = app_client.post(
        f"/api/v1/me/people/groups/{min(three_people['boris'])}/split",
        json={"faces": [three_people["anna"][0]]},
    )
    assert other.status_code == 404


def test_two_corrections_of_one_group_at_once_one_wins_and_the_other_is_told(
    app_client: TestClient, three_people: dict[str, Any]
) -> None:
    """Two tabs name one group at the same moment: one name is given, the other is told the group
    is gone (it was named), and no empty person is left behind. The second naming runs to its end
    right after the first has read the group: the moment two requests at once can meet."""
    ctx = context_of(app_client)
    owner = get_user_by_name(ctx, "owner")
    group = group_of(overview(app_client), three_people["anna"][0])["id"]
    answers: dict[str, object] = {}

    def naming(name: str) -> Callable[[], None]:
        def run() -> None:
            try:
                answers[name] = people.name_group(ctx, owner, group, name).face_count
            except NotFound as exc:
                answers[name] = exc

        return run

    second = threading.Thread(target=naming("Boris"))

    def meanwhile(*args: Any) -> None:
        if second.ident is None and "faces" in args[2]:  # the first naming's first look at faces
            second.start()
            second.join(timeout=2)  # long enough to finish, unless it must wait for the first

    engine = ctx.sessions.kw["bind"]
    event.listen(engine, "after_cursor_execute", meanwhile)
    try:
        naming("Anna")()
    finally:
        event.remove(engine, "after_cursor_execute", meanwhile)
    second.join()
    named = [n for n, a in answers.items() if isinstance(a, int)]
    told = [a for a in answers.values() if isinstance(a, NotFound)]
    assert len(named) == 1 and answers[named[0]] == 3, answers
    assert len(told) == 1 and "no such group" in told[0].message
    view = overview(app_client)
    assert [(p["name"], p["face_count"]) for p in view["people"]] == [(named[0], 3)]


def test_merge_a_group_into_a_person_and_two_people_into_one(
    app_client: TestClient, three_people: dict[str, Any]
) -> None:
    view = overview(app_client)
    anna = app_client.post(
        f"/api/v1/me/people/groups/{group_of(view, three_people['anna'][0])['id']}/name",
        json={"name": "Anna"},
    ).json()
    boris_group = group_of(view, three_people["boris"][0])["id"]
    res = app_client.post(f"/api/v1/me/people/groups/{boris_group}/merge", json={"into_person": anna["id"]})
    assert res.status_code == 200 and res.json()["person"]["face_count"] == 5

    clara = app_client.post(f"/api/v1/me/faces/{three_people['clara']}/person", json={"name": "Clara"}).json()
    assert clara["person"] is not None
    # Clara is Anna after all: Anna keeps her name, Clara's faces and tag are hers.
    res = app_client.post(f"/api/v1/me/people/{clara['person']}/merge", json={"into_person": anna["id"]})
    assert res.status_code == 200 and res.json()["face_count"] == 6 and res.json()["photo_count"] == 4
    assert app_client.get(f"/api/v1/me/people/{clara['person']}").status_code == 404
    assert search(app_client, "person:anna") == set(three_people["photos"])
    assert search(app_client, "person:clara") == set()


def test_a_face_that_is_not_that_person_is_taken_out_and_remembered(
    app_client: TestClient, three_people: dict[str, Any]
) -> None:
    group = group_of(overview(app_client), three_people["anna"][0])["id"]
    anna = app_client.post(f"/api/v1/me/people/groups/{group}/name", json={"name": "Anna"}).json()
    wrong = three_people["anna"][2]  # her only face in the third photo
    res = app_client.post(f"/api/v1/me/faces/{wrong}/person", json={"person": None})
    assert res.status_code == 200 and res.json()["person"] is None
    with context_of(app_client).sessions() as session:
        rejected = session.execute(select(FaceRejection.face_id, FaceRejection.person_id)).all()
    assert [tuple(r) for r in rejected] == [(wrong, anna["id"])]
    assert person_tags(app_client, three_people["photos"][2]) == []
    assert search(app_client, "person:anna") == set(three_people["photos"][:2])
    assert app_client.get(f"/api/v1/me/people/{anna['id']}").json()["face_count"] == 2

    # Moved to someone else by name: named, and still 'not Anna'.
    res = app_client.post(f"/api/v1/me/faces/{wrong}/person", json={"name": "Clara"})
    assert res.status_code == 200 and person_tags(app_client, three_people["photos"][2]) == ["person:clara"]
    # Moved back to Anna on purpose: the owner's last word wins over the old 'not Anna'.
    app_client.post(f"/api/v1/me/faces/{wrong}/person", json={"person": anna["id"]})
    with context_of(app_client).sessions() as session:
        assert (
            session.scalar(select(FaceRejection.person_id).where(FaceRejection.face_id == wrong))
            != anna["id"]
        )
    assert person_tags(app_client, three_people["photos"][2]) == ["person:anna"]


def test_not_a_face_leaves_the_groups_and_a_group_of_one_is_no_group(
    app_client: TestClient, three_people: dict[str, Any]
) -> None:
    boris = three_people["boris"]
    res = app_client.post(f"/api/v1/me/faces/{boris[0]}/not-a-face", json={})
    assert res.status_code == 200
    view = overview(app_client)
    assert [g["size"] for g in view["groups"]] == [3]
    assert sorted(f["id"] for f in view["singles"]) == sorted([boris[1], three_people["clara"]])
    assert view["not_faces"] == 1
    # Grouping again never takes it back.
    app_client.post("/api/v1/me/people/grouping")
    assert overview(app_client)["not_faces"] == 1
    assert all(boris[0] not in [f["id"] for f in g["faces"]] for g in overview(app_client)["groups"])
    # Undone: a face again, grouped with its like.
    app_client.post(f"/api/v1/me/faces/{boris[0]}/not-a-face", json={"not_a_face": False})
    app_client.post("/api/v1/me/people/grouping")
    assert sorted(f["id"] for f in group_of(overview(app_client), boris[0])["faces"]) == sorted(boris)


def test_the_owners_recognition_suggests_who_new_faces_are_and_the_owner_answers(
    app_client: TestClient, three_people: dict[str, Any], tmp_path: Path
) -> None:
    group = group_of(overview(app_client), three_people["anna"][0])["id"]
    anna = app_client.post(f"/api/v1/me/people/groups/{group}/name", json={"name": "Anna"}).json()
    wait_for_tagging(app_client)  # naming her queued her owner's recognition to learn
    # Two new photos of Anna: their faces are suggested as her (services/face_recognition.py).
    new = [upload_people(app_client, tmp_path, [ANNA]) for _ in range(2)]
    faces = faces_by_photo(app_client)
    yes, no = faces[new[0]][0], faces[new[1]][0]
    view = overview(app_client)
    assert {(f["id"], f["suggested_name"]) for f in view["suggestions"]} == {(yes, "Anna"), (no, "Anna")}
    page = app_client.get("/people").text
    assert "Is this <strong>Anna</strong>?" in page
    assert person_tags(app_client, new[0]) == []  # a guess is no tag until the owner says yes

    res = app_client.post(f"/api/v1/me/faces/{yes}/suggestion", json={"accept": True})
    assert res.status_code == 200 and res.json()["person"] == anna["id"]
    assert person_tags(app_client, new[0]) == ["person:anna"]
    res = app_client.post(f"/api/v1/me/faces/{no}/suggestion", json={"accept": False})
    assert res.json()["person"] is None and res.json()["suggested_person"] is None
    with context_of(app_client).sessions() as session:
        rejected = session.scalar(select(FaceRejection.person_id).where(FaceRejection.face_id == no))
    assert rejected == anna["id"]
    wait_for_tagging(app_client)  # learning again after the answers suggests her no more for it
    assert overview(app_client)["suggestions"] == []
    # Nothing left to answer: a clear 404, not a silent success.
    assert app_client.post(f"/api/v1/me/faces/{no}/suggestion", json={"accept": True}).status_code == 404


def test_rename_and_forget_a_person(app_client: TestClient, three_people: dict[str, Any]) -> None:
    view = overview(app_client)
    anna = app_client.post(
        f"/api/v1/me/people/groups/{group_of(view, three_people['anna'][0])['id']}/name",
        json={"name": "Anna"},
    ).json()
    boris = app_client.post(
        f"/api/v1/me/people/groups/{group_of(view, three_people['boris'][0])['id']}/name",
        json={"name": "Boris"},
    ).json()
    res = app_client.patch(f"/api/v1/me/people/{anna['id']}", json={"name": "Annie"})
    assert res.status_code == 200 and res.json()["tag"] == "person:annie"
    assert search(app_client, "person:annie") == set(three_people["photos"][:3])
    assert search(app_client, "person:anna") == set()
    taken = app_client.patch(f"/api/v1/me/people/{anna['id']}", json={"name": "boris"})
    assert taken.status_code == 409 and "merge" in taken.json()["error"]["message"]

    assert app_client.delete(f"/api/v1/me/people/{boris['id']}").status_code == 204
    view = overview(app_client)
    assert [p["name"] for p in view["people"]] == ["Annie"]
    # His faces are unnamed again, and grouped again.
    assert sorted(f["id"] for f in group_of(view, three_people["boris"][0])["faces"]) == sorted(
        three_people["boris"]
    )


def test_face_pictures_are_small_squares_for_their_owner(
    app_client: TestClient, three_people: dict[str, Any]
) -> None:
    from io import BytesIO

    from PIL import Image

    res = app_client.get(f"/people/faces/{three_people['clara']}.jpg")
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"
    assert "private" in res.headers["cache-control"]
    with Image.open(BytesIO(res.content)) as img:
        assert img.width == img.height and img.width <= 128
        # The face of the stand-in is a green square: the middle of its picture is green.
        r, g, b = img.convert("RGB").getpixel((img.width // 2, img.height // 2))
        assert g > 200 and r < 80
    # Asked again with its ETag: "not modified", answered without reading the thumbnail (gone here).
    for key in list(context_of(app_client).blobs.keys("thumbs/")):
        context_of(app_client).blobs.delete(key)
    again = app_client.get(
        f"/people/faces/{three_people['clara']}.jpg", headers={"If-None-Match": res.headers["etag"]}
    )
    assert again.status_code == 304


def test_the_people_page_names_merges_and_splits_with_plain_forms(
    app_client: TestClient, three_people: dict[str, Any]
) -> None:
    page = app_client.get("/people")
    assert page.status_code == 200 and 'id="nav-people"' in page.text
    view = overview(app_client)
    anna, boris = (group_of(view, three_people[k][0])["id"] for k in ("anna", "boris"))
    assert f'id="group-{anna}"' in page.text and f'id="group-{boris}"' in page.text
    token = app_client.headers["X-CSRF-Token"]
    form = {"csrf_token": token}
    res = app_client.post(
        f"/people/groups/{anna}/name", data={**form, "name": "Anna"}, follow_redirects=False
    )
    assert res.status_code == 303 and res.headers["location"] == "/people"
    person = overview(app_client)["people"][0]
    res = app_client.post(
        f"/people/groups/{boris}/merge", data={**form, "into": f"p{person['id']}"}, follow_redirects=False
    )
    assert res.status_code == 303
    assert app_client.get(f"/api/v1/me/people/{person['id']}").json()["face_count"] == 5
    res = app_client.post(
        f"/people/faces/{three_people['boris'][0]}/remove",
        data={**form, "back": person["url"]},
        follow_redirects=False,
    )
    assert res.status_code == 303 and res.headers["location"] == person["url"]
    res = app_client.post(
        f"/people/faces/{three_people['clara']}/not-a-face",
        data={**form, "back": "https://evil.example/"},
        follow_redirects=False,
    )
    assert res.status_code == 303 and res.headers["location"] == "/people"  # never off the site
    res = app_client.post(
        f"/people/{person['id']}/audience", data={**form, "audience": "viewers"}, follow_redirects=False
    )
    assert res.status_code == 303
    assert app_client.get(f"/api/v1/me/people/{person['id']}").json()["audience"] == "viewers"


def test_deleting_a_photo_deletes_its_faces_and_the_person_stays(
    app_client: TestClient, three_people: dict[str, Any]
) -> None:
    """Decided: a person is the owner's name for someone, kept when their last photo goes (they
    may come back in the next upload); the owner forgets a name on its page."""
    face = three_people["clara"]
    clara = app_client.post(f"/api/v1/me/faces/{face}/person", json={"name": "Clara"}).json()
    assert app_client.delete(f"/api/v1/photos/{three_people['photos'][3]}").status_code == 204
    with context_of(app_client).sessions() as session:
        assert session.get(Face, face) is None
        assert session.scalar(select(Photo.id).where(Photo.public_id == three_people["photos"][3])) is None
    person = app_client.get(f"/api/v1/me/people/{clara['person']}").json()
    assert (person["name"], person["face_count"], person["photo_count"], person["cover_url"]) == (
        "Clara",
        0,
        0,
        None,
    )
    assert app_client.get(f"/people/faces/{face}.jpg").status_code == 404


def test_lists_of_photos_read_their_people_in_one_query_not_one_per_photo(
    app_client: TestClient, faces_settings: Settings, tmp_path: Path
) -> None:
    """The moderation queue and 'Help Eyes learn' show photos with their person tags: a page of
    three photos costs the statements a page of one does."""
    sign_up(app_client, "owner")  # the first account: an administrator
    opt_in(app_client)
    ctx = context_of(app_client)
    engine = ctx.sessions.kw["bind"]
    statements: list[str] = []

    def count(*args: Any) -> None:
        # The request's own statements: not those of the jobs and the sweeper running meanwhile.
        if not threading.current_thread().name.startswith(("eyes-", "similar-sync")):
            statements.append(args[2])

    def counted(url: str) -> tuple[int, list[dict[str, Any]]]:
        """Statements of the fewest of two asks: a session's occasional upkeep is not the page's."""
        fewest = 10**6
        for _ in range(2):
            statements.clear()
            event.listen(engine, "before_cursor_execute", count)
            try:
                res = app_client.get(url)
            finally:
                event.remove(engine, "before_cursor_execute", count)
            assert res.status_code == 200, res.text
            fewest = min(fewest, len(statements))
        return fewest, res.json()

    # The same app, another account's cookies; the app's start and shutdown stay app_client's.
    reporter = TestClient(app_client.app, base_url="http://127.0.0.1")
    sign_up(reporter, "bob")
    costs: list[tuple[int, int]] = []
    for _ in range(3):
        photo = upload_people(app_client, tmp_path, [ANNA])
        face = faces_by_photo(app_client)[photo][0]
        assert app_client.post(f"/api/v1/me/faces/{face}/person", json={"name": "Anna"}).status_code == 200
        assert reporter.post(f"/api/v1/photos/{photo}/reports", json={"reason": "spam"}).status_code == 201
        queue_cost, queue = counted("/api/v1/moderation/queue")
        learn_cost, learn = counted("/api/v1/learn")
        assert [i["photo"]["people"][0]["tag"] for i in queue] == ["person:anna"] * len(costs + [0])
        assert [p["people"][0]["tag"] for p in learn] == ["person:anna"] * len(costs + [0])
        costs.append((queue_cost, learn_cost))
    assert costs[0] == costs[1] == costs[2], costs


def test_a_new_face_after_the_newest_photo_was_deleted_is_grouped_and_gets_a_new_id(
    app_client: TestClient, tmp_path: Path
) -> None:
    """A face's id is never given again: a grouping remembers the newest face it saw, and a face
    picture is kept by its id; a new face with a deleted one's id would be neither grouped nor
    shown as itself."""
    sign_up(app_client, "owner")
    opt_in(app_client)
    first = upload_people(app_client, tmp_path, [ANNA])
    gone = upload_people(app_client, tmp_path, [ANNA])
    deleted = faces_by_photo(app_client)[gone][0]
    assert app_client.delete(f"/api/v1/photos/{gone}").status_code == 204
    new = upload_people(app_client, tmp_path, [ANNA])
    faces = faces_by_photo(app_client)
    assert faces[new][0] > deleted
    group = group_of(overview(app_client), faces[first][0])
    assert sorted(f["id"] for f in group["faces"]) == [faces[first][0], faces[new][0]]


def test_cli_groups_faces_and_lists_people(
    app_client: TestClient, faces_settings: Settings, three_people: dict[str, Any]
) -> None:
    group = group_of(overview(app_client), three_people["anna"][0])["id"]
    app_client.post(f"/api/v1/me/people/groups/{group}/name", json={"name": "Anna"})
    env = {"EYES_FACES": "true", "EYES_FACES_FINDER": SPEC}
    res = eyes(faces_settings, "faces", "group", "--owner", "owner", "--json", env=env)
    assert res.returncode == 0, res.stderr
    import json

    assert json.loads(res.stdout) == {"owners": 1, "faces": 3, "groups": 1}  # Boris's two, and Clara
    listed = eyes(faces_settings, "people", "list", "--owner", "owner", "--json", env=env)
    assert listed.returncode == 0
    assert [(p["name"], p["photo_count"]) for p in json.loads(listed.stdout)] == [("Anna", 3)]
    assert "person:anna" in eyes(faces_settings, "people", "list", "--owner", "owner", env=env).stdout
    assert eyes(faces_settings, "people", "list", "--owner", "nobody", env=env).returncode == 1
    assert eyes(faces_settings, "people", "list", env=env).returncode == 2  # --owner is required
    assert eyes(faces_settings, "faces", "group", env={"EYES_FACES": "false"}).returncode == 1


def test_a_large_collection_is_grouped_at_most_so_often_and_the_sweep_catches_up(
    app_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eyes.jobs.tasks import sweep
    from eyes.services import people

    sign_up(app_client, "owner")
    opt_in(app_client)
    first = upload_people(app_client, tmp_path, [ANNA, ANNA])
    assert [g["size"] for g in overview(app_client)["groups"]] == [2]  # a first grouping at once
    # As if she had more unnamed faces than are grouped at once: the next scan waits.
    monkeypatch.setattr(people, "GROUP_AT_ONCE", 1)
    second = upload_people(app_client, tmp_path, [ANNA])
    view = overview(app_client)
    assert [g["size"] for g in view["groups"]] == [2]
    assert [f["id"] for f in view["singles"]] == faces_by_photo(app_client)[second]
    ctx = context_of(app_client)
    assert people.owners_to_group(ctx) == [people_owner_id(app_client)]
    sweep(ctx)  # within the minute: still waiting
    wait_for_tagging(app_client)
    assert [g["size"] for g in overview(app_client)["groups"]] == [2]
    monkeypatch.setattr(people, "GROUP_EVERY_S", 0.0)  # the minute is over
    sweep(ctx)
    wait_for_tagging(app_client)
    view = overview(app_client)
    assert [g["size"] for g in view["groups"]] == [3] and view["singles"] == []
    assert view["groups"][0]["id"] == min(faces_by_photo(app_client)[first])  # the same group, grown
    assert people.owners_to_group(ctx) == []


def people_owner_id(client: TestClient) -> int:
    from eyes.db.models import User

    with context_of(client).sessions() as session:
        return int(session.scalar(select(User.id).where(User.username == "owner")) or 0)
