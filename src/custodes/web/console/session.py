"""Signing in and out of the console, and who is asking.

The console uses the staff authentication of :mod:`custodes.web.auth` (argon2id password and
TOTP code, a session cookie, the session's CSRF token in every form) and adds what a browser
needs: a page that is not signed in redirects to the sign-in form and back afterwards, and the
sign-in form itself carries a token of its own (a double-submitted cookie, since there is no
session yet), so that another site cannot sign a visitor in as someone else.

Only a path inside the console is followed after signing in (``next``), never another site.

>>> safe_next("/console/demands/d_1"), safe_next("https://evil.example/"), safe_next("//evil")
('/console/demands/d_1', '/console/', '/console/')
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from custodes.errors import AuthError, CustodesError
from custodes.web.auth import (
    Caller,
    clear_session_cookie,
    csrf_token,
    current_caller,
    login,
    logout,
    set_session_cookie,
)
from custodes.web.context import config_of, services_of

from .page import Problem, render

__all__ = ["LOGIN_COOKIE", "SessionPages", "layout", "safe_next", "signed_in"]

LOGIN_COOKIE = "custodes_login"
"""The sign-in form's own anti-forgery token (a double-submitted cookie)."""
_NEXT = re.compile(r"/console/[A-Za-z0-9_./?=&%-]{0,400}")


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a console path, else the queue."""
    if raw and _NEXT.fullmatch(raw) and "//" not in raw and ".." not in raw:
        return raw
    return "/console/"


async def signed_in(request: Request) -> Caller | None:
    """The signed-in staff member, or None (a bad CSRF token on a POST still raises)."""
    try:
        return await current_caller(request)
    except AuthError:
        return None


def to_sign_in(request: Request) -> RedirectResponse:
    """Off to the sign-in form, and back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?next={quote(safe_next(here))}", status_code=303)


def layout(request: Request, caller: Caller | None) -> dict[str, Any]:
    """What the page layout needs: who is signed in and their session's CSRF token."""
    return {
        "staff": caller.staff if caller else None,
        "csrf_token": (csrf_token(request) or "") if caller else "",
        "flash": None,
        "error": None,
        "section": "",
        "has_session": caller is not None,
    }


class SessionPages:
    """The sign-in form, signing in, and signing out."""

    def _form(
        self, request: Request, *, status: int = 200, error: Problem | None = None,
        staff_id: str = "", flash: str | None = None, next_path: str = "/console/",
    ) -> Response:  # fmt: skip
        token = secrets.token_urlsafe(24)
        context: Mapping[str, Any] = {
            **layout(request, None), "section": "login", "error": error, "flash": flash,
            "login_token": token, "staff_id": staff_id, "next": safe_next(next_path),
        }  # fmt: skip
        response = render("login.html", context, status=status)
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/console/login",
            secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    async def form(self, request: Request, next: str = "", done: str = "") -> Response:
        """The sign-in form (already signed in: on to ``next``)."""
        if await signed_in(request) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        flash = "You are signed out." if done == "signed-out" else None
        return self._form(request, flash=flash, next_path=next)

    async def submit(self, request: Request) -> Response:
        """Check the staff id, password and TOTP code; open a session."""
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        staff_id, next_path = fields.get("staff_id", "")[:128], fields.get("next", "")
        sent, kept = fields.get("login_token", ""), request.cookies.get(LOGIN_COOKIE, "")
        if not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
            problem = Problem("The sign-in form expired.", "Reload the page and sign in again.")
            return self._form(request, status=403, error=problem, staff_id=staff_id,
                              next_path=next_path)  # fmt: skip
        try:
            new = await run_in_threadpool(
                login, services_of(request), config_of(request), staff_id,
                fields.get("password", ""), fields.get("totp", ""),
            )  # fmt: skip
        except CustodesError as exc:
            problem = Problem.of("Signing in failed.", exc)
            return self._form(request, status=exc.status, error=problem, staff_id=staff_id,
                              next_path=next_path)  # fmt: skip
        response = RedirectResponse(safe_next(next_path), status_code=303)
        set_session_cookie(response, request, new)
        response.delete_cookie(LOGIN_COOKIE, path="/console/login")
        return response

    async def sign_out(self, request: Request) -> Response:
        """End the session (the form carries its CSRF token)."""
        caller = await signed_in(request)
        if caller is not None and caller.session_id is not None:
            await run_in_threadpool(logout, services_of(request), caller.session_id)
        response = RedirectResponse("/console/login?done=signed-out", status_code=303)
        clear_session_cookie(response)
        return response
