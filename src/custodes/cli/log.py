"""``custodes log``: the log's key, proofs and offline verification."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from custodes.audit.evidence import RECEIPT_SUFFIX, EvidenceChecker, keep_receipt
from custodes.audit.logcheck import dir_fetcher, verify_log
from custodes.audit.policy import Policy, keys_policy, parse_policy
from custodes.cli.output import console, fail, progress_bar, reported_errors
from custodes.deployment import open_deployment
from custodes.errors import CustodesError
from custodes.events import parse_event
from custodes.settings import load_settings
from custodes.tlog import Receipt, TlogError, format_receipt, new_verifier, parse_receipt
from custodes.tlog.receipt import MAX_RECEIPT_SIZE
from custodes.tlog.tiles import MAX_ENTRY_SIZE

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
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the entry and its receipt into this directory, as N and "
            "N.tlog-proof (what custodes log check reads), instead of printing the receipt.",
        ),
    ] = None,
) -> None:
    """Print a tlog-proof receipt for one entry against the current checkpoint."""
    with reported_errors(), open_deployment(load_settings(data)) as dep:
        signed = dep.ledger.latest_checkpoint()
        if signed is None or index >= signed.checkpoint.size:
            size = 0 if signed is None else signed.checkpoint.size
            fail("not_found", f"entry {index} is not in the latest checkpoint (size {size})")
        proof = dep.sequencer.prove(index, signed.checkpoint.size)
        receipt = Receipt(index=index, proof=tuple(proof.hashes), checkpoint=signed.note)
        if out is None:
            console.print(format_receipt(receipt), end="", soft_wrap=True)
            return
        out.mkdir(parents=True, exist_ok=True)
        kept = keep_receipt(out, index, dep.ledger.entry(index), format_receipt(receipt))
        console.print(f"wrote {out / str(index)} and its receipt {kept}")


def _read_bounded(path: Path, most: int, what: str) -> bytes:
    with path.open("rb") as f:
        data = f.read(most + 1)
    if len(data) > most:
        raise ValueError(f"{what} {path} is over {most} bytes")
    return data


def _trust(policy: Path | None, vkey: str | None) -> Policy:
    """The policy a receipt's checkpoint must meet: the file, or the one log ``vkey`` names."""
    if (policy is None) == (vkey is None):
        fail("usage", "give one of --policy and --vkey", 2)
    if policy is not None:
        trust = parse_policy(policy.read_bytes())
        if not trust.logs:
            fail("usage", f"{policy} names no log", 2)
        return trust
    assert vkey is not None
    return keys_policy([vkey])


def _entry_path(receipt: Path, entry: Path | None) -> Path:
    if entry is not None:
        return entry
    if receipt.name.endswith(RECEIPT_SUFFIX) and len(receipt.name) > len(RECEIPT_SUFFIX):
        return receipt.with_name(receipt.name.removesuffix(RECEIPT_SUFFIX))
    fail("usage", f"{receipt} does not end in {RECEIPT_SUFFIX}: pass its entry with --entry", 2)


def _order(path: Path) -> tuple[int, int, str]:
    """Receipts named by entry index in the order of the log, any others after them."""
    stem = path.name.removesuffix(RECEIPT_SUFFIX)
    return (0, int(stem), "") if stem.isascii() and stem.isdigit() else (1, 0, path.name)


def _receipts_in(paths: list[Path]) -> list[Path]:
    """The receipts named: a file as it is; a directory, every ``*.tlog-proof`` in it or in
    its ``entries/`` (an evidence directory), in entry order."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        where = path / "entries" if (path / "entries").is_dir() else path
        receipts = sorted(where.glob(f"*{RECEIPT_SUFFIX}"), key=_order)
        if not receipts:
            fail("usage", f"no {RECEIPT_SUFFIX} files in {where}", 2)
        found += receipts
    return found


def _about(entry: bytes) -> str:
    """What the entry is, for the table: its event's kind, demand and time, if it is one."""
    try:
        event = parse_event(entry)
    except CustodesError:
        return "not an event"
    demand = f" {event.demand}" if event.demand else ""
    return f"{event.kind}{demand} {event.time:%Y-%m-%dT%H:%M:%SZ}"


