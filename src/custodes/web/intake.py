"""The gate of the authority API: who signed the request, and may they ask this (F2).

Every route of the authority API depends on :func:`signed` (``action``), which reads the
body, within the route's size limit (:mod:`custodes.web.limits`), and hands the route a
:class:`Gate`. The route's first step is :meth:`Gate.admit`, which, in order:

1. verifies the RFC 9421 signature and the Content-Digest (:mod:`custodes.web.signatures`)
   against the keys registered for the authority named by the ``keyid``
   (``<authority id>/<key id>``), refusing an unknown or revoked key;
2. asks the Cedar pack whether the authority may perform ``action``;
3. in one database write (one statement for every request admitted in the same group
   commit, on PostgreSQL): confirms that the authority's record it judged by is still the
   stored one, remembers the nonce (a nonce seen before is ``signature_replayed``), counts
   the request against the authority's rate limit, and, for a POST, claims its
   ``Idempotency-Key`` (:mod:`custodes.web.idempotency`). A request refused there is
   admitted again alone, a statement for each step, to say why.

A demand submission (``POST /v1/demands``) usually takes step 3 in the transaction that
stores the demand instead (:meth:`Gate.check`, then :class:`Admitting`): it is verified and
authorized, then parsed, read for, screened and encoded, and its admission, its demand,
its events and its kept answer commit together, one commit instead of two. If anything
refuses it or fails on the way, nothing of that transaction was written, and the route
admits it as above and goes on step by step, so that a refused request gets the very
answer, in the order of the steps, that it would have got. A request refused at step 3
(a replayed nonce, a rate passed, a key taken) has then been screened for nothing: the
price of sparing every accepted demand a commit. An authority refused for its rate is
remembered until its window ends (:data:`OverRate`), and its submissions meanwhile are
admitted first, as above, so that a flood over the rate costs the gate's work alone.

The app remembers the authorities it verified requests of (:data:`KnownAuthorities`), so
that a request reads nothing before its write. What it remembers may be stale (another
server process revoked a key, or suspended the authority): the write of step 3 then finds a
different record, admits nothing, and the gate starts again from the stored record, which
refuses the request if it must. No request is admitted on a record that was not the stored
one when its admission committed.

The gate runs where the route runs, after the body was read on the event loop: a GET route
is a plain function, which FastAPI runs in a worker thread; a POST route runs on the event
loop's own thread in a greenlet (:mod:`custodes.store.bridge`), awaiting its commits and,
on PostgreSQL, the read every submission makes (:meth:`~custodes.store.Store.read_row`), so
that a request waiting for the database holds no thread. Handing a request from one thread
to another and back cost more than the gate's own work. A route can do nothing for its
caller without the :class:`SignedCall` that :meth:`Gate.admit` returns: it alone names the
authority and holds the body and the claimed Idempotency-Key.

Every request of the authority API refused as malformed, oversized, unauthenticated or not
permitted (400, 401, 403, 413, 415, 422) is recorded in the log as ``request.refused`` with
its error code and, only when the signature verified, the authority's jurisdiction: a
request whose signature did not verify names nobody, so that nobody can be blamed in the
public log by a forger.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa
from fastapi import Request, Response
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from custodes.errors import ConflictError, CustodesError, InputError, RateLimitError
from custodes.events import REQUEST_REFUSED
from custodes.model import Authority
from custodes.policy import authorize
from custodes.policy.pack import remember
from custodes.service import Services, record
from custodes.service.authorities import (
    find_authority_record,
    records_part,
    records_unchanged,
)
from custodes.store.api_tables import api_nonces, revoked_keys
from custodes.store.fast import CHUNK, Part, insert_part, together

from .context import ApiConfig, config_of, services_of
from .idempotency import (
    IdempotentCall,
    Keeping,
    claim_part,
    claimed_all,
    idempotency_key,
    request_fingerprint,
)
from .limits import count_part, count_request, counted_within
from .signatures import (
    KeyRevokedError,
    SignatureReplayedError,
    SignedParts,
    UnknownKeyError,
    Verified,
    verify_request,
)

__all__ = [
    "REFUSALS",
    "AdmitAlone",
    "Admitting",
    "Checked",
    "Gate",
    "KnownAuthorities",
    "OverRate",
    "SignedCall",
    "UnsupportedMediaTypeError",
    "record_refusal",
    "refusal_listener",
    "signed",
    "signed_parts",
]

log = logging.getLogger(__name__)

REFUSALS = frozenset({400, 401, 403, 413, 415, 422})
"""Statuses of the authority API recorded as ``request.refused``."""


class UnsupportedMediaTypeError(InputError):
    code = "unsupported_media_type"
    status = 415
    title = "Unsupported media type"


@dataclass(frozen=True)
class SignedCall:
    """A request of the authority API that passed the gate."""

    authority: Authority
    keyid: str
    body: bytes
    once: IdempotentCall | None
    """For a POST: its idempotent call (already claimed, or holding the kept answer)."""


def signed_parts(request: Request) -> SignedParts:
    """The request as its signer saw it: the raw path and query as sent, the Host header."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    host = request.headers.get("host", "")
    target = f"{scope['scheme']}://{host}{raw_path.decode('latin-1')}"
    if query:
        target += "?" + query.decode("latin-1")
    headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
    return SignedParts(request.method, target, headers)


