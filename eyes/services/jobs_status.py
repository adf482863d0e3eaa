"""What background work is pending or running, read from the database (the truth about work)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from eyes.context import Context
from eyes.db.models import Photo, as_utc
from eyes.domain import TaggingState
from eyes.services import training


def job_status(ctx: Context, *, admin: bool = False) -> dict[str, Any]:
    """Which work is pending or running; which worker runs it is for administrators only."""
    with ctx.sessions() as session:
        tagging = dict(
            session.execute(select(Photo.tagging, func.count(Photo.id)).group_by(Photo.tagging)).all()
        )
    return {
        "queue": "celery" if ctx.settings.broker_url else "in-process",
        "tagging": {state.value: int(tagging.get(state, 0)) for state in TaggingState},
        "training": [  # whichever worker runs it
            {
                "version": run.name,
                "started_at": as_utc(run.created_at),
                "heartbeat_at": as_utc(run.heartbeat_at),
                "worker": run.worker if admin else None,
                "depth": run.depth.value,
                "trigger": run.trigger,
            }
            for run in training.runs_under_way(ctx)
        ],
    }
