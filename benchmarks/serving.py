"""Serving benchmark: classify latency, upload-to-tags latency, bulk import, server memory.

    python -m benchmarks.serving [--quick]

Runs a real `eyes serve` on loopback with a temporary data folder, talks to it over HTTP, and
writes the figures into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
from PIL import Image

from benchmarks.harness import BENCH_USER, UNLIMITED, eyes_cmd, free_port, make_token, wait_healthy
from benchmarks.report import percentile, write_section
from benchmarks.scratch import scratch_dir

ROOT = Path(__file__).resolve().parents[1]
IMAGENETTE = (ROOT / ".." / "shared" / "datasets" / "imagenette10-600").resolve()


def twelve_megapixel_jpeg() -> bytes:
    """A 4000x3000 photo-like JPEG (smooth gradients plus noise: realistic size and decode cost)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:3000, 0:4000].astype(np.float32)
    base = np.stack([x / 4000 * 255, y / 3000 * 255, (x + y) / 7000 * 255], axis=-1)
    noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, "JPEG", quality=90)
    return out.getvalue()


def upscaled_photo_jpeg(photo: Path) -> bytes:
    """A dataset photo enlarged to 4000x3000 (bicubic), quality 90: a 12-megapixel JPEG with a
    photo's smooth content and so a smaller, cheaper file than the noisy synthetic one."""
    with Image.open(photo) as img:
        big = img.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    big.save(out, "JPEG", quality=90)
    return out.getvalue()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests and a 600-photo import")
    args = parser.parse_args()
    n_classify = 60 if args.quick else 300
    n_big = 10 if args.quick else 40
    n_upload = 20 if args.quick else 60

    home = scratch_dir("eyes-bench-")
    eyes_cmd(home, "users", "create", BENCH_USER, "--admin")
    token = make_token(home)
    port = free_port()
    env = {
        **os.environ,
        **UNLIMITED,
        "EYES_HOME": str(home),
        "EYES_PORT": str(port),
        "EYES_SWEEP_INTERVAL_S": "1",
    }
    server = subprocess.Popen([sys.executable, "-m", "eyes", "serve"], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, object] = {}
    try:
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        wait_healthy(base)

        files = sorted(IMAGENETTE.rglob("*.JPEG")) + sorted(IMAGENETTE.rglob("*.jpg"))
        random.Random(0).shuffle(files)
        small = [f.read_bytes() for f in files[: n_classify + 10]]
        for data in small[:10]:  # warm-up
            client.post("/api/v1/classify", files={"file": ("w.jpg", data, "image/jpeg")})
        lat = []
        for data in small[10:]:
            t = time.perf_counter()
            res = client.post("/api/v1/classify", files={"file": ("p.jpg", data, "image/jpeg")})
            lat.append((time.perf_counter() - t) * 1000)
            res.raise_for_status()
        results["classify_224"] = {
            "n": len(lat),
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
        }

        for name, big in (
            ("classify_12mp", twelve_megapixel_jpeg()),
            ("classify_12mp_photo", upscaled_photo_jpeg(files[0])),
        ):
            lat = []
            for _ in range(n_big):
                t = time.perf_counter()
                client.post(
                    "/api/v1/classify", files={"file": ("big.jpg", big, "image/jpeg")}
                ).raise_for_status()
                lat.append((time.perf_counter() - t) * 1000)
            results[name] = {
                "n": len(lat),
                "bytes": len(big),
                "p50_ms": percentile(lat, 50),
                "p95_ms": percentile(lat, 95),
            }

        lat = []
        for data in small[:n_upload]:
            t = time.perf_counter()
            photo = client.post("/api/v1/photos", files={"file": ("u.jpg", data, "image/jpeg")}).json()
            while client.get(f"/api/v1/photos/{photo['id']}").json()["tagging"] == "pending":
                time.sleep(0.002)
            lat.append((time.perf_counter() - t) * 1000)
        results["upload_to_tags"] = {
            "n": len(lat),
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
        }
        results["server_rss_mb"] = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    source = IMAGENETTE
    if args.quick:
        source = scratch_dir("eyes-bench-import-")
        for f in files[:600]:
            (source / f.name).symlink_to(f)
    import_home = scratch_dir("eyes-bench-import-home-")
    eyes_cmd(import_home, "users", "create", BENCH_USER)
    eyes_cmd(import_home, "classify", str(files[0]))  # exports the backbone first: not part of the import
    report = json.loads(eyes_cmd(import_home, "import", str(source), "--json", "-q"))
    results["import"] = report | {"rejected": len(report["rejected"])}

    print(json.dumps(results, indent=2))
    c224, c12, c12p, up, imp = (
        results[k]
        for k in ("classify_224", "classify_12mp", "classify_12mp_photo", "upload_to_tags", "import")
    )
    body = f"""
| measure | result | target |
| --- | --- | --- |
| classify, 224 px photos of imagenette10-600, over HTTP (n={c224["n"]}) | p50 {c224["p50_ms"]:.1f} ms, p95 {c224["p95_ms"]:.1f} ms | p50 ≤ 30 ms |
| classify, synthetic 12-megapixel JPEG, noise ({c12["bytes"] / 1e6:.1f} MB, n={c12["n"]}) | p50 {c12["p50_ms"]:.1f} ms, p95 {c12["p95_ms"]:.1f} ms | p50 ≤ 40 ms |
| classify, a dataset photo enlarged to 12 megapixels ({c12p["bytes"] / 1e6:.1f} MB, n={c12p["n"]}) | p50 {c12p["p50_ms"]:.1f} ms, p95 {c12p["p95_ms"]:.1f} ms | p50 ≤ 40 ms |
| upload accepted until tags stored (n={up["n"]}) | p50 {up["p50_ms"]:.1f} ms, p95 {up["p95_ms"]:.1f} ms | |
| bulk import of {"600 photos of " if args.quick else ""}imagenette10-600 (`eyes import`, embedding in batches) | {imp["imported"]} photos in {imp["seconds"]:.1f} s: **{imp["images_per_second"]} images/s** | ≥ 100 images/s |
| resident memory of `eyes serve` with the model loaded, after the run | {results["server_rss_mb"]:.0f} MB | < 400 MB |
"""
    write_section("Serving", "python -m benchmarks.serving" + (" --quick" if args.quick else ""), body)


if __name__ == "__main__":
    main()
