"""Faces on upload: found for owners who opted in, shown to them alone, gone with their photo or
their consent. The fast tier runs on the stand-in finder (tests/standin_faces.py); the real dlib
models are tested in tests/ml/test_faces.py."""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from eyes.app import create_app
from eyes.config import Settings
from eyes.db.models import Face, Photo
from tests.conftest import context_of, sign_up, upload, wait_for_tagging
from tests.standin_faces import SPEC, faces_image
from tests.test_cli import eyes

ROOT = Path(__file__).resolve().parent.parent  # where the eyes package lies


@pytest.fixture
def faces_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"faces": True, "faces_finder": SPEC})


@pytest.fixture
def app_client(faces_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(faces_settings), base_url="http://127.0.0.1") as c:
        yield c


def opt_in(client: TestClient, on: bool = True) -> None:
    res = client.patch("/api/v1/me", json={"faces_enabled": on})
    assert res.status_code == 200, res.text
    assert res.json()["faces_enabled"] is on


def stored_faces(client: TestClient) -> int:
    with context_of(client).sessions() as session:
        return int(session.scalar(select(func.count(Face.id))) or 0)


def test_an_owner_who_opted_in_sees_the_faces_of_an_upload(app_client: TestClient, tmp_path: Path) -> None:
    sign_up(app_client, "anna")
    assert app_client.get("/api/v1/me").json()["faces_enabled"] is False  # off unless she says so
    opt_in(app_client)
    photo = upload(app_client, faces_image(tmp_path / "three.png", 3))
    wait_for_tagging(app_client)

    found = app_client.get("/api/v1/me/faces").json()
    assert len(found) == 3
    assert {f["photo"] for f in found} == {photo["id"]}
    assert all("descriptor" not in f for f in found)
    assert sorted((f["left"], f["top"], f["right"], f["bottom"]) for f in found)[0] == (16, 16, 64, 64)
    page = app_client.get(f"/photos/{photo['id']}").text
    assert "3 faces" in page
    # Stored once: a second pass finds nothing left to do.
    from eyes.services.faces import count_unscanned

    assert count_unscanned(context_of(app_client)) == 0


def test_a_large_jpeg_is_searched_at_reduced_scale_and_its_boxes_are_in_its_own_pixels(
    app_client: TestClient, tmp_path: Path
) -> None:
    sign_up(app_client, "anna")
    opt_in(app_client)
    # 2560x1920: decoded at half scale (both sides still at least 800 px).
    upload(app_client, faces_image(tmp_path / "large.jpg", 2, scale=8))
    wait_for_tagging(app_client)
    boxes = sorted(
        (f["left"], f["top"], f["right"], f["bottom"]) for f in app_client.get("/api/v1/me/faces").json()
    )
    expected = [(128, 128, 512, 512), (640, 128, 1024, 512)]  # in the original's pixels
    assert len(boxes) == 2
    for box, want in zip(boxes, expected, strict=True):
        assert max(abs(a - b) for a, b in zip(box, want, strict=True)) <= 32, (box, want)


def test_nobody_else_learns_anything_about_faces(
    app_client: TestClient, faces_settings: Settings, tmp_path: Path
) -> None:
    sign_up(app_client, "anna")
    opt_in(app_client)
    photo = upload(app_client, faces_image(tmp_path / "two.png", 2))
    wait_for_tagging(app_client)
    assert len(app_client.get("/api/v1/me/faces").json()) == 2

    for who in ("bob", None):  # another user, then a visitor (anna, the first account, is an
        # administrator: tests below check she sees nothing of others' faces either)
        other = TestClient(
            app_client.app, base_url="http://127.0.0.1"
        )  # the same app: one start and shutdown
        if who:
            sign_up(other, who)
            opt_in(other)  # even with faces on for himself
        page = other.get(f"/photos/{photo['id']}")
        assert page.status_code == 200
        assert "face-count" not in page.text and "2 faces" not in page.text
        body = other.get(f"/api/v1/photos/{photo['id']}")
        assert body.status_code == 200 and "face" not in body.text.lower()
        mine = other.get("/api/v1/me/faces")
        if who:
            assert mine.status_code == 200 and mine.json() == []
        else:
            assert mine.status_code == 401


