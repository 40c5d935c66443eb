"""Execution of approved demands: restrictions and preservation holds, the custodian check,
and :func:`run_due`, which runs what the schedule says is due.

Every execution starts from :func:`custodes.service.scope.approved_scope` and does nothing
beyond it (invariant 5): only the approved targets, the approved territory and duration, the
approved categories. The custodian who carries it out must hold ``demand.execute`` and pass
the pack's staff-access rules for every subject (``staff.cedar`` with justification
``demand``): a custodian located in the requesting state cannot act on a subject outside it
(F5). A refused custodian is logged (``staff_access.denied``) and nothing happens.

==============================  ==========================================================
use-case                        events
==============================  ==========================================================
:func:`restrict`                ``restriction.applied``, ``notice.deferred`` (gag),
                                ``demand.executed``
:func:`lift_restrictions`       ``restriction.lifted``
:func:`preserve`                ``preservation.placed``, ``demand.executed``
:func:`extend_preservation`     ``preservation.extended`` (once, by 30 days)
:func:`release_preservation`    ``preservation.released``
:func:`run_due`                 ``notice.sent`` + ``demand.notified``,
                                ``restriction.lifted``, ``preservation.released``
==============================  ==========================================================

Effects on the platform happen through the adapter before the transaction that records them;
if that transaction fails, the effects are undone (restrictions lifted, holds released) and
the error is raised. A time-limited restriction is lifted, and a hold ends, when the schedule
says so: :func:`run_due` is what a deployment runs every minute or so.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import ConflictError, CustodesError
from custodes.events import (
    PRESERVATION_EXTENDED,
    PRESERVATION_PLACED,
    PRESERVATION_RELEASED,
    RESTRICTION_APPLIED,
    RESTRICTION_LIFTED,
)
from custodes.events.leaf import TIME_FORMAT_
from custodes.model import (
    ClockKind,
    DemandKind,
    Staff,
    Target,
    preservation_clock,
)
from custodes.platform import AppliedRestriction, Hold
from custodes.policy import authorize_staff_access
from custodes.service import Services
from custodes.service.access import Judged, refuse_access
from custodes.service.gateway import refusal
from custodes.service.lifecycle import check_reason, db_time, log_event, meet_clock, start_clock
from custodes.service.notices import (
    DueAction,
    DueKind,
    cancel_due,
    claim_due,
    deliver_notice,
    finish_due,
    in_doubt,
    plan_notice,
    reschedule,
    schedule,
    unclaim,
)
from custodes.service.package import parse_subject
from custodes.service.scope import (
    EXECUTABLE,
    ApprovedScope,
    approved_scope,
    load_approved_scope,
    mark_executed,
)
from custodes.service.staff import load_staff, permit
from custodes.store.access_tables import holds, restrictions_applied, utc

__all__ = [
    "DueReport",
    "check_custodian",
    "check_unchanged",
    "extend_preservation",
    "lift_restrictions",
    "preserve",
    "release_holds",
    "release_preservation",
    "restrict",
    "run_due",
    "scope_for",
]

log = logging.getLogger(__name__)

_UNKNOWN = refusal(
    "staff.unknown_subject",
    "screening found no such subject on the platform",
    "screen the demand again",
)


def scope_for(services: Services, demand_id: str, *kinds: DemandKind) -> ApprovedScope:
    """The approved scope of ``demand_id``, which must be of one of ``kinds`` and not yet
    executed (``ConflictError`` otherwise)."""
    scope = approved_scope(services, demand_id)
    if scope.kind not in kinds:
        raise ConflictError(f"demand {demand_id} is a {scope.kind.value} demand")
    if scope.state not in EXECUTABLE:
        raise ConflictError(f"demand {demand_id} is {scope.state.value}, not awaiting execution")
    return scope


def check_custodian(services: Services, scope: ApprovedScope, by: str) -> Staff:
    """The registered staff member ``by``, if they may execute ``scope`` on every subject;
    else log ``staff_access.denied`` for each subject refused and raise ``ForbiddenError``."""
    with services.store.read() as conn:
        staff = load_staff(conn, by)
    permit(services, staff, "demand.execute")
    refused = []
    for target in scope.targets:
        subject = scope.subjects.get(target)
        if subject is None:
            refused.append(Judged(target, None, (_UNKNOWN,)))
            continue
        decision = authorize_staff_access(
            services.pack,
            staff,
            subject.jurisdiction,
            justification="demand",
            demand_approved=True,
            requesting=scope.authority.jurisdiction,
        )
        if not decision.allowed:
            blocking = tuple(f for f in decision.findings if f.blocks)
            refused.append(Judged(target, subject.jurisdiction, blocking))
    if refused:
        items = [c.value for c in scope.categories] or [scope.kind.value]
        raise refuse_access(services, staff, "demand", items, refused)
    return staff


def check_unchanged(conn: Connection, scope: ApprovedScope) -> None:
    """Inside the recording transaction: the demand is still as approved (locked now)."""
    now = load_approved_scope(conn, scope.demand_id)
    if now.version != scope.version or now.state not in EXECUTABLE:
        raise ConflictError(f"demand {scope.demand_id} changed while it was being executed")


def _undo(
    services: Services, *, restriction_ids: Iterable[str] = (), hold_ids: Iterable[str] = ()
) -> None:
    """Best effort: take back platform effects whose recording failed, or old holds."""
    at = services.clock()
    for ident in restriction_ids:
        try:
            services.platform.lift_restriction(ident, at=at)
        except CustodesError as exc:
            log.error("could not lift restriction %s after a failed execution: %s", ident, exc)
    for ident in hold_ids:
        try:
            services.platform.release_hold(ident, at=at)
        except CustodesError as exc:
            log.error("could not release hold %s: %s", ident, exc)


# -- restrictions --------------------------------------------------------------------------


def restrict(services: Services, demand_id: str, *, by: str) -> tuple[AppliedRestriction, ...]:
    """Apply the approved restriction to every approved target, within the approved
    territory and for the approved duration; schedules its lift and the notice."""
    scope = scope_for(services, demand_id, DemandKind.RESTRICTION)
    check_custodian(services, scope, by)
    r = scope.restriction
    assert r is not None
    at = services.clock()
    until = at + timedelta(days=r.duration_days) if r.duration_days is not None else None
    applied: list[AppliedRestriction] = []
    try:
        for target in scope.targets:
            applied.append(
                services.platform.apply_restriction(
                    target,
                    r.action,
                    territories=r.territories,
                    until=until,
                    reference=demand_id,
                    at=at,
                )
            )
        services.write(lambda conn: _record_restriction(conn, services, scope, applied, by=by))
    except BaseException:
        _undo(services, restriction_ids=[a.id for a in applied])
        raise
    log.info("restriction applied demand=%s targets=%d", demand_id, len(applied))
    return tuple(applied)


def _record_restriction(
    conn: Connection,
    services: Services,
    scope: ApprovedScope,
    applied: list[AppliedRestriction],
    *,
    by: str,
) -> None:
    check_unchanged(conn, scope)
    r = scope.restriction
    assert r is not None and applied
    until = applied[0].until
    rows = [
        {
            "id": a.id,
            "demand_id": scope.demand_id,
            "target": str(a.target),
            "action": r.action.value,
            "territories": ",".join(r.territories),
            "applied_at": db_time(a.applied_at),
            "until": db_time(until) if until else None,
        }
        for a in applied
    ]
    conn.execute(restrictions_applied.insert(), rows)
    facts: dict[str, object] = {"restriction_action": r.action.value, "target_count": len(rows)}
    if r.territories:
        facts["territories"] = list(r.territories)
    if r.duration_days is not None:
        facts["duration_days"] = r.duration_days
    private = {"staff": by, "targets": [str(a.target) for a in applied]}
    log_event(
        conn, services, scope.demand_id, RESTRICTION_APPLIED, facts=facts, private=private, staff=by
    )
    if until is not None:
        schedule(
            conn,
            kind=DueKind.RESTRICTION_LIFT,
            ref=scope.demand_id,
            demand_id=scope.demand_id,
            due_at=until,
        )
    where = ", ".join(r.territories) or "everywhere"
    ends = f"until {until:%Y-%m-%d}" if until else "with no end date"
    plan_notice(
        conn, services, scope, done=f"{r.action.value.replace('_', ' ')} applied ({where}), {ends}"
    )
    mark_executed(conn, services, scope.demand_id, by=by)


def _lift(
    services: Services, demand_id: str, *, by: str | None, action: DueAction | None
) -> int | None:
    """Lift every restriction of ``demand_id`` still in force; log ``restriction.lifted``."""
    t = restrictions_applied
    with services.store.read() as conn:
        rows = conn.execute(
            sa.select(t).where(t.c.demand_id == demand_id, t.c.lifted_at.is_(None))
        ).fetchall()
    at = services.clock()
    for row in rows:
        try:
            services.platform.lift_restriction(row.id, at=at)
        except ConflictError:  # already lifted on the platform: nothing left to do
            log.info("restriction already lifted on the platform id=%s", row.id)

    def work(conn: Connection) -> int | None:
        if action is not None:
            finish_due(conn, action.id, at)
        else:
            cancel_due(conn, DueKind.RESTRICTION_LIFT, demand_id, at)
        if not rows:
            return None
        conn.execute(
            t.update().where(t.c.id.in_([r.id for r in rows])).values(lifted_at=db_time(at))
        )
        private: dict[str, str | list[str]] = {"targets": [r.target for r in rows]}
        if by is not None:
            private["staff"] = by
        return log_event(
            conn,
            services,
            demand_id,
            RESTRICTION_LIFTED,
            private=private,
            facts={"restriction_action": rows[0].action},
            staff=by,
        )

    return services.write(work)


def lift_restrictions(services: Services, demand_id: str, *, by: str, reason: str) -> int:
    """Lift the restrictions of ``demand_id`` before their end (a court set the order
    aside, the authority withdrew it); ``ConflictError`` if none is in force."""
    check_reason(reason)
    with services.store.read() as conn:
        permit(services, load_staff(conn, by), "demand.execute")
    index = _lift(services, demand_id, by=by, action=None)
    if index is None:
        raise ConflictError(f"demand {demand_id} has no restriction in force")
    return index


# -- preservation --------------------------------------------------------------------------


def _hold_rows(held: Iterable[Hold], demand_id: str, *, extended: bool) -> list[dict[str, object]]:
    return [
        {
            "id": h.id,
            "demand_id": demand_id,
            "target": str(h.target),
            "categories": ",".join(c.value for c in h.categories),
            "placed_at": db_time(h.placed_at),
            "until": db_time(h.until),
            "extended": extended,
        }
        for h in held
    ]


def preserve(services: Services, demand_id: str, *, by: str) -> tuple[Hold, ...]:
    """Put the approved records of every approved target on hold for 60 days; schedules
    the end of the hold (extendable once by 30 days)."""
    scope = scope_for(services, demand_id, DemandKind.PRESERVATION)
    check_custodian(services, scope, by)
    at = services.clock()
    clock = preservation_clock(demand_id, at)
    placed: list[Hold] = []
    try:
        for target in scope.targets:
            placed.append(
                services.platform.place_hold(
                    target, scope.categories, until=clock.due_at, reference=demand_id, at=at
                )
            )

        def work(conn: Connection) -> None:
            check_unchanged(conn, scope)
            conn.execute(holds.insert(), _hold_rows(placed, demand_id, extended=False))
            facts = {
                "categories": [c.value for c in scope.categories],
                "target_count": len(placed),
                "due_at": clock.due_at.strftime(TIME_FORMAT_),
            }
            log_event(
                conn,
                services,
                demand_id,
                PRESERVATION_PLACED,
                facts=facts,
                staff=by,
                private={"staff": by, "targets": [str(h.target) for h in placed]},
            )
            start_clock(conn, clock)
            schedule(
                conn,
                kind=DueKind.HOLD_EXPIRY,
                ref=demand_id,
                demand_id=demand_id,
                due_at=clock.due_at,
            )
            mark_executed(conn, services, demand_id, by=by)

        services.write(work)
    except BaseException:
        _undo(services, hold_ids=[h.id for h in placed])
        raise
    return tuple(placed)


def _active_holds(services: Services, demand_id: str) -> list[sa.Row[tuple[object, ...]]]:
    with services.store.read() as conn:
        return list(
            conn.execute(
                sa.select(holds).where(holds.c.demand_id == demand_id, holds.c.ended_at.is_(None))
            ).fetchall()
        )


def extend_preservation(services: Services, demand_id: str, *, by: str) -> int:
    """Extend the holds of ``demand_id`` once, by 30 days (90 from when they were placed);
    logs ``preservation.extended``. The platform gets new holds before the old ones go."""
    scope = approved_scope(services, demand_id)
    if scope.kind is not DemandKind.PRESERVATION:
        raise ConflictError(f"demand {demand_id} is a {scope.kind.value} demand")
    check_custodian(services, scope, by)
    current = _active_holds(services, demand_id)
    if not current:
        raise ConflictError(f"demand {demand_id} has no hold in force")
    if any(r.extended for r in current):
        raise ConflictError("a preservation is extended once only")
    clock = preservation_clock(demand_id, min(utc(r.placed_at) for r in current), extended=True)
    at = services.clock()
    placed: list[Hold] = []
    try:
        for r in current:
            cats = [c for c in scope.categories if c.value in r.categories.split(",")]
            placed.append(
                services.platform.place_hold(
                    parse_subject(r.target), cats, until=clock.due_at, reference=demand_id, at=at
                )
            )

        def work(conn: Connection) -> int:
            ended = [r.id for r in current]
            conn.execute(
                holds.update()
                .where(holds.c.id.in_(ended), holds.c.ended_at.is_(None))
                .values(ended_at=db_time(at), outcome="extended")
            )
            conn.execute(holds.insert(), _hold_rows(placed, demand_id, extended=True))
            start_clock(conn, clock)
            reschedule(conn, DueKind.HOLD_EXPIRY, demand_id, clock.due_at)
            return log_event(
                conn,
                services,
                demand_id,
                PRESERVATION_EXTENDED,
                staff=by,
                facts={"due_at": clock.due_at.strftime(TIME_FORMAT_)},
                private={"staff": by},
            )

        index = services.write(work)
    except BaseException:
        _undo(services, hold_ids=[h.id for h in placed])
        raise
    _undo(services, hold_ids=[r.id for r in current])
    return index


def release_holds(
    services: Services,
    demand_id: str,
    *,
    outcome: str,
    by: str | None = None,
    targets: Collection[Target] | None = None,
    action: DueAction | None = None,
) -> int | None:
    """End the holds of ``demand_id`` still in force (only those on ``targets``, if given):
    ``released`` by staff, ``expired`` at the end of the clock, ``produced`` when a later
    demand's production took the records. Logs ``preservation.released`` (None: no hold)."""
    names = None if targets is None else {str(t) for t in targets}
    rows = [r for r in _active_holds(services, demand_id) if names is None or r.target in names]
    at = services.clock()
    for r in rows:
        try:
            services.platform.release_hold(r.id, at=at)
        except ConflictError:
            log.info("hold already released on the platform id=%s", r.id)

    def work(conn: Connection) -> int | None:
        if action is not None:
            finish_due(conn, action.id, at)
        if not rows:
            return None
        conn.execute(
            holds.update()
            .where(holds.c.id.in_([r.id for r in rows]))
            .values(ended_at=db_time(at), outcome=outcome)
        )
        left = conn.execute(
            sa.select(holds.c.id).where(holds.c.demand_id == demand_id, holds.c.ended_at.is_(None))
        ).first()
        if left is None:
            meet_clock(conn, demand_id, ClockKind.PRESERVATION, at)
            if action is None:
                cancel_due(conn, DueKind.HOLD_EXPIRY, demand_id, at)
        private = {"staff": by} if by is not None else {}
        return log_event(
            conn,
            services,
            demand_id,
            PRESERVATION_RELEASED,
            private=private,
            staff=by,
            note=outcome,
        )

    return services.write(work)


