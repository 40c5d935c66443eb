"""Staff access to user data: a stated justification, a policy check, a short-lived
capability, and one log event for every read.

The platform's own people read user data only through custodes (F1, F5)::

    request_access(services, AccessRequest(staff_id, subjects, categories, justification))
        │  no justification, a role that may not ask, a subject policy refuses
        │  ──► ForbiddenError; one staff_access.denied event per refused subject
        ▼
    Capability(id, token, subjects, categories, expires_at)      staff_access.granted
        │                                                        (one event per subject)
        ▼
    AccessGateway(services).read(token, staff_id=..., subject=..., categories=...)
        │  (custodes.service.gateway: the inline read path)
        ▼
    ReadReceipt(index, at): the staff_access.read event is durable; now serve the data

A justification is an approved demand (data custodians), an abuse case (trust and safety) or
a support ticket opened by the user (support). Cedar (``staff.cedar``) checks the role, the
kind of justification and the staff member's location against each subject's jurisdiction;
for a demand, the subjects and categories must also lie within what its approval covers.
The staff member's roles and location come from the staff registry, never from the request.

The token (:func:`custodes.service.gateway.format_token`) is ``<capability id>.<secret>``:
256 random bits of which only the SHA-256 is stored, so it can neither be guessed nor rebuilt
from the database. A capability lives 15
minutes by default and at most 8 hours; its holder, or anyone who may grant staff access,
revokes it earlier with :func:`revoke_access`.

Every grant, refusal, read and revocation is also kept by subject, so that a user can list
the accesses to their own data (:func:`list_accesses`): when, under which kind of
justification, from which country, which categories, and the log entry that proves it.

"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from custodes.events import STAFF_ACCESS_DENIED, STAFF_ACCESS_GRANTED, STAFF_ACCESS_REVOKED
from custodes.model import DataCategory, Finding, Staff, Target
from custodes.policy import authorize, authorize_staff_access
from custodes.service import Services, record
from custodes.service.gateway import format_token, refusal, subject_row
from custodes.service.package import parse_subject
from custodes.service.scope import EXECUTABLE, approved_scope
from custodes.service.staff import load_staff
from custodes.store.access_tables import staff_access_events, staff_capabilities, utc

__all__ = [
    "DEFAULT_TTL",
    "MAX_SUBJECTS",
    "MAX_TTL",
    "MIN_TTL",
    "AccessEntry",
    "AccessRequest",
    "Capability",
    "DemandBasis",
    "Judged",
    "Justification",
    "JustificationKind",
    "demand_basis",
    "list_accesses",
    "refuse_access",
    "request_access",
    "revoke_access",
]

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(minutes=15)
MAX_TTL = timedelta(hours=8)
MIN_TTL = timedelta(minutes=1)
MAX_SUBJECTS = 100
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:#/-]{0,127}")


class JustificationKind(StrEnum):
    """Why a staff member reads user data (the ``justification`` of ``staff.cedar``)."""

    DEMAND = "demand"
    """Executing an approved demand; the reference is the demand id."""
    TOS_INVESTIGATION = "tos_investigation"
    """An abuse case under the terms of service; the reference is the case id."""
    USER_REQUEST = "user_request"
    """Helping the user at their own request; the reference is the support ticket."""


@dataclass(frozen=True)
class Justification:
    """A kind of justification and the reference that names it (demand id, case, ticket)."""

    kind: JustificationKind
    reference: str

    def __post_init__(self) -> None:
        if not isinstance(self.kind, JustificationKind):
            raise InputError(
                f"justification kind {self.kind!r} is not demand, tos_investigation or user_request"
            )
        if not isinstance(self.reference, str) or not _REFERENCE.fullmatch(self.reference):
            raise InputError(
                "a justification reference is 1-128 characters of [A-Za-z0-9._:#/-], such as "
                "a demand id or a ticket number"
            )


@dataclass(frozen=True)
class AccessRequest:
    """Staff member ``staff_id`` asks to read ``categories`` of ``subjects`` for ``ttl``
    because of ``justification`` (None: they gave none, which is refused and recorded)."""

    staff_id: str
    subjects: tuple[Target, ...]
    categories: tuple[DataCategory, ...]
    justification: Justification | None
    ttl: timedelta = DEFAULT_TTL

    def __post_init__(self) -> None:
        if not isinstance(self.staff_id, str) or not 0 < len(self.staff_id) <= 128:
            raise InputError("an access request names the staff member asking")
        if not 0 < len(self.subjects) <= MAX_SUBJECTS:
            raise InputError(f"an access request names 1 to {MAX_SUBJECTS} subjects")
        if len(set(self.subjects)) != len(self.subjects):
            raise InputError("an access request names a subject twice")
        for s in self.subjects:
            if not isinstance(s, Target) or s.is_selector:
                raise InputError(f"{s} is not one subject", subject=str(s))
        if not self.categories or not all(isinstance(c, DataCategory) for c in self.categories):
            raise InputError("an access request names the data categories it needs")
        object.__setattr__(self, "categories", tuple(sorted(set(self.categories))))
        if not MIN_TTL <= self.ttl <= MAX_TTL:
            raise InputError(f"an access lasts between {MIN_TTL} and {MAX_TTL}")


@dataclass(frozen=True)
class Capability:
    """What a granted request returns. ``token`` is the secret its holder presents."""

    id: str
    token: str = field(repr=False)
    staff_id: str
    subjects: tuple[Target, ...]
    categories: tuple[DataCategory, ...]
    justification: JustificationKind
    issued_at: datetime
    expires_at: datetime
    events: tuple[int, ...]
    """Log indexes of the ``staff_access.granted`` events, one per subject."""


@dataclass(frozen=True)
class AccessEntry:
    """One line of a user's access-transparency list (nothing that names the staff member)."""

    index: int
    """The log entry that records it."""
    kind: str
    """``granted``, ``denied``, ``read`` or ``revoked``."""
    at: datetime
    justification: str
    staff_location: str
    categories: tuple[str, ...]
    rules: tuple[str, ...]
    """For a refusal: the rules that refused."""


