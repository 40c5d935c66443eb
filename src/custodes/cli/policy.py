"""``custodes policy``: validate a policy pack and run its test cases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from custodes.cli.output import console, fail, reported_errors
from custodes.policy import load_pack, run_pack_tests

app = typer.Typer(help="The policy pack: validate it and run its test cases.", no_args_is_help=True)


@app.callback()
def policy() -> None:
    """The policy pack: validate it and run its test cases."""


@app.command("check")
def check(
    pack: Annotated[
        Path | None,
        typer.Option("--pack", help="Pack directory; default: the pack shipped with custodes."),
    ] = None,
) -> None:
    """Load the pack (schema, data files, rules), run tests/*.json, print a table of results.

    Exits non-zero when the pack does not load or any case fails.
    """
    with reported_errors():
        loaded = load_pack(pack)
    t = loaded.tables
    console.print(f"[bold]{loaded.name}[/] {loaded.version}  sha256:{loaded.hash}", soft_wrap=True)
    console.print(
        f"{len(loaded.rules)} rules, {len(t.jurisdictions.names)} jurisdictions, "
        f"{len(t.routes.all)} treaty routes, {len(t.offences)} offence categories, "
        f"{len(t.roles)} roles; schema valid"
    )
    results = run_pack_tests(loaded)
    table = Table(title=f"test cases ({len(results)})", show_lines=False)
    table.add_column("file")
    table.add_column("case")
    table.add_column("kind")
    table.add_column("got", overflow="fold")
    table.add_column("result")
    for r in results:
        status = "[green]pass[/]" if r.passed else "[bold red]FAIL[/]\n" + "\n".join(r.problems)
        table.add_row(r.file, r.name, r.kind, r.got, status)
    console.print(table)
    failed = [r for r in results if not r.passed]
    for r in failed:
        console.print(f"FAIL {r.file}: {r.name}: {'; '.join(r.problems)}", soft_wrap=True)
    if failed:
        fail("policy_check", f"{len(failed)} of {len(results)} pack test cases failed")
    if not results:
        fail("policy_check", "the pack has no test cases (tests/*.json)")
    console.print(f"[green]all {len(results)} cases pass[/]")
