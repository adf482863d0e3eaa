"""Albums under attack: others' albums, counted ids, unlisted albums hunted for, private photos
in public albums, and huge or hostile input. Each answer is a clear 4xx and leaks nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from eyes.app import create_app
from eyes.config import Settings
from eyes.services.albums import MAX_PHOTOS_PER_REQUEST
from tests.conftest import sign_up, upload
from tests.test_albums import PHOTOS, make_album, order, other
from tests.test_security import BAD_IDS, TOO_BIG


@pytest.fixture
def ann(client: TestClient) -> TestClient:
    sign_up(client, "ann")
    return client


@pytest.fixture
def world(ann: TestClient) -> dict[str, Any]:
    """ann's public, private and unlisted photos, in a public, an unlisted and a private album."""
    public = upload(ann, PHOTOS[0], title="public one")
    private = upload(ann, PHOTOS[1], title="private one", visibility="private")
    unlisted = upload(ann, PHOTOS[2], title="unlisted one", visibility="unlisted")
    keys = [public["id"], private["id"], unlisted["id"]]
    albums = {
        vis: make_album(ann, f"{vis} album title", visibility=vis, photos=keys)
        for vis in ("public", "unlisted", "private")
    }
    ann.patch(f"/api/v1/albums/{albums['public']['id']}", json={"cover": private["id"]})
    return {"public": public, "private": private, "unlisted": unlisted, "albums": albums}


@pytest.fixture
def bob(ann: TestClient) -> TestClient:
    bob = other(ann)
    sign_up(bob, "bob")
    return bob


def test_a_private_photo_in_a_public_album_shows_to_nobody_else(
    ann: TestClient, bob: TestClient, world: dict[str, Any]
) -> None:
    album = world["albums"]["public"]
    private = world["private"]
    for viewer in (other(ann), bob):
        seen = viewer.get(f"/api/v1/albums/{album['id']}").json()
        assert seen["photo_count"] == 2, "the public and the unlisted photo"
        assert seen["cover_photo"] == world["public"]["id"], "the chosen cover is private: the first shown"
        assert private["id"] not in order(viewer, album["id"])
        for page in (album["url"], "/users/ann", "/users/ann/albums", f"/photos/{world['public']['id']}"):
            html = viewer.get(page, headers={"Accept": "text/html"}).text
            assert private["id"] not in html and private["thumbnail_url"] not in html, page
            assert "private one" not in html, page
        listing = viewer.get("/api/v1/albums?owner=ann").text
        assert private["id"] not in listing and private["thumbnail_url"] not in listing
    mine = ann.get(f"/api/v1/albums/{album['id']}").json()
    assert (mine["photo_count"], mine["cover_photo"]) == (3, private["id"]), "the owner sees all"


def test_unlisted_and_private_albums_are_listed_nowhere_for_others(
    ann: TestClient, bob: TestClient, world: dict[str, Any]
) -> None:
    hidden = [world["albums"][v] for v in ("unlisted", "private")]
    for viewer in (other(ann), bob):
        for url in (
            "/api/v1/albums",
            "/api/v1/albums?owner=ann",
            "/api/v1/albums?limit=200",
            "/users/ann",
            "/users/ann/albums",
            f"/photos/{world['public']['id']}",
            f"/photos/{world['unlisted']['id']}",
            "/",
        ):
            text = viewer.get(url, headers={"Accept": "text/html"}).text
            for album in hidden:
                assert album["id"] not in text and album["title"] not in text, f"{album['title']} in {url}"
        # Walking the cursor over every id finds nothing more.
        for before in range(1, 8):
            items = viewer.get(f"/api/v1/albums?before={before}").json()["items"]
            assert {a["visibility"] for a in items} <= {"public"}
    # The link opens the unlisted album; the private one is not there for anybody else.
    assert bob.get(f"/api/v1/albums/{hidden[0]['id']}").json()["title"] == "unlisted album title"
    for viewer in (other(ann), bob):
        assert viewer.get(f"/api/v1/albums/{hidden[1]['id']}").status_code == 404
        assert viewer.get(f"/api/v1/albums/{hidden[1]['id']}/photos").status_code == 404
        res = viewer.get(hidden[1]["url"], headers={"Accept": "text/html"})
        assert res.status_code == 404 and "private album title" not in res.text
    mine = {a["id"] for a in ann.get("/api/v1/albums?owner=ann").json()["items"]}
    assert mine == {a["id"] for a in world["albums"].values()}, "the owner lists all of hers"


