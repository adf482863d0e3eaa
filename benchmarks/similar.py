"""Similar photos and near-duplicates: query time over 100,000 photos, near-duplicate recall.

    python -m benchmarks.similar [MODELS_DIR] [--quick]

1. Query time: an index (eyes/ml/vector_index.py) of 100,000 synthetic embeddings of the real
   dimension (class centres plus noise, non-negative and normalised as the real ones are), one
   "more like this" query at a time, as a viewer who may see most of them, and as one for whom
   the 800 nearest neighbours are someone else's private photos (the over-fetch goes deeper).
   Also: building the index, and catching up with 1,000 new photos.
2. Near-duplicates: every photo of caltech101-23 embedded by the real backbone, and copies made
   here of some of them (re-encoded as JPEG quality 40, resized to half, cropped by 10% of each
   side at one corner, and all three at once). Recall: how many copies find their original as a
   near-duplicate (similarity at least EYES_NEAR_DUPLICATE_SIMILARITY) among the originals. False
   positives: how many originals find another, distinct, photo of the set that similar (the set
   has no duplicates: ../shared/datasets/README.md).

MODELS_DIR holds an exported backbone; without it the backbone is exported into a temporary folder
first, in a child process. Writes the section "Similar photos" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

from benchmarks.report import percentile, write_section
from benchmarks.scratch import scratch_dir
from eyes.config import Settings
from eyes.ml.embedder import Embedder
from eyes.ml.files import ONNX_FILE
from eyes.ml.layout import match, open_signature
from eyes.ml.preprocess import open_for_model, preprocess
from eyes.ml.vector_index import Audience, VectorIndex
from eyes.services.similar import CANDIDATE_SIMILARITY, CANDIDATES

ROOT = Path(__file__).resolve().parents[1]
CALTECH = (ROOT / ".." / "shared" / "datasets" / "caltech101-23").resolve()
DIM = 1280
VIEWER = 1


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (300, DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 10_000):
        m = min(10_000, n - start)
        x = centres[rng.integers(0, 300, m)] + rng.normal(0, 0.8, (m, DIM)).astype(np.float32)
        x = np.maximum(x, 0)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def timed(queries: np.ndarray, search: Callable[[np.ndarray], object]) -> list[float]:
    search(queries[0])
    times = []
    for q in queries:
        t = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - t) * 1000)
    return times


def bench_queries(n: int, n_queries: int) -> dict[str, object]:
    x = synthetic(n)
    rng = np.random.default_rng(1)
    owners = rng.integers(2, 1000, n)
    public = rng.random(n) < 0.8
    keys = np.arange(1, n + 1)
    index = VectorIndex(DIM)
    t = time.perf_counter()
    for start in range(0, n, 10_000):
        index.add(
            keys[start : start + 10_000],
            x[start : start + 10_000],
            owners[start : start + 10_000],
            public[start : start + 10_000],
        )
    build_s = time.perf_counter() - t
    picks = rng.integers(0, n, n_queries)
    queries = x[picks]
    viewer = Audience(owner=VIEWER, public=True)
    plain = timed(queries, lambda q: index.search(q, 12, viewer))

    # Someone else's private photos crowd the neighbourhood: the 800 nearest of one query.
    q0 = queries[0]
    nearest = np.argsort(-(x @ q0))[:800]
    for i in nearest:
        index.set_audience(int(keys[i]), 999_999, False)
    crowded = timed(np.repeat(q0[None], n_queries, 0), lambda q: index.search(q, 12, viewer))
    found = index.search(q0, 12, viewer)
    assert len(found.keys) == 12 and not set(found.keys.tolist()) & set(keys[nearest].tolist())

    extra = synthetic(1000, seed=2)
    t = time.perf_counter()
    index.add(np.arange(n + 1, n + 1001), extra, np.full(1000, VIEWER), np.ones(1000, bool))
    add_ms = (time.perf_counter() - t) * 1000
    return {
        "n": n,
        "queries": n_queries,
        "plain_p50": percentile(plain, 50),
        "plain_p95": percentile(plain, 95),
        "crowded_p50": percentile(crowded, 50),
        "crowded_p95": percentile(crowded, 95),
        "build_s": build_s,
        "add_1000_ms": add_ms,
    }


def copies(path: Path) -> dict[str, bytes]:
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    w, h = rgb.size

    def jpeg(image: Image.Image, quality: int) -> bytes:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        return out.getvalue()

    half = rgb.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS)
    crop = rgb.crop((0, 0, w - w // 10, h - h // 10))
    both = crop.resize((max(1, crop.width // 2), max(1, crop.height // 2)), Image.Resampling.LANCZOS)
    return {
        "re-encoded (JPEG quality 40)": jpeg(rgb, 40),
        "resized to half": jpeg(half, 95),
        "cropped by 10% of each side": jpeg(crop, 95),
        "cropped, resized and re-encoded": jpeg(both, 40),
    }


def embed_all(embedder: Embedder, sources: list[Path | bytes]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Embeddings (normalised) and layouts, as an upload computes them."""
    out, layouts = [], []
    for start in range(0, len(sources), 64):
        chunk = [s if isinstance(s, Path) else io.BytesIO(s) for s in sources[start : start + 64]]
        out.append(embedder.embed(np.stack([preprocess(open_for_model(s)) for s in chunk])))
        layouts += [open_signature(s if isinstance(s, Path) else io.BytesIO(s.getvalue())) for s in chunk]
    x = np.concatenate(out)
    return x / np.linalg.norm(x, axis=1, keepdims=True), layouts


