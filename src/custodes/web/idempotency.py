"""Idempotency keys: a POST retried with the same key is answered once, and only once done.

Every POST of the API (except logging in and out) carries an ``Idempotency-Key`` header
(draft-ietf-httpapi-idempotency-key-header): 1-255 printable ASCII characters, unique per
caller. The first request with a key claims it (``api_idempotency``, keyed by the caller and
the key), runs, and stores its response; a retry with the same key and the same request gets
that stored response again, with ``Idempotent-Replayed: true``, and nothing runs twice.

=======================================  ==============================================
a request with a key that ...            is answered
=======================================  ==============================================
was never seen                           by running it; a 2xx or 4xx answer is kept for
                                         :attr:`~custodes.web.context.ApiConfig.idempotency_ttl`
was answered, same request               with the kept answer
was answered, different request          ``idempotency_key_reused`` (422)
is being handled right now               ``idempotency_in_progress`` (409)
(no key at all)                          ``idempotency_key_missing`` (400)
=======================================  ==============================================

The same request has the same method, path, body and :data:`MEANING_HEADERS` (the capability
a read of user data presents). A 5xx answer is not kept (the key is released, so a retry runs
again). An answer that carried a secret shown once (a new API token, a new TOTP secret, a new
capability) is kept as ``shown_once`` (409): a retry does not show the secret again.

>>> same = request_fingerprint("POST", "/v1/demands", b"{}")
>>> same == request_fingerprint("POST", "/v1/demands", b"{}")
True
>>> same == request_fingerprint("POST", "/v1/demands/", b"{}")
False
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from custodes.errors import ConflictError, CustodesError, InputError
from custodes.service import Services
from custodes.store.api_tables import api_idempotency
from custodes.store.fast import CHUNK, Part, defer, insert_part, together
from custodes.tlog import TlogError

from .auth import CallerDep
from .context import config_of, services_of
from .problems import problem_for

__all__ = [
    "HEADER",
    "MEANING_HEADERS",
    "IdempotencyInProgressError",
    "IdempotencyKeyMissingError",
    "IdempotencyKeyReusedError",
    "IdempotentCall",
    "ShownOnceError",
    "StaffOnce",
    "claim_part",
    "claim_together",
    "claimed_all",
    "idempotency_key",
    "keep_answer",
    "request_fingerprint",
    "staff_once",
]

log = logging.getLogger(__name__)
HEADER = "Idempotency-Key"
MEANING_HEADERS = ("Custodes-Capability",)
"""Headers that change what a request does, not only who sends it: part of its fingerprint,
so that the same key with another capability is another request."""
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class IdempotencyKeyMissingError(InputError):
    code = "idempotency_key_missing"
    title = "Idempotency-Key required"


class IdempotencyKeyReusedError(InputError):
    code = "idempotency_key_reused"
    status = 422
    title = "Idempotency-Key used for another request"


class IdempotencyInProgressError(ConflictError):
    code = "idempotency_in_progress"
    title = "A request with this Idempotency-Key is being handled"


class ShownOnceError(ConflictError):
    code = "shown_once"
    title = "The answer carried a secret that is shown only once"


def idempotency_key(request: Request) -> str:
    """The request's Idempotency-Key (``IdempotencyKeyMissingError`` if none or malformed)."""
    key = request.headers.get(HEADER)
    if key is None or not _KEY.fullmatch(key.strip()):
        raise IdempotencyKeyMissingError(
            f"send an {HEADER} header: 1-255 printable ASCII characters, new for each request"
        )
    return key.strip()


def request_fingerprint(method: str, path: str, body: bytes, *more: bytes) -> str:
    """What must match for a retry to count as the same request (``more``: the
    :data:`MEANING_HEADERS` it carries, as ``name: value``)."""
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), body, *more):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _meaning(request: Request) -> list[bytes]:
    return [
        f"{name.lower()}: {request.headers[name]}".encode("latin-1", "replace")
        for name in MEANING_HEADERS
        if name in request.headers
    ]