def test_nobody_but_the_owner_changes_an_album(
    ann: TestClient, bob: TestClient, world: dict[str, Any]
) -> None:
    bobs = upload(bob, PHOTOS[3])["id"]
    csrf = {"X-CSRF-Token": bob.headers["X-CSRF-Token"]}
    for vis, expected in (("public", 403), ("unlisted", 403), ("private", 404)):
        album = world["albums"][vis]
        key, photo = album["id"], world["public"]["id"]
        api = [
            ("PATCH", f"/api/v1/albums/{key}", {"title": "mine now"}),
            ("PATCH", f"/api/v1/albums/{key}", {"cover": photo}),
            ("DELETE", f"/api/v1/albums/{key}", None),
            ("POST", f"/api/v1/albums/{key}/photos", {"photos": [bobs]}),
            ("DELETE", f"/api/v1/albums/{key}/photos/{photo}", None),
            ("PUT", f"/api/v1/albums/{key}/order", {"photos": [photo]}),
        ]
        for method, url, body in api:
            res = bob.request(method, url, json=body, headers=csrf)
            assert res.status_code == expected, f"{vis}: {method} {url}: {res.status_code}"
        form = {"csrf_token": csrf["X-CSRF-Token"]}
        pages = [
            (f"/albums/{key}/edit", {**form, "title": "mine now"}),
            (f"/albums/{key}/delete", form),
            (f"/albums/{key}/photos/{photo}/remove", form),
            (f"/albums/{key}/photos/{photo}/move", {**form, "offset": "1"}),
            (f"/albums/{key}/photos/{photo}/cover", form),
            ("/albums/add", {**form, "photos": bobs, "album": key}),
        ]
        for url, data in pages:
            res = bob.post(url, data=data, headers={"Accept": "text/html"})
            assert res.status_code == expected, f"{vis}: POST {url}: {res.status_code}"
        after = ann.get(f"/api/v1/albums/{key}").json()
        assert after["title"] == album["title"] and after["photo_count"] == 3
    assert bob.get("/api/v1/albums?owner=bob").json()["items"] == [], "no album was made on the way"


def test_only_your_own_photos_go_in_your_albums(
    ann: TestClient, bob: TestClient, world: dict[str, Any]
) -> None:
    mine = make_album(bob, "Bob's")
    for photo, status in ((world["public"], 403), (world["unlisted"], 403), (world["private"], 404)):
        res = bob.post(f"/api/v1/albums/{mine['id']}/photos", json={"photos": [photo["id"]]})
        assert res.status_code == status, res.text
        res = bob.post("/api/v1/albums", json={"title": "sneaky", "photos": [photo["id"]]})
        assert res.status_code == status, res.text
    assert res.json()["error"]["message"] == f"there is no such photo: {world['private']['id']}"
    assert order(bob, mine["id"]) == []
    titles = [a["title"] for a in bob.get("/api/v1/albums?owner=bob").json()["items"]]
    assert titles == ["Bob's"], "a refused album with photos is not made at all"


