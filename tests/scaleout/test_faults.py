"""Faults that must not lose anything: the broker restarted, a worker killed, the database restarted."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from eyes.app import create_app
from eyes.config import Settings
from eyes.db.models import Photo, PhotoTag
from tests.conftest import CALTECH, context_of, free_port, sign_up, upload
from tests.scaleout.conftest import reachable, start_worker, stop, wait_until

PHOTOS = sorted((CALTECH / "airplanes").iterdir())[:6]


class PrivateRedis:
    """A redis-server of this test's own on a free port, so it can be stopped and started."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(lambda: reachable(self.port), timeout=20, every=0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)  # a crash: whatever was queued is gone
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def status(client: TestClient, photo_id: int) -> str:
    return str(client.get(f"/api/v1/photos/{photo_id}").json()["tagging"])


@pytest.mark.redis
def test_broker_restarted_while_tasks_are_queued(settings: Settings, private_redis: PrivateRedis) -> None:
    app_settings = settings.model_copy(update={"broker_url": private_redis.url})
    with TestClient(create_app(app_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "bo")
        queued = upload(client, PHOTOS[0])["id"]
        private_redis.stop()  # the queued message dies with the broker
        during = upload(client, PHOTOS[1])["id"]  # accepted while the broker is down
        private_redis.start()
        worker = start_worker(settings, {"EYES_BROKER_URL": private_redis.url, "EYES_SWEEP_INTERVAL_S": "1"})
        try:
            for photo_id in (queued, during):
                wait_until(lambda pid=photo_id: status(client, pid) == "done", timeout=90)
        finally:
            stop(worker)


@pytest.mark.redis
def test_worker_killed_in_the_middle_runs_the_work_again_once(
    settings: Settings, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """A worker dies holding a photo's message (acknowledged late, so it stays taken for the
    broker's visibility timeout, an hour): the next worker's sweep reads the photo as pending in
    the database and tags it, once."""
    import redis

    app_settings = settings.model_copy(update={"broker_url": private_redis.url})
    env = {"EYES_BROKER_URL": private_redis.url, "EYES_SWEEP_INTERVAL_S": "1"}
    flags = tmp_path / "flags"
    flags.mkdir()
    with TestClient(create_app(app_settings), base_url="http://127.0.0.1") as client:
        sign_up(client, "cy")
        stuck = start_worker(
            settings,
            {**env, "EYES_SWEEP_INTERVAL_S": "3600"},
            queues="tag",
            command=("tests.scaleout.stuck_worker", str(flags)),
        )
        try:
            # Its sweep at start has run on an empty database: it queues nothing twice.
            wait_until(lambda: (flags / "swept").exists(), timeout=90)
            ids = [upload(client, p)["id"] for p in PHOTOS]
            wait_until(lambda: (flags / "in-flight").exists(), timeout=90)
        finally:
            stuck.send_signal(signal.SIGKILL)  # mid-task
            stuck.wait()
        assert [status(client, pid) for pid in ids] == ["pending"] * len(ids)
        queue = redis.Redis.from_url(private_redis.url)
        assert queue.llen("tag") == len(ids) - 1, "one message went with the dead worker"

        replacement = start_worker(settings, env)  # its sweep finds six photos pending
        try:
            for photo_id in ids:
                wait_until(lambda pid=photo_id: status(client, pid) == "done", timeout=90)
        finally:
            stop(replacement)
        with context_of(client).sessions() as session:
            per_photo = dict(
                session.execute(
                    select(Photo.public_id, func.count(PhotoTag.id))
                    .join(PhotoTag, PhotoTag.photo_id == Photo.id)
                    .group_by(Photo.public_id)
                ).all()
            )
        # The sweep queued the five still in the queue a second time: each photo's tags are
        # written once all the same.
        for photo_id in ids:
            tags = client.get(f"/api/v1/photos/{photo_id}/tags").json()
            assert tags and len(tags) == per_photo[photo_id] == len({t["name"] for t in tags}), "written once"


def _postgres(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True, timeout=60
    )


@pytest.mark.postgres
def test_database_restarted_requests_fail_cleanly_and_recover(settings: Settings, tmp_path: Path) -> None:
    from tests.scaleout.conftest import POSTGRES_SERVER

    if not Path("/etc/postgresql").is_dir():
        pytest.fail("this test stops and starts the machine's PostgreSQL cluster (pg_ctlcluster)")
    import uuid

    from sqlalchemy import create_engine, text

    name = f"eyes_restart_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name
    try:
        with TestClient(
            create_app(settings.model_copy(update={"database_url": url})), base_url="http://127.0.0.1"
        ) as client:
            sign_up(client, "di")
            photo = upload(client, PHOTOS[2])
            _postgres("stop")
            try:
                down = client.get(f"/api/v1/photos/{photo['id']}")
                assert down.status_code == 503
                assert "database is unavailable" in down.json()["error"]["message"]
                assert client.get("/healthz").status_code == 503
            finally:
                _postgres("start")
            wait_until(lambda: reachable(5432), timeout=60)
            back = wait_until(
                lambda: client.get(f"/api/v1/photos/{photo['id']}").status_code == 200, timeout=60
            )
            assert back
            assert client.get("/api/v1/me").json()["username"] == "di", "the session survived"
    finally:
        admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
