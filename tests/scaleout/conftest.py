"""Real engines on loopback: an S3 API server (moto) started here; Redis and PostgreSQL as the
machine runs them (`.ci/run` starts any that is down)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from eyes.config import Settings
from tests.conftest import free_port


def reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3 API server (moto's) on a loopback port, with a fresh bucket; returns the URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "eyes-test",
        "AWS_SECRET_ACCESS_KEY": "eyes-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    import boto3

    bucket = f"eyes-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/photos"
    server.stop()


@pytest.fixture
def redis_url() -> Iterator[str]:
    if not reachable(6379):
        pytest.fail("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    import redis

    url = "redis://127.0.0.1:6379/11"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def start_worker(
    settings: Settings, env: dict[str, str], queues: str = "tag,train", command: tuple[str, ...] = ("eyes",)
) -> subprocess.Popen[bytes]:
    """`eyes worker` on the test's data folder, or `command`: a module run with `python -m`."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("EYES_")}
    full.update(env)
    full["EYES_HOME"] = str(settings.home)
    if settings.database_url:
        full["EYES_DATABASE_URL"] = settings.database_url
    # The child keeps its own copy of the log's descriptor; ours is closed at once.
    with open(Path(settings.home) / f"worker-{uuid.uuid4().hex[:6]}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", *command, "worker", "--queues", queues], env=full, stdout=log, stderr=log
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until(check, timeout: float = 60, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"gave up waiting after {timeout} s")


POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server, dropped afterwards."""
    if not reachable(5432):
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (.ci/run starts it)")
    from sqlalchemy import create_engine, text

    name = f"eyes_e2e_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
