"""People are their owner's: a `person:` tag shows only to whom the owner allows and never where
the photo itself may not be seen; it is never a tag of the shared model (labels, vocabulary, tag
counts, data set exports); other accounts' ids are 'not found' whatever they try; hostile names
and bursts get a clear 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from eyes.app import create_app
from eyes.config import Settings
from eyes.db.models import Face, Person, Tag
from eyes.domain import MAX_ID
from eyes.services import vocabulary
from eyes.services.dataset import plan_dataset
from eyes.services.labels import training_labels
from tests.conftest import context_of, sign_up
from tests.standin_faces import SPEC, faces_image
from tests.test_people import (
    ANNA,
    BORIS,
    faces_by_photo,
    group_of,
    opt_in,
    overview,
    person_tags,
    search,
    upload_people,
)


@pytest.fixture
def faces_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"faces": True, "faces_finder": SPEC})


@pytest.fixture
def app(faces_settings: Settings) -> Iterator[Any]:
    app = create_app(faces_settings)
    yield app
    app.state.ctx.close()  # also when no client started it


def client_of(app: Any) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture
def cast(app: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """root (the administrator), owner (Anna in a public, an unlisted and a private photo, named
    "Anna"), bob and carol (other accounts), and a visitor who is signed in nowhere."""
    # One client runs the app's start and shutdown (its workers; its database closed once, at
    # the end); the others share that app, each with its own cookies.
    with client_of(app) as root:
        owner, bob, carol, visitor = client_of(app), client_of(app), client_of(app), client_of(app)
        sign_up(root, "root")
        sign_up(owner, "owner")
        sign_up(bob, "bob")
        sign_up(carol, "carol")
        opt_in(owner)
        public = upload_people(owner, tmp_path, [ANNA, BORIS], tags="beach", license="cc0")
        unlisted = upload_people(owner, tmp_path, [ANNA], visibility="unlisted")
        private = upload_people(owner, tmp_path, [ANNA, BORIS], visibility="private")
        group = group_of(overview(owner), faces_by_photo(owner)[public][0])["id"]
        anna = owner.post(f"/api/v1/me/people/groups/{group}/name", json={"name": "Anna"}).json()
        yield {
            "root": root,
            "owner": owner,
            "bob": bob,
            "carol": carol,
            "visitor": visitor,
            "public": public,
            "unlisted": unlisted,
            "private": private,
            "anna": anna,
            "app": app,
        }


def set_audience(cast: dict[str, Any], audience: str, viewers: list[str] | None = None) -> None:
    body: dict[str, Any] = {"audience": audience}
    if viewers is not None:
        body["viewers"] = viewers
    res = cast["owner"].patch(f"/api/v1/me/people/{cast['anna']['id']}", json=body)
    assert res.status_code == 200, res.text
    assert res.json()["audience"] == audience


def sees_anna(client: TestClient, photo: str) -> bool | None:
    """Whether `client` sees person:anna on the photo (page and API agree); None: no photo for them."""
    page = client.get(f"/photos/{photo}")
    api = client.get(f"/api/v1/photos/{photo}")
    assert page.status_code == api.status_code
    if api.status_code == 404:
        return None
    in_api = "person:anna" in person_tags(client, photo)
    assert in_api == ("person:anna" in page.text) == ('id="people-tags"' in page.text)
    return in_api


def test_by_default_only_the_owner_sees_and_finds_the_person(cast: dict[str, Any]) -> None:
    owner = cast["owner"]
    photos = [cast["public"], cast["unlisted"], cast["private"]]
    assert all(sees_anna(owner, p) for p in photos)
    assert search(owner, "person:anna") == set(photos)  # her own, whatever their visibility
    for who in ("bob", "carol", "root", "visitor"):  # root: an administrator sees nothing more
        client = cast[who]
        assert sees_anna(client, cast["public"]) is False, who
        assert sees_anna(client, cast["unlisted"]) is False, who
        assert sees_anna(client, cast["private"]) is None, who
        assert search(client, "person:anna") == set(), who
        assert cast["public"] not in client.get("/tags/person:anna").text
        assert cast["public"] not in client.get("/search", params={"q": "person:anna"}).text
        # The public feed and the owner's profile list the photo without the person.
        feed = client.get("/api/v1/photos").json()["items"]
        assert [p["people"] for p in feed if p["id"] == cast["public"]] == [[]]
        assert "person:anna" not in client.get("/users/owner").text


def test_chosen_accounts_see_the_person_only_on_photos_they_may_see(cast: dict[str, Any]) -> None:
    set_audience(cast, "chosen", ["bob"])
    bob = cast["bob"]
    assert sees_anna(bob, cast["public"]) is True
    assert sees_anna(bob, cast["unlisted"]) is True  # he has the link
    assert sees_anna(bob, cast["private"]) is None  # never more than the photo
    assert search(bob, "person:anna") == {cast["public"]}  # an unlisted photo is never listed
    for who in ("carol", "root", "visitor"):
        assert sees_anna(cast[who], cast["public"]) is False, who
        assert search(cast[who], "person:anna") == set(), who
    # The owner makes the public photo private: bob no longer sees it, nor finds it.
    res = cast["owner"].patch(f"/api/v1/photos/{cast['public']}", json={"visibility": "private"})
    assert res.status_code == 200
    assert sees_anna(bob, cast["public"]) is None
    assert search(bob, "person:anna") == set()
    # And back to the owner alone.
    set_audience(cast, "owner")
    assert sees_anna(bob, cast["unlisted"]) is False


def test_whoever_may_see_the_photo_sees_the_person_when_the_owner_says_so(cast: dict[str, Any]) -> None:
    set_audience(cast, "viewers")
    for who in ("bob", "carol", "root", "visitor"):
        assert sees_anna(cast[who], cast["public"]) is True, who
        assert sees_anna(cast[who], cast["private"]) is None, who
        assert search(cast[who], "person:anna") == {cast["public"]}, who
    # Only the person the owner opened: Boris, never named, is no tag for anybody.
    assert person_tags(cast["visitor"], cast["public"]) == ["person:anna"]


def test_another_accounts_ids_are_not_found_and_tell_nothing(cast: dict[str, Any], tmp_path: Path) -> None:
    owner, bob = cast["owner"], cast["bob"]
    opt_in(bob)
    upload_people(bob, tmp_path, [BORIS, BORIS])  # bob has faces, a group and a person of his own
    his_group = overview(bob)["groups"][0]["id"]
    his = bob.post(f"/api/v1/me/people/groups/{his_group}/name", json={"name": "Anna"}).json()
    assert his["id"] != cast["anna"]["id"] and his["face_count"] == 2

    her_faces = faces_by_photo(owner)
    her_face = her_faces[cast["public"]][1]  # Boris in her public photo: in a group of hers
    her_group = group_of(overview(owner), her_face)["id"]
    her_person = cast["anna"]["id"]

    def attempts(face: int, group: int, person: int) -> list[tuple[str, str, dict[str, Any] | None]]:
        return [
            ("GET", f"/api/v1/me/people/{person}", None),
            ("GET", f"/api/v1/me/people/{person}/faces", None),
            ("GET", f"/api/v1/me/people/{person}/photos", None),
            ("PATCH", f"/api/v1/me/people/{person}", {"name": "Mine now"}),
            ("PATCH", f"/api/v1/me/people/{person}", {"audience": "viewers"}),
            ("DELETE", f"/api/v1/me/people/{person}", None),
            ("POST", f"/api/v1/me/people/{person}/merge", {"into_person": his["id"]}),
            ("POST", f"/api/v1/me/people/{his['id']}/merge", {"into_person": person}),
            ("POST", f"/api/v1/me/people/groups/{group}/name", {"name": "Mine"}),
            ("POST", f"/api/v1/me/people/groups/{group}/merge", {"into_person": his["id"]}),
            ("POST", f"/api/v1/me/people/groups/{group}/split", {"faces": [face]}),
            ("POST", f"/api/v1/me/faces/{face}/person", {"person": his["id"]}),
            ("POST", f"/api/v1/me/faces/{face}/person", {"name": "Mine"}),
            ("POST", f"/api/v1/me/faces/{face}/not-a-face", {}),
            ("POST", f"/api/v1/me/faces/{face}/suggestion", {"accept": False}),
            ("GET", f"/people/faces/{face}.jpg", None),
            ("GET", f"/people/{person}", None),
        ]

    hers = attempts(her_face, her_group, her_person)
    nothing = attempts(MAX_ID, MAX_ID, MAX_ID)  # ids that exist nowhere
    for (method, url, body), (_, none_url, none_body) in zip(hers, nothing, strict=True):
        res = bob.request(method, url, json=body)
        ghost = bob.request(method, none_url, json=none_body)
        assert res.status_code == 404, (method, url, res.status_code, res.text)
        assert ghost.status_code == 404
        # The same answer as for an id that does not exist: counting ids learns nothing.
        if res.headers["content-type"].startswith("application/json"):
            assert res.json() == ghost.json(), (method, url)
    # Her person can be merged into neither of his, nor his group into her person.
    his_faces = faces_by_photo(bob)
    assert (
        bob.post(
            f"/api/v1/me/faces/{next(iter(his_faces.values()))[0]}/person", json={"person": her_person}
        ).status_code
        == 404
    )
    # Nothing of hers changed.
    assert owner.get(f"/api/v1/me/people/{her_person}").json() == cast["anna"]
    assert group_of(overview(owner), her_face)["id"] == her_group
    assert [p["name"] for p in overview(bob)["people"]] == ["Anna"]  # his own Anna, his alone


def test_the_pages_are_the_owners_alone(cast: dict[str, Any]) -> None:
    visitor, bob = cast["visitor"], cast["bob"]
    res = visitor.get("/people", headers={"Accept": "text/html"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"].startswith("/login")
    assert visitor.get("/api/v1/me/people").status_code == 401
    assert visitor.get(
        f"/people/faces/{faces_by_photo(cast['owner'])[cast['public']][0]}.jpg"
    ).status_code in (303, 401)
    page = bob.get("/people")
    assert page.status_code == 200 and "Anna" not in page.text and 'id="nav-people"' not in page.text
    assert 'id="nav-people"' in cast["owner"].get("/people").text


def test_person_tags_never_become_tags_labels_classes_or_exports(cast: dict[str, Any]) -> None:
    set_audience(cast, "viewers")  # as open as it gets: still not the shared model's
    ctx = context_of(cast["owner"])
    with ctx.sessions() as session:
        assert session.scalar(select(func.count(Tag.id)).where(Tag.name.like("person%"))) == 0
        labels = training_labels(session, ctx.settings)
        assert labels.count > 0  # the owner's own tag `beach` is there
        assert not [n for names in labels.positives.values() for n in names if n.startswith("person")]
        assert not [n for names in labels.negatives.values() for n in names if n.startswith("person")]
        assert all(not t["name"].startswith("person") for t in vocabulary.list_tags(session))  # tag counts
    root = cast["root"]
    assert all(not t["name"].startswith("person") for t in root.get("/api/v1/tags").json())
    plan = plan_dataset(ctx)
    assert [item.klass for item in plan.items] == ["beach"]
    assert all(not n.startswith("person") for item in plan.items for n in item.yes)
    asked = root.get("/api/v1/export/dataset", params={"tag": "person:anna"})
    assert asked.status_code == 400 and "person" in asked.json()["error"]["message"]
    # What the export does write is the photo and its `beach`, never who is in it.
    whole = root.get("/api/v1/export/dataset")
    assert whole.status_code == 200 and b"person" not in whole.content.lower()


def test_nobody_can_make_a_person_tag_a_tag(cast: dict[str, Any], tmp_path: Path) -> None:
    owner, bob = cast["owner"], cast["bob"]
    for name in ("person:anna", "Person:Bob", " person:x "):
        res = owner.post(f"/api/v1/photos/{cast['public']}/tags", json={"name": name})
        assert res.status_code == 400 and "People page" in res.json()["error"]["message"], name
    res = bob.post(f"/api/v1/photos/{cast['public']}/votes", json={"tag": "person:anna", "agrees": True})
    assert res.status_code == 400 and "People page" in res.json()["error"]["message"]
    before = owner.get("/api/v1/photos", params={"owner": "owner"}).json()["items"]
    with open(faces_image(tmp_path / "tagged.png", 1, seed=99), "rb") as f:
        res = owner.post(
            "/api/v1/photos", files={"file": ("t.png", f, "image/png")}, data={"tags": "beach, person:bob"}
        )
    assert res.status_code == 400
    assert owner.get("/api/v1/photos", params={"owner": "owner"}).json()["items"] == before  # nothing stored
    # An empty person searches for nothing, rather than for everyone.
    assert search(owner, "person:") == set()


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("", 400),
        ("   ", 400),
        ("x" * 58, 400),  # its tag would be longer than a tag may be
        ("x" * 1001, 422),  # refused before anything reads it
        ("person:bob", 400),
        ("anna:bob", 400),
        ("a/b", 400),
        ("a,b", 400),
        ("bad\x00name", 400),
        ("bad\x1bname", 400),
    ],
)
def test_hostile_names_are_refused_clearly(cast: dict[str, Any], name: str, status: int) -> None:
    owner = cast["owner"]
    group = overview(owner)["groups"]
    target = f"/api/v1/me/people/groups/{group[0]['id']}/name" if group else None
    for method, url in (("PATCH", f"/api/v1/me/people/{cast['anna']['id']}"), ("POST", target)):
        if url is None:
            continue
        res = owner.request(method, url, json={"name": name})
        assert res.status_code == status, (url, res.text)
        assert "error" in res.json()
    assert owner.get(f"/api/v1/me/people/{cast['anna']['id']}").json()["name"] == "Anna"


def test_a_change_refused_in_part_changes_nothing(cast: dict[str, Any]) -> None:
    """A rename sent with an audience that cannot be (an account that does not exist) is refused
    whole: the owner is told 404 and the name stays; the owner's choice is one change."""
    owner, anna = cast["owner"], cast["anna"]
    res = owner.patch(
        f"/api/v1/me/people/{anna['id']}",
        json={"name": "Zed", "audience": "chosen", "viewers": ["bob", "nobody"]},
    )
    assert res.status_code == 404 and "nobody" in res.json()["error"]["message"]
    assert owner.get(f"/api/v1/me/people/{anna['id']}").json() == anna
    assert sees_anna(cast["bob"], cast["public"]) is False
    # Both at once when both can be.
    res = owner.patch(
        f"/api/v1/me/people/{anna['id']}", json={"name": "Anna B", "audience": "chosen", "viewers": ["bob"]}
    )
    assert res.status_code == 200
    assert (res.json()["tag"], res.json()["viewers"]) == ("person:anna-b", ["bob"])
    assert "person:anna-b" in person_tags(cast["bob"], cast["public"])


