"""Small server-side SVG charts for the model dashboard: no JavaScript library to load."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

COLOURS = ["#2f6fde", "#e07b00", "#2e7d32", "#c62828", "#6a1b9a"]


def line_chart(
    series: dict[str, list[float | None]],
    *,
    title: str,
    width: int = 460,
    height: int = 220,
    y_max: float | None = None,
    x_label: str = "epoch",
    x_names: list[str] | None = None,
) -> Markup:
    """Lines over x = 1..n (epochs, or versions named by `x_names`), one per series, with axes and
    a legend. Every point is a dot whose tooltip says its value; a series of one point (the first
    version, a one-epoch run) is its dot with the value written beside it, as a line needs two."""
    left, right, top, bottom = 44, 10, 26, 30
    values = [v for vs in series.values() for v in vs if v is not None]
    n = max((len(vs) for vs in series.values()), default=0)
    if not values or n == 0:
        return Markup(f'<p class="empty">{escape(title)}: no data</p>')
    hi = y_max if y_max is not None else max(values) * 1.05 or 1.0
    lo = 0.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def x_name(i: int) -> str:
        return x_names[i] if x_names is not None and i < len(x_names) else f"{x_label} {i + 1}"

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo or 1))

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1):
        v = lo + (hi - lo) * frac
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">{v:.2g}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 4}" class="tick" text-anchor="middle">{escape(x_label)} (1–{n})</text>'
    )
    if x_names is not None:  # the first and the last are named under the axis
        for i in sorted({0, n - 1}):
            parts.append(
                f'<text x="{x(i):.1f}" y="{top + plot_h + 14}" class="tick" text-anchor="middle">'
                f"{escape(x_name(i))}</text>"
            )
    for k, (name, vs) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = [(i, v) for i, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in points)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>')
        for i, v in points:
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}" class="mark">'
                f"<title>{escape(name)}, {escape(x_name(i))}: {v:.3g}</title></circle>"
            )
        if len(points) == 1:
            i, v = points[0]
            parts.append(
                # Side by side, so that equal values of two series stay readable.
                f'<text x="{x(i) + 6 + 36 * k:.1f}" y="{y(v) - 6:.1f}" class="tick value" fill="{colour}">{v:.3g}</text>'
            )
        parts.append(
            f'<rect x="{width - right - 110}" y="{top + 4 + 16 * k}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{width - right - 96}" y="{top + 13 + 16 * k}" class="tick">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_pairs(rows: dict[str, tuple[float, float]], *, labels: tuple[str, str], width: int = 460) -> Markup:
    """Two horizontal bars per row (e.g. precision and recall of each tag), 0 to 1."""
    row_h, left, right = 26, 130, 40
    height = 24 + row_h * len(rows)
    bar_w = width - left - right
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
    ]
    for k, label in enumerate(labels):
        parts.append(
            f'<rect x="{left + 120 * k}" y="4" width="10" height="10" fill="{COLOURS[k]}"/>'
            f'<text x="{left + 14 + 120 * k}" y="13" class="tick">{escape(label)}</text>'
        )
    for i, (name, (a, b)) in enumerate(rows.items()):
        y0 = 22 + i * row_h
        parts.append(
            f'<text x="{left - 6}" y="{y0 + 14}" class="tick" text-anchor="end">{escape(name[:18])}</text>'
        )
        for k, v in enumerate((a, b)):
            parts.append(
                f'<rect x="{left}" y="{y0 + 2 + 10 * k}" width="{bar_w * max(0.0, min(1.0, v)):.1f}" '
                f'height="9" fill="{COLOURS[k]}"><title>{escape(name)} {escape(labels[k])}: {v:.2f}</title></rect>'
            )
        parts.append(f'<text x="{left + bar_w + 4}" y="{y0 + 14}" class="tick">{a:.2f}/{b:.2f}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def confusion_heatmap(matrix: list[list[int]], labels: list[str], *, cell: int = 22) -> Markup:
    """True tags down, predicted tags across; darker is more photos."""
    n = len(labels)
    if n == 0:
        return Markup('<p class="empty">no confusion matrix</p>')
    left, top = 130, 110
    width, height = left + cell * n + 10, top + cell * n + 10
    peak = max((max(row) for row in matrix), default=1) or 1
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
    ]
    for j, name in enumerate(labels):
        cx = left + j * cell + cell / 2
        parts.append(
            f'<text transform="translate({cx + 4},{top - 6}) rotate(-60)" class="tick">{escape(name[:16])}</text>'
        )
    for i, row in enumerate(matrix):
        parts.append(
            f'<text x="{left - 6}" y="{top + i * cell + cell * 0.7}" class="tick" text-anchor="end">'
            f"{escape(labels[i][:18])}</text>"
        )
        for j, count in enumerate(row):
            shade = count / peak
            colour = f"rgba(47,111,222,{0.08 + 0.92 * shade:.2f})" if count else "#f3f3f1"
            parts.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{colour}"><title>true {escape(labels[i])}, predicted {escape(labels[j])}: {count}</title></rect>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
