"""Rendering console pages: the Jinja2 templates, the static files, and the headers every page
carries.

Templates live in ``custodes/web/templates/`` and are autoescaped. Every page gets a
Content-Security-Policy that allows scripts, styles and forms from the console's own origin
only (no inline script, no inline style, nothing framed), so a value that slipped past
escaping still could not run. Static files (``custodes/web/static/``: hand-written CSS and
JavaScript, no build step) are served from a fixed list at ``/console/static/NAME``; their URLs
carry a hash of their content, so browsers may keep them for a year.

>>> static_url("console.css").startswith("/console/static/console.css?v=")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from fastapi import Response
from fastapi.responses import HTMLResponse

__all__ = [
    "SECURITY_HEADERS",
    "STATIC_FILES",
    "Problem",
    "environment",
    "render",
    "static_response",
    "static_url",
]

STATIC_FILES: Mapping[str, str] = {
    "console.css": "text/css; charset=utf-8",
    "logverify.js": "text/javascript; charset=utf-8",
}
"""Every static file the console serves, with its content type."""

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
"""Headers on every console page."""


@dataclass(frozen=True)
class Problem:
    """An error as a page shows it: what went wrong, the detail, and the policy rules that
    decided (when a rule did)."""

    title: str
    detail: str
    rules: tuple[str, ...] = ()

    @classmethod
    def of(cls, title: str, exc: Exception) -> Problem:
        """``exc`` (a custodes or log error) under ``title``; its evidence may name rules."""
        detail = str(getattr(exc, "detail", exc))
        evidence = getattr(exc, "evidence", {})
        rules = evidence.get("rules") if isinstance(evidence, dict) else None
        return cls(title, detail, tuple(str(r) for r in rules) if rules else ())


_IMMUTABLE = "public, max-age=31536000, immutable"


@cache
def _static(name: str) -> bytes:
    return resources.files("custodes.web").joinpath("static", name).read_bytes()


def static_url(name: str) -> str:
    """The URL of a static file, versioned by its content."""
    digest = hashlib.sha256(_static(name)).hexdigest()[:12]
    return f"/console/static/{name}?v={digest}"


def static_response(name: str) -> Response | None:
    """The static file ``name``, or None if the console serves no such file."""
    media = STATIC_FILES.get(name)
    if media is None:
        return None
    headers = {"Cache-Control": _IMMUTABLE, "X-Content-Type-Options": "nosniff"}
    return Response(_static(name), media_type=media, headers=headers)


def _when(value: datetime | None) -> str:
    """A time as the console shows it: UTC, to the minute."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _words(value: object) -> str:
    """An enum value or token for people: ``partly_approved`` becomes ``partly approved``."""
    return str(getattr(value, "value", value)).replace("_", " ")


def _fact(value: object) -> str:
    """A published fact: a list of values is shown comma-separated."""
    if isinstance(value, tuple | list):
        return ", ".join(_fact(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@cache
def environment() -> jinja2.Environment:
    """The console's template environment (autoescaped, undefined names are errors)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("custodes.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.filters["when"] = _when
    env.filters["words"] = _words
    env.filters["fact"] = _fact
    return env


def render(
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with ``context`` into a response with the security headers."""
    html = environment().get_template(template).render(**context)
    response = HTMLResponse(html, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    if headers:
        response.headers.update(headers)
    return response
