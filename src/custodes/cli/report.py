"""``custodes report``: a transparency report from a published log, or ``--verify`` one.

Exit status: 0 when the report was written (or verified), 1 when the log does not verify or
a report differs from what its log gives (one line on stderr names the first difference), 2
when the command could not be run (bad period or policy, unreachable source).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from custodes.audit.policy import NONE, Policy, PolicyLog, parse_policy
from custodes.audit.source import open_source
from custodes.cli.output import console, fail, progress_bar
from custodes.errors import CustodesError
from custodes.reports import (
    compute_report,
    parse_period,
    render_report,
    verify_report,
    write_report,
)
from custodes.reports.errors import (
    ReportError,
    ReportFormatError,
    ReportMismatchError,
    UnverifiedLogError,
)
from custodes.tlog import TlogError

__all__ = ["report"]

EXIT_DIFFERS = 1
EXIT_ERROR = 2


@contextmanager
def _report_errors() -> Iterator[None]:
    try:
        yield
    except (ReportMismatchError, ReportFormatError, UnverifiedLogError) as exc:
        fail(exc.code, exc.detail, exit_code=EXIT_DIFFERS)
    except (CustodesError, TlogError) as exc:
        fail(exc.code, exc.detail, exit_code=EXIT_ERROR)
    except OSError as exc:
        fail("report_io", f"{exc.filename or ''}: {exc.strerror}", exit_code=EXIT_ERROR)


def _trust(policy: Path | None, vkey: str | None) -> Policy | None:
    if policy is not None and vkey is not None:
        raise ReportError("give --policy or --vkey, not both")
    if policy is not None:
        trust = parse_policy(policy.read_bytes())
        if not trust.logs:
            raise ReportError(f"{policy} names no log")
        return trust
    if vkey is not None:
        return Policy((PolicyLog(vkey),), (), (), NONE)
    return None


def report(
    source: Annotated[
        str | None,
        typer.Argument(
            help="The published log (a directory or an http(s) URL). With --verify, "
            "default: the source the report names."
        ),
    ] = None,
    *,
    period: Annotated[
        str | None,
        typer.Option(help="The period: 2026H1/2026H2, 2026Q1..2026Q4, or 2026."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the report into.")] = Path(
        "report"
    ),
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="c2sp.org/tlog-policy file: log key, witnesses, quorum."),
    ] = None,
    vkey: Annotated[
        str | None,
        typer.Option("--vkey", help="The log's verifier key, instead of a policy file."),
    ] = None,
    verify: Annotated[
        Path | None,
        typer.Option(
            "--verify",
            help="Recompute the report in this directory from its log; fail on any difference.",
        ),
    ] = None,
) -> None:
    """Transparency report of a period, from the published log alone (or --verify one)."""
    with _report_errors():
        trust = _trust(policy, vkey)
        with progress_bar() as bar:
            task = bar.add_task("reading the log", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            if verify is not None:
                if period is not None:
                    raise ReportError("--verify takes the period from the report")
                fetch = open_source(source) if source is not None else None
                checked = verify_report(verify, fetch=fetch, policy=trust, progress=advance)
            else:
                if source is None or period is None or trust is None:
                    raise ReportError("give SOURCE, --period and --policy (or --vkey)")
                made = compute_report(
                    open_source(source),
                    trust,
                    parse_period(period),
                    source=source,
                    progress=advance,
                )
        if verify is not None:
            cp = checked.report.checkpoint
            console.print(
                f"[bold green]verified[/]: {escape(str(verify))} is the report of "
                f"{checked.report.period} from {escape(cp.origin)} at size {cp.size}, "
                f"root {cp.root.hex()}"
            )
            if policy is None and vkey is None:
                console.print("note: checked with the trust policy the report names")
            if not checked.charts_compared:
                console.print("note: drawn by another custodes or matplotlib; charts not compared")
            return
        write_report(render_report(made), out)
    cp = made.checkpoint
    console.print(
        f"wrote the {made.period} report to {escape(str(out))}: {made.events} events, "
        f"checkpoint {escape(cp.origin)} size {cp.size} root {cp.root.hex()}"
    )
    if made.provisional:
        console.print("note: provisional, the log's latest event is before the period's end")