KnownAuthorities = dict[str, tuple[str, Authority]]
"""The authorities whose requests an app verified, by id, each with its stored record and
what it says (at most :data:`_KNOWN` of them, kept by :func:`~custodes.policy.pack.remember`).
The gate judges by them, and its admission confirms the record (see the module)."""

OverRate = dict[str, datetime]
"""Per app: the authorities whose last request was refused for its rate, each with the end
of the window that refused it. Until then, :meth:`Gate.check` leaves their submissions to
:meth:`Gate.admit`, which refuses them before any other work, instead of screening each
for nothing."""

_KNOWN = 1024


class _Signer:
    """The authority a request's signature was checked against, its record, and whether
    that came from the app's memory."""

    __slots__ = ("authority", "record", "remembered")

    def __init__(self) -> None:
        self.authority: Authority | None = None
        self.record = ""
        self.remembered = False


def _key_of(
    services: Services, known: KnownAuthorities, judged: _Signer, fresh: bool
) -> Callable[[str], bytes]:
    def key_of(keyid: str) -> bytes:
        authority_id, key_id = keyid.split("/", 1)
        found = None if fresh else known.get(authority_id)
        judged.remembered = found is not None and found[1].key(key_id) is not None
        if not judged.remembered:  # not known, or a key added since: look again
            found = _stored(services, authority_id, key_id, keyid)
            remember(known, authority_id, found, _KNOWN)
        assert found is not None
        record, authority = found
        key = authority.key(key_id)
        assert key is not None
        judged.authority, judged.record = authority, record
        return key.ed25519

    return key_of


def _stored(
    services: Services, authority_id: str, key_id: str, keyid: str
) -> tuple[str, Authority]:
    """The stored record of the authority whose key ``keyid`` names, which has that key;
    refuses an unknown or revoked key."""
    with services.store.read() as conn:
        found = find_authority_record(conn, authority_id)
        if found is not None and found[1].key(key_id) is not None:
            return found
        t = revoked_keys
        revoked = conn.execute(
            sa.select(t.c.revoked_at).where(t.c.authority_id == authority_id, t.c.key_id == key_id)
        ).first()
    if revoked is not None:
        raise KeyRevokedError(f"the key {keyid!r} was revoked")
    raise UnknownKeyError(f"no registered key {keyid!r}")


def _verify(
    services: Services,
    config: ApiConfig,
    parts: SignedParts,
    body: bytes,
    *,
    known: KnownAuthorities,
    judged: _Signer,
    fresh: bool,
) -> Verified:
    return verify_request(
        parts, body, key_of=_key_of(services, known, judged, fresh), now=services.clock(),
        max_age=config.signature_max_age, skew=config.clock_skew,
    )  # fmt: skip


class _Changed(Exception):
    """The record an admission was judged by is not the stored one (any more)."""


def _confirm(conn: Connection, one: _Admission) -> None:
    """Raise :class:`_Changed` unless the admission's authority is stored as it saw it."""
    if not records_unchanged(conn, {one.authority_id: one.record}):
        raise _Changed


