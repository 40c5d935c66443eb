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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

from custodes.audit.findings import MAX_NAMED, Finding
from custodes.events import KINDS, Event, Opening, parse_event

if TYPE_CHECKING:
    from custodes.audit.packs import PublishedPack

__all__ = ["Check", "Observer", "Replay", "default_checks"]

log = logging.getLogger(__name__)

Observer = Callable[[int, Event], Iterable[Finding]]
"""What looks at one event: ``observer(index, event)`` returns the findings it reveals."""


class Check:
    """One rule about the events, replayed in log order. Subclasses override what they need."""

    #: Short name shown in the report.
    name: str = "check"
    #: The event kinds :meth:`observe` needs to see (None: every kind). Naming them spares
    #: a long log millions of calls that would return nothing.
    kinds: frozenset[str] | None = None
    #: For a check that treats kinds differently: the name of the method that observes each
    #: kind it sees, called as :meth:`observe` would be. The replay binds them once, so the
    #: kind is told apart once per kind instead of once per event; :attr:`kinds` is then
    #: their keys. Names, not bound methods: a check that kept its own would be a cycle.
    methods: ClassVar[Mapping[str, str]] = {}
    #: The attributes that count across demands (everything else a check keeps is kept by
    #: demand). A sharded replay (:mod:`custodes.audit.shards`) adds up each shard's, so
    #: each is a count (``int``), entry indexes in log order (``list``), or either of those
    #: by name (``dict``); see :meth:`take_tallies` and :meth:`add_tallies`.
    tallies: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "methods" in vars(cls):
            cls.kinds = frozenset(cls.methods)

    def observe(self, index: int, event: Event) -> Iterable[Finding]:
        """Look at the event at ``index``; return the findings it reveals. By default, what
        the method :attr:`methods` names for its kind returns."""
        name = self.methods.get(event.kind)
        if name is None:
            return ()
        observe: Observer = getattr(self, name)
        return observe(index, event)

    def observers(self) -> Mapping[str, Observer]:
        """The observer of each event kind this check sees, asked once by the replay: the
        methods :attr:`methods` names, or else :meth:`observe` for every kind in :attr:`kinds`."""
        if self.methods:
            return {kind: getattr(self, name) for kind, name in self.methods.items()}
        return dict.fromkeys(KINDS if self.kinds is None else self.kinds, self.observe)

    def finish(self, as_of: datetime) -> Iterable[Finding]:
        """The log has ended; return the findings about deadlines passed by ``as_of``, and
        those drawn from :attr:`tallies`. The replay puts them in the order of their entries."""
        return ()

    def take_tallies(self) -> dict[str, Any]:
        """The :attr:`tallies`, each left empty: what this check counted across demands."""
        taken = {}
        for name in self.tallies:
            value = getattr(self, name)
            taken[name] = value
            setattr(self, name, type(value)())
        return taken

    def add_tallies(self, tallies: Mapping[str, Any]) -> None:
        """Add what another replay of other demands counted (:meth:`take_tallies`)."""
        for name, value in tallies.items():
            setattr(self, name, _added(getattr(self, name), value))

    def notes(self) -> Iterable[str]:
        """What this check could not decide, in plain words (not violations)."""
        return ()


def _added(mine: Any, other: Any) -> Any:
    """Two tallies added: counts summed, entry indexes merged in log order, and by name each
    name's; names whose values are indexes ordered by their first index, as one replay
    meets them."""
    if isinstance(mine, dict):
        added = dict(mine)
        for key, value in other.items():
            added[key] = _added(added[key], value) if key in added else value
        if any(isinstance(v, list) and v for v in added.values()):
            added = dict(sorted(added.items(), key=lambda kv: kv[1][0] if kv[1] else -1))
        return added
    if isinstance(mine, list):
        return sorted(mine + other)
    return mine + other


