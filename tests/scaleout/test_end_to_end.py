"""Two `eyes serve` processes and one `eyes worker` on PostgreSQL, Redis and an S3 API server."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import httpx2 as httpx
import pytest

from eyes.config import Settings, get_settings
from eyes.context import build_context
from eyes.services.accounts import create_token, create_user
from tests.conftest import CALTECH, free_port
from tests.scaleout.conftest import start_worker, stop, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]
CLASSES = ["Leopards", "airplanes", "watch"]


def serve(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("EYES_")}
    full.update(env, EYES_HOME=str(home), EYES_PORT=str(port))
    with open(home / f"serve-{port}.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "eyes", "serve"], env=full, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return process.poll() is not None and pytest.fail((home / f"serve-{port}.log").read_text())

    wait_until(up, timeout=90)
    return process, base


def test_two_servers_one_worker_on_real_engines(
    settings: Settings, postgres_url: str, redis_url: str, s3_server: str, tmp_path: Path
) -> None:
    env = {
        "EYES_DATABASE_URL": postgres_url,
        "EYES_STORAGE_URL": s3_server,
        "EYES_BROKER_URL": redis_url,
        "EYES_SECRET_KEY": "x" * 40,
        "EYES_MODEL_REFRESH_S": "0.5",
        "EYES_SWEEP_INTERVAL_S": "2",
        "EYES_MIN_LABELS_PER_TAG": "3",
        "EYES_MIN_OWNERS_PER_TAG": "1",
        "EYES_AUTO_TRAIN_AFTER": "0",
        **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
    }
    homes = []
    for name in ("one", "two"):
        home = tmp_path / name
        home.mkdir()
        (home / "models").symlink_to(settings.models_dir.resolve(), target_is_directory=True)
        homes.append(home)

    first, url1 = serve(homes[0], env)
    second, url2 = serve(homes[1], env)
    worker = start_worker(get_settings(home=homes[0], database_url=postgres_url), env)
    stack = ExitStack()
    try:
        ctx = build_context(get_settings(home=homes[0], database_url=postgres_url, storage_url=s3_server))
        user = create_user(ctx, "admin", "a long password", admin=True)
        _, token = create_token(ctx, user, "e2e")
        ctx.close()
        auth = {"Authorization": f"Bearer {token}"}
        one = stack.enter_context(httpx.Client(base_url=url1, headers=auth, timeout=60))
        two = stack.enter_context(httpx.Client(base_url=url2, headers=auth, timeout=60))

        leopard = min((CALTECH / "Leopards").iterdir())
        photo = one.post(
            "/api/v1/photos", files={"file": ("l.jpg", leopard.read_bytes(), "image/jpeg")}
        ).json()
        wait_until(lambda: two.get(f"/api/v1/photos/{photo['id']}").json()["tagging"] == "done", timeout=120)
        assert two.get(f"/api/v1/photos/{photo['id']}/tags").json(), (
            "tagged by the worker, seen through server 2"
        )
        assert two.get(photo["thumbnail_url"]).status_code == 200, "its thumbnail is in S3"

        for cls in CLASSES:
            for path in sorted((CALTECH / cls).iterdir())[1:9]:
                res = one.post(
                    "/api/v1/photos",
                    files={"file": (path.name, path.read_bytes(), "image/jpeg")},
                    data={"tags": cls},
                )
                assert res.status_code == 201, res.text
        before = two.post(
            "/api/v1/classify", files={"file": ("l.jpg", leopard.read_bytes(), "image/jpeg")}
        ).json()
        started = one.post("/api/v1/models/train")
        assert started.status_code == 202, started.text
        version = started.json()["version"]
        wait_until(
            lambda: one.get(f"/api/v1/models/{version}").json()["stage"] in ("champion", "failed"),
            timeout=180,
        )
        assert one.get(f"/api/v1/models/{version}").json()["stage"] == "champion"

        def classified_by_new_champion() -> bool:
            body = two.post(
                "/api/v1/classify", files={"file": ("l.jpg", leopard.read_bytes(), "image/jpeg")}
            ).json()
            return body["model_version"] == version and body["tags"][0]["name"] == "leopards"

        wait_until(classified_by_new_champion, timeout=30)
        assert before["model_version"] != version
    finally:
        stack.close()
        for process in (worker, first, second):
            stop(process)
