"""The staff API of access to user data: ask for a capability, read through the gateway,
revoke, and list the accesses to one subject's data (access transparency).

=================================================  ===========================================
route                                              service, and who may call it
=================================================  ===========================================
``POST /v1/staff/capabilities``                    ``request_access``: anyone; policy decides
``POST /v1/staff/reads``                           ``AccessGateway.read``: the holder of the
                                                   capability presented
``DELETE /v1/staff/capabilities/{id}``             ``revoke_access``: its holder, or whoever
                                                   may ``staff_access.grant``
``GET /v1/staff/subjects/{kind}/{id}/accesses``    ``list_accesses`` (a page, by log index):
                                                   ``staff_access.list``
=================================================  ===========================================

Asking for access is not gated by a role before the service runs: the service asks the pack
(``staff_access.request``, then ``staff.access`` for every subject) and records a refusal as
``staff_access.denied``, so that someone without standing who tries to reach user data is in
the log, not only turned away. The capability's token is in the answer once (a retry with the
same Idempotency-Key gets ``shown_once``).

A read presents the token in the ``Custodes-Capability`` header, next to the caller's own
credential (session or API token), never in the body: it is a credential, kept out of what
proxies log with bodies, and the staff member reading is the caller, never a field of the
request. A token that does not parse, or names no capability, is ``bad_capability`` (401) and
nothing is logged; a capability that does not cover the read is ``forbidden`` with the rule
(``capability.holder``, ``capability.revoked``, ...) and the index of the
``staff_access.denied`` event that records it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from custodes.errors import AuthError, NotFoundError
from custodes.model import DataCategory, Staff, Target, TargetKind, format_target
from custodes.service.access import (
    DEFAULT_TTL,
    MAX_SUBJECTS,
    MAX_TTL,
    MIN_TTL,
    AccessEntry,
    AccessRequest,
    Capability,
    Justification,
    JustificationKind,
    list_accesses,
    request_access,
    revoke_access,
)
from custodes.service.gateway import MAX_TOKEN

from .auth import StaffDep, permitted
from .context import gateway_of, services_of
from .idempotency import StaffOnce
from .listing import DEFAULT_LIMIT, MAX_LIMIT, CursorError, format_cursor, parse_cursor
from .schemas import TargetBody, problems

__all__ = ["CAPABILITY_HEADER", "ROUTES", "BadCapabilityError", "staff_access_router"]

CAPABILITY_HEADER = "Custodes-Capability"
Lister = Annotated[Staff, Depends(permitted("staff_access.list"))]
_SUBJECT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$"
_CAPABILITY_ID = r"^cap_[0-9a-f]{24}$"
_INDEX = re.compile(r"[0-9]{1,18}")
_MINUTES = int(MIN_TTL / timedelta(minutes=1)), int(MAX_TTL / timedelta(minutes=1))


class BadCapabilityError(AuthError):
    code = "bad_capability"
    title = "Capability token not valid"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubjectBody(_Body):
    """One subject: an account, meeting or content item the platform holds (no selectors)."""

    kind: Literal["account", "meeting", "content"]
    id: Annotated[str, Field(pattern=_SUBJECT_ID, description="the platform's identifier")]

    def target(self) -> Target:
        return Target(TargetKind(self.kind), self.id)


Categories = Annotated[list[DataCategory], Field(min_length=1, max_length=2 * len(DataCategory))]


class JustificationBody(_Body):
    kind: JustificationKind = Field(
        description="demand (an approved demand), tos_investigation (an abuse case) or "
        "user_request (the user's support ticket)"
    )
    reference: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._:#/-]{0,127}$",
            description="the demand id, abuse case or support ticket",
        ),
    ]


class AccessBody(_Body):
    justification: JustificationBody | None = Field(
        None, description="why; an access without one is refused and recorded"
    )
    subjects: Annotated[list[SubjectBody], Field(min_length=1, max_length=MAX_SUBJECTS)]
    categories: Categories
    ttl_minutes: Annotated[int, Field(ge=_MINUTES[0], le=_MINUTES[1])] = int(
        DEFAULT_TTL / timedelta(minutes=1)
    )


class ReadBody(_Body):
    subject: SubjectBody
    categories: Categories


class CapabilityOut(BaseModel):
    id: str
    token: str = Field(description="send in Custodes-Capability to read; shown this once")
    staff_id: str
    subjects: list[TargetBody]
    categories: list[str]
    justification: str
    issued_at: datetime
    expires_at: datetime
    events: list[int] = Field(description="log indexes of the staff_access.granted events")


class ReadOut(BaseModel):
    index: int = Field(description="log index of the staff_access.read event, already durable")
    at: datetime
    capability: str
    subject: TargetBody
    categories: list[str]


class RevokedOut(BaseModel):
    id: str
    events: list[int] = Field(description="log indexes of the staff_access.revoked events")


class AccessOut(BaseModel):
    index: int = Field(description="the log entry that records it")
    kind: str = Field(description="granted, denied, read or revoked")
    at: datetime
    justification: str = Field(description="demand, tos_investigation, user_request or none")
    staff_location: str = Field(description="where the staff member works (never who)")
    categories: list[str]
    rules: list[str] = Field(description="for a refusal: the rules that refused")


class AccessPage(BaseModel):
    items: list[AccessOut]
    next_cursor: str | None


def _capability_out(cap: Capability) -> CapabilityOut:
    return CapabilityOut(
        id=cap.id,
        token=cap.token,
        staff_id=cap.staff_id,
        subjects=[TargetBody(**format_target(s)) for s in cap.subjects],
        categories=list(cap.categories),
        justification=cap.justification.value,
        issued_at=cap.issued_at,
        expires_at=cap.expires_at,
        events=list(cap.events),
    )


def _access_out(entry: AccessEntry) -> AccessOut:
    return AccessOut(
        index=entry.index,
        kind=entry.kind,
        at=entry.at,
        justification=entry.justification,
        staff_location=entry.staff_location,
        categories=list(entry.categories),
        rules=list(entry.rules),
    )


def ask_access(body: AccessBody, staff: StaffDep, once: StaffOnce, request: Request) -> Response:
    """Ask for a capability to read these categories of these subjects, for a stated reason.
    Granted whole or refused whole; a refusal is recorded and names the rules."""
    services = services_of(request)
    j = body.justification
    access = AccessRequest(
        staff.id,
        tuple(s.target() for s in body.subjects),
        tuple(body.categories),
        None if j is None else Justification(j.kind, j.reference),
        timedelta(minutes=body.ttl_minutes),
    )

    def operation() -> Response:
        out = _capability_out(request_access(services, access))
        return JSONResponse(out.model_dump(mode="json"), status_code=201)

    return once.run(operation, secret=True)


def read(
    body: ReadBody,
    staff: StaffDep,
    once: StaffOnce,
    request: Request,
    capability: Annotated[
        str,
        Header(
            alias=CAPABILITY_HEADER,
            max_length=MAX_TOKEN,
            description="the token of the capability granted by POST /v1/staff/capabilities",
        ),
    ],
) -> Response:
    """Read user data under a capability: answers once the read's event is durable; only
    then may the platform serve the data."""
    gateway = gateway_of(request)
    subject = body.subject.target()

    def operation() -> Response:
        try:
            receipt = gateway.read(
                capability, staff_id=staff.id, subject=subject, categories=body.categories
            )
        except AuthError as exc:
            raise BadCapabilityError(exc.detail) from None
        out = ReadOut(
            index=receipt.index,
            at=receipt.at,
            capability=capability.partition(".")[0],
            subject=TargetBody(**format_target(subject)),
            categories=sorted(set(body.categories)),
        )
        return JSONResponse(out.model_dump(mode="json"))

    return once.run(operation)


def revoke(
    capability_id: Annotated[str, Path(pattern=_CAPABILITY_ID)], staff: StaffDep, request: Request
) -> RevokedOut:
    """End a capability before it expires: its holder may, and so may whoever may grant
    staff access."""
    events = revoke_access(services_of(request), capability_id, staff.id)
    return RevokedOut(id=capability_id, events=list(events))


def accesses(
    kind: Literal["account", "meeting", "content"],
    subject_id: Annotated[str, Path(pattern=_SUBJECT_ID)],
    staff: Lister,
    request: Request,
    *,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> AccessPage:
    """Every grant, refusal, read and revocation concerning one subject's data, oldest first;
    never who the staff member was, only where they work."""
    services = services_of(request)
    subject = Target(TargetKind(kind), subject_id)
    after = None
    if cursor is not None:
        position = parse_cursor(cursor)
        if set(position) != {"i"} or not _INDEX.fullmatch(position["i"]):
            raise CursorError("not a cursor of this list")
        after = int(position["i"])
    found = list_accesses(services, subject, after=after, limit=limit + 1)
    if not found and after is None and services.platform.subject(subject) is None:
        raise NotFoundError(f"no {kind} {subject_id}, and no access to one was recorded")
    more, page = len(found) > limit, found[:limit]
    next_cursor = format_cursor({"i": str(page[-1].index)}) if more else None
    return AccessPage(items=[_access_out(e) for e in page], next_cursor=next_cursor)


_POST = problems(400, 401, 403, 404, 409, 413, 422, 429)
ROUTES: list[tuple[str, str, Callable[..., Any], dict[str, Any]]] = [
    ("POST", "/capabilities", ask_access, {
        "status_code": 201, "response_model": CapabilityOut, "responses": _POST}),
    ("POST", "/reads", read, {"response_model": ReadOut, "responses": _POST}),
    ("DELETE", "/capabilities/{capability_id}", revoke, {
        "response_model": RevokedOut, "responses": problems(401, 403, 404, 409, 422, 429)}),
    ("GET", "/subjects/{kind}/{subject_id}/accesses", accesses, {
        "response_model": AccessPage, "responses": problems(400, 401, 403, 404, 422, 429)}),
]  # fmt: skip
"""Every route of the staff access API: method, path under /v1/staff, endpoint, options."""


def staff_access_router() -> APIRouter:
    router = APIRouter(prefix="/v1/staff", tags=["staff: access to user data"])
    for method, path, endpoint, options in ROUTES:
        router.add_api_route(path, endpoint, methods=[method], **options)
    return router
