"""``report.html``: one self-contained page, tables and charts, made from the report alone.

The page names the checkpoint it was computed from and how to check it, shows the charts
(inline SVG, :mod:`~custodes.reports.charts`) and every table with the titles and meanings of
its columns, and says what suppression and the national-security delay hide. Its
``<meta name="generator">`` names the custodes and matplotlib versions that drew it, which
``--verify`` uses to decide whether the charts can be compared byte for byte.
"""

from __future__ import annotations

from datetime import timedelta
from html import escape
from importlib import metadata

from custodes.reports.charts import Chart
from custodes.reports.model import Report
from custodes.reports.tables import SUPPRESS_BELOW, SUPPRESSED, Cell, Table

__all__ = ["generator", "render_page"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f3f3f3;vertical-align:bottom}td.s,th.s{text-align:left}
dl.checkpoint{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.checkpoint dd{margin:0;font-family:monospace;word-break:break-all}
.note{background:#fff6dd;border-left:4px solid #e6b800;padding:.5em 1em}
figure.chart{margin:1em 0}figure.chart svg{max-width:100%;height:auto}
"""


def generator() -> str:
    """The software that drew the page, for ``<meta name="generator">``."""
    try:
        custodes = metadata.version("custodes")
    except metadata.PackageNotFoundError:
        custodes = "unknown"
    return f"custodes {custodes}; matplotlib {metadata.version('matplotlib')}"


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if value == SUPPRESSED:
        return f'<abbr title="from 1 to {SUPPRESS_BELOW - 1}">{escape(SUPPRESSED)}</abbr>'
    return escape(str(value))


def _table(table: Table) -> str:
    schema = table.schema
    head = "".join(
        f'<th class="{"s" if c.type == "string" else "n"}" title="{escape(c.description)}">'
        f"{escape(c.title)}</th>"
        for c in schema.columns
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"s" if c.type == "string" else "n"}">{_cell(v)}</td>'
            for c, v in zip(schema.columns, row, strict=True)
        )
        + "</tr>\n"
        for row in table.rows
    )
    empty = "" if table.rows else '<p class="empty">No rows for this period.</p>'
    return (
        f'<section id="table-{schema.name}"><h2>{escape(schema.title)}</h2>\n'
        f'<p>{escape(schema.description)} Data: <a href="{schema.path}">{schema.path}</a>.'
        f"</p>\n<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"
        f"{empty}</section>\n"
    )


def _logs(report: Report) -> str:
    """Each log: its origin, the checkpoint counted and where it was read."""
    return "".join(
        f"<dt>Log</dt><dd>{escape(g.checkpoint.origin)}</dd>"
        f"<dt>Checkpoint</dt><dd>size {g.checkpoint.size}, root {g.checkpoint.root.hex()}</dd>"
        f"<dt>Read from</dt><dd>{escape(g.source)}</dd>"
        for g in report.logs
    )


def _header(report: Report) -> str:
    p = report.period
    until = (p.end - timedelta(days=1)).date().isoformat()
    as_of = "no events" if report.as_of is None else report.as_of.strftime("%Y-%m-%d %H:%M UTC")
    note = (
        '<p class="note">Provisional: the log\'s latest event is before the end of the '
        "period, so later demands and outcomes are not counted yet.</p>\n"
        if report.provisional
        else ""
    )
    skipped = (
        f'<p class="note">{report.not_events} log entries are not well-formed events and '
        "are not counted; an audit of the log names them.</p>\n"
        if report.not_events
        else ""
    )
    return (
        f"<header><h1>Transparency report {escape(str(p))}</h1>\n"
        f"<p>Government demands received from {p.start.date().isoformat()} to {until} "
        f"(UTC), counted from the platform's public transparency {_alone(report)}.</p>\n"
        f'<dl class="checkpoint">{_logs(report)}'
        f"<dt>Latest event</dt><dd>{as_of}</dd>"
        f"<dt>Events read</dt><dd>{report.events}</dd></dl>\n{note}{skipped}</header>\n"
    )


def _alone(report: Report) -> str:
    if len(report.logs) == 1:
        return "log alone"
    return f"logs alone, one per region ({len(report.logs)}), each demand counted within its log"


def _method(report: Report) -> str:
    return (
        '<section id="method"><h2>How to read and check this report</h2>\n'
        f"<p>Counts from 1 to {SUPPRESS_BELOW - 1} are shown as "
        f"<code>{escape(SUPPRESSED)}</code> so that no small group of people can be singled "
        "out; shares and medians computed from "
        "such a count are left empty. National-security process appears only in its own "
        "table, in bands, once its statutory delay has passed.</p>\n"
        f"<p>The DSA statements of reasons ({len(report.statements)}) are in "
        '<a href="dsa-statements.json">dsa-statements.json</a>; every table is a CSV file '
        'described by <a href="datapackage.json">datapackage.json</a>, and '
        '<a href="report.json">report.json</a> holds it all.</p>\n'
        "<p>Anyone can recompute this report from the published log and compare: "
        "<code>custodes report --verify DIRECTORY</code>, where DIRECTORY holds these "
        "files.</p></section>\n"
    )


def render_page(report: Report, charts: list[Chart], drawn_by: str) -> bytes:
    """``report.html`` for ``report`` with ``charts``, naming ``drawn_by`` as generator."""
    figures = "".join(
        f'<figure class="chart" id="chart-{c.name}">{c.svg}'
        f"<figcaption>{escape(c.title)}</figcaption></figure>\n"
        for c in charts
    )
    tables = "".join(_table(t) for t in report.tables)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta name="generator" content="{escape(drawn_by)}">\n'
        f"<title>Transparency report {escape(str(report.period))}: "
        f"{escape(report.origins)}</title>\n<style>{_STYLE}</style></head>\n<body>\n"
        f"{_header(report)}"
        f'<section id="charts"><h2>Charts</h2>\n{figures}</section>\n'
        f"{tables}{_method(report)}</body></html>\n"
    )
    return page.encode()
