"""Photos through the JSON API and the pages: upload, see, list, share, edit, delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, text

from eyes.db.models import PhotoTag, Tag
from eyes.domain import TagSource
from eyes.errors import BadRequest
from eyes.images import decode
from eyes.services import accounts, photos
from eyes.services.views import PhotoPublic
from tests.conftest import CALTECH, context_of, counts, sign_up, upload
from tests.images_for_tests import encode, jpeg_with_gps_and_rotation

LEOPARD = sorted((CALTECH / "Leopards").iterdir())[0]
WATCH = sorted((CALTECH / "watch").iterdir())[0]


def test_upload_stores_once_and_duplicate_costs_nothing(client: TestClient) -> None:
    sign_up(client, "ann")
    first = client.post(
        "/api/v1/photos",
        files={"file": (LEOPARD.name, LEOPARD.read_bytes(), "image/jpeg")},
        data={"title": "Spotty", "tags": "Big  Cat, leopard"},
    )
    assert first.status_code == 201
    photo = first.json()
    assert photo["title"] == "Spotty" and photo["owner"] == "ann"
    assert {t["name"] for t in photo["tags"] if t["source"] == "user"} == {"big cat", "leopard"}
    before = counts(context_of(client))

    again = client.post("/api/v1/photos", files={"file": ("copy.jpg", LEOPARD.read_bytes(), "image/jpeg")})
    assert again.status_code == 200 and again.json()["id"] == photo["id"]
    assert counts(context_of(client)) == before


def test_same_bytes_from_two_owners_share_one_blob(client: TestClient, settings: object) -> None:
    sign_up(client, "bea")
    a = upload(client, WATCH)
    client.cookies.clear()
    sign_up(client, "cid")
    b = upload(client, WATCH)
    assert a["id"] != b["id"]
    c = counts(context_of(client))
    assert c["photos"] == 2 and c["images"] == 1 and c["blobs"] == 3  # original + 2 thumbnails

    client.delete(f"/api/v1/photos/{b['id']}")
    assert counts(context_of(client))["blobs"] == 3, "the other owner's photo still needs them"
    client.cookies.clear()
    sign_up(client, "dan")  # not the owner
    assert client.delete(f"/api/v1/photos/{a['id']}").status_code == 403


def test_delete_removes_blobs_when_last_photo_goes(client: TestClient) -> None:
    sign_up(client, "eli")
    photo = upload(client, WATCH)
    assert client.delete(f"/api/v1/photos/{photo['id']}").status_code == 204
    assert counts(context_of(client)) == {"photos": 0, "images": 0, "blobs": 0, "tmp": 0}
    assert client.get(f"/api/v1/photos/{photo['id']}").status_code == 404


def test_a_12_megapixel_photo_keeps_its_size_and_its_thumbnails_are_upright(client: TestClient) -> None:
    """Decoded once, at the scale its large thumbnail needs (half, for this one), a photo still
    reports the original's size, turned as its EXIF says, and both thumbnails show all of it."""
    sign_up(client, "gil")
    ramp = Image.linear_gradient("L").resize((4000, 3000))
    img = Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.ROTATE_180), ramp))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    res = client.post(
        "/api/v1/photos", files={"file": ("big.jpg", encode(img, "JPEG", exif=exif), "image/jpeg")}
    )
    assert res.status_code == 201, res.text
    photo = res.json()
    assert (photo["width"], photo["height"]) == (3000, 4000)
    sizes = {}
    for url in (photo["thumbnail_url"], photo["image_url"]):
        with Image.open(__import__("io").BytesIO(client.get(url).content)) as thumb:
            sizes[url] = thumb.size
    assert list(sizes.values()) == [(240, 320), (1200, 1600)]


