"""The dashboard's charts draw what an administrator reads: a dot per value, named, and a line
only where there are two points to join. Pure functions; the pages that show them are tested in
tests/test_learning.py with a real training run."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from eyes.web.charts import bar_pairs, confusion_heatmap, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def chart_titles(page: str) -> list[str]:
    """The tooltips of every mark in the page's charts (a dot, a bar, a cell): what each says."""
    charts = re.findall(r'<svg class="chart".*?</svg>', page, flags=re.S)
    return [
        html.unescape(t)
        for chart in charts
        for t in re.findall(r"<(?:circle|rect)[^>]*><title>([^<]*)", chart)
    ]


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def texts(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text")]


def test_one_version_is_a_dot_with_its_value_and_name() -> None:
    svg = parse(
        line_chart(
            {"accuracy": [0.913], "logistic regression, same labels": [0.88]},
            title="Held-out top-1",
            y_max=1.0,
            x_label="version",
            x_names=["v1"],
        )
    )
    assert not list(svg.iter(f"{SVG}polyline")), "one point makes no line"
    dots = list(svg.iter(f"{SVG}circle"))
    assert [d.findtext(f"{SVG}title") for d in dots] == [
        "accuracy, v1: 0.913",
        "logistic regression, same labels, v1: 0.88",
    ]
    assert {"0.913", "0.88", "v1", "Held-out top-1"} <= set(texts(svg)), "values and version written out"
    # The lone version stands mid-axis, and the better figure higher up.
    assert dots[0].get("cx") == dots[1].get("cx")
    assert float(dots[0].get("cy", 0)) < float(dots[1].get("cy", 0))


def test_epochs_are_joined_by_a_line_and_a_missing_value_is_a_gap() -> None:
    svg = parse(
        line_chart({"train": [0.9, 0.5, 0.3], "validation": [None, 0.6, 0.4]}, title="Loss per epoch")
    )
    lines = list(svg.iter(f"{SVG}polyline"))
    assert [len(line.get("points", "").split()) for line in lines] == [3, 2]
    titles = [d.findtext(f"{SVG}title") for d in svg.iter(f"{SVG}circle")]
    assert titles == [
        "train, epoch 1: 0.9",
        "train, epoch 2: 0.5",
        "train, epoch 3: 0.3",
        "validation, epoch 2: 0.6",
        "validation, epoch 3: 0.4",
    ]
    heights = [float(d.get("cy", 0)) for d in svg.iter(f"{SVG}circle")][:3]
    assert heights == sorted(heights), "a falling loss is drawn falling"
    assert "epoch (1–3)" in texts(svg)


def test_nothing_to_draw_says_so() -> None:
    assert (
        str(line_chart({"train": []}, title="Loss per epoch"))
        == '<p class="empty">Loss per epoch: no data</p>'
    )
    assert str(line_chart({"train": [None]}, title="Loss")).endswith("no data</p>")
    assert "no confusion matrix" in str(confusion_heatmap([], []))


def test_bars_and_cells_name_their_tag_and_value() -> None:
    bars = str(bar_pairs({"leopards": (1.0, 0.5)}, labels=("precision", "recall")))
    assert chart_titles(bars) == ["leopards precision: 1.00", "leopards recall: 0.50"]
    widths = [
        float(r.get("width", 0)) for r in parse(bars).iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None
    ]
    assert widths[1] == widths[0] / 2
    cells = str(confusion_heatmap([[3, 1], [0, 4]], ["cats", "dogs"]))
    assert chart_titles(cells) == [
        "true cats, predicted cats: 3",
        "true cats, predicted dogs: 1",
        "true dogs, predicted cats: 0",
        "true dogs, predicted dogs: 4",
    ]
