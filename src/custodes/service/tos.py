"""Terms-of-service actions, and the pretext they can hide (failure mode F4).

In 2020 a government demand to end meetings was carried out as a terms-of-service action on
fabricated evidence. So every terms-of-service action trust and safety takes is recorded here,
and one on a subject that a demand names — a demand still open, or one received within
:data:`LINK_WINDOW` whatever became of it (a refusal does not make a later "ToS" action on the
same meeting innocent) — is **linked** to that demand and counted as state-involved.

===================================  ===========================================
the target is named by               events
===================================  ===========================================
no recent or open demand             ``tos_action.recorded``
one or more such demands             ``tos_action.linked`` for each, with
                                     ``state_involved`` true
===================================  ===========================================

The action itself is taken on the platform by trust and safety's own tools; custodes records
it, links it and counts it (:func:`tos_counts`) for the transparency report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.events import TOS_ACTION_LINKED, TOS_ACTION_RECORDED
from custodes.model import DemandState, RestrictionAction, Target
from custodes.store.demand_tables import demand_targets, demands, tos_actions

from . import Services, record
from .lifecycle import check_reason, db_time, log_event
from .staff import load_staff, permit

__all__ = ["LINK_WINDOW", "TosCounts", "TosOutcome", "record_tos_action", "tos_counts"]

LINK_WINDOW = timedelta(days=90)
"""How long after a demand arrives a terms-of-service action on its target is linked to it,
even once the demand is closed."""


@dataclass(frozen=True)
class TosOutcome:
    """What became of one terms-of-service action: its log entries, the demands it was
    linked to (none: an ordinary action)."""

    indexes: tuple[int, ...]
    linked: tuple[str, ...]

    @property
    def state_involved(self) -> bool:
        return bool(self.linked)


@dataclass(frozen=True)
class TosCounts:
    """Terms-of-service actions recorded, and how many were state-involved."""

    total: int
    state_involved: int


def naming_demands(conn: Connection, target: Target, services: Services) -> list[str]:
    """Demands naming ``target`` that are open or were received within the link window,
    earliest first."""
    since = db_time(services.clock() - LINK_WINDOW)
    rows = conn.execute(
        sa.select(demands.c.id)
        .join(demand_targets, demand_targets.c.demand_id == demands.c.id)
        .where(
            demand_targets.c.kind == target.kind.value,
            demand_targets.c.target_id == target.id,
            sa.or_(demands.c.state != DemandState.CLOSED.value, demands.c.received_at >= since),
        )
        .distinct()
        .order_by(demands.c.id)
    ).scalars()
    return list(rows)


def record_tos_action(
    services: Services,
    target: Target,
    action: RestrictionAction,
    *,
    by: str,
    reason: str,
) -> TosOutcome:
    """Record a terms-of-service ``action`` on ``target`` taken by trust and safety staff
    ``by``; link it to every demand naming the target (see the module docstring)."""
    check_reason(reason)

    def work(conn: Connection) -> TosOutcome:
        permit(services, load_staff(conn, by), "tos_action.record")
        linked = naming_demands(conn, target, services)
        private = {"staff": by, "target": str(target), "note": reason}
        indexes = []
        for demand_id in linked:
            facts = {"restriction_action": action.value, "state_involved": True}
            indexes.append(
                log_event(conn, services, demand_id, TOS_ACTION_LINKED, facts=facts,
                          private=private, staff=by, note=reason)
            )  # fmt: skip
        if not linked:
            facts = {"restriction_action": action.value}
            indexes.append(
                record(conn, services, TOS_ACTION_RECORDED, facts=facts, private=private)
            )
        row: dict[str, object] = {
            "action_index": indexes[0], "target_kind": target.kind.value,
            "target_id": target.id, "action": action.value, "staff_id": by,
            "at": db_time(services.clock()),
        }  # fmt: skip
        conn.execute(
            tos_actions.insert(),
            [
                row | {"log_index": index, "demand_id": demand, "state_involved": bool(demand)}
                for index, demand in zip(indexes, _or_none(linked), strict=True)
            ],
        )
        return TosOutcome(tuple(indexes), tuple(linked))

    return services.write(work)


def _or_none(linked: list[str]) -> list[str | None]:
    return [*linked] if linked else [None]


def tos_counts(services: Services) -> TosCounts:
    """How many terms-of-service actions were recorded, and how many were state-involved
    (an action linked to several demands counts once)."""
    with services.store.read() as conn:
        actions = tos_actions.c.action_index
        total = conn.execute(sa.select(sa.func.count(sa.distinct(actions)))).scalar_one()
        involved = conn.execute(
            sa.select(sa.func.count(sa.distinct(actions))).where(tos_actions.c.state_involved)
        ).scalar_one()
    return TosCounts(int(total), int(involved))
