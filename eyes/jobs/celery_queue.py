"""The scale-out queue: Celery on Redis or RabbitMQ (`EYES_BROKER_URL`), workers run `eyes worker`.

The message only wakes a worker; the task re-reads the database, so a message delivered twice, or
redelivered after a worker died mid-task (acks late), writes its result once.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from eyes.config import Settings
from eyes.jobs.tasks import QUEUES

log = logging.getLogger(__name__)
TASK_NAME = "eyes.run"


def make_celery(settings: Settings, run: Any = None) -> Celery:
    """A Celery app on the configured broker; with `run`, it also executes tasks (a worker)."""
    app = Celery("eyes", broker=settings.broker_url)
    app.conf.update(
        task_acks_late=True,  # a worker that dies mid-task leaves the message to be redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="tag",
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        # Publishing must not hang a web request while the broker is down: the row already says
        # the work is pending, and a worker's sweep will queue it again.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        broker_connection_timeout=3,
    )
    if run is not None:

        @app.task(
            name=TASK_NAME,
            bind=True,
            autoretry_for=(Exception,),
            retry_backoff=2,
            retry_backoff_max=300,
            retry_jitter=True,
            max_retries=8,
        )
        def execute(self: Any, task: str, args: list[Any]) -> None:
            run(task, tuple(args))

    return app


class CeleryQueue:
    """Sends each task to its queue: tagging work to `tag`, training to `train`."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def enqueue(self, task: str, *args: object) -> None:
        try:
            self.app.send_task(TASK_NAME, args=[task, list(args)], queue=QUEUES[task])
        except Exception:  # the broker is down: the database still records the work as pending
            log.warning("could not queue %s%r; a worker's sweep will pick it up", task, args, exc_info=True)

    def shutdown(self) -> None:
        self.app.close()