def test_an_administrator_sees_nothing_of_others_faces(app_client: TestClient, tmp_path: Path) -> None:
    sign_up(app_client, "root")  # the first account: an administrator
    assert app_client.get("/api/v1/me").json()["is_admin"] is True
    opt_in(app_client)
    bob = TestClient(app_client.app, base_url="http://127.0.0.1")  # the same app: one start and shutdown
    sign_up(bob, "bob")
    opt_in(bob)
    photo = upload(bob, faces_image(tmp_path / "bob.png", 2))
    wait_for_tagging(bob)
    assert len(bob.get("/api/v1/me/faces").json()) == 2
    assert "face-count" not in app_client.get(f"/photos/{photo['id']}").text
    assert app_client.get("/api/v1/me/faces").json() == []
    assert "face" not in app_client.get(f"/api/v1/photos/{photo['id']}").text.lower()


def test_with_faces_off_for_the_instance_an_owners_preference_finds_nothing(
    client: TestClient, tmp_path: Path
) -> None:
    # One server alone on its database: a faces-on server beside it would rightly scan her photo.
    sign_up(client, "anna")
    opt_in(client)
    upload(client, faces_image(tmp_path / "a.png", 1))
    wait_for_tagging(client)
    assert stored_faces(client) == 0
    assert client.get("/api/v1/me/faces").json() == []
    assert 'id="faces-enabled"' not in client.get("/settings").text


def test_with_faces_on_for_the_instance_an_owner_who_did_not_opt_in_has_none(
    app_client: TestClient, tmp_path: Path
) -> None:
    sign_up(app_client, "bob")
    assert 'id="faces-enabled"' in app_client.get("/settings").text
    upload(app_client, faces_image(tmp_path / "b.png", 1, seed=1))
    wait_for_tagging(app_client)
    assert app_client.get("/api/v1/me/faces").json() == []
    assert stored_faces(app_client) == 0


def test_turning_faces_off_deletes_them_and_deleting_a_photo_deletes_its_faces(
    app_client: TestClient, tmp_path: Path
) -> None:
    sign_up(app_client, "anna")
    opt_in(app_client)
    first = upload(app_client, faces_image(tmp_path / "a.png", 2))
    second = upload(app_client, faces_image(tmp_path / "b.png", 1, seed=1))
    wait_for_tagging(app_client)
    assert stored_faces(app_client) == 3

    assert app_client.delete(f"/api/v1/photos/{first['id']}").status_code == 204
    assert stored_faces(app_client) == 1
    faces = app_client.get("/api/v1/me/faces").json()
    assert [f["photo"] for f in faces] == [second["id"]]
    named = app_client.post(f"/api/v1/me/faces/{faces[0]['id']}/person", json={"name": "Boris"})
    assert named.status_code == 200, named.text
    assert [p["name"] for p in app_client.get("/api/v1/me/people").json()] == ["Boris"]

    # Off through the settings page: every face of hers is gone at once.
    page = app_client.get("/settings").text
    assert 'id="faces-enabled"' in page
    res = app_client.post("/settings/faces", data={}, follow_redirects=False)
    assert res.status_code == 303
    assert app_client.get("/api/v1/me").json()["faces_enabled"] is False
    assert stored_faces(app_client) == 0
    assert "face-count" not in app_client.get(f"/photos/{second['id']}").text
    # The names she gave those faces are forgotten with them: turning faces on starts afresh.
    opt_in(app_client)
    assert app_client.get("/api/v1/me/people").json() == []


def test_preference_and_paging_input_is_said_plainly(app_client: TestClient, tmp_path: Path) -> None:
    sign_up(app_client, "anna")
    for bad in ("yes", 1, None, [True]):
        assert app_client.patch("/api/v1/me", json={"faces_enabled": bad}).status_code == 422
    assert app_client.get("/api/v1/me").json()["faces_enabled"] is False
    opt_in(app_client)
    upload(app_client, faces_image(tmp_path / "five.png", 5))
    wait_for_tagging(app_client)
    first = app_client.get("/api/v1/me/faces", params={"limit": 2}).json()
    rest = app_client.get("/api/v1/me/faces", params={"after": first[-1]["id"]}).json()
    assert len(first) == 2 and len(rest) == 3
    assert {f["id"] for f in first}.isdisjoint(f["id"] for f in rest)
    for bad in ({"limit": 0}, {"limit": 10**6}, {"after": -1}, {"after": 2**70}, {"after": "x"}):
        assert app_client.get("/api/v1/me/faces", params=bad).status_code == 422


