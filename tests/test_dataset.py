"""The community's data set: licences, the export (command line and API), and what never leaves."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from eyes.app import create_app
from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import Photo, User
from eyes.db.session import transaction
from eyes.domain import License, Visibility
from eyes.services import accounts, labels, moderation, photos
from eyes.services.dataset import folder_name
from eyes.services.dataset_files import FolderSink, checked_name
from eyes.services.views import AccountView
from tests.conftest import CALTECH, sign_up, upload
from tests.images_for_tests import jpeg_with_gps_and_rotation
from tests.test_cli import eyes


@pytest.fixture
def community(settings: Settings) -> Settings:
    """Settings where two trusted votes make a label (trust itself is tests/test_labels.py's)."""
    return settings.model_copy(
        update={"min_votes_to_agree": 2, "trust_min_account_age_days": 0, "trust_min_agreements": 0}
    )


@pytest.fixture
def ctx(community: Settings) -> Iterator[Context]:
    context = build_context(community)
    context.jobs = None
    yield context
    context.close()


# The same settings for the command line, which reads them from the environment.
ENV = {
    "EYES_MIN_VOTES_TO_AGREE": "2",
    "EYES_TRUST_MIN_ACCOUNT_AGE_DAYS": "0",
    "EYES_TRUST_MIN_AGREEMENTS": "0",
}


def picture(tmp_path: Path, name: str, colour: tuple[int, int, int]) -> Path:
    path = tmp_path / name
    Image.new("RGB", (48, 32), colour).save(path)
    return path


def add(
    ctx: Context,
    owner: AccountView,
    path: Path,
    *,
    tags: tuple[str, ...] = (),
    visibility: Visibility = Visibility.PUBLIC,
    license: License | None = License.CC_BY,
) -> Photo:
    draft = photos.PhotoDraft(path.name, visibility=visibility, tags=tags, license=license)
    up = photos.upload_photo(ctx, owner.id, path, draft)
    with ctx.sessions() as session:
        return session.get_one(Photo, up.photo_id)


def users(ctx: Context, *names: str, admin: str = "") -> dict[str, AccountView]:
    return {n: accounts.create_user(ctx, n, "a long password", admin=n == admin) for n in names}


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def every_byte_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


# -- licences ----------------------------------------------------------------------------------


def test_owners_choose_a_licence_on_upload_on_the_photo_and_as_their_default(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        sign_up(client, "olga")
        path = CALTECH / "watch" / sorted(p.name for p in (CALTECH / "watch").iterdir())[0]
        first = upload(client, path)
        assert first["license"] == "all-rights-reserved", "all rights reserved unless the owner opens it"

        me = client.patch("/api/v1/me", json={"default_license": "cc-by"}).json()
        assert me["default_license"] == "cc-by" and me["private_photos_teach"] is False, "the rest stays"
        second = upload(client, CALTECH / "watch" / sorted(p.name for p in (CALTECH / "watch").iterdir())[1])
        assert second["license"] == "cc-by", "a new upload takes the owner's default"
        third = upload(
            client,
            CALTECH / "watch" / sorted(p.name for p in (CALTECH / "watch").iterdir())[2],
            license="cc0",
        )
        assert third["license"] == "cc0", "or the licence chosen for it"
        assert client.get(f"/api/v1/photos/{first['id']}").json()["license"] == "all-rights-reserved"

        changed = client.patch(f"/api/v1/photos/{first['id']}", json={"license": "cc-by-sa"})
        assert changed.status_code == 200 and changed.json()["license"] == "cc-by-sa"
        page = client.get(f"/photos/{first['id']}").text
        assert "CC BY-SA 4.0" in page and 'href="https://creativecommons.org/licenses/by-sa/4.0/"' in page

        form = {"title": "", "description": "", "visibility": "public", "license": "cc0"}
        res = client.post(f"/photos/{first['id']}/edit", data=form, follow_redirects=False)
        assert res.status_code == 303
        assert client.get(f"/api/v1/photos/{first['id']}").json()["license"] == "cc0"

        res = client.post("/settings/license", data={"license": "cc-by-sa"}, follow_redirects=False)
        assert res.status_code == 303
        assert 'value="cc-by-sa" selected' in client.get("/settings").text
        assert 'value="cc-by-sa" selected' in client.get("/upload").text, "the upload form starts there"

        # Nonsense is a clear 4xx, and changes nothing.
        assert client.patch("/api/v1/me", json={"default_license": "mine-all-mine"}).status_code == 422
        assert client.patch(f"/api/v1/photos/{first['id']}", json={"license": "gpl"}).status_code == 422
        bad = client.post("/settings/license", data={"license": "../../etc"}, follow_redirects=False)
        assert bad.status_code == 400 and "cc-by-sa" in bad.text
        assert client.get("/api/v1/me").json()["default_license"] == "cc-by-sa"


def test_only_the_owner_changes_a_photos_licence(settings: Settings) -> None:
    with TestClient(create_app(settings)) as owner, TestClient(create_app(settings)) as other:
        sign_up(owner, "olga")
        photo = upload(owner, CALTECH / "watch" / sorted(p.name for p in (CALTECH / "watch").iterdir())[0])
        sign_up(other, "mallory")
        res = other.patch(f"/api/v1/photos/{photo['id']}", json={"license": "cc0"})
        assert res.status_code == 403
        res = other.post(f"/photos/{photo['id']}/edit", data={"license": "cc0"}, follow_redirects=False)
        assert res.status_code == 403
        assert owner.get(f"/api/v1/photos/{photo['id']}").json()["license"] == "all-rights-reserved"


def test_import_sets_the_licence_or_takes_the_owners_default(settings: Settings, tmp_path: Path) -> None:
    eyes(settings, "users", "create", "olga", stdin="a-long-password\n")
    res = eyes(settings, "import", str(CALTECH / "watch"), "--license", "cc0", "--json", "-q")
    assert res.returncode == 0, res.stderr
    ctx = build_context(settings)
    try:
        with ctx.sessions() as session:
            olga = session.scalars(select(User)).one()
            got = set(session.scalars(select(Photo.license)))
        assert got == {License.CC0}
        accounts.update_preferences(ctx, olga, default_license=License.CC_BY_SA)
    finally:
        ctx.close()
    one = picture(tmp_path, "red.png", (200, 10, 10))
    assert eyes(settings, "import", str(one), "-q").returncode == 0
    bad = eyes(settings, "import", str(one), "--license", "public-domain-ish")
    assert bad.returncode == 2 and "cc-by-sa" in bad.stderr
    ctx = build_context(settings)
    try:
        with ctx.sessions() as session:
            assert (
                session.scalar(select(Photo.license).where(Photo.original_filename == "red.png"))
                == "cc-by-sa"
            )
    finally:
        ctx.close()


# -- what may leave ---------------------------------------------------------------------------


def test_only_public_openly_licensed_photos_leave_with_their_training_grade_labels(
    ctx: Context, community: Settings, tmp_path: Path
) -> None:
    people = users(ctx, "alice", "bob", "vera", "victor", admin="alice")
    alice, bob = people["alice"], people["bob"]
    accounts.update_preferences(
        ctx, alice, private_photos_teach=True
    )  # her private photos teach, and still never leave
    shown = add(ctx, alice, picture(tmp_path, "cat.png", (200, 10, 10)), tags=("cat",))
    reserved = add(ctx, alice, picture(tmp_path, "arr.png", (10, 200, 10)), tags=("cat",), license=None)
    private = add(
        ctx,
        alice,
        picture(tmp_path, "p.png", (10, 10, 200)),
        tags=("secret-tag",),
        visibility=Visibility.PRIVATE,
    )
    unlisted = add(
        ctx, alice, picture(tmp_path, "u.png", (90, 90, 9)), tags=("cat",), visibility=Visibility.UNLISTED
    )
    others_private = add(
        ctx, bob, picture(tmp_path, "b.png", (9, 90, 90)), tags=("dog",), visibility=Visibility.PRIVATE
    )
    # The very bytes of alice's private photo, public under CC0 by bob with a tag of his own.
    copy = add(ctx, bob, tmp_path / "p.png", tags=("kitten",), license=License.CC0)
    voted = add(ctx, bob, picture(tmp_path, "v.png", (120, 60, 30)), license=License.CC0)
    with transaction(ctx.sessions) as session:
        target = session.get_one(Photo, voted.id)
        for voter in (people["vera"], people["victor"]):
            labels.vote(session, target, voter, "dog", True)
            labels.vote(session, target, voter, "cat", False)
    with ctx.sessions() as session:
        assert reserved.license == License.ALL_RIGHTS_RESERVED and private.sha256 == copy.sha256

    out = tmp_path / "out"
    res = eyes(community, "export", "dataset", str(out), "--format", "jsonl", "--json", env=ENV)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["images"] == 3 and summary["licenses"] == {"cc-by": 1, "cc0": 2}
    assert "exporting" in res.stderr, "a progress bar is shown"

    lines = {line["sha256"]: line for line in manifest(out)}
    assert set(lines) == {shown.sha256, copy.sha256, voted.sha256}
    for gone in (reserved, unlisted, others_private):
        assert gone.sha256 not in lines
        assert not list(out.rglob(f"{gone.sha256}*")), "its file is not there either"
    written = every_byte_under(out)
    assert b"secret-tag" not in written, "a private copy's tag never leaks through a public copy"
    assert lines[copy.sha256]["tags"] == ["kitten"] and lines[copy.sha256]["author"] == "bob"

    cat = lines[shown.sha256]
    assert cat["tags"] == ["cat"] and cat["license"] == "cc-by" and cat["author"] == "alice"
    assert cat["labels"] == [{"tag": "cat", "label": "yes", "decided_by": [{"by": "owner", "user": "alice"}]}]
    assert "alice" in cat["attribution"] and "CC BY 4.0" in cat["attribution"]
    assert (out / cat["file"]).read_bytes() == (tmp_path / "cat.png").read_bytes(), "the original, as it was"
    dog = lines[voted.sha256]
    assert dog["tags"] == ["dog"] and dog["not_tags"] == ["cat"]
    how = {label["tag"]: label["decided_by"] for label in dog["labels"]}
    assert how == {"dog": [{"by": "votes", "yes": 2, "no": 0}], "cat": [{"by": "votes", "yes": 0, "no": 2}]}
    assert not any(name in written.decode(errors="ignore") for name in ("vera", "victor")), (
        "voters stay unnamed"
    )

    card = (out / "README.md").read_text()
    assert "| cat | 1 |" in card and "| dog | 1 |" in card and "| kitten | 1 |" in card
    assert "| CC0 1.0 (public domain) | 2 |" in card and "Eyes 0." in card and "UTC" in card

    stricter = tmp_path / "stricter"
    res = eyes(
        community,
        "export",
        "dataset",
        str(stricter),
        "--format",
        "jsonl",
        "--min-agreement",
        "3",
        "-q",
        env=ENV,
    )
    assert res.returncode == 0, res.stderr
    assert voted.sha256 not in {line["sha256"] for line in manifest(stricter)}, "two votes are not three"


def test_moderation_keeps_hidden_photos_and_suspended_accounts_out_of_the_export(
    ctx: Context, community: Settings, tmp_path: Path
) -> None:
    people = users(ctx, "admin", "carol", "dan", admin="admin")
    kept = add(ctx, people["carol"], picture(tmp_path, "k.png", (200, 10, 10)), tags=("cat",))
    hidden = add(ctx, people["carol"], picture(tmp_path, "h.png", (10, 200, 10)), tags=("cat",))
    suspended = add(ctx, people["dan"], picture(tmp_path, "s.png", (10, 10, 200)), tags=("dog",))
    moderation.hide_photo(ctx, people["admin"], hidden.public_id, "not for the data set")
    moderation.suspend_user(ctx, people["admin"], "dan")
    out = tmp_path / "out"
    res = eyes(community, "export", "dataset", str(out), "--format", "jsonl", "-q", env=ENV)
    assert res.returncode == 0, res.stderr
    assert {line["sha256"] for line in manifest(out)} == {kept.sha256}, (hidden.sha256, suspended.sha256)
    assert b"dog" not in every_byte_under(out), "a suspended account's tag leaves with nothing"
    moderation.restore_photo(ctx, people["admin"], hidden.public_id)
    again = tmp_path / "again"
    assert (
        eyes(community, "export", "dataset", str(again), "--format", "jsonl", "-q", env=ENV).returncode == 0
    )
    assert {line["sha256"] for line in manifest(again)} == {kept.sha256, hidden.sha256}, (
        "restored, it may leave"
    )


def test_a_location_never_leaves(ctx: Context, community: Settings, tmp_path: Path) -> None:
    owner = users(ctx, "alice")["alice"]
    path = tmp_path / "gps.jpg"
    path.write_bytes(jpeg_with_gps_and_rotation())
    photo = add(ctx, owner, path, tags=("red",))
    out = tmp_path / "out"
    res = eyes(community, "export", "dataset", str(out), "--json", "-q", env=ENV)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["reencoded_without_location"] == 1
    (line,) = manifest(out)
    assert line["sha256"] == photo.sha256 and line["file_sha256"] != photo.sha256
    with Image.open(out / line["file"]) as img:
        assert not img.getexif(), "no EXIF at all, so no GPS"
        assert img.size == (40, 60), "turned upright: the orientation went with the EXIF"


# -- command line and API ---------------------------------------------------------------------


def test_the_command_refuses_hostile_or_useless_requests_and_writes_nothing(
    ctx: Context, community: Settings, tmp_path: Path
) -> None:
    owner = users(ctx, "alice")["alice"]
    add(ctx, owner, picture(tmp_path, "cat.png", (200, 10, 10)), tags=("cat",))
    out = tmp_path / "out"
    for args, code, says in [
        (["--tags", "../../etc/passwd"], 2, "cannot contain"),
        (["--tags", "x" * 10_000], 2, "at most"),
        (["--tags", ",".join(f"t{i}" for i in range(500))], 2, "at most 200 tags"),
        (["--min-agreement", "1"], 2, "from 2"),
        (["--min-agreement", "99999999999"], 2, "to 1000"),
        (["--format", "tar"], 2, "imagefolder"),
        (["--tags", "unicorn"], 1, "nothing to export for unicorn"),
    ]:
        res = eyes(community, "export", "dataset", str(out), *args, env=ENV)
        assert res.returncode == code, (args, res.stdout, res.stderr)
        assert says in res.stderr, (args, res.stderr)
        assert not out.exists(), f"{args}: nothing written"

    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = eyes(community, "export", "dataset", str(out), env=ENV)
    assert res.returncode == 2 and "not empty" in res.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_administrators_download_the_data_set_as_a_streamed_zip(community: Settings, tmp_path: Path) -> None:
    app = create_app(community)
    with TestClient(app) as admin, TestClient(app) as member, TestClient(app) as visitor:
        sign_up(admin, "alice")
        watch = sorted((CALTECH / "watch").iterdir())
        open_photo = upload(admin, watch[0], tags="watch", license="cc0")
        closed = upload(admin, watch[1], tags="watch")  # all rights reserved
        sign_up(member, "mallory")
        hidden = upload(member, watch[2], tags="watch", license="cc-by", visibility="private")

        assert visitor.get("/api/v1/export/dataset").status_code == 401
        res = member.get("/api/v1/export/dataset")
        assert res.status_code == 403 and res.json()["error"]["code"] == "forbidden"

        res = admin.get("/api/v1/export/dataset", params={"format": "jsonl"})
        assert res.status_code == 200 and res.headers["content-type"] == "application/zip"
        assert res.headers["content-disposition"].startswith('attachment; filename="eyes-dataset-')
        archive = zipfile.ZipFile(io.BytesIO(res.content))
        names = archive.namelist()
        top = names[0].split("/")[0]
        assert {f"{top}/README.md", f"{top}/manifest.jsonl"} <= set(names)
        lines = [json.loads(x) for x in archive.read(f"{top}/manifest.jsonl").decode().splitlines()]
        assert [line["photo"] for line in lines] == [f"/photos/{open_photo['id']}"]
        assert archive.read(f"{top}/{lines[0]['file']}") == watch[0].read_bytes()
        for gone in (closed, hidden):
            assert gone["id"] not in res.content.decode("latin-1")

        for params, status, code in [
            ({"tag": "a/b"}, 400, "bad_request"),
            ({"tag": [f"t{i}" for i in range(201)]}, 400, "bad_request"),
            ({"tag": "unicorn"}, 404, "nothing_to_export"),
            ({"min_agreement": "1"}, 400, "bad_request"),
            ({"min_agreement": "-5"}, 422, "invalid_request"),
            ({"format": "../x"}, 422, "invalid_request"),
        ]:
            res = admin.get("/api/v1/export/dataset", params=params)
            assert res.status_code == status, (params, res.text)
            assert res.json()["error"]["code"] == code, (params, res.text)


def test_the_zip_streams_one_image_at_a_time(ctx: Context, tmp_path: Path) -> None:
    """Bounded memory: each chunk the response sends is about one image, never the archive."""
    from eyes.services.dataset import plan_dataset
    from eyes.services.dataset_files import zip_stream

    owner = users(ctx, "alice")["alice"]
    sizes = []
    for src in sorted((CALTECH / "watch").iterdir())[:6]:
        add(ctx, owner, src, tags=("watch",))
        sizes.append(src.stat().st_size)
    chunks = list(zip_stream(ctx, plan_dataset(ctx)))
    assert len(chunks) >= 7, "a chunk per image, then the manifest, card and directory"
    assert max(len(c) for c in chunks) < max(sizes) + 4096
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None and len(archive.namelist()) == 8


# -- folders named by tags --------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag", ["..", ".", ".hidden", "con", "nul.txt", 'a:b*c?"<>|', "end.", "tab\there", "ü" * 64, "plain tag"]
)
def test_a_tag_becomes_one_safe_folder_name_that_reads_back(tag: str) -> None:
    from urllib.parse import unquote

    name = folder_name(tag)
    assert checked_name(name).parts == (name,), "one plain name: no separator, no '..', no leading dot"
    assert len(name.encode()) <= 200
    if len(tag.encode()) * 3 < 200:
        assert unquote(name) == tag, "the import reads the tag back from the folder"
    assert folder_name("plain tag") == "plain tag"


@pytest.mark.parametrize(
    "name", ["../x.jpg", "/etc/passwd", "a/../../b", "a\\..\\b", ".git/config", "", "a//b"]
)
def test_no_name_escapes_the_data_set_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        FolderSink(tmp_path / "out").write(name, b"x")
    assert not (tmp_path / "x.jpg").exists()


def test_a_link_planted_in_the_folder_is_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "cat").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="outside"):
        FolderSink(out).write("cat/x.jpg", b"x")
    assert not (tmp_path / "x.jpg").exists()


