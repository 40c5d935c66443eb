"""A report, and ``report.json``: the one file every other rendering is made from.

``report.json`` is UTF-8 JSON, two-space indented, members in this order::

    {"format": "custodes-report/v1",
     "period": "2026H2", "start": "2026-07-01T00:00:00Z", "end": "2027-01-01T00:00:00Z",
     "source": "https://platform.example/log/",       where the log was read
     "checkpoint": {"origin": ..., "size": 300, "root": HEX},   what it was computed from
     "policy": "log ...\\nquorum none\\n",            the c2sp.org/tlog-policy it was checked with
     "as_of": "2026-12-31T23:58:00Z",                 the latest event's time (null if none)
     "provisional": false,                            as_of is before the period's end
     "events": 1234, "entries_not_events": 0,
     "suppression": {"counts_below": 5, "shown_as": "<5"},
     "tables": {"totals": [{COLUMN: CELL, ...}], "demands": [...], ...},
     "dsa_statements_of_reasons": [{FIELD: VALUE, ...}, ...]}

A report merged from several logs (one deployment per data-residency region, each with its
own log) has, in place of ``source`` and ``checkpoint``, one member naming each log in the
order they were read::

     "logs": [{"source": "https://eu.platform.example/log/",
               "checkpoint": {"origin": ..., "size": 300, "root": HEX}}, ...],

Every table of :data:`~custodes.reports.tables.SCHEMAS` is present, its rows objects with
every column. :func:`parse_report_json` checks all of it (sizes first) and returns the
:class:`Report` that :func:`format_report_json` turns back into the same bytes.

>>> from custodes.tlog import Checkpoint
>>> from custodes.reports.period import parse_period
>>> read = LogRead("log/", Checkpoint("example/log", 0, bytes(32)))
>>> empty = Report(parse_period("2026H2"), (read,), "quorum none\\n", None, 0, 0, (), ())
>>> parse_report_json(format_report_json(empty)) == empty
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from custodes.reports.dsa import Statement, parse_statement
from custodes.reports.errors import ReportFormatError
from custodes.reports.period import Period, parse_period
from custodes.reports.tables import SCHEMAS, SUPPRESS_BELOW, SUPPRESSED, Table, row_of
from custodes.tlog import Checkpoint

__all__ = [
    "FORMAT",
    "MAX_LOGS",
    "MAX_REPORT_JSON",
    "LogRead",
    "Report",
    "ReportHeader",
    "format_report_json",
    "parse_report_header",
    "parse_report_json",
]

FORMAT = "custodes-report/v1"
MAX_REPORT_JSON = 512 * 1024 * 1024
"""The largest ``report.json`` read, checked before parsing."""
MAX_LOGS = 64
"""The most logs one report merges: one per data-residency region."""
_TIME = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class LogRead:
    """One log a report was computed from: where it was read, and the checkpoint of the
    entries counted (its origin, size and root)."""

    source: str
    checkpoint: Checkpoint


@dataclass(frozen=True)
class Report:
    """The figures of one period, and the checkpoint of each log they were computed from
    (one, or one per data-residency region for a merged report)."""

    period: Period
    logs: tuple[LogRead, ...]
    policy: str
    as_of: datetime | None
    events: int
    not_events: int
    tables: tuple[Table, ...]
    statements: tuple[Statement, ...]

    @property
    def origins(self) -> str:
        """The origins of the logs, as the page and the data package title them."""
        return ", ".join(log.checkpoint.origin for log in self.logs)

    @property
    def provisional(self) -> bool:
        """True when the log's latest event is before the period's end: more may come."""
        return self.as_of is None or self.as_of < self.period.end

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)


def _time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(_TIME)


def _checkpoint_json(cp: Checkpoint) -> dict[str, Any]:
    return {"origin": cp.origin, "size": cp.size, "root": cp.root.hex()}


def _logs_json(logs: tuple[LogRead, ...]) -> dict[str, Any]:
    if len(logs) == 1:
        return {"source": logs[0].source, "checkpoint": _checkpoint_json(logs[0].checkpoint)}
    return {
        "logs": [{"source": g.source, "checkpoint": _checkpoint_json(g.checkpoint)} for g in logs]
    }


def format_report_json(report: Report) -> bytes:
    """``report.json`` for ``report`` (see the module docstring)."""
    doc = {
        "format": FORMAT,
        "period": str(report.period),
        "start": _time(report.period.start),
        "end": _time(report.period.end),
        **_logs_json(report.logs),
        "policy": report.policy,
        "as_of": None if report.as_of is None else _time(report.as_of),
        "provisional": report.provisional,
        "events": report.events,
        "entries_not_events": report.not_events,
        "suppression": {"counts_below": SUPPRESS_BELOW, "shown_as": SUPPRESSED},
        "tables": {t.name: t.records() for t in report.tables},
        "dsa_statements_of_reasons": [s.as_api() for s in report.statements],
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _get(doc: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ReportFormatError(f"report.json: {name} is missing or of the wrong type")
    return value


def _parse_time(text: Any, name: str) -> datetime:
    try:
        return datetime.strptime(text, _TIME).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        raise ReportFormatError(
            f"report.json: {name} is not a time like 2026-07-01T00:00:00Z"
        ) from None


def _tables(doc: dict[str, Any]) -> tuple[Table, ...]:
    raw = _get(doc, "tables", dict)
    if list(raw) != [n for n in SCHEMAS if n in raw] or set(raw) - set(SCHEMAS):
        raise ReportFormatError("report.json: unknown tables, or tables out of order")
    tables = []
    for name, records in raw.items():
        schema = SCHEMAS[name]
        names = [c.name for c in schema.columns]
        if not isinstance(records, list):
            raise ReportFormatError(f"report.json: table {name} is not a list of rows")
        rows = []
        for record in records:
            if not isinstance(record, dict) or list(record) != names:
                raise ReportFormatError(f"report.json: a row of {name} has other columns")
            try:
                rows.append(row_of(schema, list(record.values())))
            except ReportFormatError as exc:
                raise ReportFormatError(f"report.json: table {name}: {exc.detail}") from None
        tables.append(Table(schema, tuple(rows)))
    return tuple(tables)


def _checkpoint(doc: dict[str, Any]) -> Checkpoint:
    cp = _get(doc, "checkpoint", dict)
    try:
        root = bytes.fromhex(_get(cp, "root", str))
    except ValueError:
        raise ReportFormatError("report.json: checkpoint root is not hex") from None
    size = _get(cp, "size", int)
    if len(root) != 32 or size < 0:
        raise ReportFormatError("report.json: checkpoint size or root out of range")
    return Checkpoint(_get(cp, "origin", str), size, root)


def _logs(doc: dict[str, Any]) -> tuple[LogRead, ...]:
    if "logs" not in doc:
        return (LogRead(_get(doc, "source", str), _checkpoint(doc)),)
    raw = _get(doc, "logs", list)
    if not 2 <= len(raw) <= MAX_LOGS:
        raise ReportFormatError(f"report.json: logs names 2 to {MAX_LOGS} logs")
    logs = []
    for item in raw:
        if not isinstance(item, dict):
            raise ReportFormatError("report.json: each of logs is {source, checkpoint}")
        logs.append(LogRead(_get(item, "source", str), _checkpoint(item)))
    if len({g.checkpoint.origin for g in logs}) != len(logs):
        raise ReportFormatError("report.json: logs names one log twice")
    return tuple(logs)


@dataclass(frozen=True)
class ReportHeader:
    """What a report says it was computed from: enough to compute it again."""

    period: Period
    logs: tuple[LogRead, ...]
    policy: str


def _load(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_REPORT_JSON:
        raise ReportFormatError(f"report.json is over {MAX_REPORT_JSON} bytes")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ReportFormatError("report.json is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ReportFormatError(f"report.json is not a {FORMAT} report")
    return doc


def _header(doc: dict[str, Any]) -> ReportHeader:
    return ReportHeader(
        parse_period(_get(doc, "period", str)), _logs(doc), _get(doc, "policy", str)
    )


def parse_report_header(raw: bytes) -> ReportHeader:
    """Only the period, logs (source and checkpoint of each) and policy of ``report.json``: what
    ``--verify`` needs to compute the report again and compare every byte."""
    return _header(_load(raw))


def parse_report_json(raw: bytes) -> Report:
    """Parse ``report.json`` strictly; raises :class:`ReportFormatError`."""
    doc = _load(raw)
    header = _header(doc)
    as_of = doc.get("as_of")
    statements = _get(doc, "dsa_statements_of_reasons", list)
    report = Report(
        header.period,
        header.logs,
        header.policy,
        None if as_of is None else _parse_time(as_of, "as_of"),
        _get(doc, "events", int),
        _get(doc, "entries_not_events", int),
        _tables(doc),
        tuple(parse_statement(s) for s in statements),
    )
    if format_report_json(report) != raw:
        raise ReportFormatError("report.json is not as custodes writes it (edited by hand?)")
    return report
