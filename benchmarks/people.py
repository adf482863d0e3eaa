"""People on lfw-40, through Eyes' own pipeline: faces found as a scan finds them, grouped and
recognised by eyes/ml/people.py with its calibrated thresholds, next to dlib's plain nearest
neighbour at 0.6. Run by `python -m benchmarks.faces` (`--only lfw`).

Not tuned to these 40 people: eyes/ml/people.py chose its constants on the calibration half (the
20 people at even positions, alphabetically); the figures that count are those on the other
half, the report half. Figures on all 40 are given too (half of them calibrated on).

Named faces: each photo's face nearest its centre (lfw-40 centres the person it is named after);
the other faces a photo holds are strangers in the background, kept where grouping is measured.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.report import write_section
from eyes.ml.faces import DlibFaceFinder, find_in_file
from eyes.ml.people import (
    DLIB_THRESHOLD,
    FALSE_ACCEPT,
    GROUP_DISTANCE,
    PER_NAMED,
    PRIOR_THRESHOLD,
    Recognizer,
    evaluate,
    group_faces,
    nearest_neighbour,
)

ROOT = Path(__file__).resolve().parents[1]
LFW = (ROOT / ".." / "shared" / "datasets" / "lfw-40").resolve()
DOCS = ROOT / "docs"
CHART = DOCS / "faces-corrections.png"
CENTRE = 125  # lfw-40's photos are 250x250, the named person in the middle
Fit = Callable[[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None], Recognizer]


@dataclass
class Found:
    descriptors: np.ndarray  # every face found, float32 as the scan stores them
    person: np.ndarray  # the person's number for a photo's central face, -1 for a stranger
    photos: int
    with_face: int
    ms: list[float]


def find_all(people: list[str]) -> Found:
    """Every face in every photo, found as `services.face_scan.scan_photos` finds them (the stored
    original decoded by `open_for_faces`, then the finder), stored as little-endian float32."""
    finder = DlibFaceFinder()
    vectors, person, photos, with_face, ms = [], [], 0, 0, []
    for number, name in enumerate(people):
        for path in sorted((LFW / name).glob("*.jpg")):
            photos += 1
            start = time.perf_counter()
            with open(path, "rb") as f:
                faces = find_in_file(finder, f)
            ms.append((time.perf_counter() - start) * 1000)
            if not faces:
                continue
            with_face += 1
            centre = min(
                range(len(faces)),
                key=lambda i: (
                    abs((faces[i].box[0] + faces[i].box[2]) / 2 - CENTRE)
                    + abs((faces[i].box[1] + faces[i].box[3]) / 2 - CENTRE)
                ),
            )
            for i, face in enumerate(faces):
                stored = np.frombuffer(face.descriptor.astype("<f4").tobytes(), dtype="<f4")
                vectors.append(stored)
                person.append(number if i == centre else -1)
    return Found(np.array(vectors, dtype=np.float32), np.array(person), photos, with_face, ms)


def grouping(x: np.ndarray, person: np.ndarray) -> dict[str, float]:
    """Purity (each grouped face's share in its group's most common person; every stranger counts
    as a person of their own, so this is a lower bound) and the share of named faces grouped."""
    labels = group_faces(x)
    truth = np.where(person >= 0, person, 1000 + np.arange(len(person)))
    grouped = labels >= 0
    agree = sum(np.unique(truth[labels == g], return_counts=True)[1].max() for g in set(labels[grouped]))
    named = person >= 0
    return {
        "purity": agree / max(1, grouped.sum()),
        "grouped": float((grouped & named).sum() / named.sum()),
        "groups": len(set(labels[grouped])),
        "people": len(set(person[named])),
        "faces": len(x),
        "strangers_grouped": int((grouped & ~named).sum()),
        "strangers": int((~named).sum()),
    }


def draw(
    y: np.ndarray, pool: np.ndarray, named_per_person: int, unnamed: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One draw: `unnamed` people of the pool never named, `named_per_person` photos of each
    other one named. Returns (named indices, other indices, unnamed people)."""
    rng = np.random.default_rng(seed)
    never = rng.choice(pool, unnamed, replace=False) if unnamed else np.array([], dtype=int)
    named = np.concatenate(
        [
            rng.choice(np.flatnonzero(y == p), min(named_per_person, int((y == p).sum())), replace=False)
            for p in pool
            if p not in never
        ]
    )
    rest = np.setdiff1d(np.flatnonzero(np.isin(y, pool)), named)
    return named, rest, never


