"""Grouped bar charts as hand-written SVG, for the transparency page (no JavaScript).

One group of bars per period, one bar per series. A count published as ``<5`` (small-number
suppression, as in the transparency reports) is drawn as a hatched bar reaching 4, the most it
can be, and labelled ``<5``; every bar carries a ``<title>`` (a tooltip, and what a screen
reader announces) with its exact label. The SVG scales to its container (``viewBox``), takes
its fonts from the page's CSS and is the same for the same input.

>>> svg = render_bars("demo", "Demands", ["2026Q1", "2026Q2"],
...                   [Series("DE", (7, "<5")), Series("US", (0, 12))])
>>> svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and svg.count("<rect ") > 4
True
>>> "<title>2026Q2, DE: &lt;5 (from 1 to 4)</title>" in svg
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "SUPPRESSED", "Cell", "Series", "nice_step", "render_bars"]

SUPPRESSED = "<5"
"""How a count from 1 to 4 is published."""
_SUPPRESSED_HEIGHT = 4

Cell = int | str
"""A published count: a number, or :data:`SUPPRESSED`."""

PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#d55e00",
    "#cc79a7",
    "#56b4e9",
    "#7f7f7f",
    "#332288",
    "#882255",
)
"""Okabe-Ito colours (told apart with most colour-vision deficiencies), then two more."""

_WIDTH = 760
_PLOT_TOP = 24
_PLOT_HEIGHT = 220
_LEFT = 56
_RIGHT = 12
_LEGEND_ROW = 20


@dataclass(frozen=True)
class Series:
    """One bar in every group: its name (the legend) and one published count per group."""

    name: str
    values: tuple[Cell, ...]


def nice_step(top: float, ticks: int = 5) -> int:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` gridlines up to
    ``top``.

    >>> nice_step(4), nice_step(23), nice_step(180), nice_step(0)
    (1, 5, 50, 1)
    """
    if top <= ticks:
        return 1
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def _height(cell: Cell) -> tuple[int, bool]:
    if cell == SUPPRESSED:
        return _SUPPRESSED_HEIGHT, True
    return (cell, False) if isinstance(cell, int) else (0, False)


def _label(cell: Cell) -> str:
    return f"{SUPPRESSED} (from 1 to 4)" if cell == SUPPRESSED else str(cell)


def _axis(top: int, step: int, y_of: float) -> list[str]:
    parts = []
    for value in range(0, top + 1, step):
        y = _PLOT_TOP + _PLOT_HEIGHT - value * y_of
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>'
        )
    return parts


def _legend(ident: str, series: Sequence[Series], top: float) -> tuple[list[str], float]:
    parts, x, y = [], float(_LEFT), top
    for i, s in enumerate(series):
        width = 26 + 7.5 * len(s.name)
        if x + width > _WIDTH - _RIGHT and x > _LEFT:
            x, y = float(_LEFT), y + _LEGEND_ROW
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{colour}"/>'
            f'<text class="legend" x="{x + 17:.1f}" y="{y:.1f}">{escape(s.name)}</text>'
        )
        x += width
    parts.append(
        f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="url(#{ident}-hatch)"'
        f' class="suppressed"/><text class="legend" x="{x + 17:.1f}" y="{y:.1f}">'
        f"{escape(SUPPRESSED)}: from 1 to 4</text>"
    )
    return parts, y + _LEGEND_ROW


def render_bars(
    ident: str, title: str, groups: Sequence[str], series: Sequence[Series], unit: str = ""
) -> str:
    """An SVG grouped bar chart; ``ident`` makes its element ids unique within the page."""
    if any(len(s.values) != len(groups) for s in series):
        raise ValueError("every series has one value per group")  # a programming error
    tallest = max((_height(v)[0] for s in series for v in s.values), default=0)
    step = nice_step(tallest)
    top = max(step, math.ceil(tallest / step) * step)
    y_of = _PLOT_HEIGHT / top
    plot_width = _WIDTH - _LEFT - _RIGHT
    group_width = plot_width / max(1, len(groups))
    bar = min(36.0, group_width * 0.8 / max(1, len(series)))
    parts = _axis(top, step, y_of)
    for g, group in enumerate(groups):
        start = _LEFT + g * group_width + (group_width - bar * len(series)) / 2
        for i, s in enumerate(series):
            value, hidden = _height(s.values[g])
            h, x = value * y_of, start + i * bar
            y = _PLOT_TOP + _PLOT_HEIGHT - h
            fill = PALETTE[i % len(PALETTE)]
            tip = f"<title>{escape(group)}, {escape(s.name)}: {escape(_label(s.values[g]))}</title>"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                f'fill="{fill}">{tip}</rect>'
            )
            if hidden:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                    f'fill="url(#{ident}-hatch)" class="suppressed">{tip}</rect>'
                )
            shown = SUPPRESSED if hidden else str(value)
            if value or hidden:
                parts.append(
                    f'<text class="value" x="{x + (bar - 2) / 2:.1f}" y="{y - 4:.1f}" '
                    f'text-anchor="middle">{escape(shown)}</text>'
                )
        parts.append(
            f'<text class="group" x="{_LEFT + (g + 0.5) * group_width:.1f}" '
            f'y="{_PLOT_TOP + _PLOT_HEIGHT + 18}" text-anchor="middle">{escape(group)}</text>'
        )
    legend, height = _legend(ident, series, _PLOT_TOP + _PLOT_HEIGHT + 44)
    desc = f"{unit or 'counts'} per period ({', '.join(groups) or 'none'}), one bar per " + (
        ", ".join(s.name for s in series) or "series"
    )
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height:.0f}" '
        f'class="chart" role="img" aria-labelledby="{ident}-title {ident}-desc">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(desc)}</desc>'
        f'<defs><pattern id="{ident}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff" '
        f'fill-opacity="0.55"/><line x1="0" y1="0" x2="0" y2="6" stroke="#222222" '
        f'stroke-width="2"/></pattern></defs>'
        f'<line class="axis" x1="{_LEFT}" y1="{_PLOT_TOP + _PLOT_HEIGHT}" '
        f'x2="{_WIDTH - _RIGHT}" y2="{_PLOT_TOP + _PLOT_HEIGHT}"/>'
    )
    return head + "".join(parts) + "".join(legend) + "</svg>"
