"""Evidence of an audit's findings that anyone can check without the rest of the log.

An audit names the entries that show each violation. A court, an oversight body or a
journalist given those entries must be able to tell that the platform really published them,
in that place of its one history, without fetching and rebuilding the whole log.
:func:`write_evidence` writes, into a directory of its own::

    checkpoint                 the signed checkpoint the audit verified, cosignatures included
    report.json                the audit's report, as ``custodes audit --json`` prints it
    entries/<N>                entry N, the bytes the log published
    entries/<N>.tlog-proof     a c2sp.org/tlog-proof receipt: entry N's inclusion in that
                               checkpoint

:class:`EvidenceChecker` (what ``custodes log check`` uses) checks receipts and their entries
against a tlog-policy, as the audit checked the checkpoint: a log of the policy signed it and its
witnesses' cosignatures meet the quorum; then the inclusion proof leads from the entry to the
checkpoint's root. Any other tlog-proof verifier can check the same files.

Receipts are written for the entries of findings about *events*. An audit reports those only
when the entries verified against the checkpoint, so each has a proof of inclusion. A finding
about the log's files names entries that do not verify, or a history seen before; there is
no proof of inclusion to give for those, and ``report.json`` holds their evidence (both
checkpoints of a fork or a rollback, the hashes that differ). Each proof is checked before it
is written, so a source that changed since the audit is refused
(:class:`~custodes.audit.errors.EvidenceError`) rather than recorded. The directory appears
whole or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from custodes.audit.auditor import AuditReport
from custodes.audit.errors import EvidenceError
from custodes.audit.logcheck import Fetch, LogVerificationError, Progress, reading
from custodes.audit.policy import Policy, VerifiedCheckpoint, verify_checkpoint
from custodes.tlog import (
    Checkpoint,
    FormatError,
    ProofError,
    Receipt,
    check_inclusion,
    format_receipt,
    leaf_hash,
    prove_inclusion,
)
from custodes.tlog.tiles import (
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    Tile,
    TileNodeReader,
    bundle_tile,
    format_tile_path,
    parse_bundle,
)

__all__ = [
    "MAX_EVIDENCE_ENTRIES",
    "RECEIPT_SUFFIX",
    "REMEMBERED_CHECKPOINTS",
    "CheckedEntry",
    "Evidence",
    "EvidenceChecker",
    "check_directory",
    "check_evidence",
    "evidence_entries",
    "keep_receipt",
    "write_evidence",
]

REMEMBERED_CHECKPOINTS = 16
"""Most verified checkpoint notes an :class:`EvidenceChecker` keeps."""
MAX_EVIDENCE_ENTRIES = 10_000
"""Most entries one evidence directory proves: the lowest-numbered, when findings name more."""
RECEIPT_SUFFIX = ".tlog-proof"


@dataclass(frozen=True)
class Evidence:
    """What :func:`write_evidence` wrote."""

    directory: Path
    proved: tuple[int, ...]
    """The entries written with a receipt, in order."""
    left_out: int
    """Entries findings name beyond :data:`MAX_EVIDENCE_ENTRIES`, not written."""


@dataclass(frozen=True)
class CheckedEntry:
    """An entry whose receipt verified: where it is, and under which checkpoint."""

    index: int
    checkpoint: Checkpoint
    cosigners: tuple[str, ...]


def evidence_entries(report: AuditReport) -> list[int]:
    """The distinct entries the report's findings about events name, in order."""
    return sorted({i for f in report.event_findings for i in f.entries})


Bundles = list[tuple[Tile, list[int]]]
"""Entry bundles of a tree, each with the indexes wanted from it."""


