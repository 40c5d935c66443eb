"""The stored state of a demand, and the moves and events every demand use-case makes.

:class:`DemandRecord` is one demand as stored: the demand as received (its current version),
its lifecycle state, who recorded it, the screening (inputs and findings, so that it can be
replayed), the specialist roles review needs, and the scope review would let through. Every
demand use-case loads it (:func:`load_demand`, locking its row), moves it
(:func:`move`, which checks :data:`custodes.model.TRANSITIONS` and raises ``TransitionError``
for an illegal move) and logs the event that records the move (:func:`log_event`, through
:func:`custodes.service.record`), all in one transaction. A use-case that makes several moves
may encode their events first (:func:`demand_event`) and log them together at the end of the
transaction (:func:`log_events`).

Times are stored in UTC: SQLite keeps no offset, so :func:`db_time` converts before writing
and :func:`utc` restores the zone after reading.

>>> from datetime import datetime, timedelta, timezone
>>> utc(datetime(2020, 6, 4, 12)).isoformat()
'2020-06-04T12:00:00+00:00'
>>> db_time(datetime(2020, 6, 4, 20, tzinfo=timezone(timedelta(hours=8)))).hour
12
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import InputError, NotFoundError, TooLargeError
from custodes.model import (
    CallbackStatus,
    Clock,
    ClockKind,
    Demand,
    DemandState,
    SignatureStatus,
    check_transition,
    parse_demand,
)
from custodes.store.demand_tables import demand_clocks, demand_documents, demand_events, demands
from custodes.store.fast import defer_rows

from . import Encoded, Services, encode, record_encoded
from .judgements import Scope, Screening, parse_scope, parse_screening

__all__ = [
    "ANSWERED",
    "MAX_DOCUMENT_BYTES",
    "DemandEvent",
    "DemandRecord",
    "HistoryEntry",
    "check_reason",
    "db_time",
    "demand_event",
    "get_demand",
    "history",
    "load_demand",
    "log_event",
    "log_events",
    "meet_clock",
    "move",
    "start_clock",
    "store_document",
    "utc",
]

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""Largest instrument document accepted (checked before hashing)."""

ANSWERED = frozenset(
    {
        DemandState.REFUSED,
        DemandState.CLARIFICATION_REQUESTED,
        DemandState.APPROVED,
        DemandState.PARTLY_APPROVED,
        DemandState.WITHDRAWN,
        DemandState.CLOSED,
    }
)
"""States that answer a demand: entering one meets its response clock."""


def utc(value: datetime) -> datetime:
    """A time read from the store, in UTC (SQLite returns naive UTC times)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def db_time(value: datetime) -> datetime:
    """A time to store: UTC, so that SQLite (which drops the offset) compares it right."""
    return value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


@dataclass(frozen=True)
class DemandRecord:
    """The stored state of one demand (its current version)."""

    demand: Demand
    version: int
    state: DemandState
    intake_staff: str | None
    signature: SignatureStatus
    callback: CallbackStatus
    screening: Screening | None
    roles_required: tuple[str, ...]
    approvals_needed: int
    scope: Scope | None
    decided_at: datetime | None
    executed_at: datetime | None

    @property
    def id(self) -> str:
        return self.demand.id

    @property
    def intake_principal(self) -> str:
        """Who recorded the demand, as dual control names them: the intake employee, or
        ``api:<authority>`` for a demand that came through the signed API."""
        return self.intake_staff or f"api:{self.demand.authority_id}"


def load_demand(conn: Connection, demand_id: str, *, lock: bool = False) -> DemandRecord:
    """The stored demand ``demand_id`` (``NotFoundError`` if none); ``lock`` takes its row
    lock for the rest of the transaction (PostgreSQL; SQLite writers are serialised)."""
    row = conn.execute(_LOCK if lock else _LOAD, {"b_id": demand_id}).mappings().first()
    if row is None:
        raise NotFoundError(f"no demand {demand_id!r}", demand=demand_id)
    demand = parse_demand(
        json.loads(row["body"]),
        id=row["id"],
        authority_id=row["authority_id"],
        received_at=utc(row["received_at"]),
    )
    return DemandRecord(
        demand=demand,
        version=row["version"],
        state=DemandState(row["state"]),
        intake_staff=row["intake_staff"],
        signature=SignatureStatus(row["signature"]),
        callback=CallbackStatus(row["callback"]),
        screening=parse_screening(json.loads(row["screening"])) if row["screening"] else None,
        roles_required=tuple(json.loads(row["roles_required"])),
        approvals_needed=row["approvals_needed"],
        scope=parse_scope(json.loads(row["scope"])) if row["scope"] else None,
        decided_at=_opt_utc(row["decided_at"]),
        executed_at=_opt_utc(row["executed_at"]),
    )


_LOAD = sa.select(demands).where(demands.c.id == sa.bindparam("b_id"))
_LOCK = _LOAD.with_for_update()


def get_demand(services: Services, demand_id: str) -> DemandRecord:
    """The stored demand ``demand_id`` (``NotFoundError`` if none)."""
    with services.store.read() as conn:
        return load_demand(conn, demand_id)


@dataclass(frozen=True)
class HistoryEntry:
    """One event about a demand: where it is in the log, what it was, who acted and why."""

    index: int
    kind: str
    at: datetime
    staff: str | None
    note: str | None


def history(services: Services, demand_id: str) -> list[HistoryEntry]:
    """Every event logged about ``demand_id``, in log order."""
    with services.store.read() as conn:
        rows = conn.execute(
            sa.select(demand_events)
            .where(demand_events.c.demand_id == demand_id)
            .order_by(demand_events.c.log_index)
        ).mappings()
        return [
            HistoryEntry(r["log_index"], r["kind"], utc(r["at"]), r["staff_id"], r["note"])
            for r in rows
        ]


def move(
    conn: Connection,
    services: Services,
    current: DemandRecord,
    new: DemandState,
    **values: Any,
) -> None:
    """Move ``current`` to ``new`` (``TransitionError`` if the lifecycle forbids it) and
    update any other ``values`` of its row; entering an answering state meets the response
    clock."""
    check_transition(current.state, new)
    now = db_time(services.clock())
    conn.execute(_MOVE, {"b_id": current.id, "state": new.value, "updated_at": now, **values})
    if new in ANSWERED:
        meet_clock(conn, current.id, ClockKind.RESPONSE, now)


_MOVE = demands.update().where(demands.c.id == sa.bindparam("b_id"))


@dataclass(frozen=True)
class DemandEvent:
    """One event about a demand, encoded before its transaction (:func:`demand_event`), and
    who acted and why, for the demand's history."""

    demand_id: str
    kind: str
    at: datetime
    encoded: Encoded
    staff: str | None = None
    note: str | None = None


