"""Transparency reports and EU exports, computed from the published log alone.

A report counts the government demands a period brought, per country and kind of authority,
from nothing but the published log, after verifying it as an auditor would; it names the
checkpoint it was computed from, so anyone can recompute it and compare
(:func:`~custodes.reports.build.verify_report`). docs/reports.md explains every figure.

- :mod:`~custodes.reports.build`: :func:`compute_report`, :func:`render_report`,
  :func:`write_report`, :func:`verify_report`
- :mod:`~custodes.reports.period`: reporting periods (``2026H2``, ``2026Q3``, ``2026``)
- :mod:`~custodes.reports.leaves`: a fast, equally strict leaf parser
- :mod:`~custodes.reports.tally`: the log replayed into one record per demand
- :mod:`~custodes.reports.figures` and :mod:`~custodes.reports.dsa`: the tables, and the DSA
  statements of reasons and orders table
- :mod:`~custodes.reports.tables`: every table and column, and small-number suppression
- :mod:`~custodes.reports.model`: the :class:`Report` and ``report.json``
- :mod:`~custodes.reports.package`, :mod:`~custodes.reports.charts`,
  :mod:`~custodes.reports.page`: CSV and ``datapackage.json``, charts, ``report.html``
- :mod:`~custodes.reports.errors`: what stops a report
"""

from custodes.reports.build import (
    FILES,
    Verified,
    compute_report,
    render_report,
    verify_report,
    write_report,
)
from custodes.reports.model import LogRead, Report, format_report_json, parse_report_json
from custodes.reports.period import Period, format_period, parse_period

__all__ = [
    "FILES",
    "LogRead",
    "Period",
    "Report",
    "Verified",
    "compute_report",
    "format_period",
    "format_report_json",
    "parse_period",
    "parse_report_json",
    "render_report",
    "verify_report",
    "write_report",
]