def _bundles_of(indexes: list[int], size: int) -> Bundles:
    """The bundles of a tree of ``size`` that hold ``indexes`` (in order), each with the
    indexes it holds."""
    return [
        (bundle_tile(n, min(TILE_WIDTH, size - n * TILE_WIDTH)), list(group))
        for n, group in groupby(indexes, lambda i: i // TILE_WIDTH)
    ]


def _files(bundles: Bundles) -> Iterator[str]:
    """The files proving the entries of ``bundles`` reads, in its order: each bundle, then
    its level-0 tile (the tiles above are few, and shared)."""
    for bundle, _ in bundles:
        yield format_tile_path(bundle)
        yield format_tile_path(Tile(0, bundle.index, bundle.width))


def _entries_of(
    fetch: Fetch, bundles: Bundles, progress: Progress | None
) -> Iterable[tuple[int, bytes]]:
    """(index, entry bytes) for each index of ``bundles``, each bundle fetched once."""
    for done, (bundle, wanted) in enumerate(bundles, 1):
        entries = parse_bundle(fetch(format_tile_path(bundle)), bundle.width)
        for i in wanted:
            yield i, entries[i - bundle.index * TILE_WIDTH]
        if progress is not None:
            progress(done, len(bundles))


def keep_receipt(directory: Path, index: int, entry: bytes, receipt: str) -> Path:
    """Write entry ``index`` and its receipt into ``directory`` as ``N`` and ``N.tlog-proof``,
    the pair ``custodes log check`` reads; returns the receipt's path."""
    (directory / str(index)).write_bytes(entry)
    path = directory / f"{index}{RECEIPT_SUFFIX}"
    path.write_text(receipt, encoding="utf-8")
    return path


def check_directory(directory: Path) -> None:
    """Refuse a directory that holds anything: evidence of one audit is kept on its own. (The
    CLI asks before the audit, so that a long audit is not run for nothing.)"""
    if directory.is_dir():
        if any(directory.iterdir()):
            raise EvidenceError(
                f"{directory} is not empty: evidence goes in a directory of its own"
            )
    elif directory.exists() or directory.is_symlink():
        raise EvidenceError(f"{directory} exists and is not a directory")


def write_evidence(
    fetch: Fetch, report: AuditReport, directory: Path, *, progress: Progress | None = None
) -> Evidence:
    """Write the evidence of ``report`` (an audit of the log ``fetch`` reads) into
    ``directory``, which must not exist or be empty; see the module docstring."""
    check_directory(directory)
    named = evidence_entries(report)  # findings about events: the entries verified
    proving = named[:MAX_EVIDENCE_ENTRIES]
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        if report.note is not None:
            (staging / "checkpoint").write_bytes(report.note)
        text = json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"
        (staging / "report.json").write_text(text, encoding="utf-8")
        if proving:
            assert report.checkpoint is not None and report.note is not None
            signed = (report.checkpoint, report.note)
            _write_receipts(fetch, signed, proving, staging, progress)
        if directory.is_dir():
            directory.rmdir()  # empty: checked above
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Evidence(directory, tuple(proving), len(named) - len(proving))


def _write_receipts(
    fetch: Fetch,
    signed: tuple[Checkpoint, bytes],
    indexes: list[int],
    staging: Path,
    progress: Progress | None,
) -> None:
    """Each entry of ``indexes`` and its receipt against ``signed`` (checkpoint, note), the
    files read ahead from a remote source."""
    entries_dir = staging / "entries"
    entries_dir.mkdir()
    bundles = _bundles_of(indexes, signed[0].size)
    try:
        with reading(fetch, _files(bundles)) as read:
            _prove_each(read, signed, bundles, entries_dir, progress)
    except (ProofError, LogVerificationError, FormatError) as exc:
        raise EvidenceError(
            f"the log's files no longer match the checkpoint audited ({exc.detail}): audit it again"
        ) from None


def _prove_each(
    read: Fetch,
    signed: tuple[Checkpoint, bytes],
    bundles: Bundles,
    entries_dir: Path,
    progress: Progress | None,
) -> None:
    """Each entry of ``bundles``, proved from the tiles ``read`` gives, checked against the
    checkpoint, and written beside its receipt."""
    cp, note = signed
    reader = TileNodeReader(lambda tile: read(format_tile_path(tile)), cp.size)
    for index, entry in _entries_of(read, bundles, progress):
        proof = prove_inclusion(index, cp.size, reader)
        check_inclusion(proof, index, cp.size, leaf_hash(entry), cp.root)
        receipt = Receipt(index=index, proof=tuple(proof), checkpoint=note)
        keep_receipt(entries_dir, index, entry, format_receipt(receipt))


class EvidenceChecker:
    """Checks receipts against one policy. Receipts of one audit share their checkpoint, so
    a checkpoint note is verified once (the signatures are most of a check's cost) and then
    remembered, up to :data:`REMEMBERED_CHECKPOINTS` of them."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._accepted: dict[bytes, VerifiedCheckpoint] = {}

    def _verified(self, note: bytes) -> VerifiedCheckpoint:
        verified = self._accepted.get(note)
        if verified is not None:
            return verified
        verified, findings = verify_checkpoint(note, self.policy)
        if verified is None or findings:
            reasons = "; ".join(f.detail for f in findings) or "no log of the policy signed it"
            raise EvidenceError(f"the receipt's checkpoint is not accepted: {reasons}")
        if len(self._accepted) >= REMEMBERED_CHECKPOINTS:
            self._accepted.clear()
        self._accepted[note] = verified
        return verified

    def check(self, receipt: Receipt, entry: bytes) -> CheckedEntry:
        """Check that ``entry`` is in a log the policy trusts, where ``receipt`` says; raises
        :class:`EvidenceError` naming what is wrong."""
        if len(entry) > MAX_ENTRY_SIZE:
            raise EvidenceError(f"the entry has {len(entry)} bytes; a log entry has at most 65535")
        verified = self._verified(receipt.checkpoint)
        cp = verified.checkpoint
        try:
            check_inclusion(receipt.proof, receipt.index, cp.size, leaf_hash(entry), cp.root)
        except ProofError as exc:
            raise EvidenceError(
                f"this is not entry {receipt.index} of the log at size {cp.size}: {exc.detail}"
            ) from None
        return CheckedEntry(receipt.index, cp, verified.cosigners)


def check_evidence(receipt: Receipt, entry: bytes, policy: Policy) -> CheckedEntry:
    """:meth:`EvidenceChecker.check` of one receipt."""
    return EvidenceChecker(policy).check(receipt, entry)
