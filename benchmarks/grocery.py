"""Learning on grocery, the hard set: does Eyes beat a logistic regression on frozen embeddings?

    python -m benchmarks.grocery [--only NAME ...]

Each scenario is one `eyes bench learn` run on a fresh data folder: a simulated community of 5
users uploads grocery's `train` photos with their labels; Eyes trains (a head, or a deep run); the
champion is measured on grocery's `val` photos, never uploaded, next to a logistic regression on
the frozen embeddings of the same labels, measured on the same photos. Writes the "Learning on
grocery" section of docs/benchmarks.md and docs/grocery.json (the figures).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.harness import bench_learn
from benchmarks.report import commit, write_section

ROOT = Path(__file__).resolve().parents[1]
GROCERY = (ROOT / ".." / "shared" / "datasets" / "grocery").resolve()
DOCS = ROOT / "docs"

# name: (what it is, extra arguments of `eyes bench learn`)
SCENARIOS: dict[str, tuple[str, list[str]]] = {
    "head": ("all labels, head", ["--schedule", "1000"]),
    "head-noisy": ("all labels, 10% wrong, head", ["--schedule", "1000", "--noise", "0.1"]),
    "head-sybils": (
        "all labels, 10 fresh accounts voting a wrong class on every photo, head",
        ["--schedule", "1000", "--sybils", "10"],
    ),
    "few": ("10 labels per class, head", ["--schedule", "10"]),
    "few-rest": (
        "10 labels per class, the other photos uploaded unlabelled, head",
        ["--schedule", "10", "--upload-rest"],
    ),
    "deep": ("all labels, deep run", ["--schedule", "1000", "--depth", "deep"]),
    "deep-noisy": (
        "all labels, 10% wrong, deep run",
        ["--schedule", "1000", "--depth", "deep", "--noise", "0.1"],
    ),
}


def run(name: str, extra: list[str]) -> dict[str, object]:
    curves = bench_learn(
        "--dataset", str(GROCERY / "train"), "--measure-on", str(GROCERY / "val"), *extra
    )  # one round each: there is no curve to keep
    curve = next(iter(curves.values()))
    last = curve["rounds"][-1]
    shown = ["eyes bench learn", "--dataset", "../shared/datasets/grocery/train"]
    shown += ["--measure-on", "../shared/datasets/grocery/val", *extra]
    return {"name": name, "command": " ".join(shown), "commit": commit(), **last}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="run only these scenarios")
    parser.add_argument("--render", action="store_true", help="only write the section from docs/grocery.json")
    args = parser.parse_args()
    # Scenarios run at other times keep their rows: results accumulate in docs/grocery.json.
    store = DOCS / "grocery.json"
    known = json.loads(store.read_text()) if store.exists() else {}
    for name in [] if args.render else args.only or SCENARIOS:
        known[name] = run(name, SCENARIOS[name][1])
        store.write_text(json.dumps(known, indent=2))
    results = [known[name] for name in SCENARIOS if name in known]
    rows = "\n".join(
        f"| {SCENARIOS[r['name']][0]} | {r['labelled_per_class']} | **{r['accuracy']:.1%}** | "
        f"{r['baseline_accuracy']:.1%} | {(r['accuracy'] - r['baseline_accuracy']) * 100:+.1f} | "
        f"{r['stage']} | {r['train_seconds']:.0f} s |"
        for r in results
    )
    commands = "\n".join(f"- {r['name']}: `{r['command']}`" for r in results)
    body = f"""
grocery: 81 fine classes, trained on `train` (2,640 photos, uploaded by 5 simulated users with
their labels), measured on `val` (296 photos never uploaded). Each figure stands next to a logistic
regression (scikit-learn, standardised features) on the frozen Lite0 embeddings of the same labels
(wrong ones included), measured on the same photos.

| scenario | labelled photos per class (fewest) | Eyes top-1 | logistic regression, same labels | points | version | training run |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

Commands (each on a fresh data folder), measured at commit(s) {", ".join(sorted({str(r.get("commit")) for r in results}))}:
{commands}
"""
    write_section("Learning on grocery", "python -m benchmarks.grocery", body)


if __name__ == "__main__":
    main()
