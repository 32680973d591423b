"""Console: charts as server-rendered SVG (no script), drawn from per-day counts.

Colours come from the shared style sheet through classes (.series-0, .series-1, ...),
so the charts follow light and dark mode; each bar has a <title>, which browsers show
on hover and screen readers read. The SVG scales to its container (viewBox)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT = 800, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 24  # room for the axis labels


def nice_max(value: float) -> int:
    """The top of the axis: four grid steps of a round whole size (1, 2, 5, 10, 20, ...)
    that reach value, so every grid line is a whole number."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if 4 * step * magnitude >= value:
                return 4 * step * magnitude
        magnitude *= 10


def frame(days: Sequence[date], top: int, label: str) -> list[str]:
    """The chart's opening tag, grid lines with their values, and the date labels."""
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(label)}">']
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{compact(value)}</text>')
    if days:
        for index, anchor in ((0, "start"), (len(days) // 2, "middle"),
                              (len(days) - 1, "end")):
            x = LEFT + (index + 0.5) * (WIDTH - LEFT - RIGHT) / len(days)
            parts.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 6}" '
                         f'text-anchor="{anchor}">{days[index]:%d %b}</text>')
    return parts


def compact(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def bars(days: Sequence[date], series: Sequence[tuple[str, Sequence[int]]],
         label: str) -> Markup:
    """Stacked bars, one per day; series are (name, count per day), bottom first."""
    totals = [sum(values[i] for _name, values in series) for i in range(len(days))]
    top = nice_max(max(totals, default=0) or 1)
    parts = frame(days, top, label)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(days), 1)
    for i, day in enumerate(days):
        y = TOP + plot_h
        for n, (name, values) in enumerate(series):
            if not values[i]:
                continue
            h = plot_h * values[i] / top
            y -= h
            parts.append(f'<rect class="series-{n}" x="{LEFT + i * step + step * 0.12:.1f}" '
                         f'y="{y:.1f}" width="{step * 0.76:.1f}" height="{h:.1f}">'
                         f'<title>{day:%Y-%m-%d}: {values[i]} {escape(name)}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line(days: Sequence[date], values: Sequence[int], label: str) -> Markup:
    """One series as a line over a filled area (a running total)."""
    top = nice_max(max(values, default=0) or 1)
    parts = frame(days, top, label)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(days), 1)
    points = [(LEFT + (i + 0.5) * step, TOP + plot_h - plot_h * v / top)
              for i, v in enumerate(values)]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        base = TOP + plot_h
        parts.append(f'<polygon class="area" points="{points[0][0]:.1f},{base} {path} '
                     f'{points[-1][0]:.1f},{base}"/>')
        parts.append(f'<polyline class="series-0 stroke" points="{path}"/>')
        for (x, y), day, value in zip(points, days, values, strict=True):
            parts.append(f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                         f'<title>{day:%Y-%m-%d}: {value}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))