def test_a_photo_smaller_than_a_thumbnail_is_never_enlarged(client: TestClient) -> None:
    """Each thumbnail is at most its size and never larger than the photo (one encoding serves
    the sizes the photo is no larger than)."""
    sign_up(client, "hal")
    shown = {}
    for size in ((200, 150), (500, 300)):
        ramp = Image.linear_gradient("L").resize(size)
        res = client.post(
            "/api/v1/photos",
            files={
                "file": (f"{size}.jpg", encode(Image.merge("RGB", (ramp, ramp, ramp)), "JPEG"), "image/jpeg")
            },
        )
        assert res.status_code == 201, res.text
        photo = res.json()
        for url in (photo["thumbnail_url"], photo["image_url"]):
            with Image.open(__import__("io").BytesIO(client.get(url).content)) as thumb:
                shown[size, url == photo["image_url"]] = thumb.size
    assert shown == {
        ((200, 150), False): (200, 150),
        ((200, 150), True): (200, 150),
        ((500, 300), False): (320, 192),
        ((500, 300), True): (500, 300),
    }


def test_a_nearly_square_photo_turned_a_quarter_reports_its_sides_swapped() -> None:
    """Decoded at half scale, 3201 x 3202 and 3202 x 3201 both become 1601 x 1601: the EXIF
    orientation, not the decoded size, says the sides swap."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    data = encode(Image.new("RGB", (3201, 3202), (90, 120, 150)), "JPEG", exif=exif)
    decoded = decode(data, max_pixels=50_000_000, longest_side=1600)
    assert decoded.image.size == (1601, 1601), "decoded at half scale"
    assert (decoded.width, decoded.height) == (3202, 3201)


def test_exif_orientation_applied_and_location_only_for_owner(client: TestClient, tmp_path: Path) -> None:
    sign_up(client, "fay")
    res = client.post(
        "/api/v1/photos", files={"file": ("gps.jpg", jpeg_with_gps_and_rotation(), "image/jpeg")}
    )
    photo = res.json()
    assert (photo["width"], photo["height"]) == (40, 60), "EXIF orientation is applied"
    assert photo["camera"] == "Acme Snap 1"
    assert abs(photo["location"]["latitude"] - 48.858) < 0.001
    assert abs(photo["location"]["longitude"] - 2.2944) < 0.001

    thumb = client.get(photo["image_url"])
    img = Image.open(__import__("io").BytesIO(thumb.content))
    assert img.size == (40, 60)
    assert 0x8825 not in img.getexif(), "thumbnails carry no GPS"

    client.cookies.clear()
    other = client.get(f"/api/v1/photos/{photo['id']}").json()
    assert other["location"] is None and other["original_filename"] is None
    assert "48.85" not in client.get(f"/photos/{photo['id']}").text
    assert client.get(f"/photos/{photo['id']}/original").status_code == 404


def test_visibility_public_unlisted_private(client: TestClient) -> None:
    sign_up(client, "gus")
    photos = [p for p in sorted((CALTECH / "watch").iterdir())[:3]]
    public = upload(client, photos[0], visibility="public", tags="clock")
    unlisted = upload(client, photos[1], visibility="unlisted", tags="clock")
    private = upload(client, photos[2], visibility="private", tags="clock")

    own_tag = [p["id"] for p in client.get("/api/v1/photos", params={"tag": "clock"}).json()["items"]]
    assert own_tag == [private["id"], unlisted["id"], public["id"]], "owners find their own photos"

    client.cookies.clear()
    feed = [p["id"] for p in client.get("/api/v1/photos").json()["items"]]
    assert feed == [public["id"]]
    assert client.get(f"/api/v1/photos/{unlisted['id']}").status_code == 200, "the link works"
    for url in (
        f"/api/v1/photos/{private['id']}",
        f"/photos/{private['id']}",
        private["thumbnail_url"],
        private["image_url"],
        f"/api/v1/photos/{private['id']}/tags",
    ):
        assert client.get(url).status_code == 404, url
    profile = client.get("/users/gus").text
    assert f"/photos/{public['id']}" in profile and f'/photos/{private["id"]}"' not in profile


def test_photo_ids_cannot_be_counted(client: TestClient) -> None:
    """The probe: walking ids 1..60 anonymously found every unlisted photo. Ids are now 128 random
    bits, so the only way to an unlisted photo is its link."""
    sign_up(client, "una")
    files = sorted((CALTECH / "watch").iterdir())[:3]
    unlisted = [upload(client, f, visibility="unlisted") for f in files]
    ids = [p["id"] for p in unlisted]
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == 3
    client.cookies.clear()
    for n in range(1, 61):
        for url in (f"/api/v1/photos/{n}", f"/photos/{n}", f"/api/v1/photos/{n}/tags"):
            assert client.get(url).status_code == 404, url
    feeds = [
        client.get("/api/v1/photos").json(),
        client.get("/api/v1/photos", params={"owner": "una"}).json(),
    ]
    assert all(feed["items"] == [] for feed in feeds), "unlisted is in no list"
    for photo in unlisted:  # ...and opens by its link
        assert client.get(f"/api/v1/photos/{photo['id']}").json()["title"] == photo["title"]
        assert client.get(photo["thumbnail_url"]).status_code == 200


def test_media_urls_change_with_visibility(client: TestClient) -> None:
    """Thumbnails are cached for a year; once a photo goes private, what a browser or a shared
    cache kept under its old URLs must not be what it is served under now."""
    sign_up(client, "vic")
    photo = upload(client, WATCH)
    public_thumb = client.get(photo["thumbnail_url"])
    assert public_thumb.headers["cache-control"].startswith("public")

    private = client.patch(f"/api/v1/photos/{photo['id']}", json={"visibility": "private"}).json()
    assert private["id"] == photo["id"], "the page's link stays"
    assert private["thumbnail_url"] != photo["thumbnail_url"]
    assert private["image_url"] != photo["image_url"]
    assert client.get(photo["thumbnail_url"]).status_code == 404, "the old media URL names nothing"
    own = client.get(private["thumbnail_url"])
    assert own.status_code == 200 and own.headers["cache-control"].startswith("private")
    assert own.content == public_thumb.content

    unchanged = client.patch(f"/api/v1/photos/{photo['id']}", json={"title": "t"}).json()
    assert unchanged["thumbnail_url"] == private["thumbnail_url"], "a new title keeps the cache"
    client.cookies.clear()
    assert client.get(private["thumbnail_url"]).status_code == 404, "others never see it"


def test_a_deleted_photos_ids_are_never_given_again(client: TestClient) -> None:
    """The probe: delete photo 4, the next upload got id 4 and its year-cached thumbnail URL."""
    sign_up(client, "wes")
    first, second = sorted((CALTECH / "watch").iterdir())[:2]
    gone = upload(client, first)
    assert client.delete(f"/api/v1/photos/{gone['id']}").status_code == 204
    new = upload(client, second)
    assert new["id"] != gone["id"] and new["thumbnail_url"] != gone["thumbnail_url"]
    for url in (f"/api/v1/photos/{gone['id']}", gone["thumbnail_url"], gone["image_url"]):
        assert client.get(url).status_code == 404, url
    with context_of(client).sessions() as session:  # nor the internal id, which jobs refer to
        ids = session.execute(text("SELECT id FROM photos")).scalars().all()
    assert len(ids) == 1 and ids[0] == 2


def test_feed_keyset_pagination(client: TestClient) -> None:
    sign_up(client, "hal")
    files = sorted((CALTECH / "starfish").iterdir())[:5]
    ids = [upload(client, f)["id"] for f in files]
    seen: list[int] = []
    url: str | None = "/api/v1/photos?limit=2"
    while url:
        page = client.get(url).json()
        seen += [p["id"] for p in page["items"]]
        url = page["next"]
    assert seen == ids[::-1], "newest first, each once"


def test_search_by_several_tags_and_tag_page(client: TestClient) -> None:
    sign_up(client, "ida")
    a, b = sorted((CALTECH / "sunflower").iterdir())[:2]
    pa = upload(client, a, tags="flower, sunflower")
    pb = upload(client, b, tags="flower")
    both = client.get("/api/v1/photos", params=[("tag", "flower"), ("tag", "Sunflower")]).json()
    assert [p["id"] for p in both["items"]] == [pa["id"]]
    flowers = client.get("/api/v1/photos", params={"tag": "flower"}).json()
    assert {p["id"] for p in flowers["items"]} == {pa["id"], pb["id"]}
    page = client.get("/tags/sunflower").text
    assert f"/photos/{pa['id']}" in page and f'/photos/{pb["id"]}"' not in page
    search = client.get("/search", params={"q": "flower sunflower"}).text
    assert f"/photos/{pa['id']}" in search


def test_owner_adds_and_removes_tags_others_cannot(client: TestClient) -> None:
    sign_up(client, "jo")
    photo = upload(client, WATCH)
    tags = client.post(f"/api/v1/photos/{photo['id']}/tags", json={"name": "  Wrist   WATCH "}).json()
    assert [t["name"] for t in tags if t["source"] == "user"] == ["wrist watch"]
    tags = client.delete(f"/api/v1/photos/{photo['id']}/tags/wrist watch").json()
    assert "wrist watch" not in [t["name"] for t in tags]

    client.cookies.clear()
    sign_up(client, "kim")
    res = client.post(f"/api/v1/photos/{photo['id']}/tags", json={"name": "mine"})
    assert res.status_code == 403 and "owner" in res.json()["error"]["message"]


def _set_by_people(photo: PhotoPublic) -> list[str]:
    return sorted(t.name for t in photo.tags if t.source == TagSource.USER)


# What each refusal says, through the services as through the API.
HOSTILE_TAGS = {
    "x" * 65: "at most 64 characters",
    "bell\x07": "cannot contain",
    "zero\u200bwidth": "cannot contain",
    "   ": "at least one letter",
    "a/b": "cannot contain",
    "person:ann": "People page",
}


def test_the_services_tidy_tags_whoever_calls_them(client: TestClient) -> None:
    """A script (or the CLI) calls the services with tags as a person typed them, bypassing the
    web: they are stored tidy, each once, and a hostile one is refused with the 400 the API gives."""
    sign_up(client, "uma")
    photo = upload(client, WATCH)
    ctx = context_of(client)
    owner = accounts.get_user_by_name(ctx, "uma")

    shown = photos.add_owner_tags(ctx, photo["id"], owner, ["  Sea View ", "SEA   view"])
    assert _set_by_people(shown) == ["sea view"]
    shown = photos.add_owner_tags(ctx, photo["id"], owner, "Beach ,, sunset, BEACH")  # a field as typed
    assert _set_by_people(shown) == ["beach", "sea view", "sunset"]
    with ctx.sessions() as session:
        stored = session.scalars(
            select(Tag.name).join(PhotoTag).where(PhotoTag.source == TagSource.USER).order_by(Tag.name)
        ).all()
    assert stored == ["beach", "sea view", "sunset"], "each stored once, normalised"

    up = photos.upload_photo(
        ctx, owner.id, LEOPARD, photos.PhotoDraft("l.jpg", tags="Big  Cat, leopard, BIG CAT")
    )
    assert _set_by_people(photos.show_uploaded(ctx, up, owner)) == ["big cat", "leopard"]

    found = photos.search_photos(ctx, owner, "Sunset  BEACH")
    assert found.tags == ["sunset", "beach"] and photo["id"] in [p.id for p in found.items]
    assert photos.search_photos(ctx, owner, " , ") == photos.PhotoPage([], None)
    assert photos.list_photos(ctx, owner, tags=[" Leopard"] * 9).tags == ["leopard"], "once each"

    before = counts(ctx)
    for hostile, words in HOSTILE_TAGS.items():
        with pytest.raises(BadRequest) as refused:
            photos.add_owner_tags(ctx, photo["id"], owner, [hostile])
        assert words in refused.value.message
        with pytest.raises(BadRequest) as refused_upload:
            photos.upload_photo(ctx, owner.id, WATCH, photos.PhotoDraft("w.jpg", tags=("fine", hostile)))
        assert refused_upload.value.message == refused.value.message
        res = client.post(f"/api/v1/photos/{photo['id']}/tags", json={"name": hostile})
        assert res.status_code == refused.value.status_code == 400
        assert res.json()["error"]["message"] == refused.value.message
    assert counts(ctx) == before, "nothing stored"
    assert _set_by_people(photos.show(ctx, photo["id"], owner)) == ["beach", "sea view", "sunset"]

    # The pages hand the services what was typed, and show what they made of it.
    form = client.post(
        f"/photos/{photo['id']}/tags", data={"tags": " Clock,, SUNSET "}, follow_redirects=False
    )
    assert form.status_code == 303
    assert _set_by_people(photos.show(ctx, photo["id"], owner)) == ["beach", "clock", "sea view", "sunset"]
    assert '<span class="tag">sunset</span>' in client.get("/tags/ SUNSET ").text
    assert 'href="/tags/clock"' in client.get("/search", params={"q": "CLOCK  sunset"}).text


def test_edit_title_description_visibility(client: TestClient) -> None:
    sign_up(client, "lou")
    photo = upload(client, WATCH)
    res = client.patch(
        f"/api/v1/photos/{photo['id']}",
        json={"title": "Tick 🕰️ tock", "description": "d", "visibility": "private"},
    )
    assert res.status_code == 200
    assert res.json()["title"] == "Tick 🕰️ tock" and res.json()["visibility"] == "private"


def test_thumbnails_have_etag_and_long_cache(client: TestClient) -> None:
    sign_up(client, "max")
    photo = upload(client, LEOPARD)
    res = client.get(photo["thumbnail_url"])
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"
    assert "max-age=31536000" in res.headers["cache-control"]
    small = Image.open(__import__("io").BytesIO(res.content))
    assert max(small.size) <= 320
    again = client.get(photo["thumbnail_url"], headers={"If-None-Match": res.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_png_webp_gif_accepted(client: TestClient) -> None:
    sign_up(client, "ned")
    base = Image.open(LEOPARD).convert("RGB")
    for fmt, mime in (("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif")):
        res = client.post("/api/v1/photos", files={"file": (f"x.{fmt.lower()}", encode(base, fmt), mime)})
        assert res.status_code == 201, (fmt, res.text)


def test_healthz_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/api/v1/photos" in spec["paths"] and "/api/v1/me" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_pages_render(client: TestClient) -> None:
    sign_up(client, "oz")
    photo = upload(client, LEOPARD, title="Spots")
    for url in ("/", "/upload", "/settings", "/users/oz", f"/photos/{photo['id']}", "/tags/x", "/search?q=x"):
        res = client.get(url)
        assert res.status_code == 200, url
    assert "Spots" in client.get(f"/photos/{photo['id']}").text
    missing = client.get("/photos/999999", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "Not found" in missing.text


def test_taken_at_uses_the_cameras_zone_when_it_wrote_one(client: TestClient) -> None:
    """EXIF's DateTimeOriginal is local time; OffsetTimeOriginal says which zone."""
    sign_up(client, "tia")
    img = Image.new("RGB", (40, 30), (10, 90, 200))
    taken = []
    for shade, offset in ((10, "+02:00"), (20, None)):
        exif = Image.Exif()
        fields = {36867: "2024:05:01 14:03:00"} | ({0x9011: offset} if offset else {})
        exif[0x8769] = fields
        data = encode(img.point(lambda v, s=shade: (v + s) % 256), "JPEG", exif=exif)
        res = client.post("/api/v1/photos", files={"file": ("t.jpg", data, "image/jpeg")})
        taken.append(res.json()["taken_at"])
    assert taken[0].startswith("2024-05-01T12:03:00"), "14:03 at +02:00 is 12:03 UTC"
    assert taken[1].startswith("2024-05-01T14:03:00"), "no zone: the camera's clock as it was"


@pytest.mark.parametrize(
    ("typed", "status", "words"),
    [
        (" ".join(f"t{i}" for i in range(6000)), 400, "at most 8 tags"),  # a 40 KB box
        ("x" * 500, 400, "tag"),  # longer than a tag may be
        ("sea\x00star", 400, "tag"),  # a control character
        ("' OR '1'='1", 200, ""),  # SQL: only tags no photo has
        (" , ,  ", 200, ""),  # blanks between commas: only the private photo's tag
    ],
)
def test_the_search_box_refuses_hostile_text_clearly(
    client: TestClient, typed: str, status: int, words: str
) -> None:
    """What anyone types in the search box reaches the service as typed (photos.search_photos):
    a clear answer on a page, never a server error, and nothing of someone's private photo (each
    box also asks for its tag)."""
    sign_up(client, "ana")
    secret = upload(client, sorted((CALTECH / "starfish").iterdir())[0], tags="sea", visibility="private")
    client.cookies.clear()
    res = client.get("/search", params={"q": f"{typed} sea"}, headers={"Accept": "text/html"})
    assert res.status_code == status, res.text[:300]
    assert words in res.text and secret["id"] not in res.text
