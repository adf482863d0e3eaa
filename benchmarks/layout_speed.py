"""What the near-duplicate check costs per candidate (eyes/ml/layout.py):

    python -m benchmarks.layout_speed

For 40 photos of caltech101-23: summarising a photo's windows, matching a photo with a stored
photo kept as a candidate, and with its full summaries; medians in milliseconds over every pair.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from eyes.ml import layout

CALTECH = (Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "caltech101-23").resolve()


def _ms(action: object, *args: object) -> float:
    started = time.perf_counter()
    action(*args)  # type: ignore[operator]
    return 1000 * (time.perf_counter() - started)


def main() -> None:
    greys = [layout.open_signature(path) for path in sorted(CALTECH.rglob("*.jpg"))[::20][:40]]
    found = [f for f in (layout.summaries(g) for g in greys) if f is not None]
    candidates = [layout.Candidate.of(g, f) for g, f in zip(greys, found, strict=False)]
    summarise = [_ms(layout.summaries, g) for g in greys]
    with_candidate = [_ms(layout.matches, a, c) for a in found for c in candidates]
    with_summaries = [_ms(layout.matches, a, b) for a in found for b in found]
    print(
        f"summaries {statistics.median(summarise):.3f} ms; a match with a candidate "
        f"{statistics.median(with_candidate):.3f} ms, with full summaries {statistics.median(with_summaries):.3f} ms"
    )


if __name__ == "__main__":
    main()
