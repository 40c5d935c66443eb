"""What execution may do: the approved scope of a demand, and the hooks that record execution.

Execution (productions, restrictions, preservation, notices) is carried out elsewhere in the
service layer; this module is its one way in. :func:`approved_scope` says exactly what review
approved — the subjects, data categories, period, territory and restriction, and the
authority the result goes to — and nothing is executed beyond it (invariant 5). Inside the
execution's own transaction, :func:`mark_executed` moves the demand to ``executed`` and logs
``demand.executed`` (naming the pack it was judged under), and :func:`mark_notified` moves it
to ``notified`` and logs ``demand.notified``::

    def work(conn):
        scope = load_approved_scope(conn, demand_id)      # raises unless approved
        ...                                               # act within scope, record effects
        mark_executed(conn, services, demand_id, by=custodian)
    services.write(work)

Executing an emergency disclosure starts its follow-up clock: the second review and the
follow-up legal process are due within 48 hours (:mod:`custodes.service.clocks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection

from custodes.errors import ConflictError
from custodes.events import DEMAND_EXECUTED, DEMAND_NOTIFIED
from custodes.model import (
    Authority,
    DataCategory,
    DemandKind,
    DemandState,
    Nondisclosure,
    Restriction,
    Subject,
    Target,
    TimeRange,
    follow_up_clock,
)

from . import Services
from .authorities import find_authority
from .lifecycle import DemandRecord, db_time, load_demand, log_event, move, start_clock
from .review import load_review
from .staff import load_staff, permit

__all__ = [
    "EXECUTABLE",
    "ApprovedScope",
    "approved_scope",
    "load_approved_scope",
    "mark_executed",
    "mark_notified",
]

EXECUTABLE = frozenset({DemandState.APPROVED, DemandState.PARTLY_APPROVED})
"""The states from which a demand may be executed."""
_READABLE = EXECUTABLE | {DemandState.EXECUTED, DemandState.NOTIFIED}


@dataclass(frozen=True)
class ApprovedScope:
    """Exactly what review approved for one demand.

    ``subjects`` says, for each approved target, where the subject is and where its data is
    held (as screening found it). ``restriction`` is the action, its territories (empty: the
    action takes effect everywhere, which screening allowed only for a breach of the
    platform's own global rules or within the requester's territory) and its duration.
    ``pack`` is the policy pack the demand was judged under; ``approvers`` the staff whose
    approvals dual control counted.
    """

    demand_id: str
    version: int
    kind: DemandKind
    state: DemandState
    authority: Authority
    targets: tuple[Target, ...]
    subjects: Mapping[Target, Subject] = field(hash=False)
    categories: tuple[DataCategory, ...]
    time_range: TimeRange | None
    restriction: Restriction | None
    nondisclosure: Nondisclosure | None
    pack: str
    decided_at: datetime
    approvers: tuple[str, ...]
    intake: str

    @property
    def territories(self) -> tuple[str, ...]:
        """Where a restriction applies (empty: everywhere, or no restriction)."""
        return self.restriction.territories if self.restriction is not None else ()


def _scope_of(conn: Connection, current: DemandRecord) -> ApprovedScope:
    if current.state not in _READABLE:
        raise ConflictError(
            f"demand {current.id} is {current.state.value}: nothing is approved",
            state=current.state.value,
        )
    scope, screening = current.scope, current.screening
    assert scope is not None and screening is not None and current.decided_at is not None
    authority = find_authority(conn, current.demand.authority_id)
    if authority is None:
        raise ConflictError(f"the authority of demand {current.id} is no longer registered")
    subjects = {t: screening.subjects[t] for t in scope.targets if t in screening.subjects}
    return ApprovedScope(
        demand_id=current.id,
        version=current.version,
        kind=current.demand.kind,
        state=current.state,
        authority=authority,
        targets=scope.targets,
        subjects=subjects,
        categories=scope.categories,
        time_range=scope.time_range,
        restriction=current.demand.restriction,
        nondisclosure=current.demand.nondisclosure,
        pack=screening.pack,
        decided_at=current.decided_at,
        approvers=load_review(conn, current).approvers,
        intake=current.intake_principal,
    )


def load_approved_scope(conn: Connection, demand_id: str) -> ApprovedScope:
    """:func:`approved_scope` inside the caller's transaction (the demand's row is locked
    until it ends, so no decision changes under the execution)."""
    return _scope_of(conn, load_demand(conn, demand_id, lock=True))


def approved_scope(services: Services, demand_id: str) -> ApprovedScope:
    """What review approved for ``demand_id``; ``ConflictError`` unless it is approved (or
    already executed or notified)."""
    with services.store.read() as conn:
        return _scope_of(conn, load_demand(conn, demand_id))


def mark_executed(conn: Connection, services: Services, demand_id: str, *, by: str) -> int:
    """Within the caller's transaction: ``demand_id`` was carried out by ``by`` (who must
    hold ``demand.execute``). Moves it to ``executed``, starts an emergency's follow-up clock
    and logs ``demand.executed``; returns its log index."""
    permit(services, load_staff(conn, by), "demand.execute")
    current = load_demand(conn, demand_id, lock=True)
    if current.state not in EXECUTABLE:
        raise ConflictError(
            f"demand {demand_id} is {current.state.value}, not approved",
            state=current.state.value,
        )
    assert current.screening is not None
    now = services.clock()
    move(conn, services, current, DemandState.EXECUTED, executed_at=db_time(now))
    if current.demand.kind is DemandKind.EMERGENCY_DISCLOSURE:
        start_clock(conn, follow_up_clock(demand_id, now))
    facts = {"pack": current.screening.pack, "demand_kind": current.demand.kind.value}
    return log_event(conn, services, demand_id, DEMAND_EXECUTED, facts=facts,
                     private={"staff": by}, staff=by)  # fmt: skip


def mark_notified(
    conn: Connection, services: Services, demand_id: str, *, record_count: int | None = None
) -> int:
    """Within the caller's transaction: every affected user who may be told has been told.
    Moves ``demand_id`` from ``executed`` to ``notified`` and logs ``demand.notified``
    (``record_count``: notices sent); returns its log index."""
    current = load_demand(conn, demand_id, lock=True)
    move(conn, services, current, DemandState.NOTIFIED)
    facts = {} if record_count is None else {"record_count": record_count}
    return log_event(conn, services, demand_id, DEMAND_NOTIFIED, facts=facts)