def test_a_name_with_markup_is_shown_as_text(cast: dict[str, Any]) -> None:
    owner = cast["owner"]
    res = owner.patch(
        f"/api/v1/me/people/{cast['anna']['id']}", json={"name": '<img src=x onerror="alert(1)">'}
    )
    assert res.status_code == 200 and res.json()["tag"] == 'person:<img-src=x-onerror="alert(1)">'
    for url in ("/people", f"/people/{cast['anna']['id']}", f"/photos/{cast['public']}"):
        text = owner.get(url).text
        assert "<img src=x" not in text and "<img-src=x" not in text, url
        assert "&lt;img" in text, url
    assert search(owner, 'person:<img-src=x-onerror="alert(1)">') == {
        cast["public"],
        cast["unlisted"],
        cast["private"],
    }


def test_a_burst_of_changes_is_refused_past_the_limit(faces_settings: Settings, tmp_path: Path) -> None:
    limited = faces_settings.model_copy(update={"people_limit_per_account": "3/minute"})
    with client_of(create_app(limited)) as owner:
        sign_up(owner, "owner")
        opt_in(owner)
        upload_people(owner, tmp_path, [ANNA])
        face = next(iter(faces_by_photo(owner).values()))[0]
        person = owner.post(f"/api/v1/me/faces/{face}/person", json={"name": "Anna"}).json()["person"]
        statuses = [
            owner.patch(f"/api/v1/me/people/{person}", json={"name": f"Anna {i}"}).status_code
            for i in range(4)
        ]
        assert statuses == [200, 200, 429, 429]
        refused = owner.patch(f"/api/v1/me/people/{person}", json={"name": "Anna 9"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert owner.get(f"/api/v1/me/people/{person}").json()["name"] == "Anna 1"


def test_with_faces_off_for_the_site_nothing_of_people_shows(
    cast: dict[str, Any], faces_settings: Settings
) -> None:
    set_audience(cast, "viewers")
    off = faces_settings.model_copy(update={"faces": False})
    with client_of(create_app(off)) as visitor:
        assert person_tags(visitor, cast["public"]) == []
        assert search(visitor, "person:anna") == set()
        sign_up(visitor, "dora")
        assert visitor.get("/api/v1/me/people").status_code == 404
    with context_of(cast["owner"]).sessions() as session:
        assert session.scalar(select(func.count(Person.id))) == 1  # kept, only not shown
        assert session.scalar(select(func.count(Face.id))) == 5


def test_one_owners_names_never_suggest_anyone_to_another(cast: dict[str, Any], tmp_path: Path) -> None:
    from tests.conftest import wait_for_tagging

    wait_for_tagging(cast["owner"])  # the owner's recognition has learnt Anna
    bob = cast["bob"]
    opt_in(bob)
    photo = upload_people(bob, tmp_path, [ANNA])  # the same stand-in face as her Anna
    view = overview(bob)
    assert view["suggestions"] == [] and view["people"] == []
    assert [f["suggested_person"] for f in view["singles"]] == [None]
    assert person_tags(bob, photo) == []
    # While a new photo of hers is suggested as her Anna at once.
    mine = upload_people(cast["owner"], tmp_path, [ANNA])
    face = faces_by_photo(cast["owner"])[mine][0]
    assert [f["suggested_name"] for f in overview(cast["owner"])["suggestions"] if f["id"] == face] == [
        "Anna"
    ]
