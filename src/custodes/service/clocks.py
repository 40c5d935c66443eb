"""Clocks: the deadlines that run for a demand, and the alert when one passes.

Three kinds run (:class:`custodes.model.ClockKind`):

* ``response``: started at intake (and again at an amendment), by instrument kind (an EPOC
  10 days, an emergency 8 hours, ...); met when the demand is answered (refused, sent back
  for clarification, approved, withdrawn or closed);
* ``emergency_follow_up``: started when an emergency disclosure is executed; met by
  :func:`complete_follow_up`, which records the second review and the follow-up legal
  process (48 hours by default);
* ``preservation``: started and met by the preservation code (:func:`start_clock`,
  :func:`meet_clock`).

:func:`check_clocks` is the use-case a scheduler runs: every clock past due, unmet and not yet
alerted gets one ``clock.overdue`` event (an alert, and an audit finding), each in its own
transaction, and is alerted once only.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import ConflictError, ForbiddenError, InputError
from custodes.events import CLOCK_OVERDUE, EMERGENCY_FOLLOW_UP_COMPLETED
from custodes.events.leaf import TIME_FORMAT_
from custodes.model import Clock, ClockKind, DemandKind, DemandState
from custodes.store.demand_tables import approvals, demand_clocks

from . import Services
from .lifecycle import (
    DemandRecord,
    check_reason,
    db_time,
    load_demand,
    log_event,
    meet_clock,
    start_clock,
    store_document,
    utc,
)
from .staff import load_staff, permit

__all__ = [
    "check_clocks",
    "clocks_of",
    "complete_follow_up",
    "meet_clock",
    "start_clock",
]


def _clock(demand_id: str, kind: str, started_at: datetime, due_at: datetime) -> Clock:
    return Clock(ClockKind(kind), demand_id, utc(started_at), utc(due_at))


def clocks_of(services: Services, demand_id: str) -> list[tuple[Clock, datetime | None]]:
    """Every clock of ``demand_id`` and when it was met (None: still running)."""
    with services.store.read() as conn:
        rows = conn.execute(
            sa.select(
                demand_clocks.c.demand_id,
                demand_clocks.c.kind,
                demand_clocks.c.started_at,
                demand_clocks.c.due_at,
                demand_clocks.c.met_at,
            )
            .where(demand_clocks.c.demand_id == demand_id)
            .order_by(demand_clocks.c.due_at)
        ).all()
    return [(_clock(*r[:4]), None if r[4] is None else utc(r[4])) for r in rows]


def _alert(services: Services, clock: Clock, now: datetime) -> int | None:
    def work(conn: Connection) -> int | None:
        still = conn.execute(
            sa.select(demand_clocks.c.demand_id)
            .where(
                demand_clocks.c.demand_id == clock.demand_id,
                demand_clocks.c.kind == clock.kind.value,
                demand_clocks.c.met_at.is_(None),
                demand_clocks.c.alerted_at.is_(None),
            )
            .with_for_update()
        ).first()
        if still is None:  # met or alerted meanwhile
            return None
        conn.execute(
            demand_clocks.update()
            .where(
                demand_clocks.c.demand_id == clock.demand_id,
                demand_clocks.c.kind == clock.kind.value,
            )
            .values(alerted_at=db_time(now))
        )
        due = clock.due_at.replace(microsecond=0).strftime(TIME_FORMAT_)
        return log_event(conn, services, clock.demand_id, CLOCK_OVERDUE,
                         facts={"clock": clock.kind.value, "due_at": due})  # fmt: skip

    return services.write(work)


def check_clocks(services: Services, now: datetime | None = None) -> list[Clock]:
    """Alert every clock that is overdue at ``now`` (default: the services' clock) and was
    not alerted before: one ``clock.overdue`` each. Returns the clocks alerted."""
    now = now or services.clock()
    with services.store.read() as conn:
        rows = conn.execute(
            sa.select(
                demand_clocks.c.demand_id,
                demand_clocks.c.kind,
                demand_clocks.c.started_at,
                demand_clocks.c.due_at,
            )
            .where(
                demand_clocks.c.met_at.is_(None),
                demand_clocks.c.alerted_at.is_(None),
                demand_clocks.c.due_at < db_time(now),
            )
            .order_by(demand_clocks.c.due_at, demand_clocks.c.demand_id)
        ).all()
    alerted = []
    for row in rows:
        clock = _clock(*row)
        if _alert(services, clock, now) is not None:
            alerted.append(clock)
    return alerted


def complete_follow_up(
    services: Services, demand_id: str, *, by: str, document: bytes, reason: str
) -> DemandRecord:
    """The second review of an executed emergency disclosure, with the follow-up legal
    process (``document``) that arrived: ``by`` must not be the person who recorded the
    demand nor the one who approved it. Meets the follow-up clock; logs
    ``emergency.follow_up_completed``."""
    check_reason(reason)
    if not document:
        raise InputError("the follow-up legal process is attached as a document")

    def work(conn: Connection) -> DemandRecord:
        permit(services, load_staff(conn, by), "emergency.follow_up")
        current = load_demand(conn, demand_id, lock=True)
        if current.demand.kind is not DemandKind.EMERGENCY_DISCLOSURE:
            raise ConflictError("only an emergency disclosure has a follow-up")
        if current.executed_at is None or current.state is DemandState.CLOSED:
            raise ConflictError(
                "the follow-up comes after the emergency disclosure, before closing"
            )
        first = conn.execute(
            sa.select(approvals.c.staff_id).where(approvals.c.demand_id == demand_id)
        ).scalars()
        if by == current.intake_principal or by in set(first):
            raise ForbiddenError("the second review is by someone other than the first approver")
        now = services.clock()
        if not meet_clock(conn, demand_id, ClockKind.EMERGENCY_FOLLOW_UP, now):
            raise ConflictError("the follow-up of this emergency is recorded already")
        digest = store_document(conn, demand_id, document, now)
        log_event(conn, services, demand_id, EMERGENCY_FOLLOW_UP_COMPLETED,
                  private={"staff": by, "document_sha256": digest}, staff=by,
                  note=reason)  # fmt: skip
        return load_demand(conn, demand_id)

    return services.write(work)