@dataclass
class IdempotentCall:
    """One POST under an Idempotency-Key, by ``principal`` (``authority:<id>``, ``staff:<id>``)."""

    services: Services
    principal: str
    key: str
    fingerprint: str
    now: datetime
    expires_at: datetime
    claimed: bool = False
    replay: Response | None = None
    """The kept answer, once :meth:`claim_in` found one."""
    started: bool = False
    """Whether :meth:`run` began (after which it keeps or releases the key itself)."""
    kept: Response | None = None
    """The answer a :meth:`keeping` last kept inside the operation's own transaction."""

    def claim_in(self, conn: Connection) -> Response | None:
        """Inside a write: claim the key (None: go ahead) or return the kept answer (also
        kept in :attr:`replay`). The writer may run it again (see
        :mod:`custodes.store.writer`): each run sets what it found afresh."""
        if claim_together(conn, [self]):
            return None
        row = conn.execute(_KEPT, self._where).one()
        if row.fingerprint != self.fingerprint:
            raise IdempotencyKeyReusedError(
                f"this {HEADER} was used for a different request; use a new key"
            )
        if row.status is None:
            raise IdempotencyInProgressError(
                f"a request with this {HEADER} is still being handled; retry later"
            )
        headers = {"Idempotent-Replayed": "true"}
        if row.location:
            headers["Location"] = row.location
        self.replay = Response(
            bytes(row.body), row.status, headers=headers, media_type=row.content_type
        )
        return self.replay

    def run(self, operation: Callable[[], Response], *, secret: bool = False) -> Response:
        """Claim the key unless done already, run ``operation`` once, keep its answer."""
        self.started = True
        if not self.claimed and self.replay is None:
            self.services.store.write(self.claim_in)
        if self.replay is not None:
            return self.replay
        try:
            response = operation()
        except (CustodesError, TlogError) as exc:
            if exc.status < 500:
                self._keep(problem_for(exc))
            else:
                self._release()
            raise
        except BaseException:
            self._release()
            raise
        if self.kept is response and not secret:  # kept with what the operation did
            return response
        kept = response
        if secret:
            kept = problem_for(ShownOnceError("the secret was shown in the first answer only"))
        self._keep(kept)
        return response

    def keeping(self, response: Response) -> Keeping:
        """Work for the operation's own transaction (:meth:`Keeping.together`): keep
        ``response`` as the answer, with what the operation did. :meth:`run` then keeps
        nothing more if the operation answers with this very response; if that transaction
        was rolled back, the operation answers with another, and :meth:`run` keeps that one."""
        return Keeping(self, response)

    @property
    def _where(self) -> dict[str, str]:
        return {"b_principal": self.principal, "b_key": self.key}

    def _keep(self, response: Response) -> None:
        self.services.store.write(
            lambda conn: keep_answer(conn, self.principal, self.key, response)
        )

    def abandon(self) -> None:
        """The request failed before :meth:`run` began: release a key it claimed, so that
        a retry runs (nothing was done under it)."""
        if self.claimed and not self.started:
            self._release()

    def _release(self) -> None:
        try:
            self.services.store.write(lambda conn: conn.execute(_RELEASE, self._where))
        except CustodesError:
            log.exception("could not release Idempotency-Key of %s", self.principal)


def claim_together(conn: Connection, calls: Sequence[IdempotentCall]) -> bool:
    """Claim the keys of ``calls``, one statement for all: True if every key was free, and
    each call is claimed. False if one was not: the caller then rolls back and claims each
    alone (:meth:`IdempotentCall.claim_in`), which says what became of that one. Each run
    sets what it found afresh (the writer may run it again)."""
    [claimed] = together(conn, [claim_part(conn, calls)])
    return claimed_all(calls, claimed)


def claim_part(conn: Connection, calls: Sequence[IdempotentCall]) -> Part:
    """:func:`claim_together`'s claim as a part of a statement
    (:func:`~custodes.store.fast.together`); its rows go to :func:`claimed_all`. Now and
    then, it first forgets expired answers, in a statement of its own."""
    if any(hash(call.key) % 64 == 0 for call in calls):
        conn.execute(_FORGET, {"now": max(call.now for call in calls)})
    rows = [
        {"principal": c.principal, "key": c.key, "fingerprint": c.fingerprint,
         "created_at": c.now, "expires_at": c.expires_at}
        for c in calls
    ]  # fmt: skip
    return insert_part(conn, api_idempotency, rows, _CLAIM, ("key",))


