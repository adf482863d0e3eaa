"""The blob store on a real S3 API server: the same behaviour as the folder store."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from eyes.app import create_app
from eyes.config import Settings
from eyes.errors import NotFound
from eyes.storage import LocalBlobStore, open_blob_store
from eyes.storage_s3 import S3BlobStore
from tests.conftest import CALTECH, context_of, counts, sign_up, upload, wait_for_tagging

pytestmark = pytest.mark.s3
PHOTO = min((CALTECH / "Leopards").iterdir())


def test_put_open_delete_list_stream(s3_server: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_blob_store(s3_server)
    assert isinstance(store, S3BlobStore)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 80_000)  # 20 MB: goes up in parts
    store.put_file("originals/ab/big", big)
    store.put_bytes("thumbs/x.jpg", b"thumb")
    assert store.exists("originals/ab/big") and not store.exists("nope")
    with store.open("originals/ab/big") as f:
        first = f.read(1000)
        rest = f.read()
    assert first + rest == big.read_bytes()
    assert sorted(store.keys("")) == ["originals/ab/big", "thumbs/x.jpg"]
    store.delete("thumbs/x.jpg")
    store.delete("thumbs/x.jpg")  # deleting what is gone is not an error
    with pytest.raises(NotFound):
        store.open("thumbs/x.jpg")


def test_photos_live_in_s3(settings: Settings, s3_server: str) -> None:
    with TestClient(
        create_app(settings.model_copy(update={"storage_url": s3_server})), base_url="http://127.0.0.1"
    ) as c:
        ctx = context_of(c)
        assert isinstance(ctx.blobs, S3BlobStore)
        sign_up(c, "sara")
        photo = upload(c, PHOTO)
        wait_for_tagging(c)
        tagged = c.get(f"/api/v1/photos/{photo['id']}").json()
        assert tagged["tagging"] == "done" and tagged["tags"]
        assert c.get(photo["thumbnail_url"]).status_code == 200
        assert c.get(f"/photos/{photo['id']}/original").content == PHOTO.read_bytes()
        assert not any(LocalBlobStore(settings.home / "blobs").keys("")), "nothing went to the local folder"
        c.delete(f"/api/v1/photos/{photo['id']}")
        assert counts(ctx)["blobs"] == 0


def test_s3_unreachable_gives_a_clear_error_and_leaves_nothing(
    settings: Settings, s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(
        create_app(settings.model_copy(update={"storage_url": s3_server})), base_url="http://127.0.0.1"
    ) as c:
        sign_up(c, "tom")
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
        ctx = context_of(c)
        ctx.blobs = open_blob_store(s3_server)
        res = c.post("/api/v1/photos", files={"file": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")})
        assert res.status_code == 503 and "try again" in res.json()["error"]["message"]
        with ctx.sessions() as session:
            from sqlalchemy import func, select

            from eyes.db.models import Photo

            assert session.scalar(select(func.count(Photo.id))) == 0
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        ctx.blobs = open_blob_store(s3_server)
        retry = c.post("/api/v1/photos", files={"file": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")})
        assert retry.status_code == 201, "retrying works once the store is back"
