"""Load test against loopback only: 50 clients upload, browse the feed, search tags and classify.

    python -m benchmarks.load [--clients 50] [--seconds 60] [--max-requests 20000] [--scaleout]

Bounded in time and in requests. The embedded default is one `eyes serve`; `--scaleout` runs two
servers behind a round-robin client, one Celery worker, PostgreSQL, Redis and an S3 API server
(moto). At the end it checks that nothing was lost: every accepted upload has its row, its blobs
and its tags.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2 as httpx

from benchmarks.harness import BENCH_USER, UNLIMITED, eyes_cmd, free_port, make_token, wait_healthy
from benchmarks.report import percentile, write_section
from benchmarks.scratch import scratch_dir

ROOT = Path(__file__).resolve().parents[1]
IMAGENETTE = (ROOT / ".." / "shared" / "datasets" / "imagenette10-600").resolve()
MIX = [("upload", 0.15), ("feed", 0.35), ("search", 0.3), ("classify", 0.2)]


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "eyes", *cmd], env=env, stdout=out, stderr=out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--scaleout", action="store_true")
    args = parser.parse_args()

    home = scratch_dir("eyes-load-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EYES_")}
    env.update(UNLIMITED, EYES_HOME=str(home), EYES_SWEEP_INTERVAL_S="2")
    processes: list[subprocess.Popen[bytes]] = []
    moto = None
    if args.scaleout:
        from moto.server import ThreadedMotoServer
        from sqlalchemy import create_engine, text

        db = f"eyes_load_{uuid.uuid4().hex[:8]}"
        with create_engine(
            "postgresql+psycopg://postgres@127.0.0.1/postgres", isolation_level="AUTOCOMMIT"
        ).connect() as c:
            c.execute(text(f'CREATE DATABASE "{db}"'))
        moto_port = free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        moto.start()
        env.update(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}",
            AWS_ACCESS_KEY_ID="load",
            AWS_SECRET_ACCESS_KEY="load",
            AWS_DEFAULT_REGION="us-east-1",
            EYES_DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1/{db}",
            EYES_STORAGE_URL="s3://eyes-load/blobs",
            EYES_BROKER_URL="redis://127.0.0.1:6379/12",
            EYES_SECRET_KEY="k" * 40,
        )
        import boto3
        import redis

        redis.Redis.from_url(env["EYES_BROKER_URL"]).flushdb()
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        boto3.client("s3").create_bucket(Bucket="eyes-load")
    eyes_cmd(home, "users", "create", BENCH_USER, "--admin", env=env)
    token = make_token(home, env.get("EYES_DATABASE_URL", ""))
    bases = []
    for i in range(2 if args.scaleout else 1):
        port = free_port()
        processes.append(start(["serve"], {**env, "EYES_PORT": str(port)}, home / f"serve{i}.log"))
        bases.append(f"http://127.0.0.1:{port}")
        wait_healthy(bases[-1])
    if args.scaleout:
        processes.append(start(["worker", "--concurrency", "2"], env, home / "worker.log"))

    photos = sorted(IMAGENETTE.rglob("*.JPEG"))
    random.Random(1).shuffle(photos)
    tags = sorted(p.name for p in IMAGENETTE.iterdir() if p.is_dir())
    latencies: dict[str, list[float]] = {name: [] for name, _ in MIX}
    errors: Counter[str] = Counter()
    accepted: list[dict[str, Any]] = []
    lock = threading.Lock()
    sent = 0
    deadline = time.monotonic() + args.seconds
    next_photo = itertools.cycle(photos)

    def client(k: int) -> None:
        nonlocal sent
        rng = random.Random(k)
        http = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                if sent >= args.max_requests:
                    return
                sent += 1
                photo = next(next_photo)
            kind = rng.choices([m for m, _ in MIX], [w for _, w in MIX])[0]
            base = bases[k % len(bases)]
            started = time.perf_counter()
            try:
                if kind == "upload":
                    res = http.post(
                        base + "/api/v1/photos",
                        files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
                        data={"tags": photo.parent.name},
                    )
                elif kind == "feed":
                    res = http.get(base + "/api/v1/photos")
                elif kind == "search":
                    res = http.get(base + "/api/v1/photos", params={"tag": rng.choice(tags)})
                else:
                    res = http.post(
                        base + "/api/v1/classify",
                        files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
                    )
                ok = res.status_code < 400
                if kind == "upload" and res.status_code in (200, 201):
                    with lock:
                        accepted.append(res.json())
            except httpx.HTTPError as exc:
                ok, res = False, None
                errors[f"{kind}: {type(exc).__name__}"] += 1
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies[kind].append(elapsed)
                if not ok and res is not None:
                    errors[f"{kind}: HTTP {res.status_code}"] += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began

    # Nothing lost: every accepted upload has its row, thumbnails and tags once the work settles.
    check = httpx.Client(base_url=bases[-1], headers={"Authorization": f"Bearer {token}"}, timeout=30)
    settle = time.monotonic() + 300
    missing = [photo["id"] for photo in accepted]
    while missing and time.monotonic() < settle:
        still = []
        for pid in missing:
            body = check.get(f"/api/v1/photos/{pid}").json()
            if body.get("tagging") != "done" or not body.get("tags"):
                still.append(pid)
        missing = still
        if missing:
            time.sleep(2)
    blobs_ok = all(check.get(photo["thumbnail_url"]).status_code == 200 for photo in accepted)
    for p in processes:
        p.terminate()
        p.wait(timeout=30)
    if moto is not None:
        moto.stop()

    every = [v for vs in latencies.values() for v in vs]
    rows = "\n".join(
        f"| {kind} | {len(v)} | {percentile(v, 50):.0f} | {percentile(v, 95):.0f} | {percentile(v, 99):.0f} |"
        for kind, v in latencies.items()
    )
    setup = (
        "scale-out: 2 × `eyes serve`, 1 `eyes worker`, PostgreSQL, Redis, moto S3"
        if args.scaleout
        else "embedded default: 1 × `eyes serve`, SQLite, folder store, in-process workers"
    )
    body = f"""
{setup}; {args.clients} clients for {wall:.0f} s (at most {args.max_requests} requests).
Every process (servers, worker, databases, the S3 server and the 50 clients) shares this machine's
two cores, so the figures measure correctness and overhead under load, not added capacity.

**{len(every) / wall:.1f} requests/s**, p50 {percentile(every, 50):.0f} ms, p95 {percentile(every, 95):.0f} ms,
p99 {percentile(every, 99):.0f} ms; errors: {sum(errors.values())} {dict(errors) if errors else ""}.
Accepted uploads: {len(accepted)}; without their tags after the run settled: {len(missing)}; with
their thumbnail: {"all" if blobs_ok else "NOT all"}.

| request | n | p50 ms | p95 ms | p99 ms |
| --- | --- | --- | --- | --- |
{rows}
"""
    print(body)
    name = "Load, scale-out" if args.scaleout else "Load, embedded default"
    write_section(name, "python -m benchmarks.load" + (" --scaleout" if args.scaleout else ""), body)
    if errors or missing or not blobs_ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
