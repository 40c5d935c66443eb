"""The staff member's own account: log in and out, change the password, API tokens.

These routes act only on the caller's own credentials, so they ask the staff registry who the
caller is but no policy question (the pack has no action for one's own credentials); every
other staff route asks the Cedar pack (:func:`custodes.web.auth.permitted`). Logging in and
out takes no Idempotency-Key: a login is never replayed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from custodes.errors import ConflictError
from custodes.model import Staff

from .auth import (
    MAX_PASSWORD,
    CallerDep,
    change_password,
    clear_session_cookie,
    csrf_token,
    login,
    logout,
    set_session_cookie,
)
from .context import config_of, services_of
from .idempotency import StaffOnce
from .schemas import StaffOut, problems
from .tokens import ApiToken, issue_token, list_tokens, revoke_token

__all__ = ["account_router", "staff_out"]


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_id: Annotated[str, Field(min_length=1, max_length=128)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]
    totp: Annotated[str, Field(pattern=r"^[0-9]{6}$", description="the authenticator's code")]


class SessionOut(BaseModel):
    staff: StaffOut
    via: str = Field(description="session or token")
    csrf_token: str | None = Field(
        None, description="echo in X-CSRF-Token (or form field csrf_token) on unsafe methods"
    )
    expires_at: datetime | None = None


class PasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]
    new: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Annotated[str, Field(min_length=1, max_length=100)]
    ttl_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 24 * 30


class TokenOut(BaseModel):
    id: str
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="the bearer token, shown this once")


def staff_out(staff: Staff) -> StaffOut:
    return StaffOut(id=staff.id, roles=sorted(staff.roles), location=staff.location)


def _token_out(t: ApiToken) -> TokenOut:
    return TokenOut(
        id=t.id,
        label=t.label,
        created_at=t.created_at,
        expires_at=t.expires_at,
        revoked_at=t.revoked_at,
    )


def account_router() -> APIRouter:
    router = APIRouter(prefix="/v1/staff", tags=["staff: account"])

    @router.post("/session", response_model=SessionOut, responses=problems(400, 401, 413, 422, 429))
    async def log_in(body: LoginBody, request: Request) -> Response:
        """Log in with password and TOTP code; sets the session cookie."""
        services, config = services_of(request), config_of(request)
        new = await run_in_threadpool(
            login, services, config, body.staff_id, body.password, body.totp
        )
        out = SessionOut(
            staff=staff_out(new.staff), via="session", csrf_token=new.csrf,
            expires_at=new.expires_at,
        )  # fmt: skip
        response = JSONResponse(out.model_dump(mode="json"))
        set_session_cookie(response, request, new)
        return response

    @router.get("/session", response_model=SessionOut, responses=problems(401, 429))
    def who_am_i(caller: CallerDep, request: Request) -> SessionOut:
        """Who the credential sent belongs to, and the session's CSRF token."""
        via = "session" if caller.session_id else "token"
        token = csrf_token(request) if caller.session_id else None
        return SessionOut(staff=staff_out(caller.staff), via=via, csrf_token=token)

    @router.delete("/session", status_code=204, responses=problems(401, 403, 409, 429))
    def log_out(caller: CallerDep, request: Request) -> Response:
        """End the session of the cookie sent (its CSRF token is required)."""
        if caller.session_id is None:
            raise ConflictError("an API token is not a session; revoke the token instead")
        logout(services_of(request), caller.session_id)
        response = Response(status_code=204)
        clear_session_cookie(response)
        return response

    @router.post(
        "/password", status_code=204, responses=problems(400, 401, 403, 409, 413, 422, 429)
    )
    def new_password(
        body: PasswordBody, caller: CallerDep, once: StaffOnce, request: Request
    ) -> Response:
        """Change one's own password (the current one is checked)."""
        services = services_of(request)

        def operation() -> Response:
            change_password(services, caller.staff.id, body.current, body.new)
            return Response(status_code=204)

        return once.run(operation)

    @router.get("/tokens", response_model=list[TokenOut], responses=problems(401, 429))
    def my_tokens(caller: CallerDep, request: Request) -> list[TokenOut]:
        """One's own API tokens, newest first (never their secrets)."""
        return [_token_out(t) for t in list_tokens(services_of(request), caller.staff.id)]

    @router.post(
        "/tokens",
        status_code=201,
        response_model=NewTokenOut,
        responses=problems(400, 401, 403, 409, 413, 422, 429),
    )
    def new_token(
        body: TokenBody, caller: CallerDep, once: StaffOnce, request: Request
    ) -> Response:
        """Issue an API token acting as oneself; the token is in this answer only."""
        services, config = services_of(request), config_of(request)

        def operation() -> Response:
            ttl = timedelta(hours=body.ttl_hours)
            new = issue_token(services, config, caller.staff.id, body.label, ttl)
            out = NewTokenOut(**_token_out(new.token).model_dump(), token=new.bearer)
            return JSONResponse(out.model_dump(mode="json"), status_code=201)

        return once.run(operation, secret=True)

    @router.delete(
        "/tokens/{token_id}", response_model=TokenOut, responses=problems(401, 403, 404, 409, 429)
    )
    def drop_token(token_id: str, caller: CallerDep, request: Request) -> TokenOut:
        """Revoke one of one's own API tokens."""
        return _token_out(revoke_token(services_of(request), caller.staff.id, token_id))

    return router
