"""The folder blob store: what goes in comes out, listed by prefix, and no key leaves its folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from eyes.errors import NotFound
from eyes.storage import LocalBlobStore


def test_a_blob_comes_back_and_is_listed_by_its_prefix(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put_bytes("originals/ab/abcd", b"photo")
    store.put_bytes("thumbs/abcd.jpg", b"thumb")
    with store.open("originals/ab/abcd") as blob:
        assert blob.read() == b"photo"
    assert list(store.keys("originals/")) == ["originals/ab/abcd"]
    assert sorted(store.keys("")) == ["originals/ab/abcd", "thumbs/abcd.jpg"]
    store.delete("thumbs/abcd.jpg")
    assert not store.exists("thumbs/abcd.jpg")
    with pytest.raises(NotFound):
        store.open("thumbs/abcd.jpg")


@pytest.mark.parametrize(
    "key", ["../outside", "originals/../../outside", "/etc/passwd", "a//b", "./a", "a\\..\\b", "a\0b"]
)
def test_no_key_reaches_outside_the_folder(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(ValueError, match="escapes the store"):
        store.put_bytes(key, b"x")
    with pytest.raises(ValueError, match="escapes the store"):
        store.open(key)
    assert not (tmp_path / "outside").exists()
