"""The audit: from a policy, a remembered checkpoint and the published files, a report.

:func:`audit_log` does, in order:

1. read ``checkpoint`` and verify it against the tlog-policy: a log of the policy signed it,
   every listed witness's cosignature verifies, the quorum is met
   (:func:`~custodes.audit.policy.verify_checkpoint`);
2. load the last checkpoint this auditor accepted for that log (the state file);
3. rebuild the whole tree from the entry bundles, compare every tile, and replay every event
   through the checks (:func:`~custodes.audit.logcheck.rebuild_log`,
   :class:`~custodes.audit.checks.Replay`);
4. prove the new tree consistent with the remembered checkpoint, from the tiles of the tree
   that leads to the new root; a smaller tree is a ``rollback``, an inconsistent one a
   ``fork``, and the cached leaf hashes of the remembered tree name the first entry that
   differs;
5. remember the new checkpoint if every check of the log passed.

Findings about events are reported only when the entries themselves verified against the
checkpoint: events from a tampered copy prove nothing about the platform.

Step 3 runs with Python's cycle collector paused (:func:`collector_paused`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from custodes.audit.checks import Check, Replay
from custodes.audit.findings import Finding
from custodes.audit.logcheck import Fetch, MissingFileError, Progress, RebuiltLog, rebuild_log
from custodes.audit.policy import Policy, verify_checkpoint
from custodes.audit.shards import ShardedReplay
from custodes.audit.state import SeenLog, first_difference, load_state, save_state
from custodes.tlog import Checkpoint, ProofError, check_consistency, prove_consistency
from custodes.tlog.encoding import encode_base64

__all__ = ["AuditReport", "audit_log", "collector_paused"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditReport:
    """The outcome of one audit."""

    checkpoint: Checkpoint | None
    cosigners: tuple[str, ...]
    previous: Checkpoint | None
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]
    events: int
    tiles_checked: int
    state_saved: bool
    note: bytes | None = None
    """The checkpoint note as the source served it, signatures included (None: not served)."""

    @property
    def clean(self) -> bool:
        return not self.findings

    @property
    def log_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.part == "log")

    @property
    def event_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.part == "events")

    def as_dict(self) -> dict[str, Any]:
        """The report as ``custodes audit --json`` prints it (docs/auditing.md)."""
        cp, seen = self.checkpoint, self.previous
        return {
            "clean": self.clean,
            "checkpoint": None
            if cp is None
            else {"origin": cp.origin, "size": cp.size, "root": cp.root.hex()},
            "cosigners": list(self.cosigners),
            "previous": None if seen is None else {"size": seen.size, "root": seen.root.hex()},
            "events": self.events,
            "findings": [
                {
                    "code": f.code,
                    "title": f.title,
                    "detail": f.detail,
                    "entries": list(f.entries),
                    "demand": f.demand,
                    "evidence": dict(f.evidence),
                }
                for f in self.findings
            ],
            "notes": list(self.notes),
            "state_saved": self.state_saved,
        }


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector paused for the duration, and restored as it was.

    The replay keeps a little state per demand and check, for the whole log, and makes no
    reference cycles (a test holds it to that, malformed entries included): reference
    counting frees all it throws away. The collector would only walk that growing state
    again and again, at a quarter of the replay's time for a million events.

    What was made meanwhile is then handed to the oldest generation at once (``freeze``
    then ``unfreeze``, when nothing else is frozen), instead of being walked by the young
    collection that the first allocation after the pause would start: another 7% of the
    replay's time for a million events. It is walked again only in a full collection, as
    anything old is."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()


def _history_findings(seen: SeenLog, rebuilt: RebuiltLog, note: bytes) -> list[Finding]:
    """Rollback and fork against the remembered checkpoint, naming the first differing entry."""
    old, new = seen.checkpoint, rebuilt.checkpoint
    evidence: dict[str, object] = {
        "seen_checkpoint": seen.note.decode(),
        "checkpoint": note.decode(),
    }
    if new.size < old.size:
        code, detail = "rollback", f"the log has {new.size} entries; {old.size} were seen before"
    elif new.size == old.size:
        if new.root == old.root:
            return []
        code, detail = "fork", f"two checkpoints of size {new.size} with different roots"
    else:
        reader = rebuilt.reader
        if reader is None:
            return []  # the new tree does not even match its own checkpoint: reported already
        proof = prove_consistency(old.size, new.size, reader)
        try:
            check_consistency(proof, old.size, new.size, old.root, new.root)
        except ProofError as exc:
            code = "fork"
            detail = f"checkpoint {new.size} is inconsistent with checkpoint {old.size} seen before"
            evidence |= {"proof": [encode_base64(h) for h in proof], "reason": exc.detail}
        else:
            return []
    entries: tuple[int, ...] = ()
    if rebuilt.read_tile is not None:
        first = first_difference(seen, new.size, rebuilt.read_tile)
        if first is not None:
            entries = (first,)
            cached = seen.leaf_tile(first // 256)
            was = cached[first % 256 * 32 : first % 256 * 32 + 32].hex() if cached else "?"
            evidence["seen_leaf_hash"] = was
            gone = "is gone" if first >= new.size else "was changed, dropped or moved"
            detail += f"; entry {first} of the log seen before (leaf hash {was}) {gone}"
    return [Finding(code, detail, entries, evidence=evidence)]


def audit_log(
    fetch: Fetch,
    policy: Policy,
    *,
    state_path: Path | None = None,
    checks: Sequence[Check] = (),
    as_of: datetime | None = None,
    progress: Progress | None = None,
    remember: bool = True,
    jobs: int = 1,
) -> AuditReport:
    """Audit the log ``fetch`` reads, as the trust ``policy`` says; see the module docstring.

    ``state_path`` is the state file (None: remember nothing); ``checks`` are replayed over
    the events (none: the log alone is checked); ``as_of`` is the time deadlines are judged
    at (default: now); with ``remember`` False the state file is read but never replaced.
    With ``jobs`` above 1 the events are replayed by that many worker processes, split by
    demand (:mod:`custodes.audit.shards`); the report is the same."""
    try:
        note = fetch("checkpoint")
    except MissingFileError as exc:
        missing = Finding("file_missing", exc.detail, evidence={"path": "checkpoint"})
        return AuditReport(None, (), None, (missing,), (), 0, 0, False)
    verified, findings = verify_checkpoint(note, policy)
    if verified is None:
        return AuditReport(None, (), None, tuple(findings), (), 0, 0, False, note)
    cp = verified.checkpoint
    seen = load_state(state_path, policy, cp.origin) if state_path is not None else None
    replay: Replay | ShardedReplay | None = None
    replayed: list[Finding] = []
    notes: list[str] = []
    with collector_paused(), ExitStack() as stack:
        if checks and jobs > 1:
            replay = stack.enter_context(ShardedReplay(checks, jobs))
        elif checks:
            replay = Replay(checks)
        rebuilt = rebuild_log(fetch, cp, progress, replay.feed_bundle if replay else None)
        if replay is not None:
            # finished even so: a sharded replay counts its events from its workers' results
            found = replay.finish(as_of or datetime.now(UTC))
            if rebuilt.entries_verified:
                replayed = found
                notes += replay.notes()
            else:
                notes.append("events not checked: the entries do not verify against the checkpoint")
    findings += rebuilt.findings
    if seen is not None:
        findings += _history_findings(seen, rebuilt, note)
    findings += replayed
    saved = False
    if remember and state_path is not None and not any(f.part == "log" for f in findings):
        assert rebuilt.read_tile is not None
        if seen is None or seen.note != note:
            save_state(state_path, note, cp.size, rebuilt.read_tile)
            saved = True
    log.info("audited origin=%s size=%d findings=%d", cp.origin, cp.size, len(findings))
    return AuditReport(
        cp,
        verified.cosigners,
        seen.checkpoint if seen else None,
        tuple(findings),
        tuple(notes),
        replay.events if replay else 0,
        rebuilt.tiles_checked,
        saved,
        note,
    )
