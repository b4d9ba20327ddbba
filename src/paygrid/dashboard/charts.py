"""Server-rendered SVG charts: pure functions from numbers to markup. Each chart carries a
title and a description for screen readers; pages also show the numbers as a table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40
# Distinguishable, and at least 3:1 against white (WCAG non-text contrast).
PALETTE = ("#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]


def _frame(chart_id: str, title: str, description: str, body: list[str]) -> Markup:
    head = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every text part is escaped


def _axes(top_value: float, labels: Sequence[str], fmt: Callable[[float], str]) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        'stroke="#4b5563"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#4b5563"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#1f2937">{escape(fmt(top_value * fraction))}</text>'
        )
    step = max(1, len(labels) // 6)
    for index in range(0, len(labels), step):
        parts.append(
            f'<text x="{_x(index, len(labels)):.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="middle" font-size="11" fill="#1f2937">{escape(labels[index])}</text>'
        )
    return parts


def _x(index: int, count: int) -> float:
    plot_w = WIDTH - LEFT - RIGHT
    return LEFT + (plot_w * (index + 0.5) / max(count, 1))


def _y(value: float, top_value: float) -> float:
    plot_h = HEIGHT - TOP - BOTTOM
    return TOP + plot_h * (1 - (value / top_value if top_value else 0))


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    top_value: float | None = None,
) -> Markup:
    """One line (with a dot per point) for each series over the same x labels, and a
    legend."""
    peak = top_value or max((max(s.values, default=0) for s in series), default=0) or 1
    body = _axes(peak, labels, fmt)
    for number, line in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        points = [(_x(i, len(labels)), _y(v, peak)) for i, v in enumerate(line.values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points)
        legend_x = LEFT + 8 + number * 120
        body.append(
            f'<rect x="{legend_x}" y="{TOP}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{TOP + 9}" font-size="11" fill="#1f2937">'
            f"{escape(line.name)}</text>"
        )
    return _frame(chart_id, title, description, body)


def bar_chart(
    chart_id: str, title: str, description: str, bars: Sequence[tuple[str, float]]
) -> Markup:
    """One bar per label, its value written above it."""
    peak = max((v for _, v in bars), default=0) or 1
    body = _axes(peak, [label for label, _ in bars], lambda v: f"{v:g}")
    plot_w = WIDTH - LEFT - RIGHT
    width = plot_w / max(len(bars), 1) * 0.6
    for index, (_label, value) in enumerate(bars):
        x = _x(index, len(bars)) - width / 2
        y = _y(value, peak)
        body.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{PALETTE[0]}"/>'
            f'<text x="{x + width / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="11" '
            f'fill="#1f2937">{escape(f"{value:g}")}</text>'
        )
    return _frame(chart_id, title, description, body)
