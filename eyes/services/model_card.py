"""The card of an exported model: what it is, how to feed it, what it learnt from and how good it is.

Two forms of one content: `card.json` for programs and `README.md` for people. Built from the
version's own card (eyes/services/registry.py) by a whitelist: counts, metrics, the gate's
evidence and the parent travel; which photos it trained on (ids, content hashes) does not, since a
model may have learnt from photos that are not public.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from eyes.ml import preprocess
from eyes.ml.bundle import SCORES_NAME
from eyes.ml.files import INPUT_NAME, OUTPUT_NAME

FORMAT = "eyes-model-card/1"
TRAINING_COUNTS = ("n_labelled_photos", "n_labels", "n_positive", "n_negative", "n_held_out", "folds")
# The metrics of a tag the card keeps (all of them today; named, so that a new one is a choice).
TAG_METRICS = ("precision", "recall", "f1", "threshold", "support", "average_precision")

# How to run the file with nothing but onnxruntime, numpy and Pillow. The recipe is the server's
# own (eyes/ml/preprocess.py), the JPEG draft included, so the scores are the server's.
USAGE = '''\
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

MODEL = "{file}"


def preprocess(path):
    """RGB, bicubic resize of the short side to 256, centre crop 224, (x / 255 - 0.5) / 0.5, CHW."""
    with Image.open(path) as image:
        image.draft("RGB", (256, 256))  # large JPEGs decode at a reduced scale, as Eyes does
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "P"):
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        image = image.convert("RGB")
    w, h = image.size
    size = (256, max(1, int(256 * h / w))) if w <= h else (max(1, int(256 * w / h)), 256)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    left, top = int(round((size[0] - 224) / 2.0)), int(round((size[1] - 224) / 2.0))
    image = image.crop((left, top, left + 224, top + 224))
    x = np.asarray(image, dtype=np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(((x - 0.5) * (1.0 / 0.5)).transpose(2, 0, 1))


session = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
labels, thresholds = json.loads(meta["labels"]), json.loads(meta["thresholds"])


def tags(path):
    """The tags the model shows for one photo, best first, each at or above its threshold."""
    scores = session.run(["scores"], {{"image": preprocess(path)[None]}})[0][0]
    shown = [(labels[j], float(s)) for j, s in enumerate(scores) if s >= thresholds[j]]
    return sorted(shown, key=lambda tag: -tag[1])


if __name__ == "__main__":
    print(json.dumps({{path: tags(path) for path in sys.argv[1:]}}))
'''


def eyes_version() -> str:
    try:
        return package_version("eyes")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def interface(n_labels: int, dim: int) -> dict[str, Any]:
    """The file's input and outputs, and the preprocessing its input expects."""
    size = preprocess.IMAGE_SIZE
    return {
        "input": {"name": INPUT_NAME, "shape": ["N", 3, size, size], "dtype": "float32"},
        "outputs": {
            SCORES_NAME: {
                "shape": ["N", n_labels],
                "dtype": "float32",
                "meaning": "one probability per label, in the order of 'labels'; a tag is shown when "
                "its score reaches its threshold",
            },
            OUTPUT_NAME: {
                "shape": ["N", dim],
                "dtype": "float32",
                "meaning": "the features the scores are computed from (useful for similarity)",
            },
        },
        "preprocessing": {
            "description": preprocess.DESCRIPTION,
            "mode": "RGB, transparency composited on white, EXIF orientation applied",
            "jpeg_draft": "large JPEGs are decoded at a reduced DCT scale keeping both sides >= 256 "
            "(Pillow's Image.draft), as Eyes does; a full decode gives scores within about 1e-2",
            "resize_short_side": preprocess.RESIZE_SIZE,
            "interpolation": "bicubic",
            "center_crop": size,
            "scale": "x / 255",
            "mean": [preprocess.MEAN] * 3,
            "std": [preprocess.STD] * 3,
            "layout": "NCHW",
        },
    }