@dataclass(frozen=True)
class ReplayResult:
    """What one replay of some of the log's demands found, to be added to another's
    (:meth:`Replay.result`, :meth:`Replay.absorb`)."""

    events: int
    observed: list[tuple[int, Finding]]
    """The findings the events revealed, each with the index of the entry that revealed it."""
    ended: list[list[Finding]]
    """Each check's findings at the end of the log, but those drawn from its tallies."""
    tallies: list[dict[str, Any]]
    """Each check's :meth:`Check.take_tallies`."""
    malformed: list[int]
    first_problem: str


def _by_entries(finding: Finding) -> tuple[int, ...]:
    return finding.entries


class Replay:
    """Feeds entries, parsed as events, to every check; collects the findings.

    The findings come in log order: those the events revealed, by the entry that revealed
    them; then each check's at the end of the log, in the order of their entries (a check
    keeps its demands in whatever order it likes); then the malformed entries. So the same
    events give the same report however they were split between replays
    (:mod:`custodes.audit.shards`)."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = list(checks)
        self.events = 0
        self._observed: list[tuple[int, Finding]] = []
        self._ended: list[list[Finding]] = [[] for _ in self.checks]
        self._malformed: list[int] = []
        self._first_problem = ""
        observers: dict[str, list[Observer]] = {}
        for check in self.checks:
            for kind, observer in check.observers().items():
                observers.setdefault(kind, []).append(observer)
        self._observers = {kind: tuple(found) for kind, found in observers.items()}
        """The observers of each kind, in the order of the checks that named them."""

    def feed(self, index: int, entry: bytes) -> None:
        try:
            event = parse_event(entry)
        except Exception as exc:  # hostile bytes: whatever the parser raises is a finding
            if not self._malformed:
                self._first_problem = str(exc)[:200]
            self._malformed.append(index)
            return
        self.events += 1
        for observe in self._observers.get(event.kind, ()):
            found = observe(index, event)
            if found:
                self._observed.extend((index, f) for f in found)

    def feed_bundle(self, start: int, entries: list[bytes]) -> None:
        """:meth:`feed` each entry of a bundle whose first is entry ``start``."""
        feed = self.feed
        for index, entry in enumerate(entries, start):
            feed(index, entry)

    def result(self, as_of: datetime) -> ReplayResult:
        """What this replay found, for :meth:`absorb`: each check's tallies are taken before
        it finishes, so that what it draws from them is drawn once, from every replay's."""
        tallies = [check.take_tallies() for check in self.checks]
        ended = [list(check.finish(as_of)) for check in self.checks]
        return ReplayResult(
            self.events, self._observed, ended, tallies, self._malformed, self._first_problem
        )

    def absorb(self, other: ReplayResult) -> None:
        """Add what a replay of other demands found (:meth:`result`) to this one's."""
        self.events += other.events
        self._observed = sorted([*self._observed, *other.observed], key=itemgetter(0))
        for check, tallies in zip(self.checks, other.tallies, strict=True):
            check.add_tallies(tallies)
        for mine, ended in zip(self._ended, other.ended, strict=True):
            mine.extend(ended)
        if other.malformed and (not self._malformed or other.malformed[0] < self._malformed[0]):
            self._first_problem = other.first_problem
        self._malformed = sorted(self._malformed + other.malformed)

    def finish(self, as_of: datetime) -> list[Finding]:
        """Every finding, in the order the class docstring gives."""
        findings = [f for _, f in self._observed]
        for check, absorbed in zip(self.checks, self._ended, strict=True):
            findings += sorted([*check.finish(as_of), *absorbed], key=_by_entries)
        if self._malformed:
            named = tuple(self._malformed[:MAX_NAMED])
            findings.append(
                Finding(
                    "event_malformed",
                    f"{len(self._malformed)} entr{'y is' if len(named) == 1 else 'ies are'} "
                    f"not well-formed events (the first: {self._first_problem})",
                    entries=named,
                    evidence={"count": len(self._malformed)},
                )
            )
        log.debug("replayed events=%d findings=%d", self.events, len(findings))
        return findings

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