@dataclass(frozen=True)
class DemandBasis:
    """What a demand named as justification allows: whether it is approved (and not yet
    carried out), the requesting authority's jurisdiction, and the approved scope."""

    approved: bool
    requesting: str | None
    subjects: frozenset[Target]
    categories: frozenset[DataCategory]


_NO_JUSTIFICATION = refusal(
    "staff.no_justification",
    "a staff access must state its justification: an approved demand, an abuse case or a "
    "support ticket",
    "ask again naming the demand, case or ticket the access is for",
)
_UNKNOWN_SUBJECT = refusal(
    "staff.unknown_subject",
    "the platform holds no such account, meeting or content item",
    "name an account, meeting or content item the platform holds",
)
_DEMAND_NOT_APPROVED = refusal(
    "staff.demand_not_approved",
    "the demand named as justification is unknown, or not approved and awaiting execution",
    "wait for the demand's approvals, or name the right demand",
)
_POLICY_REFUSED = refusal(
    "staff.access.default_deny",
    "no rule of the policy pack allows this access",
    "ask under a justification the pack accepts for your role",
)
_OUTSIDE_DEMAND = refusal(
    "staff.outside_demand",
    "the demand's approval does not cover this subject or these data categories",
    "ask only for the subjects and categories the demand's approval covers",
)


# -- asking for access ---------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """Policy's answer about one subject: its jurisdiction (None: unknown) and refusals."""

    subject: Target
    jurisdiction: str | None
    refusals: tuple[Finding, ...]


def _judge(
    services: Services, staff: Staff, request: AccessRequest, basis: DemandBasis | None
) -> list[Judged]:
    j = request.justification
    places = {s: _jurisdiction(services, s) for s in request.subjects}
    if j is None:
        return [Judged(s, where, (_NO_JUSTIFICATION,)) for s, where in places.items()]
    asking = authorize(services.pack, staff, "staff_access.request")
    common = [] if asking.allowed else [f for f in asking.findings if f.blocks]
    out = []
    for subject, where in places.items():
        refusals = list(common)
        if j.kind is JustificationKind.DEMAND:
            refusals += _outside_demand(basis, subject, request.categories)
        if where is None:
            refusals.append(_UNKNOWN_SUBJECT)
        else:
            decision = authorize_staff_access(
                services.pack,
                staff,
                where,
                justification=j.kind.value,
                demand_approved=basis is not None and basis.approved,
                requesting=basis.requesting if basis is not None else None,
            )
            if not decision.allowed:
                blocking = [f for f in decision.findings if f.blocks]
                refusals += blocking or [_POLICY_REFUSED]
        out.append(Judged(subject, where, tuple(refusals)))
    return out