def _remember_nonce(conn: Connection, verified: Verified, now: datetime) -> None:
    [spent] = together(conn, [_spend_part(conn, [verified])])
    if not _spent_all(conn, [verified], spent, now):
        raise SignatureReplayedError("this request was received before (its nonce is spent)")


def _spend_part(conn: Connection, verified: Sequence[Verified]) -> Part:
    rows = [{"key_id": v.keyid, "nonce": v.nonce, "expires_at": v.remember_until}
            for v in verified]  # fmt: skip
    return insert_part(conn, api_nonces, rows, _SPEND, ("nonce",))


def _spent_all(
    conn: Connection, verified: Sequence[Verified], spent: Sequence[tuple[Any, ...]], now: datetime
) -> bool:
    """After a :func:`_spend_part` ran: whether no nonce was spent before. One request in 16
    then forgets the spent nonces that expired."""
    if len(spent) != len(verified):
        return False
    if any(v.nonce[-1] in "AQgw" for v in verified):
        conn.execute(_FORGET_NONCES, {"now": now})
    return True


_SPEND = "ON CONFLICT DO NOTHING RETURNING nonce"
_FORGET_NONCES = api_nonces.delete().where(api_nonces.c.expires_at < sa.bindparam("now"))


@dataclass(frozen=True)
class _Admission:
    """What one signed request spends, counts and claims at the gate."""

    verified: Verified
    authority_id: str
    record: str
    """The authority's stored record the request was judged by."""
    limit: int
    window: timedelta
    now: datetime
    once: IdempotentCall | None

    @property
    def bucket(self) -> str:
        """The rate limit's count the request adds to."""
        return "authority:" + self.authority_id

    @classmethod
    def of(
        cls,
        services: Services,
        config: ApiConfig,
        verified: Verified,
        authority: Authority,
        *,
        record: str,
        once: IdempotentCall | None,
    ) -> _Admission:
        """The admission of a request from ``authority`` judged by ``record``, now, under
        the app's rate limit."""
        return cls(verified, authority.id, record, config.authority_rate, config.rate_window,
                   services.clock(), once)  # fmt: skip


def _admit(
    services: Services,
    config: ApiConfig,
    verified: Verified,
    authority: Authority,
    once: IdempotentCall | None,
    *,
    record: str,
) -> None:
    """Confirm the authority's stored ``record``, spend the nonce, count the request, claim
    its key: merged by the store's writer with the other requests at the gate in its batch
    (:func:`_admit_all`). A request refused there is admitted again alone, a statement for
    each step (:func:`_admit_exactly`), which raises its own error: :class:`_Changed` if the
    stored record is another."""
    one = _Admission.of(services, config, verified, authority, record=record, once=once)
    writer = services.store.writer
    try:
        writer.submit_merged("web.intake.admit", [one], _admit_all)
    except AdmitAlone:
        writer.submit(lambda conn: _admit_exactly(conn, one))


class AdmitAlone(Exception):
    """Some request of a merged admission is refused: admit each alone, to say which. A
    request admitted in its operation's transaction (:class:`Admitting`) that gets this was
    not admitted, and nothing of the transaction was written."""


def _admit_all(conn: Connection, admissions: list[_Admission]) -> list[None]:
    """Every admission in one statement (records, nonces, counts and claims, the parts of
    :func:`~custodes.store.fast.together`: one round trip on PostgreSQL), at most
    :data:`~custodes.store.fast.CHUNK` at a time. If any request is refused (a changed
    record, a spent nonce, a rate passed, a key taken), this raises :class:`AdmitAlone`: the
    writer rolls back and runs each request alone, and a request refused alone is admitted
    again by :func:`_admit_exactly`, which raises that request's own error to it."""
    if len({(a.limit, a.window) for a in admissions}) > 1:
        raise AdmitAlone
    for start in range(0, len(admissions), CHUNK):
        _admit_some(conn, admissions[start : start + CHUNK])
    return [None] * len(admissions)


