"""Background work on real Celery workers over Redis (and RabbitMQ): same code, other settings."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from eyes.app import create_app
from eyes.config import Settings
from eyes.jobs.celery_queue import CeleryQueue
from tests.conftest import CALTECH, context_of, sign_up, upload
from tests.scaleout.conftest import reachable, start_worker, stop, wait_until

PHOTOS = sorted((CALTECH / "watch").iterdir())[:3]


def tagged(client: TestClient, photo_id: int) -> bool:
    return client.get(f"/api/v1/photos/{photo_id}").json()["tagging"] == "done"


@pytest.mark.redis
def test_upload_is_tagged_by_a_celery_worker_on_redis(settings: Settings, redis_url: str) -> None:
    app_settings = settings.model_copy(update={"broker_url": redis_url})
    worker = start_worker(settings, {"EYES_BROKER_URL": redis_url, "EYES_SWEEP_INTERVAL_S": "2"})
    try:
        with TestClient(create_app(app_settings), base_url="http://127.0.0.1") as client:
            assert isinstance(context_of(client).jobs, CeleryQueue)
            sign_up(client, "wanda")
            ids = [upload(client, p)["id"] for p in PHOTOS]
            for photo_id in ids:
                wait_until(lambda pid=photo_id: tagged(client, pid), timeout=90)
            tags = client.get(f"/api/v1/photos/{ids[0]}/tags").json()
            assert any(t["source"] == "model" for t in tags)
    finally:
        stop(worker)


@pytest.mark.redis
def test_work_queued_while_no_worker_runs_is_done_when_one_starts(settings: Settings, redis_url: str) -> None:
    """Messages wait in the broker (and the database says what is pending) until a worker is back."""
    app_settings = settings.model_copy(update={"broker_url": redis_url})
    with TestClient(create_app(app_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "xavi")
        photo = upload(client, PHOTOS[0])
        assert client.get(f"/api/v1/photos/{photo['id']}").json()["tagging"] == "pending"
        worker = start_worker(settings, {"EYES_BROKER_URL": redis_url, "EYES_SWEEP_INTERVAL_S": "2"})
        try:
            wait_until(lambda: tagged(client, photo["id"]), timeout=90)
        finally:
            stop(worker)


@pytest.mark.rabbitmq
def test_upload_is_tagged_by_a_celery_worker_on_rabbitmq(settings: Settings) -> None:
    if not reachable(5672):
        pytest.fail("RabbitMQ is not running on 127.0.0.1:5672 (.ci/run starts it)")
    broker = "amqp://guest:guest@127.0.0.1:5672//"
    worker = start_worker(settings, {"EYES_BROKER_URL": broker, "EYES_SWEEP_INTERVAL_S": "2"})
    try:
        with TestClient(
            create_app(settings.model_copy(update={"broker_url": broker})), base_url="http://127.0.0.1"
        ) as client:
            sign_up(client, "yuri")
            photo = upload(client, PHOTOS[1])
            wait_until(lambda: tagged(client, photo["id"]), timeout=90)
    finally:
        stop(worker)
