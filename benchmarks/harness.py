"""What the benchmarks share: run the `eyes` command, find a free port, make an API token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

BENCH_USER = "bench"
BENCH_PASSWORD = "bench-password"


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
    from eyes.db.session import transaction
    from eyes.services.accounts import create_token, get_user_by_name

    ctx = build_context(get_settings(home=home, database_url=database_url))
    with transaction(ctx.sessions) as session:
        _, secret = create_token(session, get_user_by_name(session, BENCH_USER), "bench")
    ctx.close()
    return secret