def test_album_ids_cannot_be_counted(ann: TestClient, bob: TestClient, world: dict[str, Any]) -> None:
    keys = [a["id"] for a in world["albums"].values()]
    assert len({k[:6] for k in keys}) == 3, "random, not sequential"
    csrf = {"X-CSRF-Token": bob.headers["X-CSRF-Token"]}
    for guess in ("1", "2", "3", str(TOO_BIG), "0" * 22):
        for method, url in (
            ("GET", f"/api/v1/albums/{guess}"),
            ("GET", f"/api/v1/albums/{guess}/photos"),
            ("PATCH", f"/api/v1/albums/{guess}"),
            ("GET", f"/albums/{guess}"),
        ):
            res = bob.request(method, url, json={}, headers=csrf)
            assert res.status_code == 404, f"{method} {url}"


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_malformed_album_ids_are_404_json(ann: TestClient, world: dict[str, Any], bad_id: str) -> None:
    csrf = {"X-CSRF-Token": ann.headers["X-CSRF-Token"]}
    album_id = world["albums"]["public"]["id"]
    photo_id = world["public"]["id"]
    for target in ("album", "photo"):
        bad = bad_id.format(id=album_id if target == "album" else photo_id, short=album_id[:-1])
        album, photo = (bad, photo_id) if target == "album" else (album_id, bad)
        requests = [
            ("DELETE", f"/api/v1/albums/{album}/photos/{photo}", None),
            ("POST", f"/albums/{album}/photos/{photo}/remove", {"csrf_token": csrf["X-CSRF-Token"]}),
        ]
        if target == "album":
            requests += [
                ("GET", f"/api/v1/albums/{album}", None),
                ("PATCH", f"/api/v1/albums/{album}", None),
                ("DELETE", f"/api/v1/albums/{album}", None),
                ("GET", f"/api/v1/albums/{album}/photos", None),
                ("POST", f"/api/v1/albums/{album}/photos", None),
                ("PUT", f"/api/v1/albums/{album}/order", None),
                ("GET", f"/albums/{album}", None),
                ("POST", f"/albums/{album}/edit", {"csrf_token": csrf["X-CSRF-Token"]}),
            ]
        for method, path, form in requests:
            res = ann.request(method, path, data=form, headers=csrf)
            assert res.status_code == 404, f"{method} {path}: {res.status_code} {res.text[:200]}"
            assert res.json()["error"]["code"] in ("not_found", "http_error"), f"{method} {path}"
    assert order(ann, album_id) == [world[k]["id"] for k in ("public", "private", "unlisted")]