def _admit_some(conn: Connection, admissions: Sequence[_Admission]) -> None:
    seen: dict[str, str] = {}
    for a in admissions:
        if seen.setdefault(a.authority_id, a.record) != a.record:
            raise AdmitAlone
    first, now = admissions[0], max(a.now for a in admissions)
    verified = [a.verified for a in admissions]
    buckets = [a.bucket for a in admissions]
    calls = [a.once for a in admissions if a.once is not None]
    parts = [records_part(seen), _spend_part(conn, verified),
             count_part(conn, buckets, window=first.window, now=now)]  # fmt: skip
    if calls:
        parts.append(claim_part(conn, calls))
    records, spent, counted, *claimed = together(conn, parts)
    within = partial(counted_within, limit=first.limit, window=first.window, now=now)
    if (
        dict(records) != seen
        or not _spent_all(conn, verified, spent, now)
        or not within(conn, counted, buckets)
        or (calls and not claimed_all(calls, claimed[0]))
    ):
        raise AdmitAlone


def _admit_exactly(conn: Connection, one: _Admission) -> None:
    """One admission, a statement for each step, which raises what refuses it."""
    _confirm(conn, one)
    _remember_nonce(conn, one.verified, one.now)
    count_request(conn, one.bucket, limit=one.limit, window=one.window, now=one.now)
    if one.once is not None:
        one.once.claim_in(conn)


def _checked(
    request: Request, action: str, body: bytes, *, fresh: bool
) -> tuple[Verified, Authority, str] | None:
    """The gate's checks that write nothing: verify the signature and authorize ``action``.
    Returns what was verified, the authority and the record it was judged by; raises the
    refusal; None when refused by what the app remembered (it is forgotten: judge again,
    ``fresh``, by the stored record)."""
    services, config = services_of(request), config_of(request)
    known: KnownAuthorities = request.app.state.known_authorities
    judged = _Signer()
    request.state.authority = None
    try:
        verified = _verify(
            services, config, signed_parts(request), body, known=known, judged=judged,
            fresh=fresh,
        )  # fmt: skip
        authority = request.state.authority = judged.authority
        assert authority is not None
        authorize(services.pack, authority, action).check()
    except CustodesError:
        if not judged.remembered:
            raise
        assert judged.authority is not None
        known.pop(judged.authority.id, None)
        return None
    return verified, authority, judged.record


def _over_rate(request: Request) -> OverRate:
    over: OverRate = request.app.state.over_rate
    return over


def _once(request: Request, authority: Authority, body: bytes) -> IdempotentCall | None:
    """The Idempotency-Key of a POST (None for another method), not yet claimed."""
    if request.method != "POST":
        return None
    services, config = services_of(request), config_of(request)
    now = services.clock()
    return IdempotentCall(
        services, "authority:" + authority.id, idempotency_key(request),
        request_fingerprint(request.method, request.url.path, body), now,
        now + config.idempotency_ttl,
    )  # fmt: skip


def _admitted(request: Request, action: str, body: bytes) -> SignedCall:
    """The gate's work after the body is read: verify, authorize, confirm the authority's
    record, remember the nonce, count, claim. What it learns goes on ``request.state`` as it
    goes, for :func:`refusal_listener` should a later step refuse."""
    services, config = services_of(request), config_of(request)
    known: KnownAuthorities = request.app.state.known_authorities
    for attempt in range(_ATTEMPTS):
        checked = _checked(request, action, body, fresh=attempt > 0)
        if checked is None:
            continue  # refused by what the app remembered: judge by the stored record
        verified, authority, record = checked
        once = _once(request, authority, body)
        try:
            _admit(services, config, verified, authority, once, record=record)
        except _Changed:
            known.pop(authority.id, None)
            continue
        except RateLimitError as exc:
            until = services.clock() + timedelta(seconds=int(exc.evidence["retry_after"]))
            _over_rate(request)[authority.id] = until
            raise
        request.state.once = once
        return SignedCall(authority, verified.keyid, body, once)
    raise ConflictError("the authority changed each time this request was admitted; send it again")


@dataclass(frozen=True)
class Checked:
    """A POST the gate checked (:meth:`Gate.check`) but has not admitted: its operation
    admits it in its own transaction (:meth:`admitting`)."""

    call: SignedCall
    admission: _Admission

    def admitting(self, response: Response) -> Admitting:
        """Work for the operation's own transaction: admit the request as the gate does and
        keep ``response`` as the answer to its Idempotency-Key."""
        assert self.call.once is not None
        return Admitting(self.admission, self.call.once.keeping(response))


