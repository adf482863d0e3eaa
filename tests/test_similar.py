"""Similar photos ("more like this") and near-duplicates, through the API, the pages and the CLI."""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, update

from eyes.app import create_app
from eyes.config import Settings
from eyes.context import build_context
from eyes.db.models import Photo
from eyes.domain import Visibility
from tests.conftest import CALTECH, context_of, sign_up, upload, wait_for_tagging
from tests.test_cli import eyes

CLASSES = ("Faces_easy", "airplanes", "Motorbikes", "Leopards", "sunflower", "watch")


def photos_of(cls: str, n: int, skip: int = 0) -> list[Path]:
    return sorted((CALTECH / cls).iterdir())[skip : skip + n]


def copy_of(path: Path, tmp: Path, *, half: bool = True, crop: float = 0.05, quality: int = 50) -> Path:
    """The same scene re-encoded, resized to half and slightly cropped at one corner."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    w, h = rgb.size
    rgb = rgb.crop((0, 0, w - int(w * crop), h - int(h * crop)))
    if half:
        rgb = rgb.resize((rgb.width // 2, rgb.height // 2), Image.Resampling.LANCZOS)
    out = tmp / f"copy-of-{path.name}"
    rgb.save(out, "JPEG", quality=quality)
    return out


def similar(client: TestClient, photo_id: str, **params: object) -> list[dict]:
    res = client.get(f"/api/v1/photos/{photo_id}/similar", params=params)
    assert res.status_code == 200, res.text
    return res.json()


def as_user(client: TestClient, name: str) -> None:
    client.cookies.clear()
    sign_up(client, name)


def test_others_private_and_unlisted_photos_never_appear(client: TestClient, tmp_path: Path) -> None:
    sign_up(client, "ana")
    public = [upload(client, p) for p in photos_of("Leopards", 3)]
    as_user(client, "bob")
    # Bob's copies of Ana's photos: the nearest neighbours there are, private and unlisted.
    hidden = [upload(client, copy_of(p, tmp_path), visibility="private") for p in photos_of("Leopards", 3)]
    unlisted = upload(client, copy_of(photos_of("Leopards", 1, 5)[0], tmp_path), visibility="unlisted")
    mine = {p["id"] for p in hidden} | {unlisted["id"]}

    client.cookies.clear()  # anonymous
    shown = {p["id"] for p in similar(client, public[0]["id"])}
    assert shown == {public[1]["id"], public[2]["id"]}, "the public photos, none of Bob's"
    as_user(client, "cat")
    assert not {p["id"] for p in similar(client, public[0]["id"])} & mine

    # Bob himself sees his own, private and unlisted alike, his copy of this photo first.
    client.cookies.clear()
    client.post("/login", data={"username": "bob", "password": "correct horse", "csrf_token": _csrf(client)})
    _csrf(client)
    found = [p["id"] for p in similar(client, public[0]["id"])]
    assert found[0] == hidden[0]["id"] and mine <= set(found)


def _csrf(client: TestClient) -> str:
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text)
    assert token
    client.headers["X-CSRF-Token"] = token.group(1)
    return token.group(1)


def test_unknown_private_and_malformed_ids_are_the_same_404(client: TestClient) -> None:
    sign_up(client, "dee")
    private = upload(client, photos_of("watch", 1)[0], visibility="private")
    public = upload(client, photos_of("watch", 1, 1)[0])
    as_user(client, "eve")
    unknown = "A" * 22
    answers = [client.get(f"/api/v1/photos/{key}/similar") for key in (private["id"], unknown)]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json() == answers[1].json(), "a private photo is indistinguishable from none"
    for bad in ("1", "0" * 500, "..%2F..", private["id"] + "x"):
        assert client.get(f"/api/v1/photos/{bad}/similar").status_code == 404
    assert client.get(f"/photos/{private['id']}").status_code == 404
    for limit in (0, 49, -1, "x", 10**30):
        assert (
            client.get(f"/api/v1/photos/{public['id']}/similar", params={"limit": limit}).status_code == 422
        )
    assert similar(client, public["id"], limit=48) == [], "Dee's private photo is not shown to Eve"


def test_visibility_changes_and_deletes_apply_at_once(client: TestClient) -> None:
    sign_up(client, "fay")
    a, b, c = (upload(client, p) for p in photos_of("sunflower", 3))
    as_user(client, "gus")
    assert {p["id"] for p in similar(client, a["id"])} == {b["id"], c["id"]}
    client.cookies.clear()
    client.post("/login", data={"username": "fay", "password": "correct horse", "csrf_token": _csrf(client)})
    _csrf(client)
    assert client.patch(f"/api/v1/photos/{b['id']}", json={"visibility": "private"}).status_code == 200
    assert client.delete(f"/api/v1/photos/{c['id']}").status_code == 204
    assert {p["id"] for p in similar(client, a["id"])} == {b["id"]}, "her own private photo, for her"
    client.cookies.clear()
    assert similar(client, a["id"]) == []
    assert client.patch(f"/api/v1/photos/{b['id']}", json={"visibility": "public"}).status_code in (401, 403)


def test_a_photo_made_private_by_another_server_is_never_shown(client: TestClient) -> None:
    """The index is the process's own: a change made elsewhere (here, straight in the database)
    reaches it only at the next catch-up, but the database is checked before anything is shown."""
    sign_up(client, "hal")
    a, b = (upload(client, p) for p in photos_of("Motorbikes", 2))
    ctx = context_of(client)
    with ctx.sessions.begin() as session:
        session.execute(update(Photo).where(Photo.public_id == b["id"]).values(visibility=Visibility.PRIVATE))
    client.cookies.clear()
    assert similar(client, a["id"]) == []
    ctx.similar.catch_up()
    assert ctx.similar.index().audience_of(_internal_id(client, b["id"])) == (1, False)


def _internal_id(client: TestClient, key: str) -> int:
    with context_of(client).sessions() as session:
        return int(
            session.scalar(Photo.__table__.select().with_only_columns(Photo.id).where(Photo.public_id == key))
        )


def test_another_server_catches_up_with_uploads(client: TestClient, settings: Settings) -> None:
    """Two servers on one database: what one stores, the other's index learns at its next
    catch-up (at most `similar_sync_s` after its last), without a restart."""
    sign_up(client, "ida")
    first = upload(client, photos_of("airplanes", 1)[0])
    other_settings = settings.model_copy(update={"similar_sync_s": 0.0})
    with TestClient(create_app(other_settings), base_url="http://127.0.0.1") as other:
        assert similar(other, first["id"]) == []  # builds its index: nothing else there yet
        second = upload(client, photos_of("airplanes", 1, 1)[0])
        similar(other, first["id"])  # starts the catch-up in the background
        thread = context_of(other).similar._catching_up
        assert thread is not None
        thread.join(30)
        assert [p["id"] for p in similar(other, first["id"])] == [second["id"]]


def test_near_duplicate_reported_on_upload_to_its_owner_only(client: TestClient, tmp_path: Path) -> None:
    sign_up(client, "jon")
    original = upload(client, photos_of("Faces_easy", 1)[0], title="Portrait")
    other = upload(client, photos_of("watch", 1)[0])
    assert original["near_duplicates"] == [] and other["near_duplicates"] == []
    copy = upload(client, copy_of(photos_of("Faces_easy", 1)[0], tmp_path))
    assert [d["id"] for d in copy["near_duplicates"]] == [original["id"]]
    assert copy["near_duplicates"][0]["url"] == f"/photos/{original['id']}"
    assert copy["near_duplicates"][0]["similarity"] >= context_of(client).settings.near_duplicate_similarity
    distinct = upload(client, photos_of("Faces_easy", 1, 1)[0])
    assert distinct["near_duplicates"] == [], "another photo of the same class is no duplicate"

    page = client.get(f"/photos/{copy['id']}").text
    assert "near-duplicate of your" in page and f'href="/photos/{original["id"]}"' in page
    assert "More like this" in page

    as_user(client, "kim")  # someone else's copy is not "a near-duplicate of yours"
    theirs = upload(client, copy_of(photos_of("Faces_easy", 1)[0], tmp_path, crop=0.08))
    assert theirs["near_duplicates"] == []
    assert "near-duplicate of your" not in client.get(f"/photos/{copy['id']}").text


def test_import_skips_near_duplicates_with_the_flag(settings: Settings, tmp_path: Path) -> None:
    eyes(settings, "users", "create", "lea", stdin="a-long-password\n")
    first = tmp_path / "first"
    first.mkdir()
    originals = photos_of("ketch", 3) + photos_of("bonsai", 2)
    for p in originals:
        (first / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    assert eyes(settings, "import", str(first), "-q").returncode == 0

    again = tmp_path / "again"
    again.mkdir()
    for p in originals[:3]:
        copy_of(p, again)
    new = photos_of("ketch", 2, 10)
    for p in new:
        (again / f"new-{p.name}").write_bytes(p.read_bytes())
    # A copy of a new file within this very import: whichever comes second is the duplicate.
    copy_of(new[0], again, half=False, crop=0.08, quality=40)

    res = eyes(settings, "import", str(again), "-q", "--skip-near-duplicates", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["imported"] == 2 and report["skipped_near_duplicates"] == 4, report
    # Files are checked in the order of their names: the copy comes first, so the new file is the
    # duplicate, named by the file (both are in one batch, stored together after the check).
    found = {d["file"]: d["of"] for d in report["near_duplicates"]}
    assert set(found) == {f"copy-of-{p.name}" for p in originals[:3]} | {f"new-{new[0].name}"}, found
    assert found.pop(f"new-{new[0].name}") == f"copy-of-{new[0].name}"
    assert all(of.startswith("/photos/") for of in found.values()), found

    # Without the flag they are imported, and listed.
    res = eyes(settings, "import", str(again), "-q")
    assert res.returncode == 0 and "imported 4," in res.stdout, res.stdout
    assert res.stdout.count("a near-duplicate of") == 4


def test_a_file_the_quota_refuses_is_no_reason_to_skip_its_near_copy(
    settings: Settings, tmp_path: Path
) -> None:
    """With --skip-near-duplicates, a near-copy is skipped only for a file that is imported: when
    the original does not fit the quota, the smaller copy that does is imported."""
    eyes(settings, "users", "create", "lea", stdin="a-long-password\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    ketch = photos_of("ketch", 1)[0]
    (tree / "a.jpg").write_bytes(ketch.read_bytes())
    copy = copy_of(ketch, tree)  # "copy-of-...": after a.jpg, half its size
    assert copy.stat().st_size < ketch.stat().st_size

    res = eyes(
        settings,
        "import",
        str(tree),
        "-q",
        "--skip-near-duplicates",
        "--json",
        env={"EYES_STORAGE_QUOTA_BYTES": str(copy.stat().st_size)},
    )
    report = json.loads(res.stdout)
    assert [r["file"] for r in report["rejected"]] == ["a.jpg"]
    assert "quota" in report["rejected"][0]["reason"]
    assert (report["imported"], report["skipped_near_duplicates"], report["near_duplicates"]) == (1, 0, [])


def test_an_import_finds_a_near_duplicate_of_a_file_stored_in_an_earlier_batch(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is checked before it is stored, the next against the index that holds the
    batches before it: a copy two batches after its original is named by the original's photo."""
    from eyes.services import importer

    monkeypatch.setattr(importer, "BATCH", 2)
    eyes(settings, "users", "create", "lea", stdin="a-long-password\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    ketch, bonsai = photos_of("ketch", 1)[0], photos_of("bonsai", 1)[0]
    (tree / "a.jpg").write_bytes(ketch.read_bytes())
    (tree / "b.jpg").write_bytes(bonsai.read_bytes())
    copy_of(ketch, tree)  # "copy-of-...": third, in the second batch

    res = eyes(settings, "import", str(tree), "-q", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["imported"] == 3
    ctx = build_context(settings)
    try:
        with ctx.sessions() as session:
            first = session.scalar(select(Photo.public_id).where(Photo.original_filename == "a.jpg"))
    finally:
        ctx.close()
    assert report["near_duplicates"] == [{"file": f"copy-of-{ketch.name}", "of": f"/photos/{first}"}]


@pytest.mark.slow
def test_similar_photos_of_a_real_class_come_first(client: TestClient) -> None:
    """With the real network: a photo's most similar photos are of its own class."""
    sign_up(client, "max")
    uploaded = {cls: [upload(client, p)["id"] for p in photos_of(cls, 6)] for cls in CLASSES}
    wait_for_tagging(client)
    of_class = {pid: cls for cls, ids in uploaded.items() for pid in ids}
    rng = random.Random(0)
    for cls, ids in uploaded.items():
        query = rng.choice(ids)
        found = [p["id"] for p in similar(client, query, limit=5)]
        assert len(found) == 5
        assert sum(of_class[f] == cls for f in found) >= 4, (cls, [of_class[f] for f in found])
        assert of_class[found[0]] == cls


def test_a_crowd_of_private_neighbours_still_leaves_results() -> None:
    """More than the exact-search limit of entries, the nearest hundreds someone else's private
    ones: the viewer still gets their count of results, none of those."""
    import numpy as np

    from eyes.ml.vector_index import EXACT_BELOW, Audience, VectorIndex

    rng = np.random.default_rng(0)
    n, dim = EXACT_BELOW + 2000, 64
    x = np.abs(rng.normal(size=(n, dim))).astype(np.float32)
    query = x[0]
    nearest = np.argsort(-(x @ query / np.linalg.norm(x, axis=1)))[:600]
    owners = np.full(n, 2)
    public = np.ones(n, dtype=bool)
    owners[nearest], public[nearest] = 3, False
    index = VectorIndex(dim)
    index.add(np.arange(1, n + 1), x, owners, public)
    found = index.search(query, 12, Audience(owner=4, public=True))
    assert len(found.keys) == 12 and not set(found.keys.tolist()) & set((nearest + 1).tolist())
    assert (np.diff(found.similarity) <= 1e-6).all(), "nearest first"
    # The owner of the crowd sees their own first.
    mine = index.search(query, 12, Audience(owner=3, public=True))
    assert set(mine.keys.tolist()) <= set((nearest + 1).tolist())
    index.remove([int(k) for k in mine.keys])
    assert not set(index.search(query, 12, Audience(owner=3, public=True)).keys.tolist()) & set(
        mine.keys.tolist()
    )


def _jpeg(rgb: Image.Image) -> bytes:
    out = io.BytesIO()
    rgb.save(out, "JPEG")
    return out.getvalue()
