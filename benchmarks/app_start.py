"""What each test's app costs: `create_app`, its start, and its first requests, as the fast tier
builds one per test (the stand-in backbone, a database already at the newest schema).

    python -m benchmarks.app_start [N]

Builds N (20) apps one after the other in this process and prints the median of each step in
milliseconds; the first app, which pays for the imports, is left out. Run it from two checkouts
one after the other (`PYTHONPATH=<checkout>`) to compare them.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time

from fastapi.testclient import TestClient

from benchmarks.scratch import scratch_dir
from eyes.app import create_app
from eyes.config import get_settings
from eyes.db.migrate import upgrade
from eyes.db.session import make_engine
from tests.standin_backbone import write_standin_backbone
from tests.standin_sensitive import write_standin_sensitive


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    root = scratch_dir("eyes-app-start-")
    models, sensitive = root / "models", root / "sensitive"
    write_standin_backbone(models)
    sensitive.mkdir()
    sensitive_model = write_standin_sensitive(sensitive)
    schema = root / "schema.db"
    engine = make_engine(f"sqlite:///{schema}")
    upgrade(engine)
    engine.dispose()

    steps: dict[str, list[float]] = {"create_app": [], "start": [], "first request": [], "second request": []}
    for i in range(count + 1):
        home = root / f"home{i}"
        home.mkdir()
        (home / "models").symlink_to(models, target_is_directory=True)
        settings = get_settings(home=home, sensitive_model=str(sensitive_model), sweep_interval_s=0.5)
        shutil.copyfile(schema, settings.resolved_database_url.removeprefix("sqlite:///"))
        times = [time.perf_counter()]
        app = create_app(settings)
        times.append(time.perf_counter())
        with TestClient(app, base_url="http://127.0.0.1") as client:
            times.append(time.perf_counter())
            client.get("/healthz")
            times.append(time.perf_counter())
            client.get("/login")
            times.append(time.perf_counter())
        if i:  # the first pays for the imports
            for name, before, after in zip(steps, times, times[1:], strict=False):
                steps[name].append(1000 * (after - before))
    print(", ".join(f"{name} {statistics.median(ms):.1f} ms" for name, ms in steps.items()))


if __name__ == "__main__":
    main()