def release_preservation(services: Services, demand_id: str, *, by: str, reason: str) -> int:
    """Release the holds of ``demand_id`` before their end; ``ConflictError`` if none."""
    check_reason(reason)
    with services.store.read() as conn:
        permit(services, load_staff(conn, by), "demand.execute")
    index = release_holds(services, demand_id, outcome="released", by=by)
    if index is None:
        raise ConflictError(f"demand {demand_id} has no hold in force")
    return index


# -- the schedule --------------------------------------------------------------------------


@dataclass(frozen=True)
class DueReport:
    """What one :func:`run_due` did: actions done (kind, demand, event index or None when
    there was nothing left to do), actions that failed (kind, demand, error code) and
    notices in doubt (claimed long ago, never completed: never sent again by custodes)."""

    done: tuple[tuple[str, str, int | None], ...]
    failed: tuple[tuple[str, str, str], ...]
    in_doubt: tuple[str, ...]


def run_due(services: Services, now: datetime | None = None, *, limit: int = 100) -> DueReport:
    """Run every scheduled action due at ``now`` (default: the services' clock): send the
    notices whose gag has ended, lift the restrictions whose time is up, end the holds
    whose clock ran out. Safe to run in several processes at once and after a restart."""
    now = now or services.clock()
    done: list[tuple[str, str, int | None]] = []
    failed: list[tuple[str, str, str]] = []
    for action in claim_due(services, now, limit):
        try:
            if action.kind is DueKind.NOTICE:
                index: int | None = deliver_notice(services, action)
            elif action.kind is DueKind.RESTRICTION_LIFT:
                index = _lift(services, action.demand_id, by=None, action=action)
            else:
                index = release_holds(services, action.demand_id, outcome="expired", action=action)
        except Exception as exc:  # one action's failure does not stop the others
            log.warning(
                "due action failed kind=%s demand=%s error=%s", action.kind, action.demand_id, exc
            )
            if action.kind is not DueKind.NOTICE:  # a notice stays claimed: it may have gone out
                unclaim(services, action.id)
            code = exc.code if isinstance(exc, CustodesError) else "internal"
            failed.append((action.kind.value, action.demand_id, code))
            continue
        done.append((action.kind.value, action.demand_id, index))
    doubt = in_doubt(services, now)
    for action in doubt:
        log.error("notice in doubt (claimed, never completed) demand=%s", action.demand_id)
    return DueReport(tuple(done), tuple(failed), tuple(a.demand_id for a in doubt))
