"""The staff API of the registries: authorities (``authority.manage``) and staff members
(``staff.manage``), both the ``admin`` role's in the shipped pack.

===============================================  ===========================================
route                                            service
===============================================  ===========================================
``GET /v1/staff/authorities``                    ``list_authorities`` (a page, by id)
``GET /v1/staff/authorities/{id}``               ``get_authority``
``POST /v1/staff/authorities``                   ``register_authority``
``POST .../authorities/{id}/keys``               ``add_key``
``DELETE .../authorities/{id}/keys/{key}``       ``revoke_key`` (requests signed with it are
                                                 then refused as ``key_revoked``)
``POST .../authorities/{id}/channels``           ``add_channel``
``DELETE .../authorities/{id}/channels/{ch}``    ``remove_channel`` (``ch``: the channel's
                                                 ``id`` in the authority's ``channels``)
``POST .../authorities/{id}/suspension``         ``suspend_authority``
``POST .../authorities/{id}/reinstatement``      ``reinstate_authority``
``PUT .../authorities/{id}/recipient``           ``register_recipient`` (age, for productions)
``GET /v1/staff/members``                        ``list_staff`` (a page, by id)
``GET /v1/staff/members/{id}``                   ``get_staff``
``POST /v1/staff/members``                       ``register_staff`` and their credentials
``POST .../members/{id}/roles``                  ``grant_role``
``DELETE .../members/{id}/roles/{role}``         ``revoke_role``
``POST .../members/{id}/credentials``            a new password and a new TOTP secret
===============================================  ===========================================

A channel's ``id`` is its kind and the start of a SHA-256 of its address, so that the address
itself does not appear in URLs. An answer that carries a TOTP secret is shown once (a retry
with the same Idempotency-Key gets ``shown_once``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from custodes.errors import InputError, NotFoundError
from custodes.model import (
    Authority,
    Channel,
    Staff,
    VerificationKey,
    format_authority,
    parse_authority,
)
from custodes.service import Services
from custodes.service.authorities import (
    add_channel,
    add_key,
    get_authority,
    list_authorities,
    register_authority,
    reinstate_authority,
    remove_channel,
    revoke_key,
    suspend_authority,
)
from custodes.service.production import register_recipient
from custodes.service.staff import get_staff, grant_role, list_staff, register_staff, revoke_role
from custodes.store.api_tables import revoked_keys

from .account import staff_out
from .auth import MAX_PASSWORD, check_password, permitted, set_credentials, totp_uri
from .context import services_of
from .idempotency import StaffOnce
from .listing import DEFAULT_LIMIT, MAX_LIMIT, page_of
from .schemas import (
    AuthorityBody,
    AuthorityKeyBody,
    AuthorityOut,
    ChannelBody,
    ChannelOut,
    Code,
    Ident,
    Reason,
    StaffOut,
    problems,
)

__all__ = ["ROUTES", "channel_id", "revoke_authority_key", "staff_admin_router"]

Manager = Annotated[Staff, Depends(permitted("authority.manage"))]
Admin = Annotated[Staff, Depends(permitted("staff.manage"))]
Cursor = Annotated[str | None, Query(max_length=512)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonBody(_Body):
    reason: Reason


class RecipientBody(_Body):
    recipient: Annotated[str, Field(max_length=100, description="an age X25519 recipient")]


class MemberBody(_Body):
    id: Ident
    roles: Annotated[list[Annotated[str, Field(max_length=64)]], Field(min_length=1)]
    location: Code
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]


class RoleBody(_Body):
    role: Annotated[str, Field(max_length=64)]


class CredentialsBody(_Body):
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]


class AuthorityPage(BaseModel):
    items: list[AuthorityOut]
    next_cursor: str | None


class StaffPage(BaseModel):
    items: list[StaffOut]
    next_cursor: str | None


class CredentialsOut(BaseModel):
    staff: StaffOut
    totp_secret: str = Field(description="base32; shown this once")
    totp_uri: str = Field(description="otpauth:// URI for an authenticator app")


def channel_id(channel: Channel) -> str:
    """How the API names one of an authority's channels: ``phone-`` and 16 hex digits."""
    digest = hashlib.sha256(channel.address.encode()).hexdigest()
    return f"{channel.kind.value}-{digest[:16]}"


def authority_out(a: Authority) -> AuthorityOut:
    channels = [ChannelOut(id=channel_id(c), kind=c.kind.value, address=c.address)
                for c in a.channels]  # fmt: skip
    return AuthorityOut(**{**format_authority(a), "channels": channels})


