"""Demands at intake, and the stored record every other demand use-case works on.

A demand enters custodes in one of two ways (failure mode F1: there is no third):

* through the signed API: the web layer checks the RFC 9421 signature against the
  authority's registered keys and calls :func:`receive_demand` with ``intake=None`` and
  ``signature=valid``;
* typed in by an intake employee (a demand that came by post, by e-mail or, as in 2020, as a
  chat message): ``intake`` names the employee and ``signature`` says what they could
  establish (usually ``missing``). Screening then refuses what is not properly signed.

Either way the demand is stored, its instrument document hashed (SHA-256) and kept, its
response clock started, and ``demand.received`` logged, in one transaction. The other
use-cases here:

==============================  =================================  ====================
use-case                        moves                              event
==============================  =================================  ====================
:func:`receive_demand`          (new) → received                   ``demand.received``
:func:`record_callback`         received → received (emergency)    ``emergency.callback_recorded``
:func:`amend_demand`            clarification_requested →          ``demand.amended``
                                received (a new version)
:func:`withdraw_demand`         open → withdrawn                   ``demand.withdrawn``
:func:`close_demand`            refused/withdrawn/executed/... →   ``demand.closed``
                                closed
==============================  =================================  ====================

The stored record (:class:`~custodes.service.lifecycle.DemandRecord`) and the moves every
use-case makes are in :mod:`custodes.service.lifecycle`; screening is in
:mod:`custodes.service.screening`, review and dual control in :mod:`custodes.service.review`,
what execution may do in :mod:`custodes.service.scope`, deadlines in
:mod:`custodes.service.clocks`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InputError,
    SignatureError,
    TooLargeError,
)
from custodes.events import (
    DEMAND_AMENDED,
    DEMAND_CLOSED,
    DEMAND_RECEIVED,
    DEMAND_WITHDRAWN,
    EMERGENCY_CALLBACK_RECORDED,
)
from custodes.model import (
    Authority,
    CallbackStatus,
    Channel,
    Demand,
    DemandKind,
    DemandState,
    SignatureStatus,
    format_channel,
    format_demand,
    parse_channel,
    response_clock,
)
from custodes.policy import authorize
from custodes.store.demand_tables import (
    demand_clocks,
    demand_documents,
    demand_targets,
    demands,
)
from custodes.store.fast import (
    CHUNK,
    Check,
    defer,
    defer_rows,
    insert_part,
    per_dialect,
)

from . import Services
from .authorities import find_authority, records_part, stored_record
from .lifecycle import (
    ANSWERED,
    MAX_DOCUMENT_BYTES,
    DemandEvent,
    DemandRecord,
    HistoryEntry,
    check_reason,
    db_time,
    demand_event,
    get_demand,
    history,
    load_demand,
    log_event,
    log_events,
    move,
    start_clock,
    store_document,
)
from .staff import load_staff, permit

__all__ = [
    "Arrival",
    "DemandRecord",
    "HistoryEntry",
    "amend_demand",
    "arrival",
    "check_sender",
    "close_demand",
    "get_demand",
    "history",
    "receive_demand",
    "record_callback",
    "store_arrival",
    "store_arrival_as",
    "store_arrivals_as",
    "with_document",
    "withdraw_demand",
]


# -- intake --------------------------------------------------------------------------------


def with_document(demand: Demand, document: bytes | None) -> Demand:
    """``demand`` citing ``document`` by its SHA-256 (``TooLargeError`` over the limit,
    ``InputError`` if the demand states another hash)."""
    if document is None:
        return demand
    if len(document) > MAX_DOCUMENT_BYTES:
        raise TooLargeError(f"the document is over {MAX_DOCUMENT_BYTES} bytes")
    digest = hashlib.sha256(document).hexdigest()
    stated = demand.instrument.document_sha256
    if stated == digest:  # cited already: nothing to add (and nothing to validate again)
        return demand
    if stated is not None:
        raise InputError(
            "the attached document does not match instrument.document_sha256",
            stated=stated,
            actual=digest,
        )
    return replace(demand, instrument=replace(demand.instrument, document_sha256=digest))


def _received_facts(
    demand: Demand, authority: Authority | None, signature: SignatureStatus
) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "demand_kind": demand.kind.value,
        "instrument_kind": demand.instrument.kind.value,
        "target_count": len(demand.targets),
        "signature": signature.value,
    }
    if authority is not None:
        facts["authority_jurisdiction"] = authority.jurisdiction
        facts["authority_kind"] = authority.kind.value
    if demand.categories:
        facts["categories"] = [c.value for c in demand.categories]
    if demand.restriction is not None:
        facts["restriction_action"] = demand.restriction.action.value
        if demand.restriction.territories:
            facts["territories"] = list(demand.restriction.territories)
        if demand.restriction.duration_days is not None:
            facts["duration_days"] = demand.restriction.duration_days
    if demand.nondisclosure is not None:
        facts["nondisclosure"] = "undated" if demand.nondisclosure.until is None else "dated"
    return facts


def _received_private(
    demand: Demand, intake: str | None, body: bytes | None
) -> dict[str, str | Sequence[str]]:
    if body is None:
        body = json.dumps(format_demand(demand), sort_keys=True, separators=(",", ":")).encode()
    private: dict[str, str | Sequence[str]] = {
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "targets": [str(t) for t in demand.targets],
    }
    if demand.authority_id is not None:
        private["authority"] = demand.authority_id
    if demand.instrument.reference:
        private["instrument_reference"] = demand.instrument.reference
    if demand.instrument.document_sha256 is not None:
        private["document_sha256"] = demand.instrument.document_sha256
    if demand.offence is not None:
        private["offence"] = demand.offence.category
    if intake is not None:
        private["staff"] = intake
    return private


def _check_submitter(
    services: Services,
    conn: Connection,
    *,
    authority: Authority | None,
    signature: SignatureStatus,
    intake: str | None,
    action: str,
) -> None:
    """Typed in by permitted staff, or sent through the API by a registered authority whose
    signature verified."""
    if intake is not None:
        permit(services, load_staff(conn, intake), "demand.intake")
        return
    check_sender(services, authority, signature, action=action)


def check_sender(
    services: Services,
    authority: Authority | None,
    signature: SignatureStatus,
    *,
    action: str = "demand.submit",
) -> None:
    """A demand sent through the API comes from a registered authority whose signature
    verified, and one in good standing must be allowed ``action`` (a suspended one's demand
    is recorded, and screening refuses it)."""
    if authority is None:
        raise AuthError("a demand sent through the API must come from a registered authority")
    if signature is not SignatureStatus.VALID:
        raise SignatureError("the demand's signature did not verify against a registered key")
    if authority.is_active:
        authorize(services.pack, authority, action).check()


def _store_targets(conn: Connection, demand: Demand) -> None:
    conn.execute(demand_targets.delete().where(demand_targets.c.demand_id == demand.id))
    rows = _target_rows(demand)
    if rows:
        conn.execute(demand_targets.insert(), rows)


def _target_rows(demand: Demand) -> list[dict[str, Any]]:
    return [
        {"demand_id": demand.id, "position": i, "kind": t.kind.value, "target_id": t.id}
        for i, t in enumerate(demand.targets)
    ]


def _version_values(demand: Demand, signature: SignatureStatus) -> dict[str, Any]:
    """The columns a (new version of a) demand resets."""
    return {
        "authority_id": demand.authority_id,
        "kind": demand.kind.value,
        "body": json.dumps(format_demand(demand), sort_keys=True),
        "received_at": db_time(demand.received_at),
        "target_count": len(demand.targets),
        "signature": signature.value,
        "callback": CallbackStatus.NONE.value,
        "screening": None,
        "pack": None,
        "roles_required": "[]",
        "approvals_needed": 1 if demand.kind is DemandKind.EMERGENCY_DISCLOSURE else 2,
        "scope": None,
        "decided_at": None,
    }


def _arrival_channels(demand: Demand, authority: Authority | None) -> str | None:
    """What an emergency keeps of its authority's call-back channels as it arrives (a
    call-back is judged against them, not against channels added later); None for others."""
    if demand.kind is not DemandKind.EMERGENCY_DISCLOSURE:
        return None
    channels = () if authority is None else authority.channels
    return json.dumps([format_channel(c) for c in channels], sort_keys=True)


def _channels_at_arrival(conn: Connection, demand_id: str) -> tuple[Channel, ...]:
    raw = conn.execute(
        sa.select(demands.c.arrival_channels).where(demands.c.id == demand_id)
    ).scalar_one_or_none()
    return () if raw is None else tuple(parse_channel(c) for c in json.loads(raw))


@dataclass(frozen=True)
class Arrival:
    """A new demand made ready to store ahead of its transaction (:func:`arrival`): its row,
    its targets and its ``demand.received``, so that the transaction only stores them."""

    demand: Demand
    signature: SignatureStatus
    intake: str | None
    document: bytes | None
    values: dict[str, Any]
    """The columns of its row that the transaction does not decide."""
    event: DemandEvent
    facts: dict[str, Any]
    """The public facts of ``demand.received``: they name the authority as registered."""
    authority: Authority | None
    """The sending authority, as registered when it was looked up."""


def arrival(
    services: Services,
    demand: Demand,
    authority: Authority | None,
    *,
    signature: SignatureStatus,
    intake: str | None,
    document: bytes | None,
    body: bytes | None,
) -> Arrival:
    """``demand`` (as :func:`with_document` checked it) ready to store with
    :func:`store_arrival`, as sent by ``authority`` (as registered when it was looked up),
    with ``demand.received`` encoded."""
    facts = _received_facts(demand, authority, signature)
    event = demand_event(
        services, demand.id, DEMAND_RECEIVED, facts=facts,
        private=_received_private(demand, intake, body), staff=intake,
    )  # fmt: skip
    values = {"id": demand.id, "version": 1, "state": DemandState.RECEIVED.value,
              "intake_staff": intake, **_version_values(demand, signature)}  # fmt: skip
    return Arrival(demand, signature, intake, document, values, event, facts, authority)


def store_arrival(services: Services, conn: Connection, new: Arrival) -> None:
    """Inside a use-case's transaction: check the submitter, store the new demand (its row,
    targets, document and response clock). ``ConflictError`` if its id is taken, or if its
    authority is no longer registered as :func:`arrival` saw it. Its ``demand.received`` is
    for the caller to log (:func:`~custodes.service.lifecycle.log_events`)."""
    demand = new.demand
    authority = find_authority(conn, demand.authority_id)
    _check_submitter(
        services, conn, authority=authority, signature=new.signature, intake=new.intake,
        action="demand.submit",
    )  # fmt: skip
    if _received_facts(demand, authority, new.signature) != new.facts:
        raise ConflictError("the authority changed while its demand arrived; send it again")
    insert = _INSERT_NEW[conn.dialect.name]
    params = {**new.values, "updated_at": db_time(services.clock()),
              "arrival_channels": _arrival_channels(demand, authority)}  # fmt: skip
    if conn.execute(insert, params).first() is None:
        raise ConflictError(f"a demand {demand.id!r} exists already", demand=demand.id)
    _store_parts(conn, [(new, None)])


def store_arrival_as(
    services: Services,
    conn: Connection,
    new: Arrival,
    state: DemandState,
    values: Mapping[str, Any],
) -> None:
    """Inside a use-case's transaction: store a demand that arrives through the signed API
    straight in ``state``, its row written once with ``values`` (the moves that took it
    there, from ``received``, are the caller's to check and log with their events; an
    answering state meets the response clock at once). The submitter must have passed
    :func:`check_sender`, on the authority :func:`arrival` saw: the row is written in the
    same statement that confirms that authority is still registered exactly so.
    ``ConflictError`` if it is not, or if the demand's id is taken (by the transaction's
    next deferred statement at the latest: :func:`~custodes.store.fast.defer`)."""
    store_arrivals_as(services, conn, [(new, state, values)])


def store_arrivals_as(
    services: Services,
    conn: Connection,
    arrivals: Sequence[tuple[Arrival, DemandState, Mapping[str, Any]]],
) -> None:
    """:func:`store_arrival_as` for several demands, one statement for all (sent with the
    transaction's other deferred statements): their authorities are read and compared with
    those :func:`arrival` saw, and every row is written. ``ConflictError`` if any authority
    changed or any id is taken (the caller's transaction then fails, and it stores each
    demand alone to say which)."""
    now = db_time(services.clock())
    seen: dict[str, str] = {}
    rows = []
    for new, state, values in arrivals:
        authority = new.authority
        if authority is None:
            raise AuthError("a demand sent through the API must come from a registered authority")
        record = stored_record(authority)
        if seen.setdefault(authority.id, record) != record:
            raise ConflictError("two demands name their authority differently")
        rows.append({**new.values, **values, "state": state.value, "updated_at": now,
                     "arrival_channels": _arrival_channels(new.demand, authority)})  # fmt: skip
    lone = arrivals[0][0].demand.id if len(arrivals) == 1 else None
    authorities_seen = list(seen.items())
    for start in range(0, len(authorities_seen), CHUNK):
        some = dict(authorities_seen[start : start + CHUNK])
        defer(conn, records_part(some), _unchanged(some))
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        defer(conn, insert_part(conn, demands, chunk, _NEW_ROW, ("id",)),
              _written(len(chunk), lone))  # fmt: skip
    _store_parts(conn, [(new, now if state in ANSWERED else None) for new, state, _ in arrivals])


def _unchanged(seen: Mapping[str, str]) -> Check:
    """Raise unless the authorities' stored records (what :func:`records_part` returned)
    are those ``seen``."""

    def check(stored: list[tuple[Any, ...]]) -> None:
        if dict(stored) != seen:
            raise ConflictError("the authority changed while its demand arrived; send it again")

    return check


def _written(count: int, lone: str | None) -> Check:
    """Raise unless ``count`` new demands were written (``lone``: the id of the one)."""

    def check(ids: list[tuple[Any, ...]]) -> None:
        if len(ids) != count:
            if lone is not None:
                raise ConflictError(f"a demand {lone!r} exists already", demand=lone)
            raise ConflictError("a demand's id is taken")

    return check


_NEW_ROW = "ON CONFLICT (id) DO NOTHING RETURNING id"


def _store_parts(conn: Connection, arrivals: Sequence[tuple[Arrival, datetime | None]]) -> None:
    """New demands' targets, documents and response clocks (met at the time given, if
    any), one statement per table. A new demand has none of them yet; a copy of a demand
    whose id is taken writes none, and the transaction fails all the same, on the check of
    the demand's own row (:func:`store_arrivals_as`), which on PostgreSQL runs once every
    statement deferred with it has."""
    targets, documents, clocks = [], [], []
    for new, met_at in arrivals:
        demand = new.demand
        targets += _target_rows(demand)
        if new.document is not None:
            documents.append({
                "demand_id": demand.id, "sha256": demand.instrument.document_sha256,
                "data": new.document, "received_at": db_time(demand.received_at),
            })  # fmt: skip
        clock = response_clock(demand)
        clocks.append({
            "demand_id": demand.id, "kind": clock.kind.value,
            "started_at": db_time(clock.started_at), "due_at": db_time(clock.due_at),
            "met_at": met_at,
        })  # fmt: skip
    for table, rows in ((demand_targets, targets), (demand_documents, documents),
                        (demand_clocks, clocks)):  # fmt: skip
        defer_rows(conn, table, rows, "ON CONFLICT DO NOTHING")


_INSERT_NEW = per_dialect(
    lambda insert: (
        insert(demands)
        .on_conflict_do_nothing(index_elements=[demands.c.id])
        .returning(demands.c.id)
    )
)
"""A new demand's row, unless one with its id exists: by dialect, built once."""