def demand_event(
    services: Services,
    demand_id: str,
    kind: str,
    *,
    facts: Mapping[str, Any] | None = None,
    private: Mapping[str, str | Sequence[str]] | None = None,
    staff: str | None = None,
    note: str | None = None,
) -> DemandEvent:
    """Encode one event about ``demand_id``, for :func:`log_events`."""
    at = services.clock()
    encoded = encode(services, kind, demand=demand_id, facts=facts, private=private, at=at)
    return DemandEvent(demand_id, kind, at, encoded, staff, note)


def log_events(conn: Connection, services: Services, events: Sequence[DemandEvent]) -> list[int]:
    """Append ``events`` in this order (through :func:`custodes.service.record_encoded`) and
    remember each in its demand's history; their indexes. One statement per table for all
    of them: a use-case that makes several moves logs their events together, last."""
    indexes = record_encoded(conn, services, [e.encoded for e in events])
    rows = [
        {"demand_id": e.demand_id, "log_index": index, "kind": e.kind, "at": db_time(e.at),
         "staff_id": e.staff, "note": e.note}
        for index, e in zip(indexes, events, strict=True)
    ]  # fmt: skip
    defer_rows(conn, demand_events, rows)
    return indexes


def log_event(
    conn: Connection,
    services: Services,
    demand_id: str,
    kind: str,
    *,
    facts: Mapping[str, Any] | None = None,
    private: Mapping[str, str | Sequence[str]] | None = None,
    staff: str | None = None,
    note: str | None = None,
) -> int:
    """Append one event about ``demand_id`` and remember it in the demand's history with who
    acted and the reason they gave (:func:`log_events` of one)."""
    event = demand_event(
        services, demand_id, kind, facts=facts, private=private, staff=staff, note=note
    )
    [index] = log_events(conn, services, [event])
    return index


def check_reason(reason: str) -> str:
    """Return ``reason`` if it is a written reason (1-2000 characters); else ``InputError``."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 2000:
        raise InputError("a reason is required: 1-2000 characters of plain words")
    return reason


def store_document(conn: Connection, demand_id: str, document: bytes, at: datetime) -> str:
    """Keep ``document`` with ``demand_id`` (once per content); returns its SHA-256."""
    if len(document) > MAX_DOCUMENT_BYTES:
        raise TooLargeError(f"the document is over {MAX_DOCUMENT_BYTES} bytes")
    digest = hashlib.sha256(document).hexdigest()
    exists = conn.execute(
        sa.select(demand_documents.c.sha256).where(
            demand_documents.c.demand_id == demand_id, demand_documents.c.sha256 == digest
        )
    ).first()
    if exists is None:
        conn.execute(
            demand_documents.insert().values(
                demand_id=demand_id, sha256=digest, data=document, received_at=db_time(at)
            )
        )
    return digest


def start_clock(conn: Connection, clock: Clock) -> None:
    """Start (or restart) ``clock`` for its demand, within the caller's transaction."""
    conn.execute(
        demand_clocks.delete().where(
            demand_clocks.c.demand_id == clock.demand_id,
            demand_clocks.c.kind == clock.kind.value,
        )
    )
    conn.execute(
        demand_clocks.insert().values(
            demand_id=clock.demand_id,
            kind=clock.kind.value,
            started_at=db_time(clock.started_at),
            due_at=db_time(clock.due_at),
        )
    )


def meet_clock(conn: Connection, demand_id: str, kind: ClockKind, at: datetime) -> bool:
    """Mark the running ``kind`` clock of ``demand_id`` met at ``at``; returns whether one
    was running."""
    done = conn.execute(_MEET, {"b_id": demand_id, "b_kind": kind.value, "met_at": db_time(at)})
    return bool(done.rowcount)


_MEET = demand_clocks.update().where(
    demand_clocks.c.demand_id == sa.bindparam("b_id"),
    demand_clocks.c.kind == sa.bindparam("b_kind"),
    demand_clocks.c.met_at.is_(None),
)
