"""The task functions, by name. Each re-reads the database, so a duplicate or late run is harmless."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from eyes.context import Context

log = logging.getLogger(__name__)
# A blob no image names is an orphan only when older than any upload takes to commit its row.
ORPHAN_AGE_S = 3600.0


def _tag_photo(ctx: Context, photo_id: int) -> None:
    from eyes.services.tagging import tag_photo

    tag_photo(ctx, photo_id)
    if ctx.settings.faces:  # the same job, off the request path; a no-op unless the owner opted in
        from eyes.services.face_scan import scan_photos

        scan_photos(ctx, [photo_id])


def _train(ctx: Context, version_id: int) -> None:
    from eyes.services.training import run_training

    run_training(ctx, version_id)


def _retag(ctx: Context) -> None:
    from eyes.services.tagging import retag_all

    count = retag_all(ctx)
    log.info("re-tagged %d photos with %s", count, ctx.tagger.version)


def _score_sensitive(ctx: Context) -> None:
    from eyes.services.tagging import score_unscored

    count = score_unscored(ctx)
    if count:
        log.info("scored %d stored images for sensitive content", count)


def _scan_faces(ctx: Context) -> None:
    from eyes.services.face_scan import scan_all

    count = scan_all(ctx)
    if count:
        log.info("looked for faces in %d stored photos", count)


def _learn_faces(ctx: Context, owner_id: int) -> None:
    from eyes.services.face_recognition import learn

    result = learn(ctx, owner_id)
    log.info("face recognition of owner %d: %s", owner_id, result.reason)


def _group_faces(ctx: Context, owner_id: int) -> None:
    from eyes.services.people import group_new_faces

    group_new_faces(ctx, owner_id)


TASKS: dict[str, Callable[..., Any]] = {
    "tag_photo": _tag_photo,
    "train": _train,
    "retag": _retag,
    "score_sensitive": _score_sensitive,
    "scan_faces": _scan_faces,
    "learn_faces": _learn_faces,
    "group_faces": _group_faces,
}
QUEUES = {
    "tag_photo": "tag",
    "retag": "tag",
    "train": "train",
    "score_sensitive": "tag",
    "scan_faces": "tag",
    "learn_faces": "tag",  # a second or so of numpy per owner: not worth the training queue
    "group_faces": "tag",
}


def run_task(ctx: Context, name: str, args: tuple[object, ...]) -> None:
    TASKS[name](ctx, *args)


def sweep(ctx: Context) -> None:
    """Queue every piece of work the database says is still pending."""
    from eyes.services import faces
    from eyes.services.tagging import pending_photo_ids, unscored_images
    from eyes.services.training import fail_stale_runs, maybe_start_automatic_run, runs_under_way

    if ctx.jobs is None:
        return
    for photo_id in pending_photo_ids(ctx):
        ctx.jobs.enqueue("tag_photo", photo_id)
    if unscored_images(ctx, limit=1):  # stored before sensitive-content scores existed
        ctx.jobs.enqueue("score_sensitive")
    if ctx.settings.faces and faces.unscanned_photo_ids(ctx, limit=1):  # an owner turned faces on
        ctx.jobs.enqueue("scan_faces")
    if ctx.settings.faces:  # names given while a learning job was lost
        from eyes.services.face_recognition import owners_to_learn

        for owner_id in owners_to_learn(ctx):
            ctx.jobs.enqueue("learn_faces", owner_id)
        from eyes.services.people import owners_to_group

        for owner_id in owners_to_group(ctx):  # new faces a busy owner's last grouping left
            ctx.jobs.enqueue("group_faces", owner_id)
    fail_stale_runs(ctx)
    for run in runs_under_way(ctx):
        ctx.jobs.enqueue("train", run.id)
    maybe_start_automatic_run(ctx)
    if time.monotonic() - ctx.storage_swept_at > ctx.settings.orphan_sweep_h * 3600:
        sweep_storage(ctx)


def sweep_storage(ctx: Context, older_than_s: float = ORPHAN_AGE_S) -> tuple[int, list[str]]:
    """Remove stored images no photo refers to, then blobs no image names that are older than
    `older_than_s`; returns (images, blob keys) removed."""
    from eyes.services import image_store

    ctx.storage_swept_at = time.monotonic()
    images = image_store.collect_unreferenced(ctx)
    blobs = image_store.sweep_orphan_blobs(ctx, older_than_s)
    if images or blobs:
        log.info("storage sweep: %d unreferenced images and %d orphan blobs removed", images, len(blobs))
    return images, blobs