def claimed_all(calls: Sequence[IdempotentCall], claimed: Sequence[tuple[Any, ...]]) -> bool:
    """After a :func:`claim_part` of ``calls`` ran (``claimed``: its rows): whether every
    key was free, as :func:`claim_together` says; each call is then claimed. Each run sets
    what it found afresh (the writer may run it again)."""
    for call in calls:
        call.claimed, call.replay = False, None
    if len(claimed) != len(calls):
        return False
    for call in calls:
        call.claimed = True
    return True


@dataclass(frozen=True)
class Keeping:
    """Work for the operation's transaction: keep ``response`` as the answer to ``call``.
    :meth:`together` keeps the answers of many calls (the demands of one group commit) in
    one statement."""

    call: IdempotentCall
    response: Response

    @staticmethod
    def together(conn: Connection, many: Sequence[Keeping]) -> None:
        keep_answers(conn, [(k.call.principal, k.call.key, k.response) for k in many])
        for k in many:
            k.call.kept = k.response


def keep_answer(conn: Connection, principal: str, key: str, response: Response) -> None:
    """Keep ``response`` as the answer to ``principal``'s request under ``key``, in the
    caller's transaction."""
    keep_answers(conn, [(principal, key, response)])


def keep_answers(conn: Connection, answers: Sequence[tuple[str, str, Response]]) -> None:
    """Keep each ``(principal, key, response)``: the response as the answer to that
    principal's request under that key, in the caller's transaction, in one statement per
    :data:`~custodes.store.fast.CHUNK` answers, sent with the transaction's other deferred
    statements (:func:`~custodes.store.fast.defer`: it runs with every submission, and
    nothing reads the answers back before the commit)."""
    text = _KEEP[conn.dialect.name]
    for start in range(0, len(answers), CHUNK):
        chunk = answers[start : start + CHUNK]
        params: list[Any] = []
        for principal, key, response in chunk:
            params += (
                response.status_code,
                response.headers.get("content-type"),
                response.headers.get("location"),
                bytes(response.body),
                principal,
                key,
            )
        defer(conn, Part(text, params, (), 6, len(chunk)))


_SET = "SET status = v.status, content_type = v.content_type, location = v.location, body = v.body"
_BY_KEY = 'WHERE api_idempotency.principal = v.principal AND api_idempotency."key" = v.k'
_KEEP = {
    "postgresql": f"UPDATE api_idempotency {_SET} FROM (VALUES {{values}}) "
    f"AS v(status, content_type, location, body, principal, k) {_BY_KEY}",
    "sqlite": "WITH v(status, content_type, location, body, principal, k) AS "
    f"(VALUES {{values}}) UPDATE api_idempotency {_SET} FROM v {_BY_KEY}",
}
"""The update that keeps answers: their values as a table joined by the key (SQLite's
``UPDATE ... FROM`` takes a ``VALUES`` list only named in a ``WITH``, which PostgreSQL does
not take inside the ``WITH`` of a deferred statement)."""


_t = api_idempotency
_CLAIM = "ON CONFLICT DO NOTHING RETURNING key"
_ONE = (_t.c.principal == sa.bindparam("b_principal")) & (_t.c.key == sa.bindparam("b_key"))
_KEPT = sa.select(_t).where(_ONE)
_RELEASE = _t.delete().where(_ONE)
_FORGET = _t.delete().where(_t.c.expires_at < sa.bindparam("now"))


async def staff_once(request: Request, caller: CallerDep) -> IdempotentCall:
    """FastAPI dependency of a staff POST: its Idempotency-Key, ready to run once."""
    key = idempotency_key(request)
    body = await request.body()
    services, config = services_of(request), config_of(request)
    now = services.clock()
    return IdempotentCall(
        services,
        "staff:" + caller.staff.id,
        key,
        request_fingerprint(request.method, request.url.path, body, *_meaning(request)),
        now,
        now + config.idempotency_ttl,
    )


StaffOnce = Annotated[IdempotentCall, Depends(staff_once)]
"""A staff POST route's parameter annotated so: its idempotent call."""