def test_huge_and_hostile_input_is_a_clear_4xx(ann: TestClient, world: dict[str, Any]) -> None:
    album = world["albums"]["public"]["id"]
    photo = world["public"]["id"]
    refused = [
        ("POST", "/api/v1/albums", {"title": "x" * 201}, 400, "at most 200"),
        ("POST", "/api/v1/albums", {"title": "ok", "description": "x" * 5001}, 400, "at most 5000"),
        ("POST", "/api/v1/albums", {"title": "   "}, 400, "needs a title"),
        ("POST", "/api/v1/albums", {"title": "ok", "visibility": "secret"}, 422, None),
        ("PATCH", f"/api/v1/albums/{album}", {"title": "x" * 10_000}, 400, "at most 200"),
        ("PATCH", f"/api/v1/albums/{album}", {"cover": "not a photo id"}, 422, None),
        ("PATCH", f"/api/v1/albums/{album}", {"cover": "A" * 22}, 404, "no such photo"),
        ("POST", f"/api/v1/albums/{album}/photos", {"photos": []}, 422, None),
        ("POST", f"/api/v1/albums/{album}/photos", {"photos": [photo] * 101}, 422, None),
        ("POST", f"/api/v1/albums/{album}/photos", {"photos": ["../../etc/passwd"]}, 422, None),
        ("POST", f"/api/v1/albums/{album}/photos", {"photos": "x" * 100_000}, 422, None),
        ("PUT", f"/api/v1/albums/{album}/order", {"photos": [photo] * 10_001}, 422, None),
        ("PUT", f"/api/v1/albums/{album}/order", {"photos": [photo, photo]}, 400, "once"),
        ("PUT", f"/api/v1/albums/{album}/order", {"photos": [photo]}, 400, "2 of its photos are missing"),
        ("GET", f"/api/v1/albums/{album}/photos?after=-1", None, 422, None),
        ("GET", f"/api/v1/albums/{album}/photos?limit=100000", None, 422, None),
        ("GET", "/api/v1/albums?before=99999999999999999999", None, 422, None),
        ("GET", "/api/v1/albums?owner=" + "x" * 5000, None, 404, None),
    ]
    for method, url, body, status, message in refused:
        res = ann.request(method, url, json=body)
        assert res.status_code == status, f"{method} {url}: {res.status_code} {res.text[:300]}"
        if message:
            assert message in res.json()["error"]["message"], res.text
    csrf = ann.headers["X-CSRF-Token"]
    res = ann.post(
        "/albums/add",
        data={"csrf_token": csrf, "photos": [photo] * (MAX_PHOTOS_PER_REQUEST + 1), "new_title": "Big"},
        headers={"Accept": "text/html"},
    )
    assert res.status_code == 400 and f"at most {MAX_PHOTOS_PER_REQUEST}" in res.text
    res = ann.post("/albums/add", data={"csrf_token": csrf, "photos": photo}, headers={"Accept": "text/html"})
    assert res.status_code == 400 and "choose an album" in res.text
    res = ann.post(f"/albums/{album}/photos/{photo}/move", data={"csrf_token": csrf, "offset": "99999"})
    assert res.status_code == 422
    after = ann.get(f"/api/v1/albums/{album}").json()
    assert after["title"] == "public album title" and after["photo_count"] == 3
    assert [a["title"] for a in ann.get("/api/v1/albums?owner=ann").json()["items"]] == [
        f"{v} album title" for v in ("private", "unlisted", "public")
    ], "nothing made by a refused request"


def test_a_forged_form_changes_nothing(ann: TestClient, world: dict[str, Any]) -> None:
    album = world["albums"]["public"]
    res = ann.post(
        f"/albums/{album['id']}/delete", data={"csrf_token": "forged"}, headers={"X-CSRF-Token": "forged"}
    )
    assert res.status_code == 403
    assert ann.get(f"/api/v1/albums/{album['id']}").status_code == 200


@pytest.fixture
def tight(settings: Settings) -> Iterator[TestClient]:
    small = settings.model_copy(update={"max_albums_per_user": 2, "max_photos_per_album": 2})
    with TestClient(create_app(small), base_url="http://127.0.0.1") as client:
        sign_up(client, "ann")
        yield client


def test_albums_per_user_and_photos_per_album_are_limited(tight: TestClient) -> None:
    ids = [upload(tight, p)["id"] for p in PHOTOS[:3]]
    first = make_album(tight, "One", photos=ids[:2])
    make_album(tight, "Two")
    res = tight.post("/api/v1/albums", json={"title": "Three"})
    assert res.status_code == 409 and "EYES_MAX_ALBUMS_PER_USER" in res.json()["error"]["message"]
    res = tight.post(f"/api/v1/albums/{first['id']}/photos", json={"photos": [ids[2]]})
    assert res.status_code == 409 and "at most 2 photos" in res.json()["error"]["message"]
    res = tight.post(f"/api/v1/albums/{first['id']}/photos", json={"photos": ids[:2]})
    assert res.status_code == 200, "photos already in it take no room"
    assert order(tight, first["id"]) == ids[:2]
    tight.delete(f"/api/v1/albums/{first['id']}")
    assert tight.post("/api/v1/albums", json={"title": "Three"}).status_code == 201


def test_a_visitor_cannot_make_albums(client: TestClient) -> None:
    res = client.post("/api/v1/albums", json={"title": "x"})
    assert res.status_code == 401
    res = client.post("/albums", data={"title": "x"}, headers={"Accept": "text/html"}, follow_redirects=False)
    assert res.status_code == 403, "no session, no form token"
    assert client.get("/api/v1/albums").json()["items"] == []