def test_faces_scan_processes_stored_photos_and_resumes(
    client: TestClient, faces_settings: Settings, tmp_path: Path
) -> None:
    # The server runs with faces off (its sweep scans nothing); the command runs with them on.
    sign_up(client, "anna")
    opt_in(client)
    for i in range(3):
        upload(client, faces_image(tmp_path / f"{i}.png", i + 1, seed=i))
    wait_for_tagging(client)
    assert stored_faces(client) == 0

    env = {"EYES_FACES": "true", "EYES_FACES_FINDER": SPEC}
    result = eyes(faces_settings, "faces", "scan", "--owner", "anna", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"scanned": 3, "left": 0}
    assert stored_faces(client) == 1 + 2 + 3
    again = eyes(faces_settings, "faces", "scan", "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout) == {"scanned": 0, "left": 0}
    assert stored_faces(client) == 6  # never recomputed
    assert eyes(faces_settings, "faces", "scan", "--owner", "nobody", env=env).returncode == 1

    off = eyes(faces_settings, "faces", "scan", env={"EYES_FACES": "false"})
    assert off.returncode == 1 and "EYES_FACES" in off.stderr
    with context_of(client).sessions() as session:
        assert session.scalar(select(func.count(Photo.id)).where(Photo.faces_scanned_at.is_(None))) == 0


def test_photos_stored_before_the_owner_opted_in_are_found_by_the_servers_sweep(
    app_client: TestClient, tmp_path: Path
) -> None:
    sign_up(app_client, "anna")
    upload(app_client, faces_image(tmp_path / "a.png", 2))
    wait_for_tagging(app_client)
    assert stored_faces(app_client) == 0
    opt_in(app_client)
    deadline = time.monotonic() + 30
    while stored_faces(app_client) < 2 and time.monotonic() < deadline:  # the sweep runs every 0.5 s
        time.sleep(0.1)
    assert len(app_client.get("/api/v1/me/faces").json()) == 2


def test_the_finder_reads_a_large_jpeg_at_reduced_scale_and_upright(tmp_path: Path) -> None:
    from PIL import Image

    from eyes.ml.faces import DETECT_SIDE, open_for_faces

    path = faces_image(tmp_path / "large.jpg", 1, scale=8)  # 2560x1920
    with open(path, "rb") as f:
        image, factors = open_for_faces(f)
    assert image.size == (1280, 960) and factors == (2.0, 2.0)
    assert min(image.size) >= DETECT_SIDE

    with Image.open(path) as img:  # the same photo, stored on its side with an EXIF orientation
        exif = img.getexif()
        exif[0x0112] = 6
        img.save(tmp_path / "turned.jpg", "JPEG", exif=exif)
    with open(tmp_path / "turned.jpg", "rb") as f:
        image, factors = open_for_faces(f)
    assert image.size == (960, 1280) and factors == (2.0, 2.0)


def _source(module: str) -> Path | None:
    path = ROOT / Path(*module.split("."))
    for source in (path.with_suffix(".py"), path / "__init__.py"):
        if source.exists():
            return source
    return None


def _eyes_imports(module: str) -> set[str]:
    """The eyes modules `module` imports, at the top or inside a function."""
    source = _source(module)
    if source is None:  # a name imported from a module, not a module
        return set()
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("eyes.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("eyes"):
            found.add(node.module)
            for alias in node.names:  # `from eyes.services import people` names a module
                if _source(f"{node.module}.{alias.name}") is not None:
                    found.add(f"{node.module}.{alias.name}")
    return found


def test_accounts_reach_faces_but_never_people() -> None:
    # Accounts forget faces (faces turned off); people read photos, which read accounts. An import
    # of people anywhere below accounts, even one put off inside a function, closes that cycle.
    reached: set[str] = set()
    todo = ["eyes.services.accounts"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(_eyes_imports(module) - reached)
    assert "eyes.services.faces" in reached
    assert "eyes.services.people" not in reached
