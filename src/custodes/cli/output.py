"""The CLI's output layer: the only place custodes prints."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from custodes.errors import CustodesError
from custodes.tlog import TlogError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)


def fail(code: str, detail: str, exit_code: int = 1) -> NoReturn:
    """One line on stderr, then exit non-zero."""
    err_console.print(f"[bold red]error[/]{escape(f'[{code}]')}: {escape(detail)}", soft_wrap=True)
    raise typer.Exit(exit_code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn custodes' own errors into the CLI's one-line message."""
    try:
        yield
    except (CustodesError, TlogError) as exc:
        fail(exc.code, exc.detail)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=not sys.stderr.isatty(),
        disable=not sys.stderr.isatty(),
    )
