"""How fast the serving backbone is: decode + preprocess, and onnxruntime per image.

    python -m benchmarks.ml_backbone [MODELS_DIR] [--threads N]

MODELS_DIR holds an exported backbone (efficientnet-lite0.onnx and backbone.json); without it the
backbone is exported into a temporary folder first, in a child process (so torch is not loaded here).
Photos are synthetic (made from scikit-image's Chelsea, with noise so JPEG cannot cheat).
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from eyes.ml.embedder import Embedder, default_threads
from eyes.ml.preprocess import open_for_model, preprocess

TWO_CALLERS_IMAGES = 300


def timed_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and best wall time of `fn` in milliseconds, after one warm-up call.

    The best is what the code costs on an idle machine; the median shows contention.
    """
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def jpeg_bytes(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    base = np.asarray(Image.fromarray(data.chelsea()).resize((width, height), Image.Resampling.BILINEAR))
    noisy = np.clip(base.astype(np.int16) + rng.integers(-8, 8, base.shape, dtype=np.int16), 0, 255)
    out = io.BytesIO()
    Image.fromarray(noisy.astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def decode_and_preprocess(encoded: bytes) -> np.ndarray:
    return preprocess(open_for_model(io.BytesIO(encoded)))


def bench_preprocess() -> None:
    for label, (w, h) in {"224 px JPEG": (224, 224), "12 MP JPEG (4000x3000)": (4000, 3000)}.items():
        encoded = jpeg_bytes(w, h)
        median, best = timed_ms(partial(decode_and_preprocess, encoded), repeat=20)
        print(f"decode + preprocess, {label}: median {median:.1f} ms, best {best:.1f} ms")
        if w > 1000:

            def full_decode(e: bytes = encoded) -> np.ndarray:
                img = Image.open(io.BytesIO(e))
                img.load()
                return preprocess(img)

            median, best = timed_ms(full_decode, repeat=5)
            print(f"  same without JPEG draft mode: median {median:.1f} ms, best {best:.1f} ms")


def bench_embedder(models_dir: Path, threads: int) -> None:
    rng = np.random.default_rng(0)
    for n in (1, 4, 16):
        # batch_size=n: the n images go through onnxruntime in a single run.
        embedder = Embedder(models_dir / "efficientnet-lite0.onnx", threads=threads, batch_size=n)
        batch = rng.uniform(-1, 1, (n, 3, 224, 224)).astype(np.float32)
        median, best = timed_ms(partial(embedder.embed, batch), repeat=30 if n == 1 else 8)
        print(
            f"onnxruntime, {threads} threads, {n:2d} images per run: "
            f"median {median / n:.1f}, best {best / n:.1f} ms per image"
        )
    # As a bulk import runs it: two threads, each embedding one image at a time.
    embedder = Embedder(models_dir / "efficientnet-lite0.onnx", threads=threads, batch_size=1)
    one = rng.uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    with ThreadPoolExecutor(2) as callers:
        list(callers.map(lambda _: embedder.embed(one), range(8)))  # warm
        started = time.perf_counter()
        list(callers.map(lambda _: embedder.embed(one), range(TWO_CALLERS_IMAGES)))
        rate = TWO_CALLERS_IMAGES / (time.perf_counter() - started)
    print(f"onnxruntime, {threads} threads, two callers at once: {rate:.0f} images a second")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models_dir", nargs="?", type=Path)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    bench_preprocess()
    if args.models_dir:
        bench_embedder(args.models_dir, args.threads)
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "eyes.ml.export", tmp], check=True, capture_output=True)
        bench_embedder(Path(tmp), args.threads)


if __name__ == "__main__":
    main()