@dataclass(frozen=True)
class Admitting:
    """A request's admission and its kept answer, done in the transaction of its operation
    (:meth:`Checked.admitting`). :meth:`together` admits the requests of one group commit
    in one statement, as the gate does (:func:`_admit_all`), and raises
    :class:`AdmitAlone` if any of them is refused: the transaction is then rolled back."""

    admission: _Admission
    keeping: Keeping

    @staticmethod
    def together(conn: Connection, many: Sequence[Admitting]) -> None:
        _admit_all(conn, [a.admission for a in many])
        Keeping.together(conn, [a.keeping for a in many])


_ATTEMPTS = 3
"""Admissions of one request, each judged by the record stored when it began, before the
gate gives up (the authority kept changing)."""


@dataclass(frozen=True)
class Gate:
    """A request of the authority API whose body was read, and nothing else checked yet."""

    request: Request
    action: str
    body: bytes = field(repr=False)

    def admit(self) -> SignedCall:
        """The gate (see the module): the :class:`SignedCall` of a request whose signer may
        do :attr:`action`, once its nonce is spent, its rate counted and, for a POST, its
        Idempotency-Key claimed; raises the refusal otherwise. Blocks: call it from the
        route's worker thread, or from a route run under
        :func:`~custodes.store.bridge.run_bridged`."""
        return _admitted(self.request, self.action, self.body)

    def check(self) -> Checked | None:
        """For a POST whose operation admits it in its own transaction: the gate's checks
        that write nothing (signature, key, authorization), which raise the refusal
        :meth:`admit` would; None when they could not judge by what the app remembers, or
        while the authority is over its rate (:data:`OverRate`). The operation's transaction
        then confirms the record, spends the nonce, counts the request and claims its key
        (:meth:`Checked.admitting`); if that transaction fails, nothing of it was written,
        and the route goes the usual way (:meth:`admit`)."""
        checked = _checked(self.request, self.action, self.body, fresh=False)
        if checked is None:
            return None
        verified, authority, record = checked
        services, config = services_of(self.request), config_of(self.request)
        over = _over_rate(self.request)
        until = over.get(authority.id)
        if until is not None:
            if services.clock() < until:
                return None
            del over[authority.id]
        once = _once(self.request, authority, self.body)
        if once is None:
            return None
        one = _Admission.of(services, config, verified, authority, record=record, once=once)
        return Checked(SignedCall(authority, verified.keyid, self.body, once), one)


def signed(action: str) -> Callable[[Request], Awaitable[Gate]]:
    """A FastAPI dependency: the :class:`Gate` of a request that asks to do ``action``."""

    async def dependency(request: Request) -> Gate:
        request.state.intake = True
        body = await request.body()
        request.state.body_sha256 = hashlib.sha256(body).hexdigest()
        return Gate(request, action, body)

    dependency.__name__ = f"signed_{action.replace('.', '_')}"
    return dependency


def record_refusal(
    services: Services, code: str, authority: Authority | None, body_sha256: str | None
) -> int:
    """Log one ``request.refused``. It always commits to ``body_sha256`` (of the body as read;
    a body refused for its size was not read, and the commitment is to the SHA-256 of nothing):
    the commitment's fresh salt keeps two identical refusals in one second two entries."""
    facts: dict[str, str] = {"error_code": code}
    private: dict[str, str] = {"body_sha256": body_sha256 or hashlib.sha256(b"").hexdigest()}
    if authority is not None:
        facts["authority_jurisdiction"] = authority.jurisdiction
        private["authority"] = authority.id
    return services.write(
        lambda conn: record(conn, services, REQUEST_REFUSED, facts=facts, private=private)
    )


async def refusal_listener(request: Request, status: int, code: str) -> None:
    """Told of every problem response of the app: records the authority API's refusals, and
    releases an Idempotency-Key the gate claimed for a request refused before it ran."""
    once = getattr(request.state, "once", None)
    if isinstance(once, IdempotentCall) and not once.started:
        await run_in_threadpool(once.abandon)
    if status not in REFUSALS or not getattr(request.state, "intake", False):
        return
    authority = getattr(request.state, "authority", None)
    body_sha256 = getattr(request.state, "body_sha256", None)
    try:
        await run_in_threadpool(record_refusal, services_of(request), code, authority, body_sha256)
    except CustodesError:
        log.exception("could not record a refused request code=%s", code)
