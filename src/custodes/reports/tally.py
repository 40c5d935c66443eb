"""Replaying the log into one record per demand: everything a report counts.

:class:`Tally` reads every entry in log order (:meth:`Tally.feed`), parses it with
:func:`~custodes.reports.leaves.parse_leaf`, and keeps, for each demand id, a
:class:`DemandRecord` built from the public facts only:

- the demand's *first* ``demand.received`` gives its time and entry (the period a demand
  belongs to); its *latest* ``demand.received`` or ``demand.amended`` gives what it is: the
  authority's country (the first two letters of ``authority_jurisdiction``) and kind, the
  demand and instrument kinds, the subjects specified (``target_count``), the signature status
  and the territories it asked for (an optional fact a version leaves out keeps its value);
- its *latest decision* (``demand.refused``, ``demand.approved`` or ``demand.narrowed``) says
  whether it counts as refused or narrowed; ``demand.challenged`` and ``notice.deferred``
  count whenever they happened;
- ``production.delivered`` with at least one record makes it a demand with data produced;
- ``restriction.applied`` events are kept one by one (for the restrictions table and the DSA
  statements of reasons), ``tos_action.linked`` with ``state_involved`` is counted.

An entry that is not a well-formed event is counted (``not_events``) and otherwise ignored,
as is an event about a demand the log never received, and every event about no demand.

>>> from datetime import UTC, datetime
>>> from custodes.events import DEMAND_RECEIVED, DEMAND_REFUSED, encode_event
>>> t = datetime(2026, 7, 1, tzinfo=UTC)
>>> tally = Tally()
>>> tally.feed(0, encode_event(DEMAND_RECEIVED, time=t, demand="d_1", facts={
...     "demand_kind": "disclosure", "instrument_kind": "subpoena", "target_count": 3,
...     "signature": "valid", "authority_jurisdiction": "US-CA"})[0])
>>> tally.feed(1, encode_event(DEMAND_REFUSED, time=t, demand="d_1")[0])
>>> tally.feed(2, b"not an event")
>>> d = tally.demands["d_1"]
>>> (d.country, d.subjects, d.refused, tally.events, tally.not_events)
('US', 3, True, 2, 1)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from custodes.events import (
    APPROVAL_GIVEN,
    DEMAND_AMENDED,
    DEMAND_APPROVED,
    DEMAND_CHALLENGED,
    DEMAND_NARROWED,
    DEMAND_RECEIVED,
    DEMAND_REFUSED,
    NOTICE_DEFERRED,
    PRODUCTION_DELIVERED,
    RESTRICTION_APPLIED,
    TOS_ACTION_LINKED,
    Event,
)
from custodes.reports.errors import LeafError
from custodes.reports.leaves import parse_leaf

__all__ = [
    "EMERGENCY_INSTRUMENTS",
    "EMERGENCY_KINDS",
    "NATIONAL_SECURITY_INSTRUMENTS",
    "UNKNOWN",
    "DemandRecord",
    "RestrictionRecord",
    "Tally",
    "merged",
]

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
"""The country or authority kind of a demand whose intake did not log it."""

NATIONAL_SECURITY_INSTRUMENTS: dict[str, str] = {"national_security_letter": "US"}
"""National-security instruments, with the country whose law restricts what may be said about
them (50 U.S.C. 1874 for US national security letters). Their demands appear only in the
national-security table, in bands."""
EMERGENCY_KINDS = frozenset({"emergency_disclosure"})
EMERGENCY_INSTRUMENTS = frozenset({"emergency_request"})


@dataclass(frozen=True, slots=True)
class RestrictionRecord:
    """One ``restriction.applied`` event."""

    index: int
    time: datetime
    action: str
    territories: tuple[str, ...]  # empty: no territory named, the restriction is unlimited
    items: int
    duration_days: int | None


@dataclass(slots=True)
class DemandRecord:
    """What the log says about one demand (see the module docstring)."""

    demand: str
    index: int
    received: datetime
    country: str = UNKNOWN
    authority_kind: str = UNKNOWN
    demand_kind: str = ""
    instrument: str = ""
    subjects: int = 0
    signature: str = ""
    territories: tuple[str, ...] = ()
    emergency: bool = False
    refused: bool = False
    narrowed: bool = False
    challenged: bool = False
    gagged: bool = False
    produced: bool = False
    first_production: datetime | None = None
    pack: str | None = None
    approvals: int = 0
    state_driven_tos_actions: int = 0
    restrictions: list[RestrictionRecord] = field(default_factory=list)
    log: str = ""
    """The origin of the log the demand is in, in a tally of several logs (:func:`merged`)."""

    @property
    def national_security(self) -> bool:
        return self.instrument in NATIONAL_SECURITY_INSTRUMENTS

    @property
    def preservation(self) -> bool:
        return self.demand_kind == "preservation"


def _str(event: Event, name: str, default: str = "") -> str:
    value = event.facts.get(name)
    return value if isinstance(value, str) else default


def _int(event: Event, name: str) -> int | None:
    value = event.facts.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _codes(event: Event, name: str) -> tuple[str, ...]:
    value = event.facts.get(name)
    return tuple(str(v) for v in value) if isinstance(value, tuple) else ()


def _version(record: DemandRecord, event: Event) -> None:
    """A received or amended demand: what the demand now is. A fact the new version does not
    carry (the optional ones) keeps its earlier value."""
    country = _str(event, "authority_jurisdiction")[:2]
    record.country = country or record.country
    record.authority_kind = _str(event, "authority_kind") or record.authority_kind
    record.demand_kind = _str(event, "demand_kind")
    record.instrument = _str(event, "instrument_kind")
    record.subjects = _int(event, "target_count") or 0
    record.signature = _str(event, "signature")
    record.territories = _codes(event, "territories") or record.territories
    record.emergency = record.emergency or (
        record.demand_kind in EMERGENCY_KINDS or record.instrument in EMERGENCY_INSTRUMENTS
    )


def _decided(record: DemandRecord, event: Event) -> None:
    record.refused = event.kind == DEMAND_REFUSED
    record.narrowed = event.kind == DEMAND_NARROWED
    if event.kind != DEMAND_REFUSED:
        record.pack = _str(event, "pack") or record.pack
        record.approvals = _int(event, "approvals") or record.approvals


def _produced(record: DemandRecord, event: Event) -> None:
    if (_int(event, "record_count") or 0) > 0:
        record.produced = True
        if record.first_production is None:
            record.first_production = event.time


def _restricted(record: DemandRecord, event: Event, index: int) -> None:
    record.restrictions.append(
        RestrictionRecord(
            index,
            event.time,
            _str(event, "restriction_action"),
            _codes(event, "territories") or record.territories,
            _int(event, "target_count") or 0,
            _int(event, "duration_days"),
        )
    )


def _challenged(record: DemandRecord, event: Event) -> None:
    record.challenged = True


def _gagged(record: DemandRecord, event: Event) -> None:
    record.gagged = True


def _linked(record: DemandRecord, event: Event) -> None:
    if event.facts.get("state_involved") is True:
        record.state_driven_tos_actions += 1


_Handler = Callable[[DemandRecord, Event], None]
_HANDLERS: dict[str, _Handler] = {
    DEMAND_REFUSED: _decided,
    DEMAND_APPROVED: _decided,
    DEMAND_NARROWED: _decided,
    DEMAND_CHALLENGED: _challenged,
    NOTICE_DEFERRED: _gagged,
    PRODUCTION_DELIVERED: _produced,
    TOS_ACTION_LINKED: _linked,
}
_IGNORED = frozenset({APPROVAL_GIVEN})


class Tally:
    """Every demand of the log, from its entries in order."""

    def __init__(self) -> None:
        self.logs: tuple[str, ...] = ()
        """The origins of the logs of a tally of several (:func:`merged`); else empty."""
        self.demands: dict[str, DemandRecord] = {}
        self.events = 0
        self.not_events = 0
        self.first_not_event: int | None = None
        self.latest: datetime | None = None

    def feed(self, index: int, entry: bytes) -> None:
        """Read entry ``index`` of the log."""
        try:
            event = parse_leaf(entry)
        except LeafError as exc:
            if self.first_not_event is None:
                self.first_not_event = index
                log.info("entry is not an event index=%d why=%s", index, exc.detail)
            self.not_events += 1
            return
        self.observe(index, event)

    def observe(self, index: int, event: Event) -> None:
        """Count one parsed event."""
        self.events += 1
        if self.latest is None or event.time > self.latest:
            self.latest = event.time
        demand = event.demand
        if demand is None or event.kind in _IGNORED:
            return
        record = self.demands.get(demand)
        if record is None:
            if event.kind != DEMAND_RECEIVED:
                return  # a demand the log never received: the auditor reports it
            record = self.demands[demand] = DemandRecord(demand, index, event.time)
        if event.kind in (DEMAND_RECEIVED, DEMAND_AMENDED):
            _version(record, event)
        elif event.kind == RESTRICTION_APPLIED:
            _restricted(record, event, index)
        else:
            handler = _HANDLERS.get(event.kind)
            if handler is not None:
                handler(record, event)


def merged(tallies: Sequence[tuple[str, Tally]]) -> Tally:
    """One tally of several logs, each given with its origin: their demands (each now
    naming its log, as the same id may stand for another demand in another log), events and
    entries. One log's tally is returned as it is."""
    if len(tallies) == 1:
        return tallies[0][1]
    into = Tally()
    into.logs = tuple(origin for origin, _ in tallies)
    for origin, tally in tallies:
        for record in tally.demands.values():
            record.log = origin
            into.demands[f"{origin} {record.demand}"] = record
        into.events += tally.events
        into.not_events += tally.not_events
        if tally.latest is not None and (into.latest is None or tally.latest > into.latest):
            into.latest = tally.latest
    return into