def test_hostile_tag_names_stay_inside_the_imagefolder(
    ctx: Context, community: Settings, tmp_path: Path
) -> None:
    owner = users(ctx, "alice")["alice"]
    hostile = ["..", ".ssh", "con", "a:b"]
    for i, tag in enumerate(hostile):
        add(ctx, owner, picture(tmp_path, f"{i}.png", (i * 40, 10, 10)), tags=(tag,))
    out = tmp_path / "deep" / "out"
    res = eyes(community, "export", "dataset", str(out), "--json", "-q", env=ENV)
    assert res.returncode == 0, res.stderr
    written = sorted(p for p in tmp_path.rglob("*.png") if p.parent != tmp_path)
    assert len(written) == 4 and all(p.is_relative_to(out) and p.parent.parent == out for p in written)
    assert sorted(p.parent.name for p in written) == ["%2E%2E", "%2Essh", "%63on", "a%3Ab"]
    assert sorted(line["class"] for line in manifest(out)) == sorted(hostile)

    # And they read back: another account imports the folder with its tags.
    users(ctx, "bob")
    res = eyes(community, "import", str(out), "--owner", "bob", "--tags-from-folders", "--json", "-q")
    assert res.returncode == 0 and json.loads(res.stdout)["imported"] == 4, res.stdout
    with ctx.sessions() as session:
        bob_photos = session.scalars(select(Photo).join(User).where(User.username == "bob")).all()
        assert sorted(t.tag.name for p in bob_photos for t in p.tags if t.status == "confirmed") == sorted(
            hostile
        )