def bench_near_duplicates(models_dir: Path, n_copied: int, threshold: float) -> dict[str, object]:
    embedder = Embedder(models_dir / ONNX_FILE)
    files = sorted(CALTECH.glob("*/*.jpg"))
    originals, layouts = embed_all(embedder, list(files))
    picked = random.Random(0).sample(range(len(files)), min(n_copied, len(files)))
    kinds: dict[str, list[int]] = {}
    sources: list[Path | bytes] = []
    for i in picked:
        for kind, data in copies(files[i]).items():
            kinds.setdefault(kind, []).append(len(sources))
            sources.append(data)
    copied, copied_layouts = embed_all(embedder, sources)
    of = np.array([i for i in picked for _ in range(4)])

    # One owner's photos, as services/similar.py checks them: the embedding proposes, the layout decides.
    index = VectorIndex(DIM)
    index.add(np.arange(len(files)), originals, np.zeros(len(files), int), np.zeros(len(files), bool))
    owner = Audience(owner=0, public=False)

    def near(vector: np.ndarray, grey: np.ndarray, exclude: frozenset[int]) -> tuple[list[int], float]:
        found = index.search(vector, CANDIDATES, owner, exclude=exclude, min_similarity=CANDIDATE_SIMILARITY)
        scores = [(int(k), match(grey, layouts[int(k)])) for k in found.keys]
        return [k for k, m in scores if m >= threshold], max((m for _, m in scores), default=0.0)

    t = time.perf_counter()
    hits = np.array(
        [o in near(v, g, frozenset())[0] for v, g, o in zip(copied, copied_layouts, of, strict=True)]
    )
    check_ms = (time.perf_counter() - t) / len(copied) * 1000
    # Each original among the others: any near-duplicate found is a false positive (a distinct photo).
    distinct = [near(v, layouts[i], frozenset({i})) for i, v in enumerate(originals)]
    false = np.array([bool(d[0]) for d in distinct])
    best_distinct = np.array([d[1] for d in distinct])
    copy_scores = np.array([match(g, layouts[o]) for g, o in zip(copied_layouts, of, strict=True)])
    to_original = np.sum(copied * originals[of], axis=1)
    nearest_other = np.array(
        [index.search(v, 1, owner, exclude=frozenset({i})).similarity[0] for i, v in enumerate(originals)]
    )
    return {
        "photos": len(files),
        "copied": len(picked),
        "recall": {kind: float(hits[rows].mean()) for kind, rows in kinds.items()},
        "recall_all": float(hits.mean()),
        "false_positive_rate": float(false.mean()),
        "check_ms": check_ms,
        "embedding_copy_min": {kind: float(to_original[rows].min()) for kind, rows in kinds.items()},
        "embedding_distinct_max": float(nearest_other.max()),
        "embedding_distinct_p50": float(np.median(nearest_other)),
        "layout_distinct_above": {t: int((best_distinct >= t).sum()) for t in (0.94, 0.95, 0.96, 0.97, 0.98)},
        "layout_copies_below": {t: int((copy_scores < t).sum()) for t in (0.94, 0.95, 0.96, 0.97, 0.98)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models_dir", nargs="?", type=Path)
    parser.add_argument("--quick", action="store_true", help="10,000 photos and 300 copies")
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs/benchmarks.md")
    args = parser.parse_args()
    threshold = Settings.model_fields["near_duplicate_similarity"].default
    models_dir = args.models_dir
    if models_dir is None:
        models_dir = scratch_dir("eyes-backbone-")
        subprocess.run(
            [sys.executable, "-m", "eyes.ml.export", str(models_dir)], check=True, capture_output=True
        )
    with threadpool_limits(2):
        queries = bench_queries(10_000 if args.quick else 100_000, 200)
        dups = bench_near_duplicates(models_dir, 300 if args.quick else 1000, threshold)
    print(queries, dups, sep="\n")
    if args.no_write:
        return
    recall_rows = "\n".join(
        f"| near-duplicate recall, {kind} | **{r:.1%}** | |"
        for kind, r in dups["recall"].items()  # type: ignore[attr-defined]
    )
    emb_min = ", ".join(f"{k}: {v:.2f}" for k, v in dups["embedding_copy_min"].items())  # type: ignore[attr-defined]
    body = f"""
| measure | result | target |
| --- | --- | --- |
| "more like this" over {queries["n"]:,} photos (n={queries["queries"]}) | p50 {queries["plain_p50"]:.2f} ms, p95 {queries["plain_p95"]:.2f} ms | ≤ 50 ms |
| the same, the 800 nearest being someone else's private photos | p50 {queries["crowded_p50"]:.2f} ms, p95 {queries["crowded_p95"]:.2f} ms | ≤ 50 ms |
| building the index from {queries["n"]:,} stored embeddings | {queries["build_s"]:.1f} s | |
| adding 1,000 photos to it | {queries["add_1000_ms"]:.0f} ms | |
{recall_rows}
| near-duplicate recall, all {4 * dups["copied"]:,} copies of {dups["copied"]:,} photos | **{dups["recall_all"]:.1%}** | |
| false positives: photos of caltech101-23 ({dups["photos"]:,}, no duplicates) that find a near-duplicate among the others | **{dups["false_positive_rate"]:.2%}** | |
| one near-duplicate check (index, then the layout of up to {CANDIDATES} candidates) | {dups["check_ms"]:.1f} ms | |

Thresholds: the embedding proposes the owner's photos at least {CANDIDATE_SIMILARITY} alike (cosine);
the layout decides at ≥ {threshold} (`EYES_NEAR_DUPLICATE_SIMILARITY`, eyes/ml/layout.py). The
embedding alone cannot decide: a copy's similarity to its original falls to {emb_min}, while a
photo's nearest distinct photo in the set is at {dups["embedding_distinct_p50"]:.2f} (median), up to
{dups["embedding_distinct_max"]:.3f}. Distinct photos whose best candidate lines up at or above a
threshold, of {dups["photos"]:,}: {", ".join(f"{t}: {c}" for t, c in dups["layout_distinct_above"].items())};
copies below it, of {4 * dups["copied"]:,}: {", ".join(f"{t}: {c}" for t, c in dups["layout_copies_below"].items())}.
The copies missed beyond those are the ones the embedding did not propose (their original was not
among the owner's {CANDIDATES} most alike photos): mostly the cropped, halved and re-encoded ones.
The query rows use synthetic embeddings of the real dimension (timing depends on sizes, not
pixels); the near-duplicate rows use the real backbone on real photos (originals of about 300x225
px, so a copy halved is smaller than the network's input).
"""
    write_section("Similar photos", "python -m benchmarks.similar", body)


if __name__ == "__main__":
    main()
