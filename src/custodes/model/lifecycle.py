"""The life of a demand: its states, the legal transitions, and the clocks that run.

::

    received ──► screened ──┬──► refused ─────────────────────────────┐
       ▲                    ├──► clarification_requested ──► received │
       │                    └──► in_review ──┬──► approved ───────┐   │
       │                                     ├──► partly_approved ┤   │
       │                                     └──► refused         ▼   ▼
       │                                                       executed ──► notified ──► closed
    any open state ──► withdrawn ──► closed;  in_review/approved/... ──► challenged ──► in_review

Refusal, clarification, narrowing (``partly_approved``) and challenge are outcomes, not
errors. :func:`check_transition` raises :class:`~custodes.errors.TransitionError` for any
move the table does not list.

>>> check_transition(DemandState.RECEIVED, DemandState.SCREENED)
>>> check_transition(DemandState.RECEIVED, DemandState.EXECUTED)
Traceback (most recent call last):
...
custodes.errors.TransitionError: a demand cannot go from received to executed

Clocks: each instrument kind sets how long the platform has to answer (an EPOC 10 days, an
emergency 8 hours); a preservation lasts 60 days and may be extended once by 30; an emergency
disclosure must be followed by a second review and legal process within 48 hours.

>>> from datetime import UTC, datetime
>>> c = follow_up_clock("d_1", datetime(2024, 6, 4, 12, tzinfo=UTC))
>>> c.due_at.isoformat(), c.is_overdue(datetime(2024, 6, 6, 13, tzinfo=UTC))
('2024-06-06T12:00:00+00:00', True)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from custodes.errors import TransitionError

from .demand import Demand, DemandKind, InstrumentKind

__all__ = [
    "EMERGENCY_FOLLOW_UP",
    "PRESERVATION_EXTENSION",
    "PRESERVATION_PERIOD",
    "RESPONSE_TIMES",
    "TRANSITIONS",
    "Clock",
    "ClockKind",
    "DemandState",
    "check_transition",
    "follow_up_clock",
    "overdue",
    "preservation_clock",
    "response_clock",
]


class DemandState(StrEnum):
    RECEIVED = "received"
    SCREENED = "screened"
    REFUSED = "refused"
    CLARIFICATION_REQUESTED = "clarification_requested"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    PARTLY_APPROVED = "partly_approved"
    EXECUTED = "executed"
    NOTIFIED = "notified"
    CLOSED = "closed"
    CHALLENGED = "challenged"
    WITHDRAWN = "withdrawn"

    @property
    def is_open(self) -> bool:
        """Whether the demand still awaits a final outcome."""
        return self not in _FINAL


_S = DemandState
_FINAL = frozenset({_S.CLOSED})

TRANSITIONS: Mapping[DemandState, frozenset[DemandState]] = MappingProxyType(
    {
        _S.RECEIVED: frozenset({_S.SCREENED, _S.WITHDRAWN}),
        _S.SCREENED: frozenset(
            {_S.REFUSED, _S.CLARIFICATION_REQUESTED, _S.IN_REVIEW, _S.WITHDRAWN}
        ),
        _S.CLARIFICATION_REQUESTED: frozenset({_S.RECEIVED, _S.WITHDRAWN, _S.CLOSED}),
        _S.IN_REVIEW: frozenset(
            {
                _S.APPROVED,
                _S.PARTLY_APPROVED,
                _S.REFUSED,
                _S.CLARIFICATION_REQUESTED,
                _S.CHALLENGED,
                _S.WITHDRAWN,
            }
        ),
        _S.APPROVED: frozenset({_S.EXECUTED, _S.CHALLENGED, _S.WITHDRAWN}),
        _S.PARTLY_APPROVED: frozenset({_S.EXECUTED, _S.CHALLENGED, _S.WITHDRAWN}),
        _S.CHALLENGED: frozenset({_S.IN_REVIEW, _S.REFUSED, _S.WITHDRAWN}),
        _S.EXECUTED: frozenset({_S.NOTIFIED, _S.CLOSED}),
        _S.NOTIFIED: frozenset({_S.CLOSED}),
        _S.REFUSED: frozenset({_S.CHALLENGED, _S.CLOSED}),
        _S.WITHDRAWN: frozenset({_S.CLOSED}),
        _S.CLOSED: frozenset(),
    }
)


def check_transition(current: DemandState, new: DemandState) -> None:
    """Return if a demand may move from ``current`` to ``new``; raise ``TransitionError``."""
    if new not in TRANSITIONS[current]:
        raise TransitionError(
            f"a demand cannot go from {current.value} to {new.value}",
            current=current.value,
            requested=new.value,
            allowed=sorted(s.value for s in TRANSITIONS[current]),
        )


class ClockKind(StrEnum):
    RESPONSE = "response"
    PRESERVATION = "preservation"
    EMERGENCY_FOLLOW_UP = "emergency_follow_up"


_DEFAULT_RESPONSE = timedelta(days=30)
_EMERGENCY_RESPONSE = timedelta(hours=8)

RESPONSE_TIMES: Mapping[InstrumentKind, timedelta] = MappingProxyType(
    {
        InstrumentKind.EPOC: timedelta(days=10),
        InstrumentKind.EPOC_PR: timedelta(days=10),
        InstrumentKind.EMERGENCY_REQUEST: _EMERGENCY_RESPONSE,
        InstrumentKind.PRESERVATION_REQUEST: timedelta(days=2),
        InstrumentKind.DSA_ART9_ORDER: timedelta(days=3),
        InstrumentKind.DSA_ART10_ORDER: timedelta(days=10),
        InstrumentKind.SUBPOENA: timedelta(days=14),
        InstrumentKind.SEARCH_WARRANT: timedelta(days=14),
        InstrumentKind.COURT_ORDER: timedelta(days=14),
        InstrumentKind.CLOUD_ACT_ORDER: timedelta(days=14),
    }
)
"""How long the platform has to answer, per instrument kind (others: 30 days)."""

PRESERVATION_PERIOD = timedelta(days=60)
PRESERVATION_EXTENSION = timedelta(days=30)
EMERGENCY_FOLLOW_UP = timedelta(hours=48)


@dataclass(frozen=True)
class Clock:
    """A deadline that runs for one demand."""

    kind: ClockKind
    demand_id: str
    started_at: datetime
    due_at: datetime

    def is_overdue(self, now: datetime, *, met_at: datetime | None = None) -> bool:
        """Whether the deadline passed without being met (or was met late)."""
        if met_at is not None:
            return met_at > self.due_at
        return now > self.due_at


def response_clock(demand: Demand) -> Clock:
    """The time to answer ``demand``: 8 hours for any emergency, else per instrument kind.

    The authority's own ``deadline`` is recorded with the demand but sets no clock: a
    requester cannot shorten the time the platform takes to check it.
    """
    if demand.kind is DemandKind.EMERGENCY_DISCLOSURE:
        period = _EMERGENCY_RESPONSE
    else:
        period = RESPONSE_TIMES.get(demand.instrument.kind, _DEFAULT_RESPONSE)
    return Clock(ClockKind.RESPONSE, demand.id, demand.received_at, demand.received_at + period)


def preservation_clock(demand_id: str, placed_at: datetime, *, extended: bool = False) -> Clock:
    """When a preservation placed at ``placed_at`` ends (60 days, 90 once extended)."""
    period = PRESERVATION_PERIOD + (PRESERVATION_EXTENSION if extended else timedelta())
    return Clock(ClockKind.PRESERVATION, demand_id, placed_at, placed_at + period)


def follow_up_clock(demand_id: str, executed_at: datetime) -> Clock:
    """When the second review and legal process for an emergency disclosure fall due."""
    return Clock(
        ClockKind.EMERGENCY_FOLLOW_UP, demand_id, executed_at, executed_at + EMERGENCY_FOLLOW_UP
    )


def overdue(
    clocks: Iterable[Clock], now: datetime, met: Mapping[Clock, datetime] | None = None
) -> tuple[Clock, ...]:
    """The clocks that are overdue at ``now``, earliest due first.

    ``met`` maps a clock to when it was satisfied; a clock met in time is not overdue.
    """
    met = met or {}
    late = [c for c in clocks if c.is_overdue(now, met_at=met.get(c))]
    return tuple(sorted(late, key=lambda c: (c.due_at, c.demand_id, c.kind.value)))
