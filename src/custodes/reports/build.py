"""Making a report from a published log, writing its files, and verifying one.

:func:`compute_report` does, in order:

1. read ``checkpoint`` and verify it against the trust policy, exactly as ``custodes audit``
   does (:func:`~custodes.audit.policy.verify_checkpoint`: a log of the policy signed it, the
   witness quorum is met);
2. rebuild the whole tree from the entry bundles and check every tile and the root
   (:func:`~custodes.audit.logcheck.rebuild_log`), feeding each entry to a
   :class:`~custodes.reports.tally.Tally` on the way; any finding stops the report
   (:class:`~custodes.reports.errors.UnverifiedLogError`);
3. count the period (:mod:`~custodes.reports.figures`, :mod:`~custodes.reports.dsa`).

:func:`compute_report` reads several logs into one report as well (one deployment per
data-residency region, each with its own log): each is verified in turn against the same
trust policy, which names every log, and their demands are counted together, each within
its own log (:func:`~custodes.reports.tally.merged`).

:func:`render_report` turns the :class:`~custodes.reports.model.Report` into its files
(:data:`FILES`), and :func:`verify_report` recomputes a written report from the log it names:
each log must still verify, its first ``size`` entries (the report's checkpoint of it) must
still hash to the report's root, and every file must come out byte for byte the same. A log that
grew since is fine: the report is recomputed from the entries its checkpoint covers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custodes.audit.logcheck import Fetch, MissingFileError, Progress, rebuild_log
from custodes.audit.policy import Policy, format_policy, parse_policy, verify_checkpoint
from custodes.audit.source import opened
from custodes.reports.charts import render_charts
from custodes.reports.dsa import orders_table, statements_of_reasons
from custodes.reports.errors import (
    LogChangedError,
    ReportError,
    ReportFormatError,
    ReportMismatchError,
    UnverifiedLogError,
)
from custodes.reports.figures import demand_tables, national_security_table
from custodes.reports.model import (
    MAX_LOGS,
    MAX_REPORT_JSON,
    LogRead,
    Report,
    format_report_json,
    parse_report_header,
)
from custodes.reports.package import format_csv, format_datapackage, format_statements
from custodes.reports.page import generator, render_page
from custodes.reports.period import Period
from custodes.reports.tables import SCHEMAS
from custodes.reports.tally import Tally, merged
from custodes.tlog import Checkpoint, leaf_hash, root_of

__all__ = [
    "FILES",
    "Source",
    "Verified",
    "compute_report",
    "first_difference",
    "read_log",
    "render_report",
    "report_from",
    "verify_report",
    "write_report",
]

log = logging.getLogger(__name__)

FILES = (
    "report.json",
    *(s.path for s in SCHEMAS.values()),
    "dsa-statements.json",
    "datapackage.json",
    "report.html",
)
"""The files of a report directory, in the order ``--verify`` compares them."""
_MAX_CHART_SLACK = 64 * 1024 * 1024
_CHARTS = re.compile(r'(<figure class="chart" id="[^"]*">).*?(</figure>)', re.S)
_GENERATOR = re.compile(r'<meta name="generator" content="([^"]*)">')


def read_log(
    fetch: Fetch,
    policy: Policy,
    *,
    size: int | None = None,
    origin: str | None = None,
    progress: Progress | None = None,
) -> tuple[Checkpoint, Tally]:
    """Verify the log ``fetch`` reads and replay its first ``size`` entries (default: all).
    With ``origin``, the log must be that one (:class:`LogChangedError`).

    Returns the checkpoint of those entries (origin, size, root) and the tally."""
    cp = _open_log(fetch, policy, origin)
    return _replay_log(fetch, cp, _wanted(cp, size), progress)


def _open_log(fetch: Fetch, policy: Policy, origin: str | None) -> Checkpoint:
    """The log's checkpoint, verified against ``policy`` (and, given, its ``origin``)."""
    try:
        note = fetch("checkpoint")
    except MissingFileError as exc:
        raise UnverifiedLogError(exc.detail) from None
    verified, findings = verify_checkpoint(note, policy)
    if verified is None or findings:
        why = findings[0].detail if findings else "no log of the policy signed the checkpoint"
        raise UnverifiedLogError(f"the checkpoint does not verify: {why}")
    cp = verified.checkpoint
    if origin is not None and cp.origin != origin:
        raise LogChangedError(f"the log read is {cp.origin}, not {origin}", size=cp.size)
    return cp


def _wanted(cp: Checkpoint, size: int | None) -> int:
    """How many entries of the log of ``cp`` to count: ``size``, or all of them."""
    wanted = cp.size if size is None else size
    if wanted > cp.size:
        raise LogChangedError(
            f"the log has {cp.size} entries, fewer than the {wanted} the report was made from"
        )
    return wanted