def recognition(
    x: np.ndarray, y: np.ndarray, pool: np.ndarray, k: int, unnamed: int, draws: int
) -> dict[str, dict[str, float]]:
    """Mean right / wrong / no suggestion (named people's other faces) and the unnamed people's
    faces with no suggestion, for Eyes' recognizer and the plain nearest neighbour."""
    out: dict[str, list[tuple[float, float, float, float]]] = {"eyes": [], "plain": []}
    thresholds = []
    for seed in range(draws):
        named, rest, _ = draw(y, pool, k, unnamed, seed)
        ours = Recognizer.fit(x[named], y[named])
        thresholds.append(ours.threshold)
        for key, rec in (("eyes", ours), ("plain", nearest_neighbour(x[named], y[named]))):
            e = evaluate(rec, x[rest], y[rest])
            out[key].append((e.right, e.wrong, e.no_suggestion, e.unknown_no_suggestion))
    result: dict[str, dict[str, float]] = {}
    for key, rows in out.items():
        m = np.nanmean(np.array(rows, dtype=float), axis=0) if unnamed else np.mean(np.array(rows), axis=0)
        result[key] = {
            "right": m[0],
            "wrong": m[1],
            "none": m[2],
            "unnamed_none": m[3] if unnamed else float("nan"),
        }
    result["eyes"]["threshold"] = float(np.median(thresholds))
    return result


def corrections(
    x: np.ndarray, y: np.ndarray, pool: np.ndarray, unnamed: int, rounds: int, draws: int, fit: Fit
) -> list[dict[str, float]]:
    """The correction curve. Start: one named photo per person, some people never named. Each
    round the recognizer is rebuilt, suggests for every face still unnamed, and the owner makes
    one correction per person: names one of a named person's faces that did not get their name,
    and says "not X" on one of an unnamed person's faces that got a name. Error: a named person's
    face without their name, or an unnamed person's face with any name, among faces still unnamed."""
    curves = np.zeros((draws, rounds + 1, 3))
    for seed in range(draws):
        rng = np.random.default_rng(1000 + seed)
        named, rest, never = draw(y, pool, 1, unnamed, seed)
        named_set, refused = set(named.tolist()), {}  # refused: face -> people rejected for it
        for r in range(rounds + 1):
            idx = np.array(sorted(named_set))
            neg_faces = [f for f, people in refused.items() for _ in people]
            neg_people = [p for people in refused.values() for p in people]
            rec = fit(x[idx], y[idx], (x[neg_faces], np.array(neg_people)) if neg_faces else None)
            rest = np.array([i for i in np.flatnonzero(np.isin(y, pool)) if i not in named_set])
            suggested, _ = rec.suggest(x[rest], [refused.get(int(i), set()) for i in rest])
            stranger = np.isin(y[rest], never)
            wrong_name = (suggested >= 0) & (suggested != y[rest])
            error = np.where(stranger, suggested >= 0, suggested != y[rest])
            curves[seed, r] = (error.mean(), wrong_name.mean(), (~stranger & (suggested == -1)).mean())
            for p in pool:
                mine = (y[rest] == p) & error
                if mine.any():
                    face = int(rest[rng.choice(np.flatnonzero(mine))])
                    if p in never:
                        refused.setdefault(face, set()).add(int(suggested[rest == face][0]))
                    else:
                        named_set.add(face)
    m = curves.mean(axis=0)
    return [
        {"corrections": r, "error": m[r, 0], "wrong": m[r, 1], "missing": m[r, 2]} for r in range(rounds + 1)
    ]


def eyes_fit(x: np.ndarray, y: np.ndarray, negatives: tuple[np.ndarray, np.ndarray] | None) -> Recognizer:
    return Recognizer.fit(x, y, negatives)


def plain_fit(x: np.ndarray, y: np.ndarray, negatives: tuple[np.ndarray, np.ndarray] | None) -> Recognizer:
    return nearest_neighbour(x, y)  # rejections only keep that one name off that one face


