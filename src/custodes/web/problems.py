"""RFC 9457 problem details: the one place errors become HTTP responses.

Every error leaves the API as ``application/problem+json`` with a stable ``code`` (listed in
``docs/api.md``)::

    {"type": "https://custodes.dev/problems/not_found", "title": "Not found", "status": 404,
     "detail": "no demand 'd_1'", "code": "not_found"}

Some evidence an error carries is safe and useful to the caller and is added as extension
members (:data:`EVIDENCE`): the policy rules that refused, the log indexes of the events that
recorded a refusal, the state that conflicted, how many seconds to wait before retrying. A
``rate_limited`` problem also sets ``Retry-After``.

A listener (``app.state.problem_listener``) may be told of every problem; the intake API uses
it to record refused requests in the log.

>>> import json
>>> from custodes.errors import NotFoundError
>>> json.loads(problem_for(NotFoundError("no demand 'd_1'")).body)["code"]
'not_found'
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from custodes.errors import CustodesError
from custodes.tlog import TlogError

__all__ = [
    "EVIDENCE",
    "PROBLEM_JSON",
    "TYPE_BASE",
    "ProblemListener",
    "install_problem_handlers",
    "problem",
    "problem_for",
]

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://custodes.dev/problems/"
EVIDENCE = frozenset(
    {
        "rules",
        "events",
        "state",
        "role",
        "missing_approvals",
        "missing_roles",
        "retry_after",
        "accept",
    }
)
"""Evidence keys rendered as problem extension members (all safe to show the caller)."""

_HTTP_CODES = {
    400: ("bad_input", "Malformed input"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("too_large", "Input too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}

ProblemListener = Callable[[Request, int, str], Awaitable[None]]
"""Told ``(request, status, code)`` of every problem response, before it is sent."""


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_for(exc: CustodesError | TlogError) -> JSONResponse:
    """The problem response for ``exc``: the same bytes every time for the same error."""
    evidence = getattr(exc, "evidence", {}) or {}
    extra = {k: v for k, v in sorted(evidence.items()) if k in EVIDENCE}
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    if exc.status == 401 and "accept" in extra:
        headers["Accept-Signature"] = str(extra["accept"])
    return problem(exc.status, exc.code, exc.title, exc.detail, headers or None, **extra)


async def _told(request: Request, response: JSONResponse, code: str) -> JSONResponse:
    listener: ProblemListener | None = getattr(request.app.state, "problem_listener", None)
    if listener is not None:
        await listener(request, response.status_code, code)
    return response


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(CustodesError)
    async def _custodes(request: Request, exc: CustodesError) -> JSONResponse:
        return await _told(request, problem_for(exc), exc.code)

    @app.exception_handler(TlogError)
    async def _tlog(request: Request, exc: TlogError) -> JSONResponse:
        return await _told(request, problem_for(exc), exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        response = problem(
            422, "validation", "Request failed validation", "see errors", errors=errors
        )
        return await _told(request, response, "validation")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
        response = problem(exc.status_code, code, title, str(exc.detail))
        return await _told(request, response, code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(
            500, CustodesError.code, CustodesError.title, "an unexpected error; it is logged"
        )
