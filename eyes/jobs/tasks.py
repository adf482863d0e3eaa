"""The task functions, by name. Each re-reads the database, so a duplicate or late run is harmless."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eyes.context import Context


def _tag_photo(ctx: Context, photo_id: int) -> None:
    from eyes.services.tagging import tag_photo

    tag_photo(ctx, photo_id)


TASKS: dict[str, Callable[..., Any]] = {"tag_photo": _tag_photo}


def run_task(ctx: Context, name: str, args: tuple[object, ...]) -> None:
    TASKS[name](ctx, *args)


def sweep(ctx: Context) -> None:
    """Queue every piece of work the database says is still pending."""
    from eyes.services.tagging import pending_photo_ids

    if ctx.jobs is None:
        return
    for photo_id in pending_photo_ids(ctx):
        ctx.jobs.enqueue("tag_photo", photo_id)
