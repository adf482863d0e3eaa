"""Feed benchmark: the public feed (`/` and `GET /api/v1/photos`) under wrk, next to `/healthz`.

    python -m benchmarks.feed [--connections 50] [--seconds 10] [--photos 90]

Imports photos of imagenette10-600 into a temporary data folder, runs one `eyes serve` on
loopback and points wrk (Debian's package: `make wrk`) at `/healthz`, `/` and `/api/v1/photos`,
anonymously, one after the other in the same run. The figure that travels between machines is
the ratio: what the feed serves as a fraction of what `/healthz` serves on the same server, the
same cores, the same minute. Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from benchmarks.harness import BENCH_USER, eyes_cmd, free_port, wait_healthy
from benchmarks.report import percentile, write_section
from benchmarks.scratch import scratch_dir

ROOT = Path(__file__).resolve().parents[1]
IMAGENETTE = (ROOT / ".." / "shared" / "datasets" / "imagenette10-600").resolve()
PATHS = ["/healthz", "/", "/api/v1/photos"]
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, connections: int, seconds: float) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) of one wrk run; non-2xx answers are counted."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],  # whole seconds
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for q in ("50", "99"):
        value, unit = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        result[f"p{q}_ms"] = float(value) * _UNITS[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    result["non_2xx"] = float(bad.group(1)) if bad else 0.0
    result["socket_errors"] = errors.group(1) if errors else ""  # type: ignore[assignment]
    return result


def serve_and_measure(
    home: Path, paths: list[str], args: argparse.Namespace, cache_s: float | None
) -> dict[str, dict[str, float]]:
    """Start `eyes serve` on `home` and measure each path alone, then under wrk."""
    port = free_port()
    env = {**os.environ, "EYES_HOME": str(home), "EYES_PORT": str(port)}
    if cache_s is not None:
        env["EYES_FEED_CACHE_S"] = str(cache_s)
    # Its access log (one line a request, as in production) is written, then dropped.
    server = subprocess.Popen(
        [sys.executable, "-m", "eyes", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    results: dict[str, dict[str, float]] = {}
    try:
        wait_healthy(base)
        with httpx.Client(base_url=base, timeout=30) as client:
            page = client.get("/api/v1/photos").json()
            if len(page["items"]) < min(30, args.photos) or not page["items"][0]["tags"]:
                raise SystemExit(f"the feed is not what the benchmark expects: {page}")
            for path in paths:  # one request alone (no load): the floor under the figures below
                for _ in range(5):
                    client.get(path).raise_for_status()
                alone = []
                for _ in range(40):
                    started = time.perf_counter()
                    client.get(path).raise_for_status()
                    alone.append((time.perf_counter() - started) * 1000)
                results[path] = {"alone_ms": percentile(alone, 50)}
        for path in paths:
            results[path] |= wrk(base + path, args.connections, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--photos", type=int, default=90, help="photos imported (a page shows 30)")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/benchmarks.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `make wrk` installs Debian's package")

    home = scratch_dir("eyes-feed-")
    source = scratch_dir("eyes-feed-photos-")
    files = sorted(IMAGENETTE.rglob("*.JPEG"))
    random.Random(2).shuffle(files)
    for f in files[: args.photos]:
        (source / f.parent.name).mkdir(exist_ok=True)
        (source / f.parent.name / f.name).symlink_to(f)
    eyes_cmd(home, "users", "create", BENCH_USER, "--admin")
    eyes_cmd(home, "import", str(source), "--tags-from-folders", "-q")

    results = serve_and_measure(home, PATHS, args, cache_s=None)
    # The same pages read from the database on every request: what a signed-in visitor costs.
    uncached = serve_and_measure(home, PATHS[1:], args, cache_s=0)
    results |= {f"{path} (cache off)": r for path, r in uncached.items()}

    health = results["/healthz"]["requests_per_s"]
    for r in results.values():
        r["of_healthz"] = r["requests_per_s"] / health
    print(json.dumps(results, indent=2))
    worst = min(results[p]["of_healthz"] for p in PATHS[1:])
    verdict = "reached" if worst >= 0.30 else f"**not reached** ({worst:.2f})"
    rows = "\n".join(
        f"| `{path.removesuffix(' (cache off)')}`{' (cache off)' if path.endswith('off)') else ''} | {r['alone_ms']:.1f} | **{r['requests_per_s']:.0f}** | {r['of_healthz']:.2f} "
        f"| {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {int(r['non_2xx'])} {r['socket_errors']} |"
        for path, r in results.items()
    )
    body = f"""
One `eyes serve` (SQLite, folder store) with {args.photos} imported public photos (a page shows 30,
with their tags); anonymous requests; `wrk -t2 -c{args.connections} -d{args.seconds:g}s --latency`
against each path in turn, in the same run. wrk shares the machine's two cores with the server.
Anonymous feed pages are kept for `EYES_FEED_CACHE_S` (1 s; any change made through the server
empties the cache at once), so under wrk nearly every one is served from memory; the rows
"(cache off)" are a second server on the same data with `EYES_FEED_CACHE_S=0`, reading the
database on every request as it does for signed-in visitors.

| path | one request alone, p50 ms | requests/s under wrk | fraction of `/healthz` | p50 ms | p99 ms | errors |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

Target: the feed serves at least 0.30 of what `/healthz` serves in the same run: {verdict}.
"""
    if not args.no_write:
        write_section("Feed under wrk", f"python -m benchmarks.feed --connections {args.connections}", body)
    else:
        print(body)


if __name__ == "__main__":
    main()
