"""The label clock: two numbers that move whenever a training label may have changed, so that
work which depends on the labels (the automatic-run check, the dashboard's counts) reads them
instead of recounting every label.

- `ticks` moves on a change that can add any number of labels: a class approved or nested, a
  photo's visibility, a consent, a photo deleted or hidden.
- `decisions` counts the labels decided one by one: an owner's yes or no on a photo's tag, a
  vote. Each adds at most one label, with the tags above it (a yes) or below it (a no), so the
  automatic-run check can bound how far the labels grew without counting them
  (services/training.py).

A check still counts at least every `RECHECK_S`, for what changes whom the platform trusts: an
account growing old enough, or agreeing often enough with owners' decisions, to be trusted (its
earlier votes count from then on). The bound grows with the vocabulary's hierarchy (a no for a
tag with 40 tags below it is 41 labels), so a deep one makes the check count more often."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from eyes.context import Context
from eyes.db.models import LabelClock

RECHECK_S = 600.0


@dataclass(frozen=True)
class Reading:
    ticks: int
    decisions: int


def tick(session: Session) -> None:
    """In the caller's transaction: something changed that can add any number of labels."""
    session.execute(update(LabelClock).where(LabelClock.id == 1).values(ticks=LabelClock.ticks + 1))


def decided(session: Session) -> None:
    """In the caller's transaction: one label was decided (an owner's yes or no, a vote)."""
    session.execute(update(LabelClock).where(LabelClock.id == 1).values(decisions=LabelClock.decisions + 1))


def read(ctx: Context) -> Reading:
    with ctx.sessions() as session:
        row = session.execute(select(LabelClock.ticks, LabelClock.decisions).where(LabelClock.id == 1)).one()
    return Reading(int(row.ticks), int(row.decisions))


_lock = threading.Lock()


def memoised(ctx: Context, purpose: str, compute: Callable[[], Any], *key: Hashable) -> Any:
    """What `compute` makes of the labels, kept in this process while the clock (and the rest of
    `key`, such as the champion) stands still, for at most RECHECK_S."""
    stamp = (read(ctx), *key)
    now = time.monotonic()
    with _lock:
        kept = ctx.label_memo.get(purpose)
    if kept is not None and kept[0] == stamp and now - kept[1] < RECHECK_S:
        return kept[2]
    value = compute()
    with _lock:
        ctx.label_memo[purpose] = (stamp, now, value)
    return value