def revoke_authority_key(services: Services, authority_id: str, key_id: str, *, by: str) -> int:
    """Revoke an authority's signing key and remember it as revoked (so that a request
    signed with it is refused as ``key_revoked``, not as an unknown key)."""
    index = revoke_key(services, authority_id, key_id, by=by)
    now = services.clock()
    t = revoked_keys

    def work(conn: sa.Connection) -> None:
        known = conn.execute(
            sa.select(t.c.key_id).where(t.c.authority_id == authority_id, t.c.key_id == key_id)
        ).first()
        if known is None:
            conn.execute(
                t.insert().values(authority_id=authority_id, key_id=key_id, revoked_at=now)
            )

    services.store.write(work)
    return index


def _authority(services: Services, authority_id: str, status: int = 200) -> Response:
    out = authority_out(get_authority(services, authority_id))
    return JSONResponse(out.model_dump(mode="json"), status_code=status)


def authorities(
    staff: Manager, request: Request, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> AuthorityPage:
    """Registered authorities, by id."""
    page = page_of(list_authorities(services_of(request)), lambda a: a.id, cursor, limit)
    return AuthorityPage(items=[authority_out(a) for a in page.items], next_cursor=page.next_cursor)


def one_authority(authority_id: str, staff: Manager, request: Request) -> AuthorityOut:
    """One registered authority."""
    return authority_out(get_authority(services_of(request), authority_id))


def new_authority(
    body: AuthorityBody, staff: Manager, once: StaffOnce, request: Request
) -> Response:
    """Register an authority, with its signing keys and call-back channels."""
    services = services_of(request)
    authority = parse_authority(body.model_dump(mode="json", exclude_none=True))

    def operation() -> Response:
        register_authority(services, authority, by=staff.id)
        return _authority(services, authority.id, 201)

    return once.run(operation)


def new_key(
    authority_id: str, body: AuthorityKeyBody, staff: Manager, once: StaffOnce, request: Request
) -> Response:
    """Register another signing key (requests name it as ``<authority id>/<key id>``)."""
    services = services_of(request)
    try:
        raw = base64.b64decode(body.ed25519, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("ed25519: not base64") from None
    key = VerificationKey(body.id, raw)

    def operation() -> Response:
        add_key(services, authority_id, key, by=staff.id)
        return _authority(services, authority_id, 201)

    return once.run(operation)


def drop_key(authority_id: str, key_id: str, staff: Manager, request: Request) -> AuthorityOut:
    """Revoke a signing key: requests signed with it are refused from now on."""
    services = services_of(request)
    revoke_authority_key(services, authority_id, key_id, by=staff.id)
    return authority_out(get_authority(services, authority_id))


def new_channel(
    authority_id: str, body: ChannelBody, staff: Manager, once: StaffOnce, request: Request
) -> Response:
    """Register another call-back channel: it counts for emergencies that arrive from now on,
    not for those already waiting."""
    services = services_of(request)
    channel = Channel(body.kind, body.address)

    def operation() -> Response:
        add_channel(services, authority_id, channel, by=staff.id)
        return _authority(services, authority_id, 201)

    return once.run(operation)


def drop_channel(authority_id: str, channel: str, staff: Manager, request: Request) -> AuthorityOut:
    """Remove a call-back channel, named by its ``id``: a call-back on it no longer confirms
    an emergency."""
    services = services_of(request)
    found = [c for c in get_authority(services, authority_id).channels if channel_id(c) == channel]
    if not found:
        raise NotFoundError(f"authority {authority_id!r} has no channel {channel!r}")
    remove_channel(services, authority_id, found[0], by=staff.id)
    return authority_out(get_authority(services, authority_id))


def suspension(
    authority_id: str, body: ReasonBody, staff: Manager, once: StaffOnce, request: Request
) -> Response:
    """Suspend an authority: screening refuses its demands until it is reinstated."""
    services = services_of(request)

    def operation() -> Response:
        suspend_authority(services, authority_id, by=staff.id, reason=body.reason)
        return _authority(services, authority_id)

    return once.run(operation)


def reinstatement(authority_id: str, staff: Manager, once: StaffOnce, request: Request) -> Response:
    """Reinstate a suspended authority."""
    services = services_of(request)

    def operation() -> Response:
        reinstate_authority(services, authority_id, by=staff.id)
        return _authority(services, authority_id)

    return once.run(operation)


def recipient(
    authority_id: str, body: RecipientBody, staff: Manager, request: Request
) -> AuthorityOut:
    """Register (or replace) the age recipient productions for the authority are sealed to."""
    services = services_of(request)
    register_recipient(services, authority_id, body.recipient, by=staff.id)
    return authority_out(get_authority(services, authority_id))


def members(
    staff: Admin, request: Request, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> StaffPage:
    """Registered staff, by id."""
    page = page_of(list_staff(services_of(request)), lambda s: s.id, cursor, limit)
    return StaffPage(items=[staff_out(s) for s in page.items], next_cursor=page.next_cursor)


def one_member(staff_id: str, staff: Admin, request: Request) -> StaffOut:
    """One registered staff member."""
    return staff_out(get_staff(services_of(request), staff_id))


def _credentials(services: Services, staff_id: str, password: str, status: int) -> Response:
    secret = set_credentials(services, staff_id, password)
    out = CredentialsOut(
        staff=staff_out(get_staff(services, staff_id)),
        totp_secret=secret,
        totp_uri=totp_uri(staff_id, secret),
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=status)


def new_member(body: MemberBody, staff: Admin, once: StaffOnce, request: Request) -> Response:
    """Register a staff member with roles, location and a password; answers their TOTP secret."""
    services = services_of(request)
    member = Staff(body.id, frozenset(body.roles), body.location)
    check_password(body.password)

    def operation() -> Response:
        register_staff(services, member, by=staff.id)
        return _credentials(services, member.id, body.password, 201)

    return once.run(operation, secret=True)


def new_role(
    staff_id: str, body: RoleBody, staff: Admin, once: StaffOnce, request: Request
) -> Response:
    """Grant a role of the policy pack."""
    services = services_of(request)

    def operation() -> Response:
        grant_role(services, staff_id, body.role, by=staff.id)
        return JSONResponse(staff_out(get_staff(services, staff_id)).model_dump())

    return once.run(operation)


def drop_role(staff_id: str, role: str, staff: Admin, request: Request) -> StaffOut:
    """Revoke a role (every open session and token of the member loses it at once)."""
    services = services_of(request)
    revoke_role(services, staff_id, role, by=staff.id)
    return staff_out(get_staff(services, staff_id))


def new_credentials(
    staff_id: str, body: CredentialsBody, staff: Admin, once: StaffOnce, request: Request
) -> Response:
    """Reset a member's password and TOTP secret (a lost phone, a leaked password)."""
    services = services_of(request)
    check_password(body.password)
    return once.run(lambda: _credentials(services, staff_id, body.password, 200), secret=True)


_GET = problems(400, 401, 403, 404, 422, 429)
_CHANGE = problems(400, 401, 403, 404, 409, 413, 422, 429)
ROUTES: list[tuple[str, str, Callable[..., Any], dict[str, Any]]] = [
    ("GET", "/authorities", authorities, {"response_model": AuthorityPage, "responses": _GET}),
    ("GET", "/authorities/{authority_id}", one_authority, {
        "response_model": AuthorityOut, "responses": _GET}),
    ("POST", "/authorities", new_authority, {
        "status_code": 201, "response_model": AuthorityOut, "responses": _CHANGE}),
    ("POST", "/authorities/{authority_id}/keys", new_key, {
        "status_code": 201, "response_model": AuthorityOut, "responses": _CHANGE}),
    ("DELETE", "/authorities/{authority_id}/keys/{key_id}", drop_key, {
        "response_model": AuthorityOut, "responses": _CHANGE}),
    ("POST", "/authorities/{authority_id}/channels", new_channel, {
        "status_code": 201, "response_model": AuthorityOut, "responses": _CHANGE}),
    ("DELETE", "/authorities/{authority_id}/channels/{channel}", drop_channel, {
        "response_model": AuthorityOut, "responses": _CHANGE}),
    ("POST", "/authorities/{authority_id}/suspension", suspension, {
        "response_model": AuthorityOut, "responses": _CHANGE}),
    ("POST", "/authorities/{authority_id}/reinstatement", reinstatement, {
        "response_model": AuthorityOut, "responses": _CHANGE}),
    ("PUT", "/authorities/{authority_id}/recipient", recipient, {
        "response_model": AuthorityOut, "responses": _CHANGE}),
    ("GET", "/members", members, {"response_model": StaffPage, "responses": _GET}),
    ("GET", "/members/{staff_id}", one_member, {"response_model": StaffOut, "responses": _GET}),
    ("POST", "/members", new_member, {
        "status_code": 201, "response_model": CredentialsOut, "responses": _CHANGE}),
    ("POST", "/members/{staff_id}/roles", new_role, {
        "response_model": StaffOut, "responses": _CHANGE}),
    ("DELETE", "/members/{staff_id}/roles/{role}", drop_role, {
        "response_model": StaffOut, "responses": _CHANGE}),
    ("POST", "/members/{staff_id}/credentials", new_credentials, {
        "response_model": CredentialsOut, "responses": _CHANGE}),
]  # fmt: skip
"""Every route of the registries' staff API: method, path under /v1/staff, endpoint, options."""


def staff_admin_router() -> APIRouter:
    router = APIRouter(prefix="/v1/staff", tags=["staff: registries"])
    for method, path, endpoint, options in ROUTES:
        router.add_api_route(path, endpoint, methods=[method], **options)
    return router
