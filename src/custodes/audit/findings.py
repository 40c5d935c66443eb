"""Findings: what an audit reports, each with a stable code and the entries that show it.

Every violation the auditor can report has a code in :data:`CODES`, with a one-line title and
the part of the audit that reports it (``log`` for the published files and checkpoints,
``events`` for the replay of the events). docs/auditing.md explains each one; a test fails if a
code is missing there. A :class:`Finding` names its code, says what is wrong in plain words and
lists the log entries (zero-based indexes) that are its evidence, so that anyone can fetch
those entries and see for themselves.

>>> f = Finding("missing_approvals", "demand d_1 was executed after 1 approval, 2 needed",
...             entries=(41, 44), demand="d_1")
>>> f.title, f.part, f.entries
('An effect without the approvals policy required', 'events', (41, 44))
>>> Finding("no_such_code", "x")
Traceback (most recent call last):
...
custodes.audit.errors.AuditError: unknown finding code 'no_such_code'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from custodes.audit.errors import AuditError

__all__ = ["CODES", "MAX_NAMED", "Code", "Finding"]

#: Most entries one finding names; its evidence then holds the full ``count``.
MAX_NAMED = 100


@dataclass(frozen=True)
class Code:
    """A finding code: its title, and which part of the audit reports it."""

    code: str
    title: str
    part: str


_CODES: dict[str, Code] = {}
CODES: Mapping[str, Code] = MappingProxyType(_CODES)
"""Every finding code, by name."""


def _code(code: str, part: str, title: str) -> None:
    _CODES[code] = Code(code, title, part)


# The published files and checkpoints.
_code("checkpoint_unverified", "log", "The checkpoint is not signed by a log the policy names")
_code("witness_cosignature", "log", "A witness's cosignature does not verify")
_code("witness_quorum", "log", "The checkpoint lacks the witness cosignatures the policy needs")
_code("rollback", "log", "The log is smaller than a checkpoint seen before")
_code("fork", "log", "The log is inconsistent with a checkpoint seen before")
_code("file_missing", "log", "A file the checkpoint commits to is not published")
_code("bundle_malformed", "log", "An entry bundle does not hold the entries it must")
_code("entry_mismatch", "log", "An entry does not match the hash the log committed to")
_code("tile_mismatch", "log", "A published hash tile differs from the entries")
_code("root_mismatch", "log", "Neither entries nor tiles lead to the checkpoint's root")
# The events.
_code("event_malformed", "events", "An entry is not a well-formed event")
_code("unknown_demand", "events", "An event about a demand that was never received")
_code("unscreened_effect", "events", "An effect on a demand that policy never screened")
_code("unapproved_effect", "events", "An effect on a demand that was never approved")
_code("effect_after_refusal", "events", "An effect on a demand that was refused")
_code("missing_approvals", "events", "An effect without the approvals policy required")
_code("missing_role", "events", "An effect without a specialist approval review asked for")
_code("pack_mismatch", "events", "An effect judged under another policy pack than approved")
_code("emergency_without_callback", "events", "An emergency acted on without a call-back")
_code("self_approval", "events", "Someone approved a demand they took in themselves")
_code("duplicate_approver", "events", "One person gave two of the approvals of a demand")
_code("opening_mismatch", "events", "A disclosed opening does not open its commitment")
_code("screening_inconsistent", "events", "A screening's verdict does not follow from its findings")
_code("screening_mismatch", "events", "A screening disagrees with the policy pack it names")
_code("pack_unpublished", "events", "A screening names a policy pack that was not published")
_code("refused_target_effect", "events", "An effect on targets or data screening refused")
_code("foreign_effect", "events", "An effect outside the authority's jurisdiction, no route")
_code("follow_up_late", "events", "An emergency's follow-up came after its deadline")
_code("follow_up_missing", "events", "An emergency's follow-up is overdue and not logged")
_code("deadline_missed", "events", "The platform itself logged a missed deadline")
_code("notice_during_gag", "events", "Users were notified while a gag order was in force")
_code("notice_overdue", "events", "A gag order ended and users were not notified")
_code("notice_missing", "events", "A demand closed without notice or a dated gag")


@dataclass(frozen=True)
class Finding:
    """One violation: its code, what is wrong, and the entries that show it."""

    code: str
    detail: str
    entries: tuple[int, ...] = ()
    demand: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in _CODES:
            raise AuditError(f"unknown finding code {self.code!r}")

    @property
    def title(self) -> str:
        return _CODES[self.code].title

    @property
    def part(self) -> str:
        return _CODES[self.code].part