def receive_demand(
    services: Services,
    demand: Demand,
    *,
    signature: SignatureStatus,
    intake: str | None = None,
    document: bytes | None = None,
    body: bytes | None = None,
) -> DemandRecord:
    """Record ``demand`` as received; logs ``demand.received``.

    ``intake`` is the employee who typed it in (None: it came through the signed API, and
    ``signature`` must be ``valid``). ``document`` is the instrument itself: it is hashed,
    checked against ``instrument.document_sha256`` if the demand states one, and kept.
    ``body`` is the request body as received (its SHA-256 is committed to in the log).
    """
    demand = with_document(demand, document)

    def work(conn: Connection) -> DemandRecord:
        authority = find_authority(conn, demand.authority_id)
        new = arrival(
            services, demand, authority, signature=signature, intake=intake,
            document=document, body=body,
        )  # fmt: skip
        store_arrival(services, conn, new)
        log_events(conn, services, [new.event])
        return load_demand(conn, demand.id)

    return services.write(work)


def amend_demand(
    services: Services,
    amended: Demand,
    *,
    signature: SignatureStatus,
    intake: str | None = None,
    document: bytes | None = None,
    body: bytes | None = None,
) -> DemandRecord:
    """The authority's answer to a clarification request: ``amended`` (same id, same
    authority) replaces the demand as a new version, back in ``received``; logs
    ``demand.amended``. Approvals and call-backs of the earlier version no longer count. An
    emergency keeps the channels of its first arrival (an amendment turning a demand into one
    arrives now)."""
    amended = with_document(amended, document)

    def work(conn: Connection) -> DemandRecord:
        current = load_demand(conn, amended.id, lock=True)
        if amended.authority_id != current.demand.authority_id:
            raise ForbiddenError("an amendment comes from the authority that sent the demand")
        authority = find_authority(conn, amended.authority_id)
        action = "demand.answer_clarification"
        _check_submitter(
            services, conn, authority=authority, signature=signature, intake=intake,
            action=action,
        )  # fmt: skip
        kept = conn.execute(
            sa.select(demands.c.arrival_channels).where(demands.c.id == amended.id)
        ).scalar_one()
        arrival = kept if kept is not None else _arrival_channels(amended, authority)
        move(conn, services, current, DemandState.RECEIVED, version=current.version + 1,
             arrival_channels=arrival, **_version_values(amended, signature))  # fmt: skip
        _store_targets(conn, amended)
        if document is not None:
            store_document(conn, amended.id, document, amended.received_at)
        start_clock(conn, response_clock(amended))
        log_event(
            conn, services, amended.id, DEMAND_AMENDED,
            facts=_received_facts(amended, authority, signature),
            private=_received_private(amended, intake, body), staff=intake,
        )  # fmt: skip
        return load_demand(conn, amended.id)

    return services.write(work)


