"""`eyes worker` that stops dead in its first tagging task, for a test to kill it there: the
photo's message is then taken and never acknowledged, and only a sweep can bring the work back.

    python -m tests.scaleout.stuck_worker FLAGS_DIR worker [eyes worker options]

It touches FLAGS_DIR/swept after each sweep, and writes the photo ids it holds to
FLAGS_DIR/in-flight when the task starts (tests/scaleout/test_faults.py waits for both).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from eyes.cli import main
from eyes.context import Context
from eyes.jobs import tasks
from eyes.services import tagging


def run(flags: Path, args: list[str]) -> None:
    real_sweep = tasks.sweep

    def sweep(ctx: Context) -> None:
        real_sweep(ctx)
        (flags / "swept").touch()

    def tag_photos(
        ctx: Context, photo_ids: Sequence[int], inputs: Mapping[int, np.ndarray] | None = None
    ) -> None:
        (flags / "in-flight").write_text(" ".join(map(str, photo_ids)))
        time.sleep(3600)  # where the test kills the worker

    tasks.sweep = sweep  # `eyes worker` imports both when it starts
    tagging.tag_photos = tag_photos
    main(args, prog_name="eyes")


if __name__ == "__main__":
    run(Path(sys.argv[1]), sys.argv[2:])
