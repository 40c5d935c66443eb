"""The review queue: demands by state, deadline and priority, with filters.

Order: demands whose response clock has run out first, then emergencies, then the rest; within
each, the earliest deadline first (a demand whose clock was met or never started sorts last),
then the oldest. The default view shows the demands that wait for someone
(:data:`WAITING`); a filter narrows it by state, by the requesting authority, by the
authority's jurisdiction (``US`` takes ``US-CA`` too) and by demand kind.

This is a read-only query over the demand tables, the one place the console reads them
without a use-case: the queue's summary rows (no screening, no body) keep a page of hundreds
of demands to one statement. Filters arrive from a query string and are checked
(:func:`parse_filters`) before any SQL is built.

>>> parse_filters({"state": "in_review", "jurisdiction": "us", "kind": ""}).jurisdiction
'US'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from custodes.errors import InputError
from custodes.model import DemandKind, DemandState, check_code
from custodes.service import Services
from custodes.service.lifecycle import db_time, utc
from custodes.store.demand_tables import approvals, authorities, demand_clocks, demands

__all__ = [
    "ALL",
    "MAX_ROWS",
    "WAITING",
    "QueueFilters",
    "QueueItem",
    "demand_queue",
    "parse_filters",
]

ALL = "all"
WAITING = "waiting"
_WAITING_STATES = (
    DemandState.RECEIVED,
    DemandState.SCREENED,
    DemandState.IN_REVIEW,
    DemandState.CHALLENGED,
    DemandState.APPROVED,
    DemandState.PARTLY_APPROVED,
)
"""States in which the platform owes the next step (approved ones wait for execution)."""
MAX_ROWS = 500


@dataclass(frozen=True)
class QueueFilters:
    """What the queue shows: ``state`` is :data:`WAITING`, :data:`ALL` or one state."""

    state: str = WAITING
    authority: str | None = None
    jurisdiction: str | None = None
    kind: DemandKind | None = None

    @property
    def states(self) -> tuple[DemandState, ...] | None:
        if self.state == ALL:
            return None
        return _WAITING_STATES if self.state == WAITING else (DemandState(self.state),)


@dataclass(frozen=True)
class QueueItem:
    """One demand's row in the queue."""

    id: str
    state: DemandState
    kind: DemandKind
    authority_id: str | None
    authority_name: str | None
    jurisdiction: str | None
    received_at: datetime
    target_count: int
    due_at: datetime | None
    overdue: bool
    approvals: int
    approvals_needed: int

    @property
    def emergency(self) -> bool:
        return self.kind is DemandKind.EMERGENCY_DISCLOSURE


def _choice(raw: Mapping[str, str], name: str) -> str | None:
    value = raw.get(name, "").strip()
    if len(value) > 128:
        raise InputError(f"the {name} filter is too long")
    return value or None


def parse_filters(raw: Mapping[str, str]) -> QueueFilters:
    """The queue's filters from a query string (``InputError`` for an unknown value)."""
    state = _choice(raw, "state") or WAITING
    if state not in (WAITING, ALL, *(s.value for s in DemandState)):
        raise InputError(f"{state!r} is not a demand state")
    kind = _choice(raw, "kind")
    if kind is not None and kind not in {k.value for k in DemandKind}:
        raise InputError(f"{kind!r} is not a kind of demand")
    jurisdiction = _choice(raw, "jurisdiction")
    if jurisdiction is not None:
        jurisdiction = check_code(jurisdiction.upper(), "jurisdiction filter")
    return QueueFilters(
        state=state,
        authority=_choice(raw, "authority"),
        jurisdiction=jurisdiction,
        kind=None if kind is None else DemandKind(kind),
    )


def _query(filters: QueueFilters, now: datetime) -> sa.Select[tuple[object, ...]]:
    clock = demand_clocks.alias("clock")
    given = (
        sa.select(sa.func.count())
        .where(
            approvals.c.demand_id == demands.c.id,
            approvals.c.version == demands.c.version,
            approvals.c.role == "approver",
        )
        .scalar_subquery()
    )
    due = sa.case((clock.c.met_at.is_(None), clock.c.due_at), else_=None)
    late = sa.and_(clock.c.met_at.is_(None), clock.c.due_at < now)
    urgent = sa.case((late, 0), (demands.c.kind == DemandKind.EMERGENCY_DISCLOSURE.value, 1),
                     else_=2)  # fmt: skip
    query = (
        sa.select(
            demands.c.id,
            demands.c.state,
            demands.c.kind,
            demands.c.authority_id,
            authorities.c.record,
            authorities.c.jurisdiction,
            demands.c.received_at,
            demands.c.target_count,
            due.label("due"),
            late.label("late"),
            given.label("given"),
            demands.c.approvals_needed,
        )
        .select_from(
            demands.outerjoin(authorities, authorities.c.id == demands.c.authority_id).outerjoin(
                clock, sa.and_(clock.c.demand_id == demands.c.id, clock.c.kind == "response")
            )
        )
        .order_by(urgent, due.is_(None), due, demands.c.received_at, demands.c.id)
        .limit(MAX_ROWS)
    )
    if filters.states is not None:
        query = query.where(demands.c.state.in_([s.value for s in filters.states]))
    if filters.authority is not None:
        query = query.where(demands.c.authority_id == filters.authority)
    if filters.jurisdiction is not None:
        code = filters.jurisdiction
        query = query.where(
            sa.or_(authorities.c.jurisdiction == code, authorities.c.jurisdiction.like(code + "-%"))
        )
    if filters.kind is not None:
        query = query.where(demands.c.kind == filters.kind.value)
    return query


def _name(record: object) -> str | None:
    if not isinstance(record, str):
        return None
    name = json.loads(record).get("name")
    return name if isinstance(name, str) else None


def demand_queue(services: Services, filters: QueueFilters) -> Sequence[QueueItem]:
    """The demands ``filters`` selects, most urgent first (at most :data:`MAX_ROWS`)."""
    now = services.clock()
    with services.store.read() as conn:
        rows = conn.execute(_query(filters, db_time(now))).all()
    return [
        QueueItem(
            id=r.id,
            state=DemandState(r.state),
            kind=DemandKind(r.kind),
            authority_id=r.authority_id,
            authority_name=_name(r.record),
            jurisdiction=r.jurisdiction,
            received_at=utc(r.received_at),
            target_count=r.target_count,
            due_at=None if r.due is None else utc(r.due),
            overdue=bool(r.late),
            approvals=int(r.given or 0),
            approvals_needed=r.approvals_needed,
        )
        for r in rows
    ]
