"""Albums: made, filled, ordered and shared through the API, the pages and the service, with the
visibility rules of their photos kept."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from eyes.config import Settings
from eyes.db.models import AlbumPhoto
from eyes.services import albums as album_service
from eyes.services.accounts import get_user_by_name
from tests.conftest import CALTECH, context_of, sign_up, upload
from tests.test_cli import eyes

PHOTOS = [sorted((CALTECH / cls).iterdir())[0] for cls in ("Leopards", "watch", "starfish", "sunflower")]


def other(client: TestClient) -> TestClient:
    """A second browser on the same server."""
    return TestClient(client.app, base_url="http://127.0.0.1")


def order(client: TestClient, album_id: str) -> list[str]:
    res = client.get(f"/api/v1/albums/{album_id}/photos")
    assert res.status_code == 200, res.text
    return [p["id"] for p in res.json()["items"]]


def make_album(client: TestClient, title: str = "Holidays", **fields: object) -> dict:
    res = client.post("/api/v1/albums", json={"title": title, **fields})
    assert res.status_code == 201, res.text
    return res.json()


def test_an_owner_makes_fills_orders_and_covers_an_album(client: TestClient) -> None:
    sign_up(client, "ann")
    a, b, c = (upload(client, p)["id"] for p in PHOTOS[:3])
    album = make_album(client, "  Holidays  ", description="By the sea")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", album["id"])
    assert (album["title"], album["description"], album["visibility"]) == ("Holidays", "By the sea", "public")
    assert (album["photo_count"], album["cover_photo"], album["owner"]) == (0, None, "ann")

    client.post(f"/api/v1/albums/{album['id']}/photos", json={"photos": [a, b]})
    res = client.post(f"/api/v1/albums/{album['id']}/photos", json={"photos": [c, a]})
    assert res.status_code == 200
    assert res.json()["photo_count"] == 3 and res.json()["cover_photo"] == a, "the first photo is the cover"
    assert order(client, album["id"]) == [a, b, c], "new photos go at the end; one already in stays put"

    res = client.put(f"/api/v1/albums/{album['id']}/order", json={"photos": [c, a, b]})
    assert res.status_code == 200, res.text
    assert order(client, album["id"]) == [c, a, b]

    res = client.patch(f"/api/v1/albums/{album['id']}", json={"cover": b, "title": "Sea"})
    assert (res.json()["cover_photo"], res.json()["title"]) == (b, "Sea")
    assert res.json()["cover_url"] == client.get(f"/api/v1/photos/{b}").json()["thumbnail_url"]

    res = client.delete(f"/api/v1/albums/{album['id']}/photos/{b}")
    assert res.status_code == 200
    assert res.json()["photo_count"] == 2 and res.json()["cover_photo"] == c, "a removed cover gives way"
    assert client.delete(f"/api/v1/albums/{album['id']}/photos/{b}").status_code == 404
    assert client.get(f"/api/v1/photos/{b}").status_code == 200, "the photo itself stays"

    res = client.patch(f"/api/v1/albums/{album['id']}", json={"cover": None, "description": ""})
    assert res.json()["description"] == "" and res.json()["cover_photo"] == c


def test_pages_of_an_album_list_its_photos_in_order(client: TestClient) -> None:
    sign_up(client, "ann")
    a, b = (upload(client, p, title=f"p{n}")["id"] for n, p in enumerate(PHOTOS[:2]))
    album = make_album(client, photos=[b, a])
    page = client.get(album["url"], headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Holidays" in page.text
    assert page.text.index(f'data-photo-id="{b}"') < page.text.index(f'data-photo-id="{a}"')
    profile = client.get("/users/ann").text
    assert album["url"] in profile and "2 photos" in profile


def test_a_page_of_album_photos_leads_to_the_next(client: TestClient) -> None:
    sign_up(client, "ann")
    ids = [upload(client, p)["id"] for p in PHOTOS]
    album = make_album(client, photos=ids)
    first = client.get(f"/api/v1/albums/{album['id']}/photos?limit=3").json()
    rest = client.get(first["next"]).json()
    assert [p["id"] for p in first["items"] + rest["items"]] == ids and rest["next"] is None


def test_the_grid_selection_makes_an_album_and_the_photo_page_adds_to_it(client: TestClient) -> None:
    csrf = sign_up(client, "ann")
    a, b, c = (upload(client, p)["id"] for p in PHOTOS[:3])
    profile = client.get("/users/ann").text
    boxes = re.findall(r'<input type="checkbox" name="photos" value="([\w-]+)" form="album-select"', profile)
    assert sorted(boxes) == sorted([a, b, c]), "each of the owner's photos can be ticked"

    res = client.post(
        "/albums/add",
        data={"csrf_token": csrf, "photos": [c, a], "album": "", "new_title": "Picked"},
        follow_redirects=False,
    )
    assert res.status_code == 303 and res.headers["location"].startswith("/albums/")
    album_id = res.headers["location"].rsplit("/", 1)[1]
    assert order(client, album_id) == [c, a]

    res = client.post(
        "/albums/add",
        data={"csrf_token": csrf, "photos": b, "album": album_id, "back": f"/photos/{b}"},
        follow_redirects=False,
    )
    assert res.status_code == 303 and res.headers["location"] == f"/photos/{b}"
    assert order(client, album_id) == [c, a, b]
    photo_page = client.get(f"/photos/{b}").text
    assert f'href="/albums/{album_id}"' in photo_page and 'id="add-to-album"' in photo_page

    client.post(f"/albums/{album_id}/photos/{b}/move", data={"csrf_token": csrf, "offset": "-1"})
    assert order(client, album_id) == [c, b, a]
    client.post(f"/albums/{album_id}/photos/{c}/move", data={"csrf_token": csrf, "offset": "-1"})
    assert order(client, album_id) == [c, b, a], "the first stays first"
    client.post(f"/albums/{album_id}/photos/{a}/cover", data={"csrf_token": csrf})
    assert client.get(f"/api/v1/albums/{album_id}").json()["cover_photo"] == a
    client.post(f"/albums/{album_id}/photos/{c}/remove", data={"csrf_token": csrf})
    assert order(client, album_id) == [b, a]

    visitor = other(client)
    assert 'type="checkbox"' not in visitor.get("/users/ann").text, "nobody else selects ann's photos"
    assert 'id="add-to-album"' not in visitor.get(f"/photos/{b}").text


def test_the_new_album_form_and_the_edit_form(client: TestClient) -> None:
    csrf = sign_up(client, "ann")
    res = client.post(
        "/albums",
        data={"csrf_token": csrf, "title": "Walks", "visibility": "unlisted", "description": "Hills"},
        follow_redirects=False,
    )
    url = res.headers["location"]
    album_id = url.rsplit("/", 1)[1]
    client.post(
        f"/albums/{album_id}/edit",
        data={"csrf_token": csrf, "title": "Long walks", "description": "", "visibility": "private"},
    )
    album = client.get(f"/api/v1/albums/{album_id}").json()
    assert (album["title"], album["description"], album["visibility"]) == ("Long walks", "", "private")
    res = client.post(f"/albums/{album_id}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert res.headers["location"] == "/users/ann"
    assert client.get(f"/api/v1/albums/{album_id}").status_code == 404


def test_deleting_a_photo_takes_it_out_of_albums_and_deleting_an_album_keeps_photos(
    client: TestClient,
) -> None:
    sign_up(client, "ann")
    a, b = (upload(client, p)["id"] for p in PHOTOS[:2])
    one = make_album(client, "One", photos=[a, b])
    two = make_album(client, "Two", photos=[a])
    client.patch(f"/api/v1/albums/{one['id']}", json={"cover": a})

    assert client.delete(f"/api/v1/photos/{a}").status_code == 204
    assert order(client, one["id"]) == [b] and order(client, two["id"]) == []
    assert client.get(f"/api/v1/albums/{one['id']}").json()["cover_photo"] == b
    assert client.get(f"/api/v1/albums/{two['id']}").json()["cover_photo"] is None

    assert client.delete(f"/api/v1/albums/{one['id']}").status_code == 204
    assert client.get(f"/api/v1/albums/{one['id']}").status_code == 404
    assert client.get(f"/api/v1/photos/{b}").status_code == 200
    with context_of(client).sessions() as session:
        assert session.scalar(select(func.count()).select_from(AlbumPhoto)) == 0


def test_a_photo_may_be_in_several_albums(client: TestClient) -> None:
    sign_up(client, "ann")
    a = upload(client, PHOTOS[0])["id"]
    ids = [make_album(client, t, photos=[a])["id"] for t in ("One", "Two")]
    listed = re.findall(r'href="/albums/([\w-]+)"', client.get(f"/photos/{a}").text)
    assert sorted(listed) == sorted(ids)


def test_parallel_additions_to_one_album_all_land_in_distinct_places(client: TestClient) -> None:
    sign_up(client, "ann")
    ids = [upload(client, p)["id"] for p in PHOTOS]
    album = make_album(client)
    ctx = context_of(client)
    owner = get_user_by_name(ctx, "ann")
    errors: list[BaseException] = []

    def add(key: str) -> None:
        try:
            album_service.add_photos(ctx, album["id"], owner, [key])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(key,)) for key in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(order(client, album["id"])) == sorted(ids)
    with ctx.sessions() as session:
        positions = list(session.scalars(select(AlbumPhoto.position)))
    assert sorted(positions) == [0, 1, 2, 3]


def test_service_lists_the_owners_albums_for_the_forms(client: TestClient, tmp_path: Path) -> None:
    sign_up(client, "ann")
    make_album(client, "Old")
    make_album(client, "New", visibility="private")
    ctx = context_of(client)
    choices = album_service.album_choices(ctx, get_user_by_name(ctx, "ann"))
    assert [(c.title, c.visibility) for c in choices] == [("New", "private"), ("Old", "public")]


def test_the_command_line_makes_and_lists_albums(settings: Settings) -> None:
    eyes(settings, "users", "create", "olga", stdin="a-long-password\n")
    made = eyes(settings, "albums", "create", "olga", "Trips", "--visibility", "unlisted", "--json")
    assert made.returncode == 0, made.stderr
    album = json.loads(made.stdout)
    assert (album["title"], album["visibility"], album["owner"]) == ("Trips", "unlisted", "olga")
    listed = eyes(settings, "albums", "list", "olga")
    assert listed.returncode == 0 and album["id"] in listed.stdout and "unlisted" in listed.stdout
    assert json.loads(eyes(settings, "albums", "list", "olga", "--json").stdout)[0]["id"] == album["id"]
    refused = eyes(settings, "albums", "create", "olga", "x" * 201)
    assert refused.returncode == 1 and "at most 200" in refused.stderr
    assert eyes(settings, "albums", "list", "nobody").returncode == 1
