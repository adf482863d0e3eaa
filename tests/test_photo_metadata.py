"""What photos carry: date taken, camera and lens from EXIF on the photo page (the location for
its owner alone), lists by date taken, an import's file date when EXIF has none, and EXIF that
lies or attacks."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from eyes.db.models import Photo
from eyes.services.accounts import create_user
from eyes.services.importer import import_tree
from tests.conftest import CALTECH, context_of, sign_up
from tests.images_for_tests import encode

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
MAKE, MODEL = 0x010F, 0x0110
DATE_TAKEN, ZONE = 36867, 0x9011
LENS_MAKE, LENS_MODEL = 0xA433, 0xA434


def real_photo(index: int = 0, cls: str = "Leopards") -> Image.Image:
    """A real photo (caltech's carry no EXIF), decoded."""
    with Image.open(sorted((CALTECH / cls).iterdir())[index]) as img:
        return img.convert("RGB")


def with_exif(img: Image.Image, exif_ifd: dict[int, object] | None = None, **top: object) -> bytes:
    exif = Image.Exif()
    for tag, value in top.items():
        exif[int(tag.removeprefix("t"))] = value
    if exif_ifd:
        exif[EXIF_IFD] = exif_ifd
    return encode(img, "JPEG", exif=exif, quality=90)


def post(client: TestClient, data: bytes, name: str = "p.jpg", **fields: str) -> dict:
    res = client.post("/api/v1/photos", files={"file": (name, data, "image/jpeg")}, data=fields)
    assert res.status_code == 201, res.text
    return res.json()


def test_date_camera_and_lens_are_on_the_page_and_the_location_only_for_the_owner(client: TestClient) -> None:
    sign_up(client, "ada")
    exif = Image.Exif()
    exif[MAKE], exif[MODEL] = "FUJIFILM", "X-T4"
    exif[EXIF_IFD] = {
        DATE_TAKEN: "2023:07:14 18:30:05",
        ZONE: "+02:00",
        LENS_MAKE: "Fujifilm",
        LENS_MODEL: "XF23mmF2 R WR",
    }
    exif[GPS_IFD] = {1: "N", 2: (45.0, 49.0, 57.0), 3: "E", 4: (6.0, 51.0, 54.0)}
    photo = post(client, encode(real_photo(), "JPEG", exif=exif))
    assert photo["taken_at"].startswith("2023-07-14T16:30:05"), "18:30 at +02:00"
    assert photo["camera"] == "FUJIFILM X-T4" and photo["lens"] == "Fujifilm XF23mmF2 R WR"
    assert photo["location"]["latitude"] == pytest.approx(45.8325, abs=1e-4)

    page = client.get(f"/photos/{photo['id']}").text
    exif_block = re.search(r'<dl class="exif" id="exif">(.*?)</dl>', page, re.S)
    assert exif_block, page
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", exif_block.group(1))).strip()
    assert shown == "Taken 2023-07-14 16:30 Camera FUJIFILM X-T4 Lens Fujifilm XF23mmF2 R WR"
    assert "45.83250" in page and "only you see this" in page

    other = TestClient(client.app, base_url="http://127.0.0.1")
    sign_up(other, "bob")
    for viewer in (other, TestClient(client.app, base_url="http://127.0.0.1")):
        seen = viewer.get(f"/photos/{photo['id']}").text
        assert "XF23mmF2 R WR" in seen and "2023-07-14 16:30" in seen
        assert "45.83" not in seen and "6.86" not in seen, "nobody else sees where it was taken"
        body = viewer.get(f"/api/v1/photos/{photo['id']}").json()
        assert body["location"] is None and body["lens"] == "Fujifilm XF23mmF2 R WR"
        listed = viewer.get("/api/v1/photos", params={"sort": "taken"}).json()["items"]
        assert listed[0]["location"] is None


def test_lists_sort_by_date_taken_undated_last_across_pages(client: TestClient) -> None:
    sign_up(client, "cy")
    dates = ["2019:03:01 10:00:00", None, "2024:01:02 09:00:00", "2001:12:25 08:00:00", "2019:03:01 10:00:00"]
    uploaded = []
    for i, date in enumerate(dates):  # uploaded in this order: newest upload last
        ifd = {DATE_TAKEN: date} if date else None
        uploaded.append(post(client, with_exif(real_photo(i, "airplanes"), ifd), tags="plane")["id"])
    by_taken = [uploaded[2], uploaded[4], uploaded[0], uploaded[3], uploaded[1]]  # ties: newer first

    def walk(url: str, params: dict[str, object]) -> list[str]:
        ids: list[str] = []
        while url:
            body = client.get(url, params=params or None).json()
            ids += [p["id"] for p in body["items"]]
            url, params = body["next"], {}
            assert len(ids) <= len(uploaded), "pages never repeat a photo"
        return ids

    for params in ({"sort": "taken"}, {"sort": "taken", "owner": "cy"}, {"sort": "taken", "tag": "plane"}):
        assert walk("/api/v1/photos", {**params, "limit": 2}) == by_taken, params
    assert walk("/api/v1/photos", {"limit": 2}) == uploaded[::-1], "the default stays the newest upload first"

    for url in ("/", "/users/cy", "/tags/plane", "/search?q=plane"):
        newest = client.get(url).text
        assert 'id="sort"' in newest
        taken_url = re.search(r'<a href="([^"]+)"[^>]*>date taken</a>', newest)
        assert taken_url, url
        page = client.get(taken_url.group(1).replace("&amp;", "&")).text
        order = [m for m in re.findall(r'href="/photos/([A-Za-z0-9_-]{22})"', page)]
        assert order == by_taken, url
        assert "2024-01-02" in page, "a list by date shows each photo's date"
    assert client.get("/api/v1/photos", params={"sort": "sideways"}).status_code == 422


def test_an_album_sorts_by_date_taken_across_pages_and_hides_what_others_may_not_see(
    client: TestClient,
) -> None:
    sign_up(client, "dee")
    dates = ["2010:05:05 10:00:00", None, "2022:07:07 07:00:00", "2015:01:01 01:00:00"]
    ids = [
        post(client, with_exif(real_photo(i, "watch"), {DATE_TAKEN: d} if d else None))["id"]
        for i, d in enumerate(dates)
    ]
    secret = post(
        client, with_exif(real_photo(5, "watch"), {DATE_TAKEN: "2023:01:01 00:00:00"}), visibility="private"
    )
    album = client.post("/api/v1/albums", json={"title": "Watches", "photos": [*ids, secret["id"]]}).json()
    url = f"/api/v1/albums/{album['id']}/photos"

    def walk(viewer: TestClient) -> list[str]:
        seen: list[str] = []
        page: str | None = url
        params: dict[str, object] | None = {"sort": "taken", "limit": 1}
        while page:
            body = viewer.get(page, params=params).json()
            seen += [p["id"] for p in body["items"]]
            page, params = body["next"], None
            assert len(seen) <= 5, "pages never repeat a photo"
        return seen

    assert walk(client) == [secret["id"], ids[2], ids[3], ids[0], ids[1]], "undated last"
    visitor = TestClient(client.app, base_url="http://127.0.0.1")
    assert walk(visitor) == [ids[2], ids[3], ids[0], ids[1]], "a private photo is never shown to others"
    assert [p["id"] for p in client.get(url).json()["items"]] == [*ids, secret["id"]], "the album's order"
    # The private photo's place as a cursor tells a visitor nothing: the same answer as a gone one.
    positions = {p: i for i, p in enumerate([*ids, secret["id"]])}
    gone = visitor.get(url, params={"sort": "taken", "after": positions[secret["id"]]})
    assert (
        gone.status_code == 400
        and visitor.get(url, params={"sort": "taken", "after": 999}).json() == gone.json()
    )
    assert visitor.get(url, params={"sort": "sideways"}).status_code == 422
    page = visitor.get(f"/albums/{album['id']}?sort=taken").text
    assert re.findall(r'href="/photos/([A-Za-z0-9_-]{22})"', page) == [ids[2], ids[3], ids[0], ids[1]]
    assert 'aria-current="true">date taken' in page


def test_a_cursor_tells_nothing_about_photos_the_viewer_cannot_list(client: TestClient) -> None:
    sign_up(client, "dee")
    public = post(client, with_exif(real_photo(0, "watch"), {DATE_TAKEN: "2020:01:01 00:00:00"}))
    hidden = {
        v: post(
            client, with_exif(real_photo(i + 1, "watch"), {DATE_TAKEN: "2021:01:01 00:00:00"}), visibility=v
        )
        for i, v in enumerate(("private", "unlisted"))
    }
    ctx = context_of(client)
    with ctx.sessions() as session:
        ids = {
            public_id: photo_id for public_id, photo_id in session.execute(select(Photo.public_id, Photo.id))
        }
    stranger = TestClient(client.app, base_url="http://127.0.0.1")
    for photo in hidden.values():
        res = stranger.get("/api/v1/photos", params={"sort": "taken", "before": ids[photo["id"]]})
        assert res.status_code == 400 and "start again" in res.json()["error"]["message"]
        assert stranger.get("/", params={"sort": "taken", "before": ids[photo["id"]]}).status_code == 400
        own = client.get(
            "/api/v1/photos", params={"sort": "taken", "before": ids[photo["id"]], "owner": "dee"}
        )
        assert own.status_code == 200, "the owner lists their own photos from any of them"
    gone = stranger.get("/api/v1/photos", params={"sort": "taken", "before": 10**9})
    assert gone.status_code == 400
    res = stranger.get("/api/v1/photos", params={"sort": "taken", "before": ids[public["id"]]})
    assert res.status_code == 200 and res.json()["items"] == []


def test_import_keeps_the_files_date_when_exif_has_none(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from eyes.context import build_context

    folder = tmp_path / "holiday"
    folder.mkdir()
    plain = folder / "scan.jpg"
    plain.write_bytes(encode(real_photo(0, "starfish"), "JPEG"))
    dated = folder / "camera.jpg"
    dated.write_bytes(with_exif(real_photo(1, "starfish"), {DATE_TAKEN: "2020:08:09 10:11:12"}))
    future = folder / "clock.jpg"
    future.write_bytes(encode(real_photo(2, "starfish"), "JPEG"))
    file_time = datetime(2015, 6, 1, 12, 0, tzinfo=UTC).timestamp()
    for path in (plain, dated):
        os.utime(path, (file_time, file_time))
    os.utime(future, (4_000_000_000, 4_000_000_000))  # 2096: a clock never set is no date

    ctx = build_context(settings)
    try:
        create_user(ctx, "eve", "a long password")
        report = import_tree(ctx, folder, owner="eve", progress=False)
        assert report.imported == 3
        with ctx.sessions() as session:
            rows = session.execute(select(Photo.original_filename, Photo.taken_at))
            taken = {name: moment for name, moment in rows}
    finally:
        ctx.close()
    assert taken["scan.jpg"].replace(tzinfo=UTC) == datetime(2015, 6, 1, 12, 0, tzinfo=UTC)
    assert taken["camera.jpg"].replace(tzinfo=UTC) == datetime(2020, 8, 9, 10, 11, 12, tzinfo=UTC), (
        "EXIF wins"
    )
    assert taken["clock.jpg"] is None


HOSTILE: list[tuple[str, dict[str, object], dict[int, object] | None]] = [
    # JPEG holds at most 64 KiB of EXIF: as much as fits.
    ("huge strings", {f"t{MAKE}": "A" * 30_000, f"t{MODEL}": "B" * 20_000}, {LENS_MODEL: "L" * 12_000}),
    (
        "control characters and markup",
        {f"t{MAKE}": "Evil\x00\x1b[31m\r\nCorp", f"t{MODEL}": "<script>alert(1)</script>"},
        {LENS_MODEL: "\u202eReversed\u0000"},
    ),
    ("a date that is no date", {}, {DATE_TAKEN: "9999:99:99 99:99:99", ZONE: "+99:99"}),
    ("year zero", {}, {DATE_TAKEN: "0000:00:00 00:00:00"}),
    ("the end of time behind UTC", {}, {DATE_TAKEN: "9999:12:31 23:59:59", ZONE: "-14:00"}),
    ("the start of time ahead of UTC", {}, {DATE_TAKEN: "0001:01:01 00:00:00", ZONE: "+14:00"}),
    ("a date far too long", {}, {DATE_TAKEN: "9" * 50_000 + "2020:01:01 00:00:00"}),
    (
        "bytes and numbers where text goes",
        {f"t{MAKE}": b"\xff\xfe\x00bytes", f"t{MODEL}": 12345},
        {LENS_MODEL: 3.5},
    ),
    ("GPS of the wrong shape", {f"t{GPS_IFD}": {1: "N", 2: (1.0, 2.0), 3: 7, 4: (5.0,)}}, None),
    (
        "GPS beyond the poles",
        {f"t{GPS_IFD}": {1: "N", 2: (1e30, 0.0, 0.0), 3: "E", 4: (1.0, 2.0, 3.0)}},
        None,
    ),
]


@pytest.mark.parametrize(("case", "top", "ifd"), HOSTILE, ids=[c for c, _, _ in HOSTILE])
def test_hostile_exif_is_bounded_and_never_an_error(
    client: TestClient, case: str, top: dict[str, object], ifd: dict[int, object] | None
) -> None:
    sign_up(client, "mal")
    photo = post(client, with_exif(real_photo(3, "watch"), ifd, **top))
    assert len(photo["camera"]) <= 200 and len(photo["lens"]) <= 200
    for text in (photo["camera"], photo["lens"]):
        assert not any(ord(ch) < 32 or ch == "\u202e" for ch in text), repr(text)
    if "date" in case or "time" in case or "year" in case:
        assert photo["taken_at"] is None, case
    if "GPS" in case:
        assert photo["location"] is None
    page = client.get(f"/photos/{photo['id']}")
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    listed = client.get("/api/v1/photos", params={"sort": "taken"})
    assert listed.status_code == 200 and listed.json()["items"][0]["id"] == photo["id"]


# Raw EXIF blocks a parser must survive: a TIFF header pointing nowhere, an IFD claiming 65,535
# entries, an offset loop, random bytes.
RAW_EXIF = {
    "offset past the end": b"Exif\x00\x00MM\x00*\x7f\xff\xff\xff",
    "65535 entries": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + b"\x00" * 24,
    "an IFD that points at itself": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x69\x87\x04\x00"
    b"\x01\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00",
    "random bytes": b"Exif\x00\x00" + bytes((i * 7919) % 251 for i in range(4000)),
}


@pytest.mark.parametrize("case", list(RAW_EXIF))
def test_a_broken_exif_block_keeps_the_photo_and_drops_the_metadata(client: TestClient, case: str) -> None:
    sign_up(client, "raw")
    data = encode(real_photo(4, "watch"), "JPEG", exif=RAW_EXIF[case])
    res = client.post("/api/v1/photos", files={"file": ("r.jpg", data, "image/jpeg")})
    assert res.status_code == 201, res.text
    photo = res.json()
    assert photo["camera"] == "" and photo["lens"] == "" and photo["location"] is None
    assert client.get(f"/photos/{photo['id']}").status_code == 200


def test_a_cursor_tells_nothing_about_hidden_photos_nor_a_suspended_accounts(client: TestClient) -> None:
    sign_up(client, "root")  # the first account: an administrator
    owner = TestClient(client.app, base_url="http://127.0.0.1")
    sign_up(owner, "eve")
    date = {DATE_TAKEN: "2021:01:01 00:00:00"}
    shown = post(owner, with_exif(real_photo(0, "watch"), {DATE_TAKEN: "2020:01:01 00:00:00"}))
    hidden = post(owner, with_exif(real_photo(1, "watch"), date))
    assert client.post(f"/api/v1/moderation/photos/{hidden['id']}/hide", json={}).status_code == 200
    gus = TestClient(client.app, base_url="http://127.0.0.1")
    sign_up(gus, "gus")
    suspended = post(gus, with_exif(real_photo(2, "watch"), date))
    assert client.post("/api/v1/moderation/users/gus/suspend").status_code == 204
    ctx = context_of(client)
    with ctx.sessions() as session:
        ids = dict(session.execute(select(Photo.public_id, Photo.id)).all())
    stranger = TestClient(client.app, base_url="http://127.0.0.1")
    gone = stranger.get("/api/v1/photos", params={"sort": "taken", "before": 10**9})
    for photo in (hidden, suspended):
        for viewer in (stranger, client):  # a visitor, and an administrator (lists leave them out too)
            res = viewer.get("/api/v1/photos", params={"sort": "taken", "before": ids[photo["id"]]})
            assert res.status_code == 400 and res.json() == gone.json(), "the same answer as a gone photo"
            assert viewer.get("/", params={"sort": "taken", "before": ids[photo["id"]]}).status_code == 400
    own = owner.get("/api/v1/photos", params={"sort": "taken", "before": ids[hidden["id"]], "owner": "eve"})
    assert own.status_code == 200 and [p["id"] for p in own.json()["items"]] == [shown["id"]]
