"""Nothing lost, nothing orphaned: deletes that race a tagging job or another owner's upload of
the same bytes, and blobs that no row names."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.db.models import Embedding, Image, Photo, PhotoTag
from eyes.domain import TaggingState
from eyes.services import image_store, tagging
from eyes.services.accounts import create_user
from eyes.services.photos import PhotoDraft, delete_photo, upload_photo
from eyes.services.views import AccountView
from tests.conftest import CALTECH, counts
from tests.test_cli import eyes

LEOPARD = sorted((CALTECH / "Leopards").iterdir())[0]


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings)
    yield context
    context.close()


def users(ctx: Context, *names: str) -> list[AccountView]:
    return [create_user(ctx, name, "a long password") for name in names]


def key_of(ctx: Context, photo_id: int) -> str:
    with ctx.sessions() as session:
        return session.get_one(Photo, photo_id).public_id


def test_deleting_a_photo_while_its_tagging_job_runs_leaves_no_error(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The probe: delete a photo while its tagging job runs, and the log had FOREIGN KEY
    failures. Here the owner deletes it after the network read it, before the job writes."""
    (owner,) = users(ctx, "owner")
    photo_id = upload_photo(ctx, owner.id, LEOPARD, PhotoDraft("l.jpg")).photo_id
    real = tagging.embeddings_for

    def embed_then_delete(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = real(*args, **kwargs)
        delete_photo(ctx, key_of(ctx, photo_id), owner)
        return found

    monkeypatch.setattr(tagging, "embeddings_for", embed_then_delete)
    with caplog.at_level(logging.WARNING):
        tagging.tag_photos(ctx, [photo_id])  # raises nothing
    assert not any(
        "FOREIGN KEY" in r.getMessage() or "IntegrityError" in r.getMessage() for r in caplog.records
    )
    with ctx.sessions() as session:
        assert session.scalar(select(PhotoTag).where(PhotoTag.photo_id == photo_id)) is None
    assert counts(ctx) == {"photos": 0, "images": 0, "blobs": 0, "tmp": 0}, "and nothing left behind"


def test_deleting_the_last_photo_while_its_image_is_embedded_stores_no_embedding(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    (owner,) = users(ctx, "owner")
    photo_id = upload_photo(ctx, owner.id, LEOPARD, PhotoDraft("l.jpg")).photo_id
    real = ctx.tagger.embed_with_activations

    def embed_then_delete(batch):  # type: ignore[no-untyped-def]
        out = real(batch)
        delete_photo(ctx, key_of(ctx, photo_id), owner)  # the image goes with its last photo
        return out

    monkeypatch.setattr(ctx.tagger, "embed_with_activations", embed_then_delete)
    tagging.tag_photos(ctx, [photo_id])
    with ctx.sessions() as session:
        assert session.scalar(select(Embedding)) is None and session.scalar(select(Image)) is None


def test_a_delete_racing_another_owners_upload_of_the_same_bytes_loses_nothing(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob uploads the bytes Ann has; his upload finds the blobs there and writes none. Before his
    rows commit, Ann deletes her photo, the last one of those bytes, and the blobs go. Bob's
    transaction holds the image row while it checks the blobs, finds them gone, writes them."""
    ann, bob = users(ctx, "ann", "bob")
    first = upload_photo(ctx, ann.id, LEOPARD, PhotoDraft("l.jpg")).photo_id
    real = image_store.claim
    raced = []

    def delete_first(session, context, images):  # type: ignore[no-untyped-def]
        if not raced:
            raced.append(True)
            delete_photo(ctx, key_of(ctx, first), ann)
            assert not ctx.blobs.exists(image_store.original_key(images[0].sha256)), "the race happened"
        return real(session, context, images)

    monkeypatch.setattr(image_store, "claim", delete_first)
    second = upload_photo(ctx, bob.id, LEOPARD, PhotoDraft("l.jpg")).photo_id
    with ctx.sessions() as session:
        sha = session.get_one(Photo, second).sha256
    for key in image_store.blob_keys(sha):
        assert ctx.blobs.exists(key), f"{key} is there for Bob's photo"
    with ctx.blobs.open(image_store.original_key(sha)) as blob:
        assert blob.read() == LEOPARD.read_bytes()
    assert counts(ctx) == {"photos": 1, "images": 1, "blobs": 3, "tmp": 0}


def test_a_failed_cleanup_is_finished_by_the_sweep(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    (owner,) = users(ctx, "owner")
    photo_id = upload_photo(ctx, owner.id, LEOPARD, PhotoDraft("l.jpg")).photo_id

    def store_down(key: str) -> None:
        raise OSError("the store is down")

    with monkeypatch.context() as patched:
        patched.setattr(ctx.blobs, "delete", store_down)
        with pytest.raises(OSError):
            delete_photo(ctx, key_of(ctx, photo_id), owner)
    assert counts(ctx) == {"photos": 0, "images": 1, "blobs": 3, "tmp": 0}, "photo gone, image kept whole"
    assert image_store.collect_unreferenced(ctx) == 1
    assert counts(ctx) == {"photos": 0, "images": 0, "blobs": 0, "tmp": 0}


def test_storage_sweep_removes_old_orphan_blobs_and_keeps_everything_else(
    ctx: Context, settings: Settings, tmp_path: Path
) -> None:
    (owner,) = users(ctx, "owner")
    upload_photo(ctx, owner.id, LEOPARD, PhotoDraft("l.jpg"))
    old, young = "ab" * 32, "cd" * 32  # blobs a crash left without rows
    for sha in (old, young):
        ctx.blobs.put_bytes(image_store.original_key(sha), b"left over")
    hours_ago = time.time() - 2 * 3600
    path = settings.home / "blobs" / image_store.original_key(old)
    os.utime(path, (hours_ago, hours_ago))

    res = eyes(settings, "storage", "sweep", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"images": 0, "blobs": [image_store.original_key(old)]}
    assert not ctx.blobs.exists(image_store.original_key(old))
    assert ctx.blobs.exists(image_store.original_key(young)), "it may be an upload in flight"
    with ctx.sessions() as session:
        photo = session.scalars(select(Photo)).one()
        assert photo.tagging in (TaggingState.PENDING, TaggingState.DONE)
    for key in image_store.blob_keys(photo.sha256):
        assert ctx.blobs.exists(key), "a photo's blobs stay"


def test_a_store_outage_during_tagging_is_retried_not_marked_untaggable(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10: tagging caught every exception, so a moment of S3 or database trouble marked a
    photo untaggable for good. Now only the image itself can; a fault of the platform is retried."""
    from eyes.errors import ServiceUnavailable

    (owner,) = users(ctx, "owner")
    photo_id = upload_photo(ctx, owner.id, LEOPARD, PhotoDraft("l.jpg")).photo_id

    def down(key: str) -> None:
        raise ServiceUnavailable("the photo store cannot be reached")

    with monkeypatch.context() as patched:
        patched.setattr(ctx.blobs, "open", down)
        with pytest.raises(ServiceUnavailable):
            tagging.tag_photos(ctx, [photo_id])
    with ctx.sessions() as session:
        assert session.get_one(Photo, photo_id).tagging == TaggingState.PENDING, "still to do"
    assert tagging.pending_photo_ids(ctx) == [photo_id], "the sweep will queue it again"
    tagging.tag_photos(ctx, [photo_id])  # the store is back
    with ctx.sessions() as session:
        assert session.get_one(Photo, photo_id).tagging == TaggingState.DONE


def test_an_image_the_network_cannot_read_is_marked_with_its_reason(ctx: Context) -> None:
    (owner,) = users(ctx, "owner")
    photo_id = upload_photo(ctx, owner.id, LEOPARD, PhotoDraft("l.jpg")).photo_id
    with ctx.sessions() as session:
        sha = session.get_one(Photo, photo_id).sha256
    ctx.blobs.put_bytes(image_store.original_key(sha), LEOPARD.read_bytes()[:200])  # truncated
    tagging.tag_photos(ctx, [photo_id])
    with ctx.sessions() as session:
        photo = session.get_one(Photo, photo_id)
        assert photo.tagging == TaggingState.UNTAGGABLE and "cannot read" in photo.tagging_error


def test_starting_does_not_list_the_blob_store_the_sweep_does_when_due(ctx: Context) -> None:
    """Every server and worker sweeps: were the first sweep at start the orphan sweep, each start
    would list every blob (on S3, hundreds of thousands of requests' worth)."""
    from eyes.jobs.queue import ImmediateQueue
    from eyes.jobs.tasks import sweep

    orphan = image_store.original_key("ef" * 32)
    ctx.blobs.put_bytes(orphan, b"left over")
    os.utime(ctx.settings.home / "blobs" / orphan, (time.time() - 7200, time.time() - 7200))
    ctx.jobs = ImmediateQueue(lambda name, args: None)
    ctx.settings = ctx.settings.model_copy(update={"orphan_sweep_h": 0.01})  # due every 36 s
    sweep(ctx)  # the first sweep after a start
    assert ctx.blobs.exists(orphan), "not at start"
    ctx.settings = ctx.settings.model_copy(update={"orphan_sweep_h": 0.0})
    sweep(ctx)
    assert not ctx.blobs.exists(orphan), "when due"


def test_a_delete_arriving_while_tagging_writes_waits_for_it(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window the lock closes: the job has found the photo alive and is writing its tags when
    the owner deletes it. The delete waits for the job's transaction, then removes everything."""
    import threading

    (owner,) = users(ctx, "owner")
    photo_id = upload_photo(ctx, owner.id, LEOPARD, PhotoDraft("l.jpg")).photo_id
    key = key_of(ctx, photo_id)
    real = tagging.replace_suggestions
    errors: list[BaseException] = []

    def delete() -> None:
        try:
            delete_photo(ctx, key, owner)
        except BaseException as exc:  # reported below
            errors.append(exc)

    deleter = threading.Thread(target=delete)

    def write_while_deleting(*args, **kwargs):  # type: ignore[no-untyped-def]
        deleter.start()
        deleter.join(0.5)
        assert deleter.is_alive(), "the delete got in while the job was writing"
        return real(*args, **kwargs)

    monkeypatch.setattr(tagging, "replace_suggestions", write_while_deleting)
    tagging.tag_photos(ctx, [photo_id])
    deleter.join(30)
    assert errors == [] and not deleter.is_alive()
    assert counts(ctx) == {"photos": 0, "images": 0, "blobs": 0, "tmp": 0}
