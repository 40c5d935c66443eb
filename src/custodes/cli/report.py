"""``custodes report``: a transparency report from a published log, or ``--verify`` one.

Several logs (one per data-residency region) make one report: ``custodes report EU US
--period 2026H2 --policy FILE``, the policy naming every log (or ``--vkey`` once for each).

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

from custodes.audit.policy import Policy, keys_policy, parse_policy
from custodes.audit.source import opened, tls_context
from custodes.cli.audit import CaFile
from custodes.cli.output import console, fail, progress_bar
from custodes.errors import CustodesError
from custodes.reports import (
    Report,
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


def _trust(policy: Path | None, vkey: list[str] | None) -> Policy | None:
    if policy is not None and vkey:
        raise ReportError("give --policy or --vkey, not both")
    if policy is not None:
        trust = parse_policy(policy.read_bytes())
        if not trust.logs:
            raise ReportError(f"{policy} names no log")
        return trust
    if vkey:
        return keys_policy(vkey)
    return None


def report(
    source: Annotated[
        list[str] | None,
        typer.Argument(
            help="The published log (a directory or an http(s) URL), or several, one per "
            "region, for one report of them all. With --verify, default: the sources the "
            "report names."
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
        list[str] | None,
        typer.Option(
            "--vkey",
            help="The log's verifier key, instead of a policy file (once for each log).",
        ),
    ] = None,
    verify: Annotated[
        Path | None,
        typer.Option(
            "--verify",
            help="Recompute the report in this directory from its log; fail on any difference.",
        ),
    ] = None,
    ca_file: CaFile = None,
) -> None:
    """Transparency report of a period, from published logs alone (or --verify one)."""
    with _report_errors():
        trust = _trust(policy, vkey)
        tls = tls_context(ca_file) if ca_file else None
        with opened(source or (), tls=tls) as fetches, progress_bar() as bar:
            count = len(source or ())
            logs = {0: "the log(s) the report names", 1: "the log"}.get(count, f"{count} logs")
            task = bar.add_task(f"reading {logs}", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            if verify is not None:
                if period is not None:
                    raise ReportError("--verify takes the period from the report")
                checked = verify_report(
                    verify, fetch=fetches or None, policy=trust, progress=advance, tls=tls
                )
            else:
                if not source or period is None or trust is None:
                    raise ReportError("give SOURCE, --period and --policy (or --vkey)")
                made = compute_report(
                    list(zip(source, fetches, strict=True)),
                    trust,
                    parse_period(period),
                    progress=advance,
                )
        if verify is not None:
            console.print(
                f"[bold green]verified[/]: {escape(str(verify))} is the report of "
                f"{checked.report.period} from {_checkpoints(checked.report)}"
            )
            if policy is None and not vkey:
                console.print("note: checked with the trust policy the report names")
            if not checked.charts_compared:
                console.print("note: drawn by another custodes or matplotlib; charts not compared")
            return
        write_report(render_report(made), out)
    console.print(
        f"wrote the {made.period} report to {escape(str(out))}: {made.events} events "
        f"from {_checkpoints(made)}"
    )
    if made.provisional:
        console.print("note: provisional, the log's latest event is before the period's end")


def _checkpoints(report: Report) -> str:
    return "; ".join(
        f"{escape(g.checkpoint.origin)} at size {g.checkpoint.size}, root {g.checkpoint.root.hex()}"
        for g in report.logs
    )
