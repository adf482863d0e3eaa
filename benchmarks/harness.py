"""What the benchmarks share: run the `eyes` command, find a free port, make an API token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

from benchmarks.scratch import scratch_dir

BENCH_USER = "bench"
BENCH_PASSWORD = "bench-password"
# One account and one address send every request of a benchmark: the per-account and per-address
# rate limits would answer most of them 429 and measure nothing (tests/test_limits.py tests them).
UNLIMITED = {
    "EYES_UPLOAD_LIMIT_PER_ACCOUNT": "1000000/minute",
    "EYES_CLASSIFY_LIMIT_PER_ACCOUNT": "1000000/minute",
    "EYES_CLASSIFY_LIMIT_PER_IP": "1000000/minute",
}


def wait_healthy(base: str) -> None:
    """Until the server at `base` answers /healthz (two minutes at most)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{base} did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eyes_cmd(home: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `eyes ARGS` on data folder `home` (the bench password on stdin); returns its output."""
    full = {**os.environ, "EYES_HOME": str(home), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "eyes", *args],
        input=BENCH_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=full,
        check=True,
    )
    return done.stdout


def make_token(home: Path, database_url: str = "") -> str:
    """An API token for the bench user (made with `eyes users create bench`)."""
    from eyes.config import get_settings
    from eyes.context import build_context
    from eyes.services.accounts import create_token, get_user_by_name

    ctx = build_context(get_settings(home=home, database_url=database_url))
    _, secret = create_token(ctx, get_user_by_name(ctx, BENCH_USER), "bench")
    ctx.close()
    return secret


def bench_learn(*args: str, out: Path | None = None) -> dict[str, Any]:
    """Run `eyes bench learn ARGS` on a fresh data folder, writing OUT.json and OUT.png (a
    temporary place if no `out`); returns the curves."""
    work = scratch_dir("eyes-bench-learn-")
    out = out or work / "curve"
    command = [sys.executable, "-m", "eyes", "bench", "learn", *args, "--out", str(out)]
    subprocess.run(command, check=True, env={**os.environ, "EYES_HOME": str(work / "home")})
    return dict(json.loads(Path(f"{out}.json").read_text()))
