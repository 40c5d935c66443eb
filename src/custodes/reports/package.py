"""CSV files, the Frictionless ``datapackage.json`` that describes them, and the DSA payload.

Each table is a CSV file (RFC 4180: UTF-8, comma-separated, CRLF line ends, a header row of
column names). An empty field is a figure withheld or not applicable; ``<5`` is a suppressed
count. ``datapackage.json`` follows the Frictionless Data Package v1 specification: one
``tabular-data-resource`` per CSV file whose table schema lists every column with its type,
title and meaning, ``missingValues: ["", "<5"]`` (so ``<5`` reads as "not given" to any
Frictionless tool), the primary key, and the file's size and SHA-256; ``report.json`` and
``dsa-statements.json`` are listed as JSON resources. ``dsa-statements.json`` is the body of
a ``POST /api/v1/statements`` to the DSA Transparency Database.

>>> from custodes.reports.tables import TOTALS, Table, row_of
>>> t = Table(TOTALS, (row_of(TOTALS, [12, "<5", 5, 41.7, 0, 0, 0, 0, 0, 0, 0]),))
>>> format_csv(t).splitlines()[1]
b'12,<5,5,41.7,0,0,0,0,0,0,0'
>>> parse_csv(TOTALS, format_csv(t)) == t
True
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping

from custodes.reports.errors import ReportFormatError
from custodes.reports.model import Report
from custodes.reports.tables import SUPPRESSED, Cell, Column, Schema, Table, row_of

__all__ = ["format_csv", "format_datapackage", "format_statements", "parse_csv"]

_INTEGER = re.compile(r"-?(0|[1-9]\d*)")
_NUMBER = re.compile(r"-?\d+\.\d+(e[+-]\d+)?")


def _field(value: Cell) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def format_csv(table: Table) -> bytes:
    """The table as a CSV file."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in table.schema.columns])
    writer.writerows([_field(v) for v in row] for row in table.rows)
    return out.getvalue().encode()


def _parse_field(column: Column, text: str) -> Cell:
    if text == "":
        return None
    if column.suppressible and text == SUPPRESSED:
        return SUPPRESSED
    if column.type == "integer":
        if not _INTEGER.fullmatch(text):
            raise ReportFormatError(f"{column.name}: {text!r} is not an integer")
        return int(text)
    if column.type == "number":
        if not _NUMBER.fullmatch(text):
            raise ReportFormatError(f"{column.name}: {text!r} is not a number")
        return float(text)
    return text


def parse_csv(schema: Schema, raw: bytes) -> Table:
    """The inverse of :func:`format_csv` for a table of ``schema``."""
    try:
        lines = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error):
        raise ReportFormatError(f"{schema.path} is not a UTF-8 CSV file") from None
    names = [c.name for c in schema.columns]
    if not lines or lines[0] != names:
        raise ReportFormatError(f"{schema.path}: the header is not {','.join(names)}")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if len(line) != len(names):
            raise ReportFormatError(f"{schema.path} line {n} has {len(line)} fields")
        cells = [_parse_field(c, v) for c, v in zip(schema.columns, line, strict=True)]
        rows.append(row_of(schema, cells))
    return Table(schema, tuple(rows))


def format_statements(report: Report) -> bytes:
    """``dsa-statements.json``: the Transparency Database API's multiple-statements body."""
    doc = {"statements": [s.as_api() for s in report.statements]}
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()


def _resource_file(name: str, path: str, data: bytes) -> dict[str, object]:
    return {
        "name": name,
        "path": path,
        "bytes": len(data),
        "hash": "sha256:" + hashlib.sha256(data).hexdigest(),
    }


def _tabular(schema: Schema, data: bytes) -> dict[str, object]:
    fields = []
    for c in schema.columns:
        field: dict[str, object] = {
            "name": c.name,
            "type": c.type,
            "title": c.title,
            "description": c.description,
        }
        if c.type == "integer":
            field["constraints"] = {"minimum": 0}
        fields.append(field)
    table_schema: dict[str, object] = {"fields": fields, "missingValues": ["", SUPPRESSED]}
    if schema.key:
        table_schema["primaryKey"] = list(schema.key)
    return {
        **_resource_file(schema.name, schema.path, data),
        "profile": "tabular-data-resource",
        "title": schema.title,
        "description": schema.description,
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "dialect": {"delimiter": ",", "lineTerminator": "\r\n", "header": True},
        "schema": table_schema,
    }


def format_datapackage(report: Report, files: Mapping[str, bytes]) -> bytes:
    """``datapackage.json`` for the report's ``files`` (name to content)."""
    resources = [_tabular(t.schema, files[t.schema.path]) for t in report.tables]
    for name, path, title in (
        ("report", "report.json", "The whole report, as custodes-report/v1 JSON"),
        ("dsa_statements", "dsa-statements.json", "DSA statements of reasons (API format)"),
    ):
        resources.append(
            {
                **_resource_file(name, path, files[path]),
                "title": title,
                "format": "json",
                "mediatype": "application/json",
                "encoding": "utf-8",
            }
        )
    doc = {
        "profile": "data-package",
        "name": f"custodes-report-{str(report.period).lower()}",
        "title": f"Transparency report {report.period}: {report.origins}",
        "description": (
            f"Government demands received in {report.period}, computed from "
            + " and ".join(
                f"checkpoint {g.checkpoint.size} (root {g.checkpoint.root.hex()}) of the "
                f"transparency log {g.checkpoint.origin}"
                for g in report.logs
            )
            + "."
        ),
        "sources": [
            {"title": f"Transparency log {g.checkpoint.origin}", "path": g.source}
            for g in report.logs
        ],
        "resources": resources,
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
