"""Evidence of 10,000 named entries: ``custodes audit --evidence`` writing it, and
``custodes log check`` checking it, beside baselines measured in the same run.

A published log of :data:`SIZE` entries of about 390 bytes (the size of an event leaf); an
audit report whose findings name every tenth entry, :data:`NAMED` in all (the most one
evidence directory holds). Measured, each in turn:

- **read and hash the named entries** (baseline): each named entry's bundle read once, and the
  entry SHA-256'd: the least any reader of those entries pays;
- **write the evidence**: :func:`custodes.audit.evidence.write_evidence`, every entry with an
  inclusion proof made from the published tiles, checked, and written beside its receipt;
  its processor time is shown split into custodes' own (user) and the kernel's (system,
  mostly creating 20,000 files, which varies from run to run with the shared disk's state);
- **check each receipt on its own** (baseline): :func:`check_evidence` per receipt, as a
  verifier that keeps nothing between receipts does: the checkpoint's signatures verified
  every time;
- **check them as custodes log check does**: one :class:`EvidenceChecker`, which verifies a
  checkpoint note once and remembers it.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import console, publish_log, show
from custodes.audit.auditor import AuditReport
from custodes.audit.evidence import EvidenceChecker, check_evidence, write_evidence
from custodes.audit.findings import MAX_NAMED, Finding
from custodes.audit.logcheck import dir_fetcher
from custodes.audit.policy import NONE, Policy, PolicyLog, verify_checkpoint
from custodes.tlog import (
    TILE_WIDTH,
    Receipt,
    bundle_tile,
    format_tile_path,
    parse_bundle,
    parse_receipt,
)

ORIGIN = "bench.custodes.example/evidence"
SIZE = 100_000
NAMED = 10_000
ENTRY_BYTES = 390


def _leaves(n: int, seed: int = 9162) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(ENTRY_BYTES) for _ in range(n)]


def _report(root: Path, policy: Policy, named: list[int]) -> AuditReport:
    """A report of findings about events naming ``named``, :data:`MAX_NAMED` per finding, as
    an audit of the log in ``root`` would give it."""
    note = (root / "checkpoint").read_bytes()
    verified, problems = verify_checkpoint(note, policy)
    assert verified is not None and not problems
    findings = tuple(
        Finding("event_malformed", "named for the benchmark", tuple(named[i : i + MAX_NAMED]))
        for i in range(0, len(named), MAX_NAMED)
    )
    return AuditReport(verified.checkpoint, (), None, findings, (), 0, 0, False, note)


def _read_and_hash(root: Path, named: list[int]) -> float:
    start = time.perf_counter()
    read, entries = -1, []
    for i in named:  # in order: each bundle read once
        n = i // TILE_WIDTH
        if n != read:
            tile = bundle_tile(n, min(TILE_WIDTH, SIZE - n * TILE_WIDTH))
            read, entries = (
                n,
                parse_bundle((root / format_tile_path(tile)).read_bytes(), tile.width),
            )
        hashlib.sha256(b"\x00" + entries[i - n * TILE_WIDTH]).digest()
    return time.perf_counter() - start


def _check_all(out: Path, named: list[int], check: Callable[[Receipt, bytes], object]) -> float:
    pairs = [
        ((out / "entries" / f"{i}.tlog-proof").read_text(), (out / "entries" / str(i)).read_bytes())
        for i in named
    ]
    start = time.perf_counter()
    for text, entry in pairs:
        check(parse_receipt(text), entry)
    return time.perf_counter() - start


def bench_evidence() -> None:
    with tempfile.TemporaryDirectory(prefix="custodes-bench-evidence-") as tmp:
        root, out = Path(tmp) / "log", Path(tmp) / "evidence"
        console.print(f"publishing a log of {SIZE:,} entries")
        vkey = publish_log(root, _leaves(SIZE), ORIGIN)
        policy = Policy((PolicyLog(vkey),), (), (), NONE)
        named = list(range(0, SIZE, SIZE // NAMED))
        report = _report(root, policy, named)
        baseline = _read_and_hash(root, named)
        start, before = time.perf_counter(), os.times()
        written = write_evidence(dir_fetcher(root), report, out)
        writing, after = time.perf_counter() - start, os.times()
        assert len(written.proved) == NAMED
        alone = _check_all(out, named, lambda r, e: check_evidence(r, e, policy))
        checker = EvidenceChecker(policy)
        shared = _check_all(out, named, checker.check)
    rows: list[tuple[str, float, float]] = [
        ("read and hash the named entries (baseline)", baseline, baseline),
        ("write the evidence (audit --evidence)", writing, baseline),
        ("  its processor time in custodes", after.user - before.user, baseline),
        ("  the kernel's, creating the files", after.system - before.system, baseline),
        ("check each receipt on its own (baseline)", alone, alone),
        ("check them as custodes log check does", shared, alone),
    ]
    show(
        f"Evidence of {NAMED:,} entries named in a log of {SIZE:,}",
        ["measure", "seconds", "µs per entry", "/ its baseline"],
        [
            [name, f"{s:.2f}", f"{s / NAMED * 1e6:.0f}", f"{s / base:.1f}x"]
            for name, s, base in rows
        ],
    )