def _jurisdiction(services: Services, subject: Target) -> str | None:
    found = services.platform.subject(subject)
    return None if found is None else found.jurisdiction


def _outside_demand(
    basis: DemandBasis | None, subject: Target, categories: tuple[DataCategory, ...]
) -> list[Finding]:
    if basis is None or not basis.approved:
        return [_DEMAND_NOT_APPROVED]
    if subject not in basis.subjects or not set(categories) <= basis.categories:
        return [_OUTSIDE_DEMAND]
    return []


def demand_basis(services: Services, demand_id: str) -> DemandBasis | None:
    """What the demand ``demand_id`` lets a custodian read (None: there is no such demand).
    Only a demand approved and not yet executed justifies reading anything."""
    try:
        scope = approved_scope(services, demand_id)
    except NotFoundError:
        return None
    except ConflictError:
        return DemandBasis(False, None, frozenset(), frozenset())
    return DemandBasis(
        scope.state in EXECUTABLE,
        scope.authority.jurisdiction,
        frozenset(scope.targets),
        frozenset(scope.categories),
    )


def request_access(services: Services, request: AccessRequest) -> Capability:
    """Grant ``request`` if policy allows every subject, else refuse it whole.

    Either way the outcome is logged before this returns: one ``staff_access.granted`` per
    subject with the capability, or one ``staff_access.denied`` per refused subject, after
    which :class:`ForbiddenError` names the rules that refused. Someone who is not registered
    staff gets ``ForbiddenError`` and nothing is logged (there is nobody to name)."""
    with services.store.read() as conn:
        staff = load_staff(conn, request.staff_id)
    j = request.justification
    basis = None
    if j is not None and j.kind is JustificationKind.DEMAND:
        basis = demand_basis(services, j.reference)
    judged = _judge(services, staff, request, basis)
    refused = [one for one in judged if one.refusals]
    if refused:
        kind = j.kind.value if j is not None else "none"
        raise refuse_access(services, staff, kind, request.categories, refused)
    assert j is not None
    cap_id = "cap_" + secrets.token_hex(12)
    secret = secrets.token_bytes(32)
    issued = services.clock().replace(microsecond=0)
    expires = issued + request.ttl
    row = {
        "id": cap_id,
        "secret_sha256": hashlib.sha256(secret).digest(),
        "staff_id": staff.id,
        "staff_location": staff.location,
        "justification": j.kind.value,
        "reference": j.reference,
        "demand_id": j.reference if basis is not None else None,
        "subjects": json.dumps([str(s) for s in request.subjects]),
        "categories": ",".join(request.categories),
        "pack": services.pack.hash,
        "issued_at": issued,
        "expires_at": expires,
    }

    def work(conn: Connection) -> tuple[int, ...]:
        conn.execute(staff_capabilities.insert().values(**row))
        return tuple(
            _record_grant(conn, services, staff, request, one, cap_id=cap_id) for one in judged
        )

    events = services.write(work)
    log.info("staff access granted capability=%s staff=%s", cap_id, staff.id)
    return Capability(
        id=cap_id,
        token=format_token(cap_id, secret),
        staff_id=staff.id,
        subjects=request.subjects,
        categories=request.categories,
        justification=j.kind,
        issued_at=issued,
        expires_at=expires,
        events=events,
    )


def _record_grant(
    conn: Connection,
    services: Services,
    staff: Staff,
    request: AccessRequest,
    one: Judged,
    *,
    cap_id: str,
) -> int:
    j = request.justification
    assert j is not None and one.jurisdiction is not None
    at = services.clock().replace(microsecond=0)
    facts = {
        "justification": j.kind.value,
        "pack": services.pack.hash,
        "subject_jurisdictions": [one.jurisdiction],
        "categories": list(request.categories),
    }
    private = {
        "staff": staff.id,
        "grantor": "policy:" + services.pack.hash,
        "subject": str(one.subject),
        "note": f"{j.kind.value}:{j.reference}",
    }
    index = record(conn, services, STAFF_ACCESS_GRANTED, facts=facts, private=private, at=at)
    row = subject_row(
        index,
        "granted",
        one.subject,
        at,
        staff_location=staff.location,
        justification=j.kind.value,
        categories=request.categories,
        capability_id=cap_id,
    )
    conn.execute(staff_access_events.insert().values(**row))
    return index