def timings(x: np.ndarray) -> dict[str, float]:
    """Seconds for one owner's scale: a few thousand faces (lfw-40's, repeated with a little
    noise so that no two are the same)."""
    rng = np.random.default_rng(0)
    many = np.concatenate([x + rng.normal(0, 0.02, x.shape).astype(np.float32) for _ in range(8)])
    people = np.tile(np.arange(len(x)) % 200, 8)
    out = {}
    start = time.perf_counter()
    group_faces(many[:3000])
    out["group_3000"] = time.perf_counter() - start
    start = time.perf_counter()
    rec = Recognizer.fit(many[:2000], people[:2000])
    evaluate(rec, many[:2000], people[:2000], leave_out_copies=True)
    out["learn_2000"] = time.perf_counter() - start
    start = time.perf_counter()
    rec.suggest(many[2000:5000])
    out["suggest_3000"] = time.perf_counter() - start
    return out


def plot(curves: dict[str, list[dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, curve in curves.items():
        xs = [p["corrections"] for p in curve]
        dashed = "plain" in label
        ax.plot(
            xs,
            [p["error"] * 100 for p in curve],
            marker="x" if dashed else "o",
            linestyle="--" if dashed else "-",
            label=label,
        )
    ax.set_xlabel("corrections per person")
    ax.set_ylabel("faces still unnamed that get a wrong or no name (%)")
    ax.set_xticks(xs)
    ax.set_title("Eyes face recognition: every correction counts (lfw-40)")
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(draws: int, no_write: bool) -> dict[str, object]:
    people = sorted(p.name for p in LFW.iterdir() if p.is_dir())
    found = find_all(people)
    central = found.person >= 0
    x, y = found.descriptors[central], found.person[central]
    halves = {"report half (20 people)": np.arange(1, 40, 2), "all 40": np.arange(40)}
    report_faces = np.isin(found.person, halves["report half (20 people)"]) | (
        (found.person < 0) & (np.arange(len(found.person)) % 2 == 1)
    )
    results: dict[str, object] = {
        "detection": {
            "photos": found.photos,
            "with_face": found.with_face,
            "faces": len(found.person),
            "ms_p50": float(np.percentile(found.ms, 50)),
        },
        "grouping": {
            "report half (20 people)": grouping(found.descriptors[report_faces], found.person[report_faces]),
            "all 40": grouping(found.descriptors, found.person),
        },
    }
    by_k = {}
    for half, pool in halves.items():
        for k in (1, 3, 5):
            by_k[f"{half}, {k} named"] = recognition(x, y, pool, k, 0, draws)
    results["closed"] = by_k
    results["unnamed"] = {
        "report half (20 people)": recognition(x, y, halves["report half (20 people)"], 3, 5, draws),
        "all 40": recognition(x, y, halves["all 40"], 3, 10, draws),
    }
    curves = {
        "Eyes, all 40 (10 never named)": corrections(x, y, halves["all 40"], 10, 3, draws, eyes_fit),
        "plain nearest neighbour at 0.6, all 40": corrections(
            x, y, halves["all 40"], 10, 3, draws, plain_fit
        ),
        "Eyes, report half (5 never named)": corrections(
            x, y, halves["report half (20 people)"], 5, 3, draws, eyes_fit
        ),
    }
    results["corrections"] = curves
    results["seconds"] = timings(x)
    print(json.dumps(results, indent=1, default=float))
    if not no_write:
        plot({k: v for k, v in curves.items()}, CHART)
        (DOCS / "faces-lfw.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
        write_section(
            "Faces: grouping and recognition (lfw-40)",
            "python -m benchmarks.faces --only lfw",
            _body(results, draws),
        )
    return results


def _pct(v: float) -> str:
    return "n/a" if v != v else f"{v:.1%}"


def _body(r: dict, draws: int) -> str:  # type: ignore[type-arg]
    d, g = r["detection"], r["grouping"]
    lines = [
        "",
        f"Faces found as a scan finds them (`eyes.ml.faces`), in every one of lfw-40's {d['photos']} photos.",
        "Constants chosen on the calibration half (the 20 people at even positions, alphabetically);",
        "the **report half** is the other 20, never used to choose anything (eyes/ml/people.py).",
        f"Means over {draws} random draws of the named photos.",
        "",
        "| measure | report half (20 people) | all 40 | target |",
        "| --- | --- | --- | --- |",
        f"| photos with a face found | | **{d['with_face']} of {d['photos']} ({d['with_face'] / d['photos']:.1%})**, "
        f"{d['faces']} faces in all, p50 {d['ms_p50']:.0f} ms a photo (decode included) | |",
    ]
    rh, al = g["report half (20 people)"], g["all 40"]
    lines += [
        f"| grouping (average linkage at {GROUP_DISTANCE}): purity, strangers' background faces included "
        f"| **{_pct(rh['purity'])}** | {_pct(al['purity'])} | ≥ 95% |",
        f"| named faces in a group | **{_pct(rh['grouped'])}** | {_pct(al['grouped'])} | ≥ 90% |",
        f"| groups for the people / strangers' faces put in a group "
        f"| {rh['groups']} for {rh['people']} / {rh['strangers_grouped']} of {rh['strangers']} "
        f"| {al['groups']} for {al['people']} / {al['strangers_grouped']} of {al['strangers']} | |",
    ]
    c = r["closed"]
    for k in (1, 3, 5):
        a, b = c[f"report half (20 people), {k} named"], c[f"all 40, {k} named"]
        lines.append(
            f"| everybody named with {k} photo{'s' if k > 1 else ''}: the other faces given the right name, "
            f"Eyes (wrong) / plain nearest neighbour at {DLIB_THRESHOLD} (wrong) "
            f"| **{_pct(a['eyes']['right'])}** ({_pct(a['eyes']['wrong'])}) / {_pct(a['plain']['right'])} "
            f"({_pct(a['plain']['wrong'])}) "
            f"| {_pct(b['eyes']['right'])} ({_pct(b['eyes']['wrong'])}) / {_pct(b['plain']['right'])} "
            f"({_pct(b['plain']['wrong'])}) | {'dlib: 96.1%' if k == 1 else 'dlib: 99.4%' if k == 3 else ''} |"
        )
    u = r["unnamed"]
    a, b = u["report half (20 people)"], u["all 40"]
    lines += [
        "| 3 photos named of most people, some never named (report half: 15 + 5; all: 30 + 10): "
        "faces of the never-named with no suggestion, Eyes / plain "
        f"| **{_pct(a['eyes']['unnamed_none'])}** / {_pct(a['plain']['unnamed_none'])} "
        f"| {_pct(b['eyes']['unnamed_none'])} / {_pct(b['plain']['unnamed_none'])} | ≥ 95% |",
        "| ... while the named people's other faces get the right name, Eyes (wrong) / plain "
        f"| **{_pct(a['eyes']['right'])}** ({_pct(a['eyes']['wrong'])}) / {_pct(a['plain']['right'])} "
        f"| {_pct(b['eyes']['right'])} ({_pct(b['eyes']['wrong'])}) / {_pct(b['plain']['right'])} | ≥ 97% |",
        f"| Eyes' calibrated threshold (median) for a person named once / on 3 faces "
        f"| {a['eyes']['threshold']:.3f} / {a['eyes']['threshold'] - PER_NAMED * np.log(3):.3f} "
        f"| {b['eyes']['threshold']:.3f} / {b['eyes']['threshold'] - PER_NAMED * np.log(3):.3f} "
        f"| prior {PRIOR_THRESHOLD} - {PER_NAMED} ln k for k faces, false accept {FALSE_ACCEPT:.0%} |",
        "",
        "**Every correction counts** ([chart](faces-corrections.png)): one named photo per person to "
        "start, some people never named; each round the owner corrects one face per person (names a "
        'face that did not get its name, or says "not X" on a never-named person\'s face that got '
        "one). Error: faces still unnamed that get a wrong name, or none where they should have one.",
        "",
        "| corrections per person | "
        + " | ".join(str(p["corrections"]) for p in next(iter(r["corrections"].values())))
        + " |",
        "| --- |" + " --- |" * len(next(iter(r["corrections"].values()))),
    ]
    for label, curve in r["corrections"].items():
        lines.append(
            f"| {label}: error (of which wrong names) | "
            + " | ".join(f"{p['error']:.1%} ({p['wrong']:.1%})" for p in curve)
            + " |"
        )
    s = r["seconds"]
    lines += [
        "",
        "![correction curve](faces-corrections.png)",
        "",
        f"One owner's scale, on this machine: grouping 3,000 faces {s['group_3000']:.2f} s; learning from 2,000 named "
        f"faces (calibration and the gate's leave-one-out judgement) {s['learn_2000']:.2f} s; suggestions for "
        f"3,000 faces {s['suggest_3000']:.2f} s. All figures: docs/faces-lfw.json.",
        "",
    ]
    return "\n".join(lines)
