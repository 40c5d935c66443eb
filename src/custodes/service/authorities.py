"""The authorities registry: who may send demands, with which keys, and how to call them back.

An authority is registered before it can send demands (failure mode F2): its jurisdiction, its
standing, the Ed25519 keys its requests are signed with (RFC 9421) and the call-back channels
staff use to confirm an emergency. Channels are given at registration and added or removed
later; a call-back counts as ``registered`` only on a channel recorded before the emergency
arrived and still registered when the call-back is recorded (see
:func:`custodes.service.demands.record_callback`).

================================  =========================================================
use-case                          event
================================  =========================================================
:func:`register_authority`        ``authority.registered``
:func:`add_key`                   ``authority.key_added``
:func:`revoke_key`                ``authority.key_revoked``
:func:`add_channel`               ``authority.channel_added``
:func:`remove_channel`            ``authority.channel_removed``
:func:`suspend_authority`         ``authority.suspended``
:func:`reinstate_authority`       ``authority.reinstated``
================================  =========================================================

Each takes the ``authority.manage`` permission (the ``admin`` role). Names, ids, keys and
channel addresses go into the log only as salted commitments; the jurisdiction, the kind and
a channel's kind (``phone``, ``email``, ``portal``) are public facts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import ConflictError, NotFoundError
from custodes.events import (
    AUTHORITY_CHANNEL_ADDED,
    AUTHORITY_CHANNEL_REMOVED,
    AUTHORITY_KEY_ADDED,
    AUTHORITY_KEY_REVOKED,
    AUTHORITY_REGISTERED,
    AUTHORITY_REINSTATED,
    AUTHORITY_SUSPENDED,
)
from custodes.model import (
    Authority,
    Channel,
    Standing,
    VerificationKey,
    format_authority,
    parse_authority,
)
from custodes.store.demand_tables import authorities
from custodes.store.fast import CHUNK, Part, execute, together

from . import Services, record
from .staff import load_staff, permit

__all__ = [
    "add_channel",
    "add_key",
    "find_authority",
    "find_authority_record",
    "get_authority",
    "list_authorities",
    "records_part",
    "records_unchanged",
    "register_authority",
    "reinstate_authority",
    "remove_channel",
    "revoke_key",
    "stored_record",
    "suspend_authority",
]


def find_authority(conn: Connection, authority_id: str | None) -> Authority | None:
    """The registered authority ``authority_id``, or None (unregistered, or no id at all)."""
    found = None if authority_id is None else find_authority_record(conn, authority_id)
    return None if found is None else found[1]


def find_authority_record(conn: Connection, authority_id: str) -> tuple[str, Authority] | None:
    """The registered authority ``authority_id`` with its record as stored, or None."""
    row = execute(conn, _FIND, [authority_id])
    return None if row is None else (row[0], _parsed(row[0]))


def records_unchanged(conn: Connection, seen: Mapping[str, str]) -> bool:
    """Whether each authority ``seen`` names is stored with exactly the record given (a
    use-case that judged them before its transaction confirms it inside, one statement for
    at most :data:`~custodes.store.fast.CHUNK` of them)."""
    [stored] = together(conn, [records_part(seen)])
    return dict(stored) == seen


def records_part(seen: Mapping[str, str]) -> Part:
    """:func:`records_unchanged`'s look-up as a part of a statement
    (:func:`~custodes.store.fast.together`): the records stored, ``dict(rows) == seen``
    when unchanged."""
    if not seen or len(seen) > CHUNK:
        raise ValueError(f"1 to {CHUNK} authorities at a time")
    marks = ", ".join(["{mark}"] * len(seen))
    return Part(_RECORDS.format(**{"in": marks}), list(seen), ("id", "record"))


_RECORDS = "SELECT id, record FROM authorities WHERE id IN ({in})"

_FIND = "SELECT record FROM authorities WHERE id = {mark}"
"""Straight to the driver: every screening looks its authority up, and so does a server
process at the first signed request of each authority (and after the record changed)."""


@lru_cache(maxsize=1024)
def _parsed(record: str) -> Authority:
    """An authority from its stored record, remembered by the record's exact text (every
    screening looks its authority up; a changed record is new text, so it is parsed
    afresh)."""
    return parse_authority(json.loads(record))


def stored_record(authority: Authority) -> str:
    """The text an authority is stored as (compared exactly by a use-case that judged the
    authority before its transaction)."""
    return json.dumps(format_authority(authority), sort_keys=True)


def _require(conn: Connection, authority_id: str) -> Authority:
    found = find_authority(conn, authority_id)
    if found is None:
        raise NotFoundError(f"no registered authority {authority_id!r}", authority=authority_id)
    return found


def get_authority(services: Services, authority_id: str) -> Authority:
    """One registered authority (``NotFoundError`` if there is none)."""
    with services.store.read() as conn:
        return _require(conn, authority_id)


def list_authorities(services: Services) -> list[Authority]:
    """Every registered authority, by id."""
    with services.store.read() as conn:
        rows = conn.execute(sa.select(authorities.c.record).order_by(authorities.c.id))
        return [parse_authority(json.loads(r[0])) for r in rows]


def _save(conn: Connection, services: Services, authority: Authority) -> None:
    conn.execute(
        authorities.update()
        .where(authorities.c.id == authority.id)
        .values(
            standing=authority.standing.value,
            record=stored_record(authority),
            updated_at=services.clock(),
        )
    )


def _key_text(key: VerificationKey) -> str:
    return f"{key.id} {base64.b64encode(key.ed25519).decode()}"


def register_authority(services: Services, authority: Authority, *, by: str) -> int:
    """Register ``authority`` (with its keys and call-back channels); logs
    ``authority.registered``."""

    def work(conn: Connection) -> int:
        permit(services, load_staff(conn, by), "authority.manage")
        if find_authority(conn, authority.id) is not None:
            raise ConflictError(f"authority {authority.id!r} is already registered")
        now = services.clock()
        conn.execute(
            authorities.insert().values(
                id=authority.id,
                jurisdiction=authority.jurisdiction,
                standing=authority.standing.value,
                record=stored_record(authority),
                registered_at=now,
                updated_at=now,
            )
        )
        return record(
            conn,
            services,
            AUTHORITY_REGISTERED,
            facts={
                "authority_jurisdiction": authority.jurisdiction,
                "authority_kind": authority.kind.value,
            },
            private={"authority": authority.id, "name": authority.name, "staff": by},
        )

    return services.write(work)


def add_key(services: Services, authority_id: str, key: VerificationKey, *, by: str) -> int:
    """Register another verification key; logs ``authority.key_added``."""

    def work(conn: Connection) -> int:
        permit(services, load_staff(conn, by), "authority.manage")
        authority = _require(conn, authority_id)
        if authority.key(key.id) is not None:
            raise ConflictError(f"authority {authority_id!r} already has a key {key.id!r}")
        _save(conn, services, replace(authority, keys=(*authority.keys, key)))
        private = {"authority": authority_id, "key": _key_text(key), "staff": by}
        return record(conn, services, AUTHORITY_KEY_ADDED, private=private)

    return services.write(work)


def revoke_key(services: Services, authority_id: str, key_id: str, *, by: str) -> int:
    """Revoke a verification key (requests signed with it stop verifying); logs
    ``authority.key_revoked``."""

    def work(conn: Connection) -> int:
        permit(services, load_staff(conn, by), "authority.manage")
        authority = _require(conn, authority_id)
        key = authority.key(key_id)
        if key is None:
            raise NotFoundError(f"authority {authority_id!r} has no key {key_id!r}")
        kept = tuple(k for k in authority.keys if k.id != key_id)
        _save(conn, services, replace(authority, keys=kept))
        private = {"authority": authority_id, "key": _key_text(key), "staff": by}
        return record(conn, services, AUTHORITY_KEY_REVOKED, private=private)

    return services.write(work)


def add_channel(services: Services, authority_id: str, channel: Channel, *, by: str) -> int:
    """Register another call-back channel; logs ``authority.channel_added``. It counts for
    emergencies that arrive from now on, not for those already waiting."""

    def work(conn: Connection) -> int:
        permit(services, load_staff(conn, by), "authority.manage")
        authority = _require(conn, authority_id)
        if authority.channel_registered(channel):
            raise ConflictError(
                f"authority {authority_id!r} already has this {channel.kind.value} channel"
            )
        _save(conn, services, replace(authority, channels=(*authority.channels, channel)))
        return record(
            conn, services, AUTHORITY_CHANNEL_ADDED,
            facts={"channel_kind": channel.kind.value},
            private={"authority": authority_id, "channel": channel.address, "staff": by},
        )  # fmt: skip

    return services.write(work)


def remove_channel(services: Services, authority_id: str, channel: Channel, *, by: str) -> int:
    """Remove a call-back channel: a call-back on it no longer counts as ``registered``, for
    emergencies already waiting too; logs ``authority.channel_removed``."""

    def work(conn: Connection) -> int:
        permit(services, load_staff(conn, by), "authority.manage")
        authority = _require(conn, authority_id)
        if not authority.channel_registered(channel):
            raise NotFoundError(
                f"authority {authority_id!r} has no such {channel.kind.value} channel"
            )
        kept = tuple(c for c in authority.channels if c != channel)
        _save(conn, services, replace(authority, channels=kept))
        return record(
            conn, services, AUTHORITY_CHANNEL_REMOVED,
            facts={"channel_kind": channel.kind.value},
            private={"authority": authority_id, "channel": channel.address, "staff": by},
        )  # fmt: skip

    return services.write(work)


def _set_standing(
    services: Services, authority_id: str, standing: Standing, by: str, note: str | None
) -> int:
    def work(conn: Connection) -> int:
        permit(services, load_staff(conn, by), "authority.manage")
        authority = _require(conn, authority_id)
        if authority.standing is standing:
            raise ConflictError(f"authority {authority_id!r} is already {standing.value}")
        _save(conn, services, replace(authority, standing=standing))
        facts = {"authority_jurisdiction": authority.jurisdiction}
        private = {"authority": authority_id, "staff": by}
        if standing is Standing.SUSPENDED:
            return record(
                conn,
                services,
                AUTHORITY_SUSPENDED,
                facts=facts,
                private=private | {"note": note or ""},
            )
        return record(conn, services, AUTHORITY_REINSTATED, facts=facts, private=private)

    return services.write(work)


def suspend_authority(services: Services, authority_id: str, *, by: str, reason: str) -> int:
    """Suspend an authority: screening refuses its demands (``requester.suspended``) until it
    is reinstated; logs ``authority.suspended``."""
    return _set_standing(services, authority_id, Standing.SUSPENDED, by, reason)


def reinstate_authority(services: Services, authority_id: str, *, by: str) -> int:
    """Reinstate a suspended authority; logs ``authority.reinstated``."""
    return _set_standing(services, authority_id, Standing.ACTIVE, by, None)