def refuse_access(
    services: Services,
    staff: Staff,
    justification: str,
    categories: Iterable[str],
    refused: Sequence[Judged],
) -> ForbiddenError:
    """Log one ``staff_access.denied`` per refused subject (in one transaction) and return
    the :class:`ForbiddenError` to raise, naming the rules and the events."""
    cats = list(categories)

    def work(conn: Connection) -> tuple[int, ...]:
        at = services.clock().replace(microsecond=0)
        out = []
        for one in refused:
            rules = sorted({f.rule_id for f in one.refusals})
            facts: dict[str, Any] = {"justification": justification, "rules": rules}
            if one.jurisdiction is not None:
                facts["subject_jurisdictions"] = [one.jurisdiction]
            private = {"staff": staff.id, "subject": str(one.subject)}
            index = record(conn, services, STAFF_ACCESS_DENIED, facts=facts, private=private, at=at)
            row = subject_row(
                index,
                "denied",
                one.subject,
                at,
                staff_location=staff.location,
                justification=justification,
                categories=cats,
                rules=rules,
            )
            conn.execute(staff_access_events.insert().values(**row))
            out.append(index)
        return tuple(out)

    events = services.write(work)
    rules = sorted({f.rule_id for r in refused for f in r.refusals})
    detail = "; ".join(dict.fromkeys(f.reason for r in refused for f in r.refusals))
    log.info("staff access refused staff=%s rules=%s", staff.id, rules)
    return ForbiddenError(detail, rules=rules, events=list(events))


# -- revoking and listing --------------------------------------------------------------------


def revoke_access(services: Services, capability_id: str, staff_id: str) -> tuple[int, ...]:
    """End a capability before it expires. Its holder may, and so may anyone the pack lets
    grant staff access (``staff_access.grant``). Logs one ``staff_access.revoked`` per
    subject and returns their indexes; a read already in flight fails at its commit."""

    def work(conn: Connection) -> tuple[int, ...]:
        caps = staff_capabilities
        row = conn.execute(sa.select(caps).where(caps.c.id == capability_id)).first()
        if row is None:
            raise NotFoundError(f"no capability {capability_id}", capability=capability_id)
        if row.staff_id != staff_id:
            authorize(services.pack, load_staff(conn, staff_id), "staff_access.grant").check()
        if row.revoked_at is not None:
            raise ConflictError(f"capability {capability_id} was already revoked")
        at = services.clock().replace(microsecond=0)
        conn.execute(caps.update().where(caps.c.id == capability_id).values(revoked_at=at))
        out = []
        for text in json.loads(row.subjects):
            private = {"staff": row.staff_id, "subject": text}
            index = record(conn, services, STAFF_ACCESS_REVOKED, private=private, at=at)
            event = subject_row(
                index,
                "revoked",
                parse_subject(text),
                at,
                staff_location=row.staff_location,
                justification=row.justification,
                categories=row.categories.split(","),
                capability_id=capability_id,
            )
            conn.execute(staff_access_events.insert().values(**event))
            out.append(index)
        return tuple(out)

    return services.write(work)


def list_accesses(
    services: Services, subject: Target, *, after: int | None = None, limit: int | None = None
) -> tuple[AccessEntry, ...]:
    """Every grant, refusal, read and revocation concerning ``subject``, oldest first; with
    ``after``, only those logged after that log index, and with ``limit``, at most that many
    (a page: pass the last index of one page as ``after`` of the next)."""
    if limit is not None and limit < 1:
        raise InputError("a page holds at least one access")
    t = staff_access_events
    query = sa.select(t).where(t.c.subject == str(subject))
    if after is not None:
        query = query.where(t.c.idx > after)
    query = query.order_by(t.c.idx)
    if limit is not None:
        query = query.limit(limit)
    with services.store.read() as conn:
        rows = conn.execute(query).fetchall()
    return tuple(
        AccessEntry(
            index=int(r.idx),
            kind=r.kind,
            at=utc(r.at),
            justification=r.justification,
            staff_location=r.staff_location,
            categories=_split(r.categories),
            rules=_split(r.rules),
        )
        for r in rows
    )


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()