def test_an_image_the_store_lost_is_reported_and_the_rest_exported(
    ctx: Context, community: Settings, tmp_path: Path
) -> None:
    from eyes.services.image_store import original_key

    owner = users(ctx, "alice")["alice"]
    kept = add(ctx, owner, picture(tmp_path, "a.png", (200, 10, 10)), tags=("red",))
    lost = add(ctx, owner, picture(tmp_path, "b.png", (210, 10, 10)), tags=("red",))
    ctx.blobs.delete(original_key(lost.sha256))
    out = tmp_path / "out"
    res = eyes(community, "export", "dataset", str(out), "--json", "-q", env=ENV)
    assert res.returncode == 1, "an export with a hole in it is not a success"
    assert json.loads(res.stdout)["missing"] == [lost.sha256] and lost.sha256 in res.stderr
    assert [line["sha256"] for line in manifest(out)] == [kept.sha256], "the manifest lists what is there"
    assert "| red | 1 |" in (out / "README.md").read_text()


# -- the round trip ---------------------------------------------------------------------------

ROUND_TRIP_CLASSES = ["Leopards", "airplanes", "watch"]
TRAINING = {  # what the command line reads: two owners make a class, as the defaults ask
    **ENV,
    "EYES_MIN_LABELS_PER_TAG": "5",
    "EYES_MIN_OWNERS_PER_TAG": "1",
    "EYES_AUTO_TRAIN_AFTER": "0",
}


