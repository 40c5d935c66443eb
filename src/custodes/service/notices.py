"""Notices to affected users, and the durable schedule of what falls due later (F7).

Users are told by default. When a demand is executed, :func:`plan_notice` (called inside the
execution's transaction) schedules a notice to the account holders behind each approved
target: due at once, or, under a dated nondisclosure order, on the order's end date, in which
case ``notice.deferred`` records that date in the log. A demand whose gag names no end date
is not executed (custodes cannot promise the notice; legal counsel challenges the order).

The notice says what was asked, by whom, what was done and how to seek redress
(:func:`notice_text`), and goes out through the platform adapter; then ``notice.sent``
(with the number of notices and, privately, the accounts told) and ``demand.notified``.

The schedule is the ``scheduled_actions`` table: notices, and the lifts of time-limited
restrictions and the ends of preservation holds (:mod:`custodes.service.execution` runs them
all with ``run_due``). It survives restarts because it is only a table. Each action moves
``pending`` → ``claimed`` (committed before anything is sent, so only one process acts) →
``done`` (committed with the action's event). A notice claimed but never completed — the
process died between claiming and recording — is *in doubt*: it may or may not have reached
the user, so it is never sent again automatically (:func:`in_doubt` lists them for an
operator). A notice is therefore never sent twice. Lifts and hold releases can be repeated
safely (the platform says when one was already done), so a stale claim on one is retried.

>>> from custodes.model import Target, TargetKind
>>> c = NoticeContent("d_1", "Metropolitan Police Service", "GB", "court_order",
...                   "disclosure of subscriber_info", "3 records were disclosed",
...                   (Target(TargetKind.ACCOUNT, "u-1"),))
>>> parse_notice_payload(format_notice_payload(c)) == c
True
>>> print(notice_text(c).splitlines()[0])
The Metropolitan Police Service (GB) made a legal demand concerning your account.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import ConflictError, InputError, NotFoundError
from custodes.events import NOTICE_DEFERRED, NOTICE_SENT
from custodes.model import DemandState, Target
from custodes.service import Services
from custodes.service.lifecycle import db_time, load_demand, log_event
from custodes.service.package import parse_subject
from custodes.service.scope import ApprovedScope, mark_notified
from custodes.store.access_tables import scheduled_actions, utc

__all__ = [
    "CLAIM_LEASE",
    "REDRESS",
    "DueAction",
    "DueKind",
    "NoticeContent",
    "cancel_due",
    "claim_due",
    "deliver_notice",
    "finish_due",
    "format_notice_payload",
    "in_doubt",
    "notice_text",
    "parse_notice_payload",
    "pending",
    "plan_notice",
    "reschedule",
    "schedule",
    "unclaim",
]

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=10)
"""How long a claim holds before a repeatable action may be claimed again."""
MAX_PAYLOAD = 256 * 1024

REDRESS = (
    "If you believe this was wrong, you can challenge it: write to the platform's legal team, "
    "who will review the demand again and tell you what they decide; you can also go to a "
    "court or to the data protection authority where you live. Every step of this demand is "
    "recorded in the platform's public transparency log."
)
"""How to seek redress; the closing paragraph of every notice."""


class DueKind(StrEnum):
    """What a scheduled action does when it falls due."""

    NOTICE = "notice"
    RESTRICTION_LIFT = "restriction_lift"
    HOLD_EXPIRY = "hold_expiry"


_REPEATABLE = frozenset({DueKind.RESTRICTION_LIFT, DueKind.HOLD_EXPIRY})


@dataclass(frozen=True)
class DueAction:
    """One row of the schedule."""

    id: int
    kind: DueKind
    ref: str
    demand_id: str
    due_at: datetime
    payload: str


@dataclass(frozen=True)
class NoticeContent:
    """What a notice tells: the demand, who made it, what was asked and what was done."""

    demand_id: str
    authority: str
    jurisdiction: str
    instrument: str
    asked: str
    done: str
    targets: tuple[Target, ...]


def format_notice_payload(content: NoticeContent) -> str:
    """The notice as the schedule stores it (JSON)."""
    doc = {
        "demand": content.demand_id,
        "authority": content.authority,
        "jurisdiction": content.jurisdiction,
        "instrument": content.instrument,
        "asked": content.asked,
        "done": content.done,
        "targets": [str(t) for t in content.targets],
    }
    return json.dumps(doc, sort_keys=True, ensure_ascii=False)


def parse_notice_payload(text: str) -> NoticeContent:
    """The inverse of :func:`format_notice_payload`."""
    if len(text) > MAX_PAYLOAD:
        raise InputError("a notice payload is over the size limit")
    try:
        doc = json.loads(text)
        keys = {"demand", "authority", "jurisdiction", "instrument", "asked", "done", "targets"}
        if not isinstance(doc, dict) or set(doc) != keys:
            raise InputError(f"a notice payload has exactly the members {sorted(keys)}")
        strings = [doc[k] for k in sorted(keys - {"targets"})]
        if not all(isinstance(v, str) for v in strings) or not isinstance(doc["targets"], list):
            raise InputError("a notice payload holds strings and a list of targets")
        targets = tuple(parse_subject(t) for t in doc["targets"])
    except json.JSONDecodeError as exc:
        raise InputError(f"a notice payload is not JSON: {exc}") from None
    return NoticeContent(
        doc["demand"],
        doc["authority"],
        doc["jurisdiction"],
        doc["instrument"],
        doc["asked"],
        doc["done"],
        targets,
    )


def notice_text(content: NoticeContent) -> str:
    """The notice as the user reads it."""
    basis = content.instrument.replace("_", " ")
    return "\n\n".join(
        [
            f"The {content.authority} ({content.jurisdiction}) made a legal demand concerning "
            f"your account.",
            f"What was asked: {content.asked}. Legal basis: {basis}.",
            f"What the platform did: {content.done}.",
            REDRESS,
            f"Reference: {content.demand_id}.",
        ]
    )


def _asked(scope: ApprovedScope) -> str:
    kind = scope.kind.value.replace("_", " ")
    if scope.restriction is not None:
        where = ", ".join(scope.restriction.territories) or "everywhere"
        return f"{kind}: {scope.restriction.action.value.replace('_', ' ')} ({where})"
    cats = ", ".join(c.value.replace("_", " ") for c in scope.categories)
    period = ""
    if scope.time_range is not None:
        period = f", {scope.time_range.start:%Y-%m-%d} to {scope.time_range.end:%Y-%m-%d}"
    return f"{kind} of {cats}{period}"


def plan_notice(conn: Connection, services: Services, scope: ApprovedScope, *, done: str) -> int:
    """Within an execution's transaction: schedule the notice of ``scope``'s demand, due now
    or when its gag ends (then logs ``notice.deferred``). Returns the schedule row's id.
    ``ConflictError`` for a gag without an end date."""
    gag = scope.nondisclosure
    now = services.clock()
    due = now
    if gag is not None:
        if gag.until is None:
            raise ConflictError(
                "the demand's nondisclosure order names no end date: notice cannot be "
                "promised, so it is not executed; legal counsel challenges the order",
                demand=scope.demand_id,
            )
        due = max(now, datetime.combine(gag.until, time(0), UTC))
        if due > now:
            log_event(
                conn,
                services,
                scope.demand_id,
                NOTICE_DEFERRED,
                facts={"gag_until": gag.until.isoformat()},
            )
    content = NoticeContent(
        scope.demand_id,
        scope.authority.name,
        scope.authority.jurisdiction,
        _instrument(conn, scope),
        _asked(scope),
        done,
        scope.targets,
    )
    return schedule(
        conn,
        kind=DueKind.NOTICE,
        ref=scope.demand_id,
        demand_id=scope.demand_id,
        due_at=due,
        payload=format_notice_payload(content),
    )


def _instrument(conn: Connection, scope: ApprovedScope) -> str:
    return load_demand(conn, scope.demand_id).demand.instrument.kind.value


def deliver_notice(services: Services, action: DueAction) -> int:
    """Send a claimed notice through the platform, then log ``notice.sent`` (and
    ``demand.notified`` if the demand awaits it) and mark it done. Returns the index of
    ``notice.sent``."""
    content = parse_notice_payload(action.payload)
    text = notice_text(content)
    at = services.clock()
    recipients: list[str] = []
    for target in content.targets:
        try:
            sent = services.platform.send_notice(
                target, text=text, reference=f"{content.demand_id}/notice", at=at
            )
        except NotFoundError:
            log.warning("notice target gone demand=%s target=%s", content.demand_id, target)
            continue
        recipients += [n.account for n in sent]

    def work(conn: Connection) -> int:
        finish_due(conn, action.id, services.clock())
        index = log_event(
            conn,
            services,
            content.demand_id,
            NOTICE_SENT,
            facts={"record_count": len(recipients)},
            private={"recipients": recipients},
        )
        if load_demand(conn, content.demand_id, lock=True).state is DemandState.EXECUTED:
            mark_notified(conn, services, content.demand_id, record_count=len(recipients))
        return index

    return services.write(work)


# -- the schedule --------------------------------------------------------------------------


def _row(r: Any) -> DueAction:
    return DueAction(int(r.id), DueKind(r.kind), r.ref, r.demand_id, utc(r.due_at), r.payload)


def schedule(
    conn: Connection,
    *,
    kind: DueKind,
    ref: str,
    demand_id: str,
    due_at: datetime,
    payload: str = "{}",
) -> int:
    """Add one action to the schedule; ``ConflictError`` if ``(kind, ref)`` is there."""
    t = scheduled_actions
    if conn.execute(sa.select(t.c.id).where(t.c.kind == kind.value, t.c.ref == ref)).first():
        raise ConflictError(f"a {kind.value} for {ref} is already scheduled")
    result = conn.execute(
        t.insert().values(
            kind=kind.value,
            ref=ref,
            demand_id=demand_id,
            due_at=db_time(due_at),
            state="pending",
            payload=payload,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def reschedule(conn: Connection, kind: DueKind, ref: str, due_at: datetime) -> None:
    """Move a pending action to ``due_at``."""
    t = scheduled_actions
    conn.execute(
        t.update()
        .where(t.c.kind == kind.value, t.c.ref == ref, t.c.state == "pending")
        .values(due_at=db_time(due_at))
    )


def cancel_due(conn: Connection, kind: DueKind, ref: str, at: datetime) -> None:
    """Take a pending action off the schedule (its work was done another way)."""
    t = scheduled_actions
    conn.execute(
        t.update()
        .where(t.c.kind == kind.value, t.c.ref == ref, t.c.state == "pending")
        .values(state="done", done_at=db_time(at))
    )


def finish_due(conn: Connection, action_id: int, at: datetime) -> None:
    """Mark a claimed action done (in the transaction that logs its event)."""
    t = scheduled_actions
    done = conn.execute(
        t.update()
        .where(t.c.id == action_id, t.c.state == "claimed")
        .values(state="done", done_at=db_time(at))
    ).rowcount
    if done != 1:
        raise ConflictError(f"scheduled action {action_id} is not claimed")


def claim_due(services: Services, now: datetime, limit: int = 100) -> list[DueAction]:
    """Claim the actions due at ``now`` (and repeatable ones whose claim went stale), in
    one committed transaction, so that no other process runs them."""
    t = scheduled_actions
    stale = db_time(now - CLAIM_LEASE)

    def work(conn: Connection) -> list[DueAction]:
        rows = conn.execute(
            sa.select(t)
            .where(
                t.c.due_at <= db_time(now),
                (t.c.state == "pending")
                | (
                    (t.c.state == "claimed")
                    & (t.c.claimed_at <= stale)
                    & t.c.kind.in_([k.value for k in _REPEATABLE])
                ),
            )
            .order_by(t.c.due_at, t.c.id)
            .limit(limit)
        ).fetchall()
        claimed = []
        for r in rows:
            took = conn.execute(
                t.update()
                .where(
                    t.c.id == r.id,
                    t.c.state == r.state,
                    t.c.claimed_at.is_(None)
                    if r.claimed_at is None
                    else t.c.claimed_at == r.claimed_at,
                )
                .values(state="claimed", claimed_at=db_time(now))
            ).rowcount
            if took == 1:
                claimed.append(_row(r))
        return claimed

    return services.write(work)


def unclaim(services: Services, action_id: int) -> None:
    """Put a claimed action back (its attempt failed before doing anything)."""
    t = scheduled_actions
    services.write(
        lambda conn: conn.execute(
            t.update()
            .where(t.c.id == action_id, t.c.state == "claimed")
            .values(state="pending", claimed_at=None)
        )
    )


def in_doubt(services: Services, now: datetime) -> list[DueAction]:
    """Notices claimed longer than :data:`CLAIM_LEASE` ago and never completed: they may
    have reached the user, so they are not sent again; an operator checks each one."""
    t = scheduled_actions
    with services.store.read() as conn:
        rows = conn.execute(
            sa.select(t)
            .where(
                t.c.kind == DueKind.NOTICE.value,
                t.c.state == "claimed",
                t.c.claimed_at <= db_time(now - CLAIM_LEASE),
            )
            .order_by(t.c.id)
        ).fetchall()
    return [_row(r) for r in rows]


def pending(services: Services, demand_id: str | None = None) -> Sequence[DueAction]:
    """Actions not yet done (of one demand, or all), earliest due first."""
    t = scheduled_actions
    query = sa.select(t).where(t.c.state != "done").order_by(t.c.due_at, t.c.id)
    if demand_id is not None:
        query = query.where(t.c.demand_id == demand_id)
    with services.store.read() as conn:
        return [_row(r) for r in conn.execute(query).fetchall()]