def _replay_log(
    fetch: Fetch, cp: Checkpoint, wanted: int, progress: Progress | None
) -> tuple[Checkpoint, Tally]:
    """Rebuild the log of the verified ``cp`` and count its first ``wanted`` entries."""
    tally = Tally()
    hashes: list[bytes] | None = [] if wanted != cp.size else None

    def on_bundle(start: int, entries: list[bytes]) -> None:
        for index, entry in enumerate(entries[: max(0, wanted - start)], start):
            tally.feed(index, entry)
            if hashes is not None:
                hashes.append(leaf_hash(entry))

    rebuilt = rebuild_log(fetch, cp, progress, on_bundle)
    if rebuilt.findings:
        first = rebuilt.findings[0]
        raise UnverifiedLogError(
            f"the log does not verify: {first.code}: {first.detail}",
            finding=first.code,
            entries=list(first.entries),
        )
    root = cp.root if hashes is None else root_of(hashes)
    log.info("read log origin=%s size=%d events=%d", cp.origin, wanted, tally.events)
    return Checkpoint(cp.origin, wanted, root), tally


def report_from(tally: Tally, period: Period, logs: Sequence[LogRead], *, policy: str) -> Report:
    """The report of ``period`` from the replayed logs ``logs`` (the tally of several is
    :func:`~custodes.reports.tally.merged`)."""
    tables = [
        *demand_tables(tally, period),
        national_security_table(tally, period, tally.latest),
        orders_table(tally, period),
    ]
    order = list(SCHEMAS)
    tables.sort(key=lambda t: order.index(t.name))
    return Report(
        period,
        tuple(logs),
        policy,
        tally.latest,
        tally.events,
        tally.not_events,
        tuple(tables),
        tuple(statements_of_reasons(tally, period)),
    )


Source = tuple[str, Fetch]
"""A log to read: where it is (as the report names it), and the function that reads it."""


def _read_logs(
    sources: Sequence[Source],
    policy: Policy,
    claims: Sequence[Checkpoint | None],
    progress: Progress | None,
) -> tuple[list[LogRead], Tally]:
    """Verify every log's checkpoint (each log once), then replay each log in turn;
    ``claims`` are the checkpoints the logs must start with (None: all of any log), each
    checked as soon as its log is read. One progress runs over every log's entries."""
    if not 1 <= len(sources) <= MAX_LOGS:
        raise ReportError(f"a report is made from 1 to {MAX_LOGS} logs")
    opened: list[tuple[Checkpoint, int]] = []
    for (source, fetch), claim in zip(sources, claims, strict=True):
        cp = _open_log(fetch, policy, None if claim is None else claim.origin)
        if any(seen.origin == cp.origin for seen, _ in opened):
            raise ReportError(f"{source} is log {cp.origin} again: each log is read once")
        opened.append((cp, _wanted(cp, None if claim is None else claim.size)))
    everything = sum(cp.size for cp, _ in opened)
    logs: list[LogRead] = []
    tallies: list[tuple[str, Tally]] = []
    before = 0
    for (source, fetch), claim, (whole, wanted) in zip(sources, claims, opened, strict=True):

        def advance(done: int, total: int, before: int = before) -> None:
            if progress is not None:
                progress(before + done, everything)

        cp, tally = _replay_log(fetch, whole, wanted, advance)
        if claim is not None and cp.root != claim.root:
            where = f" (read from {source})" if len(sources) > 1 else ""
            raise LogChangedError(
                f"the first {cp.size} entries of log {cp.origin}{where} hash to "
                f"{cp.root.hex()}, not to the report's checkpoint root {claim.root.hex()}",
                size=cp.size,
            )
        logs.append(LogRead(source, cp))
        tallies.append((cp.origin, tally))
        before += whole.size
    return logs, merged(tallies)


