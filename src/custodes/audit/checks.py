"""Event checks: the auditor replays every event of the log, in order, through a list of checks.

A :class:`Check` sees each well-formed event once, in log order, with its entry index, and may
report :class:`~custodes.audit.findings.Finding` objects at once or when the log ends (for
deadlines that passed without the expected event). It keeps whatever state it needs, by
demand id; it never sees anything but the published events (and, for
:class:`~custodes.audit.approvals.SelfApprovalCheck`, openings the platform chose to disclose).

:class:`Replay` parses each entry with :func:`custodes.events.parse_event`; an entry that is
not a well-formed event is an ``event_malformed`` finding, and the checks do not see it.

>>> from datetime import UTC, datetime
>>> from custodes.events import APPROVAL_GIVEN, encode_event
>>> leaf, _ = encode_event(APPROVAL_GIVEN, time=datetime(2026, 1, 5, tzinfo=UTC),
...                        demand="d_1", facts={"role": "legal"})
>>> replay = Replay(default_checks())
>>> replay.feed(0, leaf)
>>> replay.feed(1, b"not an event")
>>> [(f.code, f.entries) for f in replay.finish(datetime(2026, 1, 6, tzinfo=UTC))]
[('unknown_demand', (0,)), ('event_malformed', (1,))]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from custodes.audit.findings import MAX_NAMED, Finding
from custodes.events import Event, Opening, parse_event

if TYPE_CHECKING:
    from custodes.audit.packs import PublishedPack

__all__ = ["Check", "Replay", "default_checks"]

log = logging.getLogger(__name__)


class Check:
    """One rule about the events, replayed in log order. Subclasses override what they need."""

    #: Short name shown in the report.
    name: str = "check"
    #: The event kinds :meth:`observe` needs to see (None: every kind). Naming them spares
    #: a long log millions of calls that would return nothing.
    kinds: frozenset[str] | None = None

    def observe(self, index: int, event: Event) -> Iterable[Finding]:
        """Look at the event at ``index``; return the findings it reveals."""
        return ()

    def finish(self, as_of: datetime) -> Iterable[Finding]:
        """The log has ended; return the findings about deadlines passed by ``as_of``."""
        return ()

    def notes(self) -> Iterable[str]:
        """What this check could not decide, in plain words (not violations)."""
        return ()


class Replay:
    """Feeds entries, parsed as events, to every check; collects the findings."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = list(checks)
        self.events = 0
        self._findings: list[Finding] = []
        self._malformed: list[int] = []
        self._first_problem = ""
        self._observers: dict[str, list[Check]] = {}

    def _observers_of(self, kind: str) -> list[Check]:
        """The checks that see events of ``kind``, in the order they were given."""
        found = self._observers.get(kind)
        if found is None:
            found = [c for c in self.checks if c.kinds is None or kind in c.kinds]
            self._observers[kind] = found
        return found

    def feed(self, index: int, entry: bytes) -> None:
        try:
            event = parse_event(entry)
        except Exception as exc:  # hostile bytes: whatever the parser raises is a finding
            if not self._malformed:
                self._first_problem = str(exc)[:200]
            self._malformed.append(index)
            return
        self.events += 1
        for check in self._observers_of(event.kind):
            found = check.observe(index, event)
            if found:
                self._findings.extend(found)

    def finish(self, as_of: datetime) -> list[Finding]:
        """Every finding, checks' own first, then malformed entries."""
        for check in self.checks:
            self._findings.extend(check.finish(as_of))
        if self._malformed:
            named = tuple(self._malformed[:MAX_NAMED])
            self._findings.append(
                Finding(
                    "event_malformed",
                    f"{len(self._malformed)} entr{'y is' if len(named) == 1 else 'ies are'} "
                    f"not well-formed events (the first: {self._first_problem})",
                    entries=named,
                    evidence={"count": len(self._malformed)},
                )
            )
        log.debug("replayed events=%d findings=%d", self.events, len(self._findings))
        return self._findings

    def notes(self) -> list[str]:
        return [note for check in self.checks for note in check.notes()]


def default_checks(
    openings: Mapping[int, Mapping[str, Opening | tuple[Opening, ...]]] | None = None,
    packs: Sequence[PublishedPack] | None = None,
) -> list[Check]:
    """The checks ``custodes audit`` runs; ``openings`` are disclosed salts, by entry index;
    with published ``packs`` (``--pack``), every screening is judged again as well."""
    from custodes.audit.approvals import ApprovalCheck, SelfApprovalCheck
    from custodes.audit.deadlines import DeadlineCheck, NoticeCheck
    from custodes.audit.jurisdiction import JurisdictionCheck
    from custodes.audit.refusals import RefusedScopeCheck
    from custodes.audit.screening import ScreeningCheck

    checks: list[Check] = [
        ApprovalCheck(),
        SelfApprovalCheck(openings or {}),
        JurisdictionCheck(),
        RefusedScopeCheck(),
        DeadlineCheck(),
        NoticeCheck(),
    ]
    if packs is not None:
        checks.append(ScreeningCheck(packs, openings or {}))
    return checks
