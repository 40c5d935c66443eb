"""docs/reports.md keeps up with the code; the reports import only what an outsider has."""

from __future__ import annotations

import ast
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import typer
import typer.main

from custodes.cli.report import report
from custodes.reports import errors as report_errors
from custodes.reports.build import FILES
from custodes.reports.dsa import Statement
from custodes.reports.period import Period, format_period, parse_period
from custodes.reports.tables import SCHEMAS, share, suppress
from custodes.tlog import TlogError

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "src" / "custodes" / "reports"


@pytest.mark.parametrize(
    "name",
    sorted({c.name for s in SCHEMAS.values() for c in s.columns} | set(SCHEMAS)),
)
def test_every_table_and_column_is_explained(name: str) -> None:
    assert f"`{name}`" in DOCS, f"docs/reports.md does not explain {name}"


@pytest.mark.parametrize("name", [f.name for f in fields(Statement)])
def test_every_statement_of_reasons_field_is_explained(name: str) -> None:
    assert f"`{name}`" in DOCS


@pytest.mark.parametrize(
    "code",
    sorted(
        cls.code
        for cls in vars(report_errors).values()
        if isinstance(cls, type) and issubclass(cls, TlogError) and cls is not TlogError
    ),
)
def test_every_error_code_is_explained(code: str) -> None:
    assert f"| `{code}` |" in DOCS


@pytest.mark.parametrize("name", FILES)
def test_every_file_is_explained(name: str) -> None:
    assert f"`{name}`" in DOCS


def test_every_option_is_documented() -> None:
    app = typer.Typer()
    app.command("report")(report)
    app.command("other")(lambda: None)
    group = typer.main.get_command(app)
    command = group.commands["report"]  # type: ignore[attr-defined]
    options = [o for p in command.params for o in p.opts if o.startswith("--")]
    assert set(options) == {"--period", "--out", "--policy", "--vkey", "--verify", "--ca-file"}
    for option in options:
        assert f"`{option}" in DOCS, option


_ALLOWED = ("custodes.reports", "custodes.events", "custodes.audit", "custodes.tlog")


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_reports_import_only_the_published_events_audit_and_tlog(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        for name in names:
            top = name.split(".")[0]
            if top == "custodes":
                assert name.startswith(_ALLOWED), f"{path.name} imports {name}"
            else:
                assert top in sys.stdlib_module_names or top in ("matplotlib", "rich"), name


# -- periods and suppression, the small rules every figure rests on --------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026", "2026-01-01", "2027-01-01"),
        ("2026H1", "2026-01-01", "2026-07-01"),
        ("2026H2", "2026-07-01", "2027-01-01"),
        ("2026Q1", "2026-01-01", "2026-04-01"),
        ("2026Q3", "2026-07-01", "2026-10-01"),
        ("2026Q4", "2026-10-01", "2027-01-01"),
    ],
)
def test_periods_round_trip_and_span_their_months(text: str, start: str, end: str) -> None:
    period = parse_period(text)
    assert format_period(period) == text and str(period) == text
    assert (period.start.date().isoformat(), period.end.date().isoformat()) == (start, end)
    assert period.start in period and period.end not in period


@pytest.mark.parametrize(
    "text",
    [
        "2026H3",
        "2026Q0",
        "2026Q5",
        "2026H",
        "26H1",
        "2026 H1",
        "2026h2",
        " 2026",
        "2026H1 ",
        "1969",
        "20260",
        "2026H01",
        "+2026",
        "２０２６",
        "",
    ],
)
def test_periods_refuse_what_the_grammar_does_not_make(text: str) -> None:
    with pytest.raises(report_errors.PeriodError):
        parse_period(text)


def test_a_period_cannot_be_built_out_of_range() -> None:
    with pytest.raises(report_errors.PeriodError):
        Period(2026, "Q", 5)
    with pytest.raises(report_errors.PeriodError):
        Period(2026, "", 1)


def test_suppression_and_shares() -> None:
    assert [suppress(n) for n in range(7)] == [0, "<5", "<5", "<5", "<5", 5, 6]
    assert share(5, 8) == 62.5 and share(0, 9) == 0.0
    assert share(4, 9) is None and share(6, 4) is None and share(0, 0) is None
