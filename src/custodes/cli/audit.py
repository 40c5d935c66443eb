"""``custodes audit``: check a published log from the outside, against a trust policy.

Exit status: 0 when the log and its events are clean, 1 when the report lists any violation,
2 when the audit could not be run (bad policy or state file, unreachable source).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from custodes.audit.auditor import AuditReport, audit_log
from custodes.audit.cache import audit_cached, tile_cache
from custodes.audit.checks import default_checks
from custodes.audit.errors import AuditError, PolicyError
from custodes.audit.evidence import check_directory, write_evidence
from custodes.audit.logcheck import Fetch
from custodes.audit.openings import parse_disclosure
from custodes.audit.packs import load_published_pack
from custodes.audit.policy import parse_policy
from custodes.audit.shards import MAX_JOBS
from custodes.audit.source import UrlFetcher, opened, tls_context
from custodes.audit.state import default_state_path
from custodes.cli.output import console, err_console, fail, progress_bar
from custodes.errors import CustodesError
from custodes.tlog import TlogError

__all__ = ["CaFile", "audit"]

CaFile = Annotated[
    Path | None,
    typer.Option(
        "--ca-file",
        help="For an https source, trust only the CA certificates in this PEM file "
        "(default: the system's).",
    ),
]
"""The ``--ca-file`` option of every command that reads a published log."""

EXIT_VIOLATIONS = 1
EXIT_ERROR = 2


@contextmanager
def _audit_errors() -> Iterator[None]:
    try:
        yield
    except (CustodesError, TlogError) as exc:
        fail(exc.code, exc.detail, exit_code=EXIT_ERROR)
    except OSError as exc:
        fail("audit_io", f"{exc.filename or ''}: {exc.strerror}", exit_code=EXIT_ERROR)


def _as_of(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise AuditError(f"--as-of {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise AuditError("--as-of needs a time zone, e.g. 2026-07-01T00:00:00Z")
    return when.astimezone(UTC)


def _jobs(jobs: int) -> int:
    """The number of replay processes ``--jobs`` asks for (0: one per usable processor)."""
    if jobs == 0:
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else ()
        return max(1, min(len(usable) or os.cpu_count() or 1, MAX_JOBS))
    if not 1 <= jobs <= MAX_JOBS:
        raise AuditError(f"--jobs is 0 (one per processor) or 1 to {MAX_JOBS}, not {jobs}")
    return jobs


def _print_report(report: AuditReport, source: str, state: Path | None) -> None:
    cp = report.checkpoint
    if cp is not None:
        console.print(f"log      {escape(cp.origin)}  size {cp.size}  root {cp.root.hex()}")
        console.print(f"witness  {', '.join(report.cosigners) or 'none'}")
    seen = report.previous
    console.print(
        f"seen     {f'size {seen.size}, root {seen.root.hex()}' if seen else 'nothing before'}"
        f"{f' ({state})' if state else ''}"
    )
    console.print(f"checked  {report.tiles_checked} tiles, {report.events} events from {source}")
    for note in report.notes:
        console.print(f"[yellow]note[/]     {escape(note)}")
    if report.clean:
        console.print("[bold green]clean[/]: no violations")
        return
    table = Table(title=f"{len(report.findings)} violation(s)", title_justify="left")
    table.add_column("code", style="bold red", no_wrap=True)
    table.add_column("entries", no_wrap=True)
    table.add_column("what", overflow="fold")
    for f in report.findings:
        entries = ", ".join(map(str, f.entries[:8])) + (" …" if len(f.entries) > 8 else "")
        table.add_row(f.code, entries or "-", escape(f.detail))
    console.print(table)
    if report.log_findings and report.checkpoint is not None and not report.state_saved:
        console.print("the state file was left as it was: the log did not pass")


def audit(
    source: Annotated[str, typer.Argument(help="A published log: a directory or an http(s) URL.")],
    *,
    policy: Annotated[
        Path,
        typer.Option("--policy", help="c2sp.org/tlog-policy file: log key, witnesses, quorum."),
    ],
    state: Annotated[
        Path | None,
        typer.Option(help="State file (last checkpoint seen); default: one per log origin."),
    ] = None,
    no_state: Annotated[
        bool, typer.Option("--no-state", help="Neither read nor update any state file.")
    ] = False,
    disclosure: Annotated[
        Path | None,
        typer.Option(help="Openings the platform disclosed (JSON), to check who approved what."),
    ] = None,
    pack: Annotated[
        list[Path] | None,
        typer.Option(
            "--pack", help="A published policy pack (directory), to judge screenings again."
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge deadlines at this UTC time (default: now)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            help="Replay the events in this many worker processes, split by demand "
            "(0: one per processor). The report is the same.",
        ),
    ] = 1,
    ca_file: CaFile = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            help="For a log read over http(s), keep its full tiles and bundles in this "
            "directory and read them from there the next time (they never change).",
        ),
    ] = None,
    evidence: Annotated[
        Path | None,
        typer.Option(
            "--evidence",
            help="Write the checkpoint, the report, and each entry the findings name with its "
            "tlog-proof receipt, into this new directory (check them with custodes log check).",
        ),
    ] = None,
) -> None:
    """Audit a published log: checkpoint, witnesses, history, every tile, every event."""
    with _audit_errors():
        workers = _jobs(jobs)
        trust = parse_policy(policy.read_bytes())
        if not trust.logs:
            raise PolicyError(f"{policy} names no log")
        if no_state:
            state_path = None
        elif state is not None:
            state_path = state
        elif len(trust.logs) == 1:
            state_path = default_state_path(trust.logs[0].origin)
        else:
            raise PolicyError("the policy names several logs: pass --state (or --no-state)")
        disclosed = parse_disclosure(disclosure.read_bytes()) if disclosure else {}
        packs = [load_published_pack(p) for p in pack] if pack else None
        when = _as_of(as_of)
        if evidence is not None:
            check_directory(evidence)
        tls = tls_context(ca_file) if ca_file else None
        with opened([source], tls=tls) as (fetch,), progress_bar() as bar:
            kept = tile_cache(fetch, cache) if cache and isinstance(fetch, UrlFetcher) else None
            task = bar.add_task("rebuilding the tree", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            def run(read: Fetch) -> AuditReport:
                return audit_log(
                    read,
                    trust,
                    state_path=state_path,
                    checks=default_checks(disclosed, packs),
                    as_of=when,
                    progress=advance,
                    jobs=workers,
                )

            def again() -> None:
                bar.reset(task, description="rebuilding the tree again, from the source")

            report = run(fetch) if kept is None else audit_cached(kept, run, again)
            if evidence is not None:
                bar.reset(task, description="writing the evidence", total=None)
                written = write_evidence(kept or fetch, report, evidence, progress=advance)
    if kept is not None and not as_json:
        console.print(f"cache    {kept.hits} files read from {kept.directory}, {kept.stored} kept")
    elif cache is not None and not as_json:
        console.print("note: --cache is for a log read over http(s); a directory is read as is")
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
    else:
        _print_report(report, source, state_path)
    if evidence is not None:  # beside a JSON report, on standard error
        more = f" ({written.left_out} more named, not written)" if written.left_out else ""
        (err_console if as_json else console).print(
            f"evidence {len(written.proved)} entries with their receipts{more}, the checkpoint "
            f"and the report in {written.directory}"
        )
    if not report.clean:
        raise typer.Exit(EXIT_VIOLATIONS)