def run(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return eyes(settings, *args, stdin=stdin, env=TRAINING)


def split_tree(tmp_path: Path, name: str, start: int, per_class: int) -> Path:
    tree = tmp_path / name
    for cls in ROUND_TRIP_CLASSES:
        (tree / cls).mkdir(parents=True)
        for src in sorted((CALTECH / cls).iterdir())[start : start + per_class]:
            (tree / cls / src.name).symlink_to(src)
    return tree


def test_the_export_round_trips_into_a_fresh_eyes_that_learns_the_same(
    community: Settings, tmp_path: Path
) -> None:
    """The issue's "done when": export, import into a fresh Eyes with --tags-from-folders, train,
    and the accuracy matches (on the stand-in backbone: the same images give the same
    embeddings, so the same labels must give the same model)."""
    first = community
    assert run(first, "users", "create", "alice", "--admin", stdin="a-long-password\n").returncode == 0
    assert run(first, "users", "create", "bob", stdin="a-long-password\n").returncode == 0
    for owner, start, license in (("alice", 0, "cc-by"), ("bob", 8, "cc0")):
        tree = split_tree(tmp_path, owner, start, 8)
        res = run(
            first, "import", str(tree), "--owner", owner, "--tags-from-folders", "--license", license, "-q"
        )
        assert res.returncode == 0, res.stderr
    # Photos that must not travel: all rights reserved (untagged, so that both Eyes learn from the
    # same labels; tests above export labelled ones), and private (teaching nothing without consent).
    kept = split_tree(tmp_path, "kept", 16, 2)
    assert run(first, "import", str(kept), "--owner", "bob", "-q").returncode == 0
    shut = split_tree(tmp_path, "shut", 18, 2)
    res = run(
        first, "import", str(shut), "--owner", "bob", "--visibility", "private", "--license", "cc0", "-q"
    )
    assert res.returncode == 0

    out = tmp_path / "dataset"
    res = run(first, "export", "dataset", str(out), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["classes"] == {name.lower(): 16 for name in ROUND_TRIP_CLASSES}
    assert summary["licenses"] == {"cc-by": 24, "cc0": 24}
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "airplanes",
        "leopards",
        "manifest.jsonl",
        "watch",
    ]

    trained = json.loads(run(first, "train", "--wait", "--json").stdout)

    fresh = Settings(**{**first.model_dump(), "home": tmp_path / "fresh", "database_url": ""})
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "models").symlink_to((first.home / "models").resolve(), target_is_directory=True)
    assert run(fresh, "users", "create", "carol", "--admin", stdin="a-long-password\n").returncode == 0
    res = run(fresh, "import", str(out), "--tags-from-folders", "--json", "-q")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["imported"] == 48, "every exported photo, and nothing else"
    retrained = json.loads(run(fresh, "train", "--wait", "--json").stdout)

    assert trained["stage"] == retrained["stage"] == "champion"
    assert trained["vocabulary"] == retrained["vocabulary"] == sorted(n.lower() for n in ROUND_TRIP_CLASSES)
    assert trained["metrics"]["accuracy"] > 0.6, "a model worth comparing"
    assert retrained["metrics"]["accuracy"] == pytest.approx(trained["metrics"]["accuracy"], abs=1e-9)
    assert retrained["n_labelled_photos"] == trained["n_labelled_photos"] == 48

    held_out = split_tree(tmp_path, "held-out", 30, 5)
    before = json.loads(run(first, "evaluate", str(held_out), "--json").stdout)
    after = json.loads(run(fresh, "evaluate", str(held_out), "--json").stdout)
    assert after["accuracy"] == pytest.approx(before["accuracy"], abs=1e-9)