def compute_report(
    fetch: Fetch | Sequence[Source],
    policy: Policy,
    period: Period,
    *,
    source: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """The report of ``period`` from the log ``fetch`` reads (named ``source``: where anyone
    can read it to verify the report), verified against ``policy``; or from several logs,
    each given as ``(source, fetch)``, every one verified against ``policy``, which names
    them all."""
    if callable(fetch):
        if source is None:
            raise ReportError("a report names where its log is read: give its source")
        sources = [(source, fetch)]
    else:
        sources = list(fetch)
    logs, tally = _read_logs(sources, policy, [None] * len(sources), progress)
    return report_from(tally, period, logs, policy=format_policy(policy).decode())


def render_report(report: Report, *, drawn_by: str | None = None) -> dict[str, bytes]:
    """Every file of the report, by name (see :data:`FILES`)."""
    files = {"report.json": format_report_json(report)}
    for table in report.tables:
        files[table.schema.path] = format_csv(table)
    files["dsa-statements.json"] = format_statements(report)
    files["datapackage.json"] = format_datapackage(report, files)
    charts = render_charts(report)
    files["report.html"] = render_page(report, charts, drawn_by or generator())
    return files


def write_report(files: Mapping[str, bytes], out: Path) -> None:
    """Write the files into the directory ``out`` (created if need be), each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, out / name)


@dataclass(frozen=True)
class Verified:
    """A report that verified; ``charts_compared`` is False when it was drawn by another
    custodes or matplotlib version, so its charts could not be compared byte for byte."""

    report: Report
    charts_compared: bool


def _json_difference(path: str, expected: Any, actual: Any) -> str | None:
    if type(expected) is not type(actual):
        return f"{path} is {json.dumps(actual)[:80]}, the log gives {json.dumps(expected)[:80]}"
    if isinstance(expected, dict):
        for key in expected.keys() | actual.keys():
            if key not in actual or key not in expected:
                return f"{path}.{key} is {'missing' if key not in actual else 'not expected'}"
        for key in expected:
            found = _json_difference(f"{path}.{key}", expected[key], actual[key])
            if found:
                return found
        return None
    if isinstance(expected, list):
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            found = _json_difference(f"{path}[{i}]", e, a)
            if found:
                return found
        if len(expected) != len(actual):
            return f"{path} has {len(actual)} items, the log gives {len(expected)}"
        return None
    if expected != actual:
        return f"{path} is {json.dumps(actual)[:80]}, the log gives {json.dumps(expected)[:80]}"
    return None


def _line_difference(name: str, expected: bytes, actual: bytes) -> str:
    want, got = expected.splitlines(), actual.splitlines()
    for n, (w, g) in enumerate(zip(want, got, strict=False), start=1):
        if w != g:
            if name.endswith(".csv"):
                header = want[0].decode(errors="replace").split(",")
                cells = zip(
                    w.decode().split(","), g.decode(errors="replace").split(","), strict=False
                )
                for column, (a, b) in zip(header, cells, strict=False):
                    if a != b:
                        return f"{name} line {n}, column {column}: {b!r}, the log gives {a!r}"
            return f"{name} line {n} differs from what the log gives"
    if len(want) != len(got):
        return f"{name} has {len(got)} lines, the log gives {len(want)}"
    return f"{name} differs from what the log gives (line ends or a final newline)"


def first_difference(name: str, expected: bytes, actual: bytes) -> str:
    """One line naming where ``actual`` first differs from ``expected`` (file ``name``)."""
    if name.endswith(".json"):
        try:
            found = _json_difference("$", json.loads(expected), json.loads(actual))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return f"{name} is not JSON"
        if found:
            return f"{name}: {found}"
        return f"{name} is formatted differently from what custodes writes"
    return _line_difference(name, expected, actual)


def _read(path: Path, limit: int) -> bytes | None:
    try:
        with path.open("rb") as f:
            return f.read(limit)
    except FileNotFoundError:
        return None


def _masked(page: bytes) -> bytes:
    text = _GENERATOR.sub("", page.decode(errors="replace"))
    return _CHARTS.sub(r"\1\2", text).encode()


def verify_report(
    report_dir: Path,
    *,
    fetch: Fetch | Sequence[Fetch] | None = None,
    policy: Policy | None = None,
    progress: Progress | None = None,
    tls: ssl.SSLContext | None = None,
) -> Verified:
    """Recompute the report in ``report_dir`` from its logs; raise on the first difference.

    ``fetch`` reads the report's log (for a report of several, one for each, in the report's
    order); it defaults to the sources the report names (an https one read with the TLS
    settings ``tls``), and ``policy`` to its recorded trust policy. Raises
    :class:`LogChangedError` when a log no longer starts with the report's checkpoint of it,
    :class:`ReportMismatchError` naming the first file and place that differs."""
    raw = _read(report_dir / "report.json", MAX_REPORT_JSON + 1)
    if raw is None:
        raise ReportFormatError(f"{report_dir} holds no report.json")
    claimed = parse_report_header(raw)
    trust = policy or parse_policy(claimed.policy.encode())
    named = [g.source for g in claimed.logs] if fetch is None else []
    with opened(named, tls=tls) as own:
        readers = own if fetch is None else [fetch] if callable(fetch) else list(fetch)
        if len(readers) != len(claimed.logs):
            raise ReportError(
                f"the report was made from {len(claimed.logs)} log(s); {len(readers)} given"
            )
        sources = [(g.source, reader) for g, reader in zip(claimed.logs, readers, strict=True)]
        logs, tally = _read_logs(sources, trust, [g.checkpoint for g in claimed.logs], progress)
    again = report_from(tally, claimed.period, logs, policy=claimed.policy)
    expected = render_report(again)
    compared = True
    for name in FILES:
        # one byte more than expected shows a longer file; charts drawn by another
        # matplotlib may be of any length, so a page is read in full (within reason)
        limit = len(expected[name]) + (_MAX_CHART_SLACK if name == "report.html" else 1)
        actual = _read(report_dir / name, limit)
        if actual is None:
            raise ReportMismatchError(f"{name} is missing from {report_dir}", file=name)
        want = expected[name]
        if name == "report.html":
            drawn = _GENERATOR.search(actual.decode(errors="replace"))
            if drawn is None or drawn.group(1) != generator():
                compared = False
                want, actual = _masked(want), _masked(actual)
        if actual != want:
            raise ReportMismatchError(first_difference(name, want, actual), file=name)
    return Verified(again, compared)