def _check_one(
    checker: EvidenceChecker, receipt: Path, entry_path: Path
) -> tuple[tuple[str, str, str, str, str], str | None, str | None]:
    """One receipt checked: its table row, its failure line if it failed, and the checkpoint
    it verified against if it did."""
    index, size, about, reason, line = "?", "", "", "", None
    try:
        text = _read_bounded(receipt, MAX_RECEIPT_SIZE, "receipt").decode("utf-8")
        parsed = parse_receipt(text)
        index = str(parsed.index)
        data = _read_bounded(entry_path, MAX_ENTRY_SIZE, "entry")
        about = _about(data)
        checked = checker.check(parsed, data)
    except (TlogError, CustodesError) as exc:
        reason = exc.detail
    except UnicodeDecodeError:
        reason = "the receipt is not UTF-8 text"
    except OSError as exc:
        reason = f"{exc.filename}: {exc.strerror}"
    except ValueError as exc:
        reason = str(exc)
    else:
        cp = checked.checkpoint
        size = str(cp.size)
        witnesses = ", ".join(checked.cosigners) or "no witness"
        line = f"{cp.origin} size {cp.size} root {cp.root.hex()}, {witnesses}"
    result = "[red]fails[/]" if reason else "[green]verified[/]"
    row = (escape(str(receipt)), index, size, escape(about), result)
    return row, f"{receipt}: {reason}" if reason else None, line


@app.command("check")
def check(
    receipts: Annotated[
        list[Path],
        typer.Argument(
            help=f"tlog-proof receipts, or directories of them (an evidence directory); the "
            f"entry of N{RECEIPT_SUFFIX} is the file N beside it, as custodes audit --evidence "
            "writes them."
        ),
    ],
    policy: Annotated[
        Path | None,
        typer.Option(help="c2sp.org/tlog-policy file: the log's key, witnesses, quorum."),
    ] = None,
    vkey: Annotated[
        str | None, typer.Option(help="The log's verifier key, instead of a policy.")
    ] = None,
    entry: Annotated[
        Path | None, typer.Option(help="The entry's file, for a single receipt named otherwise.")
    ] = None,
) -> None:
    """Check receipts offline: each entry is in a log the policy trusts, where its receipt says.

    Exit status 0 when every receipt verifies, 1 when any does not, 2 when none could be
    checked (a malformed policy or key, no receipts)."""
    try:
        trust = _trust(policy, vkey)
        receipts = _receipts_in(receipts)
    except (CustodesError, TlogError) as exc:
        fail(exc.code, exc.detail, 2)
    except OSError as exc:
        fail("audit_io", f"{exc.filename}: {exc.strerror}", 2)
    if entry is not None and len(receipts) != 1:
        fail("usage", "--entry goes with a single receipt", 2)
    table = Table(title_justify="left")
    for column in ("receipt", "entry", "size", "event", "result"):
        table.add_column(column, overflow="fold")
    signed: set[str] = set()
    failures: list[str] = []
    checker = EvidenceChecker(trust)
    with progress_bar() as bar:
        task = bar.add_task("checking receipts", total=len(receipts))
        for receipt, entry_path in [(r, _entry_path(r, entry)) for r in receipts]:
            row, failure, line = _check_one(checker, receipt, entry_path)
            table.add_row(*row)
            if failure:
                failures.append(failure)
            if line:
                signed.add(line)
            bar.advance(task)
    for line in sorted(signed):
        console.print(f"checkpoint {escape(line)}")
    failed = len(failures)
    table.title = f"{len(receipts) - failed} of {len(receipts)} receipt(s) verified" + (
        f", {failed} failed" if failed else ""
    )
    console.print(table)
    for line in failures:
        console.print(f"[red]fails[/] {escape(line)}")
    if failed:
        raise typer.Exit(1)
