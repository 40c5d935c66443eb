"""Use-cases: each one is one transaction that changes state and appends its event.

The service layer is the only code that appends to the log (a test walks the imports to make
sure). A use-case is a function taking :class:`Services` first; it runs its work through
:meth:`Services.write`, so that concurrent use-cases share durable commits, and inside that
work it calls :func:`record` last, after its state changes, so that the state change and its
event commit together or not at all (invariant 1). Notifications to the outside (notices,
witness submissions) happen after the commit.

::

    def refuse(services: Services, demand_id: str, staff: Staff, reason: str) -> int:
        def work(conn: Connection) -> int:
            ...  # check the transition, update the demand row
            return record(conn, services, DEMAND_REFUSED, demand=demand_id, facts={...},
                          private={"staff": staff.id, "reason": reason})
        return services.write(work)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import NotFoundError
from custodes.events import encode_event, format_openings, parse_openings
from custodes.events.kinds import NONCE
from custodes.events.leaf import Openings
from custodes.events.salts import new_salt
from custodes.ledger import Ledger
from custodes.platform import PlatformAdapter
from custodes.policy import PolicyPack
from custodes.store import Store
from custodes.store.fast import defer_rows
from custodes.store.tables import event_openings

T = TypeVar("T")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Services:
    """What every use-case needs, passed explicitly (no globals)."""

    store: Store
    ledger: Ledger
    pack: PolicyPack
    platform: PlatformAdapter
    clock: Callable[[], dt.datetime] = field(default=_utcnow)

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run one use-case's transaction; returns once it is durable."""
        return self.store.write(work)


@dataclass(frozen=True)
class Encoded:
    """An event encoded ahead of its transaction: its leaf, and the openings of its
    commitments as kept privately. Encoding before :meth:`Services.write` keeps the work out
    of the store's one writer thread, which every use-case waits for."""

    leaf: bytes
    openings: bytes


def encode(
    services: Services,
    kind: str,
    *,
    demand: str | None = None,
    facts: Mapping[str, Any] | None = None,
    private: Mapping[str, str | Sequence[str]] | None = None,
    at: dt.datetime | None = None,
) -> Encoded:
    """One event, ready for :func:`record_encoded`."""
    if not private:  # nothing salted in it: make the leaf unique all the same
        private = {NONCE: new_salt(16).hex()}
    leaf, openings = encode_event(
        kind, time=at or services.clock(), demand=demand, facts=facts, private=private
    )
    return Encoded(leaf, format_openings(openings))


def record_encoded(conn: Connection, services: Services, events: Sequence[Encoded]) -> list[int]:
    """Append ``events`` in this order inside the caller's transaction, and keep their
    openings privately; their indexes. Call it last in the transaction: it takes the log's
    append lock until commit."""
    # Every leaf is new: its salts (or its nonce) are fresh, so its openings row is too.
    indexes = services.ledger.append_in(conn, [e.leaf for e in events], new=True)
    rows = [{"idx": i, "openings": e.openings} for i, e in zip(indexes, events, strict=True)]
    defer_rows(conn, event_openings, rows)
    return indexes


def record(
    conn: Connection,
    services: Services,
    kind: str,
    *,
    demand: str | None = None,
    facts: Mapping[str, Any] | None = None,
    private: Mapping[str, str | Sequence[str]] | None = None,
    at: dt.datetime | None = None,
) -> int:
    """Append one event inside the caller's transaction and keep its openings privately.
    Call it last in the transaction: it takes the log's append lock until commit."""
    event = encode(services, kind, demand=demand, facts=facts, private=private, at=at)
    [index] = record_encoded(conn, services, [event])
    return index


def openings_of(services: Services, index: int) -> Openings:
    """The private openings of one event (what the platform discloses to an auditor)."""
    with services.store.read() as conn:
        raw = conn.execute(
            sa.select(event_openings.c.openings).where(event_openings.c.idx == index)
        ).scalar()
    if raw is None:
        raise NotFoundError(f"no openings for log entry {index}", index=index)
    return parse_openings(bytes(raw))