def record_callback(
    services: Services, demand_id: str, channel: Channel, *, by: str
) -> DemandRecord:
    """Staff ``by`` called the authority back on ``channel`` to confirm an emergency; logs
    ``emergency.callback_recorded``. The call-back counts as ``registered`` only on a channel
    the authority had registered when the emergency arrived and still has: one added after the
    emergency arrived does not count (whoever sent a forged emergency could otherwise have a
    number of theirs added and take the call), nor does one removed since.
    Screening reads it (``emergency`` checks), so record the call-back before screening."""

    def work(conn: Connection) -> DemandRecord:
        permit(services, load_staff(conn, by), "emergency.record_callback")
        current = load_demand(conn, demand_id, lock=True)
        if current.demand.kind is not DemandKind.EMERGENCY_DISCLOSURE:
            raise ConflictError("a call-back is recorded only for an emergency disclosure")
        if current.state is not DemandState.RECEIVED:
            raise ConflictError("record the call-back before the demand is screened")
        authority = find_authority(conn, current.demand.authority_id)
        registered = (
            authority is not None
            and authority.channel_registered(channel)
            and channel in _channels_at_arrival(conn, demand_id)
        )
        status = CallbackStatus.REGISTERED if registered else CallbackStatus.UNREGISTERED
        conn.execute(
            demands.update()
            .where(demands.c.id == demand_id)
            .values(callback=status.value, updated_at=db_time(services.clock()))
        )
        log_event(
            conn, services, demand_id, EMERGENCY_CALLBACK_RECORDED,
            facts={"callback": status.value, "channel_kind": channel.kind.value},
            private={"staff": by, "channel": channel.address}, staff=by,
        )  # fmt: skip
        return load_demand(conn, demand_id)

    return services.write(work)


