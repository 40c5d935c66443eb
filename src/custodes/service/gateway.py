"""The inline read path of staff access: check a capability, log the read, durably, fast.

The platform's data path calls :meth:`AccessGateway.read` before it serves a staff member any
user data, and serves it only if the call returns::

    read(token, staff_id, subject, categories)
      token malformed, unknown or forged  ──► AuthError (nothing logged: nobody to name)
      another person's, revoked, expired,
      outside its subjects or categories  ──► ForbiddenError after staff_access.denied
      otherwise                           ──► ReadReceipt(index, at) once staff_access.read
                                              is durable

The checks run in memory against a per-process cache of capabilities (a capability never
changes once issued, except that it may be revoked). Each read's event is built by the
calling thread; the store's writer then merges every read waiting at that moment into one
transaction: one query for revocations, one multi-row append to the log, one insert of the
openings and one of the by-subject rows, one commit. Revocation is checked inside that
transaction, so once a revocation is durable no process logs (and so allows) another read
under it.

A capability's bearer token is ``cap_<24 hex>.<secret>``, the secret being 32 random bytes in
base64url without padding; :func:`parse_token` accepts only what :func:`format_token` writes.

>>> token = format_token("cap_0123456789abcdef01234567", bytes(32))
>>> token
'cap_0123456789abcdef01234567.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
>>> parse_token(token) == ("cap_0123456789abcdef01234567", bytes(32))
True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import AuthError, ForbiddenError, InputError
from custodes.events import STAFF_ACCESS_DENIED, STAFF_ACCESS_READ
from custodes.events.leaf import SALT_BYTES, TIME_FORMAT_
from custodes.events.salts import new_salt
from custodes.model import DataCategory, Finding, Outcome, Target
from custodes.service import Encoded, Services, record, record_encoded
from custodes.service.package import parse_subject
from custodes.store.access_tables import staff_access_events, staff_capabilities, utc
from custodes.store.fast import CHUNK, insert_rows, select_in

__all__ = [
    "MAX_TOKEN",
    "AccessGateway",
    "ReadEncoder",
    "ReadReceipt",
    "format_token",
    "parse_token",
    "refusal",
    "subject_row",
]

log = logging.getLogger(__name__)

_MERGE_KEY = "staff_access.read"
_COMMIT = b"custodes/commit/v1\n"
_KIND = b',"kind":"' + STAFF_ACCESS_READ.encode() + b'","time":"'
# Run for every batch of reads, straight to the driver (custodes.store.fast).
_REVOKED_AMONG = (
    f"SELECT id FROM {staff_capabilities.name} WHERE id IN ({{in}}) AND revoked_at IS NOT NULL"
)

MAX_TOKEN = 128
_TOKEN = re.compile(r"(cap_[0-9a-f]{24})\.([A-Za-z0-9_-]{43})")


def format_token(capability_id: str, secret: bytes) -> str:
    """The bearer token of a capability: its id, a dot, the secret in base64url."""
    if len(secret) != 32:
        raise InputError("a capability secret is 32 bytes")
    token = f"{capability_id}.{base64.urlsafe_b64encode(secret).decode().rstrip('=')}"
    if not _TOKEN.fullmatch(token):
        raise InputError(f"{capability_id!r} is not a capability id")
    return token


def parse_token(token: str) -> tuple[str, bytes]:
    """The capability id and secret of ``token``; :class:`AuthError` when it is malformed."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise AuthError("a capability token is at most 128 characters")
    m = _TOKEN.fullmatch(token)
    if m is None:
        raise AuthError("malformed capability token")
    try:
        secret = base64.urlsafe_b64decode(m.group(2) + "=")
    except (binascii.Error, ValueError):
        raise AuthError("malformed capability token") from None
    if format_token(m.group(1), secret) != token:
        raise AuthError("capability token is not in canonical form")
    return m.group(1), secret


def refusal(rule: str, reason: str, remedy: str) -> Finding:
    """A refusing finding of custodes' own (not of the policy pack)."""
    return Finding(rule, Outcome.REFUSE, reason, remedy)


def subject_row(
    index: int, kind: str, subject: Target, at: datetime, **values: Any
) -> dict[str, Any]:
    """A ``staff_access_events`` row: ``values`` gives ``staff_location``,
    ``justification``, ``categories`` and optionally ``rules`` and ``capability_id``."""
    cats, rules = values.pop("categories"), values.pop("rules", ())
    return {
        "idx": index,
        "subject": str(subject),
        "kind": kind,
        "at": at,
        "categories": ",".join(str(c) for c in cats),
        "rules": ",".join(rules),
        "capability_id": values.pop("capability_id", None),
        **values,
    }