def trained_card(
    version: dict[str, Any], kind: str, stored: dict[str, Any], backbone: dict[str, Any], file: dict[str, Any]
) -> dict[str, Any]:
    """The card of a trained version. `version` is what the registry shows of it
    (registry.describe), `kind` its depth, `stored` its own card, `backbone` the backbone's card,
    `file` the exported file's name, sha256 and size."""
    vocabulary: list[str] = list(version.get("vocabulary") or [])
    metrics = version.get("metrics") or {}
    per_tag = metrics.get("per_tag") or {}
    return {
        "format": FORMAT,
        "model": version["version"],
        "kind": kind,
        "file": file,
        "stage": version["stage"],
        "champion": version["champion"],
        "created_at": version["created_at"],
        "parent": version.get("parent") or stored.get("parent"),
        "backbone": backbone_summary(backbone, stored.get("backbone")),
        **interface(len(vocabulary), int(backbone.get("embedding_dim", 1280))),
        "labels": vocabulary,
        "thresholds": stored.get("thresholds") or {},
        "training_data": {
            **{key: version.get(key) for key in TRAINING_COUNTS},
            "positives_held_out_per_tag": {name: m.get("support") for name, m in per_tag.items()},
            "training_set_fingerprint": version.get("training_set"),
            "config": version.get("config"),
        },
        "metrics": {
            "held_out_photos": metrics.get("n"),
            "accuracy": metrics.get("accuracy"),
            "macro_f1": metrics.get("macro_f1"),
            "map": metrics.get("map"),
            "per_tag": {name: {k: m.get(k) for k in TAG_METRICS} for name, m in per_tag.items()},
            "confusion": metrics.get("confusion"),
            "confusion_labels": metrics.get("confusion_labels"),
        },
        "baseline": version.get("baseline"),
        "gate": {"decision": version.get("reason"), **(version.get("comparison") or {})},
        "exported_with": {"eyes": eyes_version()},
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def day_one_card(
    name: str,
    words: list[str],
    threshold: float,
    in_service: bool,
    backbone: dict[str, Any],
    file: dict[str, Any],
) -> dict[str, Any]:
    """The card of the day-one model: the backbone's own ImageNet classifier, in plain words."""
    return {
        "format": FORMAT,
        "model": name,
        "kind": "day-one",
        "file": file,
        "stage": "champion" if in_service else "day-one",
        "champion": in_service,
        "parent": None,
        "backbone": backbone_summary(backbone, None),
        **interface(len(words), int(backbone.get("embedding_dim", 1280))),
        "labels": words,
        "thresholds": dict.fromkeys(words, threshold),
        "training_data": {
            "description": "none on this platform: the backbone's ImageNet-1k classifier, each class "
            "mapped to plain words; a word's score is the sum of its classes' probabilities",
        },
        "metrics": {},
        "baseline": None,
        "gate": None,
        "exported_with": {"eyes": eyes_version()},
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def backbone_summary(card: dict[str, Any], trained_on: str | None) -> dict[str, Any]:
    sha = str(card.get("sha256", ""))
    return {
        "id": f"{card.get('name', 'backbone')}-{sha[:12]}",
        "name": card.get("name"),
        "sha256": sha,
        "source": card.get("source"),
        "trained_on": trained_on,
    }


def markdown(card: dict[str, Any]) -> str:
    """The card as a README for people."""
    file = card["file"]
    lines = [
        f"# Eyes model {card['model']}",
        "",
        _what(card),
        "",
        f"- file: `{file['name']}` ({file['bytes']:,} bytes, sha256 `{file['sha256']}`)",
        f"- stage on its platform: {card['stage']}{' (in service)' if card['champion'] else ''}",
        f"- parent version: {card.get('parent') or 'none'}",
        f"- backbone: {card['backbone']['id']}",
        f"- exported with Eyes {card['exported_with']['eyes']} at {card.get('exported_at')}",
        "",
        "## Input and outputs",
        "",
        f"Input `{INPUT_NAME}`: float32 (N, 3, 224, 224). Preprocessing: {preprocess.DESCRIPTION}. "
        "EXIF orientation is applied first, and large JPEGs are decoded at a reduced scale that keeps "
        "both sides at least 256 pixels (Pillow's `draft`), as Eyes does.",
        "",
        f"Output `{SCORES_NAME}`: float32 (N, {len(card['labels'])}), one probability per label in the "
        "order of the metadata's `labels`; a tag is shown when its score reaches its entry in "
        f"`thresholds`. Output `{OUTPUT_NAME}`: the features the scores come from.",
        "",
        "The file's metadata (`metadata_props`) carries `labels`, `thresholds` (JSON lists), `version`, "
        "`kind`, `backbone` and `preprocessing`.",
        "",
        "## Use it",
        "",
        "With nothing but `onnxruntime`, `numpy` and `Pillow`:",
        "",
        "```python",
        USAGE.format(file=file["name"]).rstrip(),
        "```",
        "",
    ]
    lines += _training(card) + _metrics(card) + _gate(card)
    return "\n".join(lines).rstrip() + "\n"


def _what(card: dict[str, Any]) -> str:
    kind = card["kind"]
    if kind == "day-one":
        return (
            "The day-one model: the pretrained backbone's own ImageNet classifier, its 1000 classes "
            f"mapped to {len(card['labels'])} plain words. Nothing was trained on this platform."
        )
    how = (
        "the top of the backbone fine-tuned with a linear head"
        if kind == "deep"
        else "a linear head (one sigmoid per tag) on the frozen backbone's embeddings"
    )
    return f"A tagger trained by its community's labels: {how}, for {len(card['labels'])} tags."


def _training(card: dict[str, Any]) -> list[str]:
    data = card.get("training_data") or {}
    if card["kind"] == "day-one":
        return ["## Training data", "", str(data.get("description", "")), ""]
    return [
        "## Training data",
        "",
        f"Trained on every training-grade label: {data.get('n_labelled_photos')} photos, "
        f"{data.get('n_positive')} yes and {data.get('n_negative')} no labels. Its evidence: "
        f"{data.get('n_held_out')} photos each scored by a model that did not train on them "
        f"({data.get('folds')} folds by content hash). Training set fingerprint: "
        f"`{data.get('training_set_fingerprint')}`.",
        "",
    ]


def _metrics(card: dict[str, Any]) -> list[str]:
    metrics = card.get("metrics") or {}
    if not metrics.get("per_tag"):
        return []
    lines = [
        "## Metrics (held-out photos)",
        "",
        f"Top-1 accuracy {_pct(metrics.get('accuracy'))}, macro-F1 {_num(metrics.get('macro_f1'))}, "
        f"mAP {_num(metrics.get('map'))}, on {metrics.get('held_out_photos')} photos.",
        "",
        "| tag | threshold | precision | recall | F1 | held-out positives |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in metrics["per_tag"].items():
        lines.append(
            f"| {_cell(name)} | {_num(m.get('threshold'))} | {_num(m.get('precision'))} | "
            f"{_num(m.get('recall'))} | {_num(m.get('f1'))} | {m.get('support')} |"
        )
    baseline = card.get("baseline") or {}
    if baseline.get("logistic_regression_accuracy") is not None:
        lines += [
            "",
            f"Next to a logistic regression on the frozen embeddings of the same labels, on the same "
            f"{baseline.get('n')} held-out photos: this model {_pct(baseline.get('candidate_accuracy'))}, "
            f"the baseline {_pct(baseline.get('logistic_regression_accuracy'))}.",
        ]
    return [*lines, ""]


def _gate(card: dict[str, Any]) -> list[str]:
    gate = card.get("gate") or {}
    if not gate:
        return []
    lines = ["## The promotion gate", "", str(gate.get("decision") or "no decision recorded"), ""]
    if gate.get("candidate_accuracy") is not None:
        lines += [
            f"Against {gate.get('champion')} on {gate.get('n')} photos and {len(gate.get('shared_tags') or [])} "
            f"shared tags: this model {_pct(gate.get('candidate_accuracy'))}, the champion "
            f"{_pct(gate.get('champion_accuracy'))}.",
            "",
        ]
    return lines


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "—"


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"


def _cell(text: str) -> str:
    """A tag name inside a Markdown table: a pipe would end its cell."""
    return text.replace("|", "\\|").replace("\n", " ")
