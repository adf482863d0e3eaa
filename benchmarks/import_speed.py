"""Bulk import speed in one process, for comparing commits side by side:

    python -m benchmarks.import_speed [N]

Imports the first N (600) photos of imagenette10-600 with `importer.import_tree` into a fresh
data folder (removed when it ends) and prints photos a second. Run it from two checkouts one
after the other, twice (`PYTHONPATH=<checkout>`): the ratio is what compares on a shared machine.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from benchmarks.scratch import scratch_dir

IMAGENETTE = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "imagenette10-600"
).resolve()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    home = scratch_dir("eyes-import-")
    os.environ["EYES_HOME"] = str(home)
    tree = home / "in"
    for photo in sorted(IMAGENETTE.rglob("*.JPEG"))[:count]:
        (tree / photo.parent.name).mkdir(parents=True, exist_ok=True)
        (tree / photo.parent.name / photo.name).symlink_to(photo)

    from eyes.config import get_settings
    from eyes.context import build_context
    from eyes.services import accounts, importer

    ctx = build_context(get_settings())
    accounts.create_user(ctx, "bench", "bench-password-123", admin=True)
    ctx.tagger.load()
    started = time.perf_counter()
    report = importer.import_tree(ctx, tree, owner="bench", progress=False)
    seconds = time.perf_counter() - started
    print(f"{report.imported} photos in {seconds:.1f} s: {report.imported / seconds:.1f} photos/s")
    ctx.close()


if __name__ == "__main__":
    main()