def withdraw_demand(
    services: Services,
    demand_id: str,
    *,
    reason: str,
    authority: str | None = None,
    by: str | None = None,
) -> DemandRecord:
    """The authority withdraws its demand: through the API (``authority`` is its id) or by
    telling intake staff (``by``); logs ``demand.withdrawn``."""
    check_reason(reason)
    if (authority is None) == (by is None):
        raise InputError("a withdrawal comes from the authority or is recorded by staff")

    def work(conn: Connection) -> DemandRecord:
        current = load_demand(conn, demand_id, lock=True)
        if by is not None:
            permit(services, load_staff(conn, by), "demand.intake")
        else:
            sender = find_authority(conn, authority)
            if sender is None or sender.id != current.demand.authority_id:
                raise ForbiddenError("only the authority that sent a demand withdraws it")
            authorize(services.pack, sender, "demand.withdraw").check()
        move(conn, services, current, DemandState.WITHDRAWN)
        log_event(conn, services, demand_id, DEMAND_WITHDRAWN, private={"note": reason},
                  staff=by, note=reason)  # fmt: skip
        return load_demand(conn, demand_id)

    return services.write(work)


_CLOSED_OUTCOME = {
    DemandState.REFUSED: "refuse",
    DemandState.EXECUTED: "pass",
    DemandState.NOTIFIED: "pass",
}


def close_demand(services: Services, demand_id: str, *, by: str, reason: str) -> DemandRecord:
    """Close a demand that has run its course (refused, withdrawn, executed or notified, or
    never clarified); logs ``demand.closed``."""
    check_reason(reason)

    def work(conn: Connection) -> DemandRecord:
        permit(services, load_staff(conn, by), "demand.close")
        current = load_demand(conn, demand_id, lock=True)
        move(conn, services, current, DemandState.CLOSED)
        facts = {}
        if current.state in _CLOSED_OUTCOME:
            facts["outcome"] = _CLOSED_OUTCOME[current.state]
        log_event(conn, services, demand_id, DEMAND_CLOSED, facts=facts,
                  private={"staff": by}, staff=by, note=reason)  # fmt: skip
        return load_demand(conn, demand_id)

    return services.write(work)
