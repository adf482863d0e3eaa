"""One upload's service time, for comparing commits side by side:

    python -m benchmarks.upload_speed [N]

Uploads N (12) photos of caltech101-23, each enlarged to 12 megapixels (as a phone takes them),
through `similar.upload_and_check` (what `POST /api/v1/photos` runs: decode, thumbnails,
network, sensitive-content score, near-duplicate check, rows) into a fresh data folder, and
prints the median time of all but the first two. Run it from two checkouts alternately
(`PYTHONPATH=<checkout>`): the ratio is what compares on a shared machine. Writes nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks.scratch import scratch_dir

CALTECH = (Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "caltech101-23").resolve()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    home = scratch_dir("eyes-upload-")
    os.environ["EYES_HOME"] = str(home)

    from benchmarks.serving import upscaled_photo_jpeg
    from eyes.config import get_settings
    from eyes.context import build_context
    from eyes.services import accounts, similar
    from eyes.services.photos import PhotoDraft

    ctx = build_context(get_settings())
    owner = accounts.create_user(ctx, "bench", "bench-password-123", admin=True)
    ctx.tagger.load()
    ctx.similar.index()
    times = []
    for n, source in enumerate(sorted(CALTECH.rglob("*.jpg"))[:count]):
        path = home / f"{n}.jpg"
        path.write_bytes(upscaled_photo_jpeg(source))
        started = time.perf_counter()
        similar.upload_and_check(ctx, owner, path, PhotoDraft(path.name))
        times.append(1000 * (time.perf_counter() - started))
    print(f"{count} uploads of 12-megapixel photos: median {statistics.median(times[2:]):.1f} ms")
    ctx.close()


if __name__ == "__main__":
    main()