_HOLDER = refusal(
    "capability.holder",
    "the capability was issued to someone else",
    "ask for access in your own name",
)
_REVOKED = refusal(
    "capability.revoked",
    "the capability was revoked",
    "ask for access again, with a justification",
)
_EXPIRED = refusal(
    "capability.expired",
    "the capability has expired",
    "ask for access again, with a justification",
)
_SUBJECT = refusal(
    "capability.subject",
    "the capability does not cover this subject",
    "ask for access to this subject, with its own justification",
)
_CATEGORIES = refusal(
    "capability.categories",
    "the capability does not cover these data categories",
    "ask for access to the categories you need",
)


@dataclass(frozen=True)
class ReadReceipt:
    """A read that its capability allowed, and its durable ``staff_access.read`` event."""

    index: int
    at: datetime


@dataclass
class _Held:
    """A capability as the gateway caches it; only ``revoked`` ever changes."""

    id: str
    secret_sha256: bytes
    staff_id: str
    staff_location: str
    justification: str
    subjects: frozenset[Target]
    categories: frozenset[DataCategory]
    expires_at: datetime
    revoked: bool

    def refusal(
        self, staff_id: str, subject: Target, wanted: frozenset[DataCategory], now: datetime
    ) -> Finding | None:
        if staff_id != self.staff_id:
            return _HOLDER
        if self.revoked:
            return _REVOKED
        if now >= self.expires_at:
            return _EXPIRED
        if subject not in self.subjects:
            return _SUBJECT
        if not wanted or not wanted <= self.categories:
            return _CATEGORIES
        return None


class ReadEncoder:
    """The leaf and openings of a ``staff_access.read`` event, byte for byte what
    :func:`custodes.events.encode_event` and :func:`custodes.events.format_openings` make,
    with what does not change from read to read cached. The read path builds one event per
    read, and the general encoder's validation and canonicalisation cost more than the rest
    of the check; ``tests/test_access_gateway.py`` holds this one to the general one."""

    def __init__(self) -> None:
        self._json: dict[str, bytes] = {}
        self._bound: dict[tuple[str, str], bytes] = {}
        self._facts: dict[tuple[str, ...], bytes] = {}

    def _commit(self, name: str, value: str, salt: bytes) -> bytes:
        """The commitment ``SHA-256("custodes/commit/v1\\n" || salt || JCS([name, value]))``
        (see :mod:`custodes.events`), with the JCS part cached."""
        bound = self._bound.get((name, value))
        if bound is None:
            bound = self._bound[name, value] = rfc8785.dumps([name, value])
        if len(salt) != SALT_BYTES:
            raise InputError(f"a salt is {SALT_BYTES} bytes")
        return hashlib.sha256(_COMMIT + salt + bound).hexdigest().encode()

    def _quoted(self, text: str) -> bytes:
        found = self._json.get(text)
        if found is None:
            found = self._json[text] = rfc8785.dumps(text)
        return found

    def encode(
        self,
        *,
        at: datetime,
        categories: tuple[str, ...],
        staff: str,
        subject: str,
        salts: tuple[bytes, bytes],
    ) -> tuple[bytes, bytes]:
        """``(leaf, openings)`` for a read of ``categories`` (sorted, distinct) at ``at``."""
        facts = self._facts.get(categories)
        if facts is None:
            if list(categories) != sorted(set(categories)):
                raise InputError("categories must be sorted and distinct")
            facts = self._facts[categories] = rfc8785.dumps({"categories": list(categories)})
        c_staff = self._commit("staff", staff, salts[0])
        c_subject = self._commit("subject", subject, salts[1])
        when = at.astimezone(UTC).strftime(TIME_FORMAT_).encode()
        leaf = b"".join(
            (
                b'{"commit":{"staff":"',
                c_staff,
                b'","subject":"',
                c_subject,
                b'"},"facts":',
                facts,
                _KIND,
                when,
                b'","v":1}',
            )
        )
        openings = b"".join(
            (
                b'{"staff":{"salt":"',
                base64.urlsafe_b64encode(salts[0]),
                b'","value":',
                self._quoted(staff),
                b'},"subject":{"salt":"',
                base64.urlsafe_b64encode(salts[1]),
                b'","value":',
                self._quoted(subject),
                b"}}",
            )
        )
        if len(self._json) + len(self._bound) > 200_000:
            self._json.clear()
            self._bound.clear()
        return leaf, openings


@dataclass(frozen=True)
class _Read:
    """One read on its way to the log, its leaf and openings already built."""

    capability: str
    event: Encoded
    row: dict[str, Any]


