"""Scratch folders for a benchmark's data folders and copies: gone when the benchmark ends."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    """A new empty folder, removed with everything in it when this process exits (a data
    folder of 600 imported photos is about 65 MB; each run used to leave its own behind)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
