"""Every bad input gets a clear 4xx and leaves nothing behind: no blob, no row, no temp file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from eyes.app import create_app
from eyes.config import Settings
from tests.conftest import CALTECH, context_of, counts, sign_up
from tests.images_for_tests import png_bomb

PHOTO = sorted((CALTECH / "Leopards").iterdir())[0]
EMPTY = {"photos": 0, "images": 0, "blobs": 0, "tmp": 0}


@pytest.fixture
def small_limits(settings: Settings) -> Iterator[TestClient]:
    limited = settings.model_copy(update={"max_upload_bytes": 200_000, "max_image_pixels": 20_000_000})
    with TestClient(create_app(limited), base_url="http://127.0.0.1") as c:
        sign_up(c, "tester")
        yield c


def post(client: TestClient, content: bytes, name: str = "photo.jpg", **data: str) -> tuple[int, str]:
    res = client.post("/api/v1/photos", files={"file": (name, content, "image/jpeg")}, data=data)
    return res.status_code, res.json()["error"]["message"] if res.status_code >= 400 else ""


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (PHOTO.read_bytes()[:3000], 422, "damaged"),
        (b"hello, I am a text file pretending to be a JPEG\n" * 20, 422, "not an image"),
        (b"", 400, "empty"),
        (png_bomb(), 413, "pixels"),
        (b"%PDF-1.4\n" + b"0" * 500, 422, "not an image"),
    ],
    ids=["corrupt-jpeg", "text-named-jpg", "empty", "decompression-bomb", "pdf"],
)
def test_bad_files_rejected_clearly(
    small_limits: TestClient, content: bytes, status: int, words: str
) -> None:
    code, message = post(small_limits, content)
    assert code == status
    assert words in message
    assert counts(context_of(small_limits)) == EMPTY


def test_file_over_byte_limit(small_limits: TestClient) -> None:
    big = sorted((CALTECH / "airplanes").iterdir(), key=lambda p: -p.stat().st_size)[0]
    content = big.read_bytes() + b"\0" * 300_000
    code, message = post(small_limits, content)
    assert code == 413 and "MB" in message
    assert counts(context_of(small_limits)) == EMPTY


def test_streamed_body_over_limit_is_cut_off(small_limits: TestClient) -> None:
    """Without a Content-Length the body is counted as it arrives and refused past the limit."""
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        for _ in range(100):  # 6.4 MB offered
            sent += 1
            yield b"\xff" * 65536
        yield b"\r\n--b--\r\n"

    res = small_limits.post(
        "/api/v1/photos", content=body(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert res.status_code == 413
    assert counts(context_of(small_limits)) == EMPTY


def test_path_traversal_file_name_is_only_a_label(small_limits: TestClient, tmp_path: Path) -> None:
    res = small_limits.post(
        "/api/v1/photos", files={"file": ("../../../../tmp/evil.jpg", PHOTO.read_bytes(), "image/jpeg")}
    )
    assert res.status_code == 201
    assert res.json()["original_filename"] == "evil.jpg"
    home = context_of(small_limits).settings.home
    assert not (home.parent / "evil.jpg").exists() and not Path("/tmp/evil.jpg").exists()


def test_title_with_emoji_ok_but_10kb_title_refused(small_limits: TestClient) -> None:
    code, message = post(small_limits, PHOTO.read_bytes(), title="x" * 10_000)
    assert code == 400 and "title is at most 200" in message
    assert counts(context_of(small_limits)) == EMPTY
    ok = small_limits.post(
        "/api/v1/photos",
        files={"file": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")},
        data={"title": "🐆 spots 🐆"},
    )
    assert ok.status_code == 201 and ok.json()["title"] == "🐆 spots 🐆"


def test_tag_of_1000_characters_refused(small_limits: TestClient) -> None:
    code, message = post(small_limits, PHOTO.read_bytes(), tags="a" * 1000)
    assert code == 400 and "at most 64 characters" in message
    assert counts(context_of(small_limits)) == EMPTY
    photo = small_limits.post(
        "/api/v1/photos", files={"file": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")}
    ).json()
    res = small_limits.post(f"/api/v1/photos/{photo['id']}/tags", json={"name": "b" * 1000})
    assert res.status_code == 400


def test_missing_file_field_and_bad_visibility(small_limits: TestClient) -> None:
    res = small_limits.post("/api/v1/photos", data={"title": "no file"})
    assert res.status_code == 400 and "'file'" in res.json()["error"]["message"]
    code, message = post(small_limits, PHOTO.read_bytes(), visibility="secret")
    assert code == 400 and "public, unlisted, private" in message
    assert counts(context_of(small_limits)) == EMPTY


def test_anonymous_upload_is_401_json(client: TestClient) -> None:
    res = client.post("/api/v1/photos", files={"file": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")})
    assert res.status_code == 401
    assert "sign in" in res.json()["error"]["message"]


def _form(*parts: tuple[str, str | None, bytes], end: bool = True) -> bytes:
    """A multipart body by hand: (field name, file name or None, content) a part."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--b\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return body + (b"--b--\r\n" if end else b"")


IMAGE = PHOTO.read_bytes()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_form(("file", "a.jpg", IMAGE), ("file", "b.jpg", IMAGE)), "one image at a time"),
        (_form(("picture", "a.jpg", IMAGE)), "field 'file'"),
        (_form(("title", None, b"a title")), "field 'file'"),
        (_form(("title", None, b"x" * 70_000), ("file", "a.jpg", IMAGE)), "longer than 64 KB"),
        (_form(*[(f"f{i}", None, b"1") for i in range(101)], ("file", "a.jpg", IMAGE)), "more than 100"),
        (_form(("file", "a.jpg", IMAGE), end=False)[: len(IMAGE) // 2], "incomplete"),
        (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n", "needs a name"),
    ],
    ids=["two-files", "other-file-field", "no-file", "huge-field", "many-fields", "cut-short", "no-name"],
)
def test_hostile_forms_are_refused_whole(small_limits: TestClient, body: bytes, words: str) -> None:
    """The form is read as it streams in: whatever is wrong with it, a clear 400, and the part
    of the image already written to disk is removed."""
    res = small_limits.post(
        "/api/v1/photos", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert res.status_code == 400, res.text
    assert words in res.json()["error"]["message"]
    assert counts(context_of(small_limits)) == EMPTY


def test_an_upload_that_is_not_a_form_is_refused(small_limits: TestClient) -> None:
    for content_type in ("image/jpeg", "multipart/form-data", "application/json"):
        res = small_limits.post("/api/v1/photos", content=IMAGE, headers={"Content-Type": content_type})
        assert res.status_code == 400 and "multipart/form-data" in res.json()["error"]["message"]
    assert counts(context_of(small_limits)) == EMPTY
