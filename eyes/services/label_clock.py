"""The label clock: one number that moves whenever a training label may have changed, so that
work which depends on the labels (the automatic-run check, the dashboard's counts) reads a number
instead of recounting every label. A check also runs at least every `RECHECK_S`, for what changes
with time alone (an account growing old enough to be trusted)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import LabelClock

RECHECK_S = 600.0


def tick(session: Session) -> None:
    """In the caller's transaction: something a label rests on changed."""
    session.execute(update(LabelClock).where(LabelClock.id == 1).values(ticks=LabelClock.ticks + 1))


def ticks(ctx: Context) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(LabelClock.ticks).where(LabelClock.id == 1)) or 0)


_lock = threading.Lock()


def memoised(ctx: Context, purpose: str, compute: Callable[[], Any], *key: Hashable) -> Any:
    """What `compute` makes of the labels, kept in this process while the clock (and the rest of
    `key`, such as the champion) stands still, for at most RECHECK_S."""
    stamp = (ticks(ctx), *key)
    now = time.monotonic()
    with _lock:
        kept = ctx.label_memo.get(purpose)
    if kept is not None and kept[0] == stamp and now - kept[1] < RECHECK_S:
        return kept[2]
    value = compute()
    with _lock:
        ctx.label_memo[purpose] = (stamp, now, value)
    return value
