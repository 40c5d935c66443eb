"""``custodes log``: the log's key, proofs and offline verification."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from custodes.audit.logcheck import dir_fetcher, verify_log
from custodes.cli.output import console, fail, progress_bar, reported_errors
from custodes.deployment import open_deployment
from custodes.settings import load_settings
from custodes.tlog import Receipt, format_receipt, new_verifier

app = typer.Typer(help="The transparency log: key, proofs, verification.", no_args_is_help=True)

DataOpt = Annotated[Path, typer.Option("--data", help="Data directory.")]


@app.command("key")
def key(data: DataOpt = Path("data")) -> None:
    """Print the log's verifier key (signed-note vkey)."""
    with reported_errors():
        settings = load_settings(data)
        console.print(settings.vkey_path.read_text(encoding="utf-8").strip(), soft_wrap=True)


@app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(help="A data directory or its published log/.")],
    vkey: Annotated[
        str | None, typer.Option(help="Verifier key; default: the data directory's own.")
    ] = None,
) -> None:
    """Rebuild every tile and the root from the entry bundles and check the checkpoint."""
    with reported_errors():
        log_dir = directory / "log" if (directory / "log").is_dir() else directory
        if vkey is None:
            key_file = log_dir.parent / "keys" / "log.vkey"
            if not key_file.is_file():
                fail("usage", f"no verifier key at {key_file}: pass --vkey")
            vkey = key_file.read_text(encoding="utf-8").strip()
        verifier = new_verifier(vkey)
        with progress_bar() as bar:
            task = bar.add_task("verifying entries", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = verify_log(dir_fetcher(log_dir), verifier, progress=advance)
        cp = result.checkpoint
        console.print(
            f"ok: {cp.origin} size {cp.size} root {cp.root.hex()} "
            f"({result.tiles_checked} tiles rebuilt and matched)"
        )


@app.command("prove")
def prove(
    index: Annotated[int, typer.Argument(help="Entry index.", min=0)],
    data: DataOpt = Path("data"),
) -> None:
    """Print a tlog-proof receipt for one entry against the current checkpoint."""
    with reported_errors(), open_deployment(load_settings(data)) as dep:
        signed = dep.ledger.latest_checkpoint()
        if signed is None or index >= signed.checkpoint.size:
            size = 0 if signed is None else signed.checkpoint.size
            fail("not_found", f"entry {index} is not in the latest checkpoint (size {size})")
        proof = dep.sequencer.prove(index, signed.checkpoint.size)
        receipt = Receipt(index=index, proof=tuple(proof.hashes), checkpoint=signed.note)
        console.print(format_receipt(receipt), end="", soft_wrap=True)
