"""Receiving an upload: `received_file` against a bare read of the same request stream.

    python -m benchmarks.receive

A 4.2 MB JPEG (the noisy 12-megapixel one of benchmarks/serving.py) posted 30 times to each of two
routes of one uvicorn server on loopback; prints the p50 of each. Nothing is written to the docs.
"""

from __future__ import annotations

import threading
import time

import httpx2 as httpx
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks.harness import free_port
from benchmarks.scratch import scratch_dir
from benchmarks.serving import twelve_megapixel_jpeg
from eyes.web.uploads import received_file

TMP = scratch_dir("eyes-receive-")


async def received(request: Request) -> JSONResponse:
    async with received_file(request, TMP, 100 << 20) as (_, file):
        return JSONResponse({"bytes": file.path.stat().st_size})


async def bare(request: Request) -> JSONResponse:
    n = 0
    async for chunk in request.stream():
        n += len(chunk)
    return JSONResponse({"bytes": n})


def main() -> None:
    port = free_port()
    app = Starlette(
        routes=[Route("/received", received, methods=["POST"]), Route("/bare", bare, methods=["POST"])]
    )
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    big = twelve_megapixel_jpeg()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for path in ("/received", "/bare", "/received", "/bare"):  # alternated: the machine is noisy
            lat = []
            for _ in range(30):
                t = time.perf_counter()
                client.post(path, files={"file": ("big.jpg", big, "image/jpeg")}).raise_for_status()
                lat.append((time.perf_counter() - t) * 1000)
            print(f"{path}: {len(big) / 1e6:.1f} MB, p50 {np.median(lat):.1f} ms")
    server.should_exit = True


if __name__ == "__main__":
    main()