class AccessGateway:
    """Checks capabilities and logs reads. One per process; thread-safe."""

    CACHE_LIMIT = 100_000

    def __init__(self, services: Services) -> None:
        self.services = services
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._encoder = ReadEncoder()

    def read(
        self,
        token: str,
        *,
        staff_id: str,
        subject: Target,
        categories: Collection[DataCategory],
    ) -> ReadReceipt:
        """Allow one read of ``categories`` of ``subject`` by ``staff_id``, who presents
        ``token``. Returns once the ``staff_access.read`` event is durable."""
        cap_id, secret = parse_token(token)
        held = self._lookup(cap_id)
        if held is None or not hmac.compare_digest(
            hashlib.sha256(secret).digest(), held.secret_sha256
        ):
            raise AuthError("unknown or forged capability token")
        now = self.services.clock().replace(microsecond=0)
        wanted = frozenset(categories)
        refused = held.refusal(staff_id, subject, wanted, now)
        if refused is not None:
            raise self._deny(held, staff_id, subject, wanted, refused=refused, at=now)
        names = tuple(sorted(c.value for c in wanted))
        salts = (new_salt(SALT_BYTES), new_salt(SALT_BYTES))
        leaf, openings = self._encoder.encode(
            at=now, categories=names, staff=staff_id, subject=str(subject), salts=salts
        )
        row = subject_row(
            0,
            "read",
            subject,
            now,
            staff_location=held.staff_location,
            justification=held.justification,
            categories=names,
            capability_id=cap_id,
        )
        item = _Read(cap_id, Encoded(leaf, openings), row)
        [index] = self.services.store.writer.submit_merged(_MERGE_KEY, [item], self._append)
        if index is None:
            held.revoked = True
            raise self._deny(held, staff_id, subject, wanted, refused=_REVOKED, at=now)
        return ReadReceipt(index, now)

    def _append(self, conn: Connection, items: list[_Read]) -> list[int | None]:
        """The merged write of many reads: drop those whose capability was revoked, append
        the others' events with one statement, keep their openings and by-subject rows."""
        ids = sorted({i.capability for i in items})
        revoked = set()
        for start in range(0, len(ids), CHUNK):
            revoked |= {r[0] for r in select_in(conn, _REVOKED_AMONG, ids[start : start + CHUNK])}
        live = [i for i in items if i.capability not in revoked]
        # record_encoded takes every leaf as new: a read's leaf commits with two fresh salts.
        if live:
            indexes = record_encoded(conn, self.services, [i.event for i in live])
            rows = [{**i.row, "idx": n} for n, i in zip(indexes, live, strict=True)]
            insert_rows(conn, staff_access_events, rows)
        else:
            indexes = []
        out = iter(indexes)
        return [None if i.capability in revoked else next(out) for i in items]

    def _deny(
        self,
        held: _Held,
        staff_id: str,
        subject: Target,
        wanted: frozenset[DataCategory],
        *,
        refused: Finding,
        at: datetime,
    ) -> ForbiddenError:
        """Log the refusal (``staff_access.denied``) and return the error to raise."""
        services = self.services
        names = sorted(c.value for c in wanted)

        def work(conn: Connection) -> int:
            facts = {"justification": held.justification, "rules": [refused.rule_id]}
            private = {"staff": staff_id, "subject": str(subject)}
            index = record(conn, services, STAFF_ACCESS_DENIED, facts=facts, private=private, at=at)
            row = subject_row(
                index,
                "denied",
                subject,
                at,
                staff_location=held.staff_location,
                justification=held.justification,
                categories=names,
                rules=[refused.rule_id],
                capability_id=held.id,
            )
            conn.execute(staff_access_events.insert().values(**row))
            return index

        index = services.write(work)
        log.info("staff read refused capability=%s rule=%s", held.id, refused.rule_id)
        return ForbiddenError(refused.reason, rules=[refused.rule_id], events=[index])

    def _lookup(self, cap_id: str) -> _Held | None:
        held = self._held.get(cap_id)
        if held is not None:
            return held
        caps = staff_capabilities
        with self.services.store.read() as conn:
            row = conn.execute(sa.select(caps).where(caps.c.id == cap_id)).first()
        if row is None:
            return None
        held = _Held(
            id=row.id,
            secret_sha256=bytes(row.secret_sha256),
            staff_id=row.staff_id,
            staff_location=row.staff_location,
            justification=row.justification,
            subjects=frozenset(parse_subject(s) for s in json.loads(row.subjects)),
            categories=frozenset(DataCategory(c) for c in row.categories.split(",")),
            expires_at=utc(row.expires_at),
            revoked=row.revoked_at is not None,
        )
        with self._lock:
            if len(self._held) >= self.CACHE_LIMIT:
                self._prune()
            self._held[cap_id] = held
        return held

    def _prune(self) -> None:
        now = self.services.clock()
        for key in [k for k, h in self._held.items() if h.expires_at <= now or h.revoked]:
            del self._held[key]
        if len(self._held) >= self.CACHE_LIMIT:
            self._held.clear()
