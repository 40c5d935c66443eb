"""The report's charts: matplotlib figures drawn from the published tables, as inline SVG.

Each chart is drawn from a table of the report, never from the exact counts behind it, so a
chart shows nothing the tables do not. A suppressed count (``<5``) is drawn as a hatched bar
reaching 4, the most it can be, and labelled ``<5``. The SVG is deterministic for a given
matplotlib version (fixed id salt, no date, text kept as text), so ``--verify`` can compare
it byte for byte.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from custodes.reports.model import Report
from custodes.reports.tables import SUPPRESS_BELOW, SUPPRESSED, Cell

__all__ = ["Chart", "render_charts"]

_MAX_BARS = 30
_COLOURS = ("#3b6ea5", "#6aa84f", "#c0504d", "#e69138", "#8e7cc3", "#999999")
_RC: dict[str, Any] = {
    "svg.hashsalt": "custodes-report",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class Chart:
    """One chart: its id (``chart-NAME`` in the HTML), caption and SVG text."""

    name: str
    title: str
    svg: str


def _height(cell: Cell) -> tuple[float, bool]:
    if cell == SUPPRESSED:
        return float(SUPPRESS_BELOW - 1), True
    return (float(cell), False) if isinstance(cell, int | float) else (0.0, False)


def _bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[Cell]]], title: str) -> str:
    """Horizontal grouped bars, one group per label, one bar per series."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]  # keys typed as literals
        fig = Figure(figsize=(7.5, 1.2 + 0.32 * max(1, len(labels)) * len(series)))
        ax = fig.subplots()
        width = 0.8 / len(series)
        suppressed = False
        for s, (_, values) in enumerate(series):
            for i, cell in enumerate(values):
                height, hidden = _height(cell)
                y = len(labels) - 1 - i + (len(series) - 1 - s) * width - 0.4 + width / 2
                ax.barh(
                    y,
                    height,
                    height=width,
                    color=_COLOURS[s % len(_COLOURS)],
                    hatch="///" if hidden else None,
                    alpha=0.55 if hidden else 1.0,
                )
                suppressed = suppressed or hidden
                text = SUPPRESSED if hidden else "" if cell is None else str(cell)
                ax.text(height, y, f" {text}", va="center", fontsize=7)
        ax.set_yticks([len(labels) - 1 - i for i in range(len(labels))], list(labels))
        ax.set_title(title, loc="left")
        if not labels:
            ax.text(0.5, 0.5, "nothing to show for this period", ha="center", va="center")
            ax.set_yticks([])
        handles = [
            Patch(color=_COLOURS[s % len(_COLOURS)], label=name)
            for s, (name, _) in enumerate(series)
            if len(series) > 1
        ]
        if suppressed:
            handles.append(Patch(facecolor="white", hatch="///", label="<5 (drawn at 4)"))
        if handles:
            ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False)
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    return svg[svg.index("<svg") :]


def _column(report: Report, table: str, name: str) -> list[Cell]:
    t = report.table(table)
    i = [c.name for c in t.schema.columns].index(name)
    return [row[i] for row in t.rows]


def _by(report: Report, table: str, key: str, title: str) -> str:
    labels = [str(v) for v in _column(report, table, key)]
    series = [
        ("demands", _column(report, table, "demands")),
        ("with data produced", _column(report, table, "with_data_produced")),
        ("refused", _column(report, table, "refused")),
    ]
    return _bars(labels, series, title)


def _outcomes(report: Report) -> str:
    totals = report.table("totals")
    names = (
        *("demands", "with_data_produced", "refused", "narrowed", "challenged"),
        *("emergency", "preservation", "notices_delayed_by_gag"),
    )
    columns = [c.name for c in totals.schema.columns]
    row = totals.rows[0] if totals.rows else tuple(None for _ in columns)
    cells = [row[columns.index(n)] for n in names]
    return _bars([n.replace("_", " ") for n in names], [("all demands", cells)], "Outcomes")


def _restrictions(report: Report) -> str:
    table = report.table("restrictions")
    rows = sorted(table.rows, key=lambda r: -_height(r[4])[0])[:_MAX_BARS]
    labels = [f"{r[0]} {r[1]}: {r[2]} ({r[3]})" for r in rows]
    return _bars(labels, [("restrictions", [r[4] for r in rows])], "Restrictions")


def render_charts(report: Report) -> list[Chart]:
    """Every chart of ``report``, in the order the HTML shows them."""
    return [
        Chart(
            "demands-by-country",
            "Demands by the requesting authority's country",
            _by(report, "demands_by_country", "country", "Demands by country"),
        ),
        Chart(
            "demands-by-authority-kind",
            "Demands by kind of authority",
            _by(report, "demands_by_authority_kind", "authority_kind", "By authority kind"),
        ),
        Chart("outcomes", "What happened to the period's demands", _outcomes(report)),
        Chart(
            "restrictions",
            f"Restrictions by kind and territorial scope (largest {_MAX_BARS} rows)",
            _restrictions(report),
        ),
    ]
