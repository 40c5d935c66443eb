"""The reviewer console: server-rendered pages where the platform's legal team works on demands.

The console calls the same :mod:`custodes.service` use-cases as the JSON API and differs only
in rendering: HTML from Jinja2 templates (``custodes/web/templates/``), a little hand-written
CSS and JavaScript (``custodes/web/static/``), forms that work without JavaScript. Routes, all
under ``/console``:

======================================  ======  ===============================================
path                                    login   what
======================================  ======  ===============================================
``/console/log``                        no      the current checkpoint, checked in the browser;
                                                the latest entries
``/console/log/entry?index=N``          no      the look-up form: redirects to the entry
``/console/log/{index}``                no      one entry, its event and its inclusion proof,
                                                checked in the browser (WebCrypto)
``/console/log/{index}/receipt``        no      the entry's c2sp.org/tlog-proof receipt,
                                                as ``{index}.tlog-proof``
``/console/log/{index}/entry``          no      the entry's bytes, as ``{index}``: with the
                                                receipt, ``custodes log check`` checks it
``/console/transparency``               no      demands by country, kind and outcome, per
                                                quarter (SVG charts drawn on the server)
``/console/static/{name}``              no      the console's CSS and JavaScript
``/console/login``                      no      the sign-in form (GET) and signing in (POST:
                                                staff id, password, TOTP code)
``/console/logout``                     yes     POST: end the session
``/console/``                           yes     the queue: demands by state, deadline and
                                                priority; filters by state, authority,
                                                jurisdiction and kind
``/console/demands/{id}``               yes     one demand: instrument, targets, findings,
                                                review, history with log indexes
``/console/demands/{id}/{action}``      yes     POST a review form: ``screen``, ``approve``,
                                                ``sign-off``, ``decide``, ``narrow``,
                                                ``refuse``, ``clarify``, ``challenge``,
                                                ``resume`` (each with a written reason)
======================================  ======  ===============================================

Every POST carries a CSRF token: the session's (``csrf_token`` field, checked by
:func:`custodes.web.auth.current_caller`), or on the sign-in form a token of its own.

Modules: :mod:`.page` (templates, headers, static files), :mod:`.public` (the public pages),
:mod:`.session` (signing in and out), :mod:`.staffpages` (queue, demand, review forms),
:mod:`.queue` (the queue's query), :mod:`.demand` (a demand's page and its actions),
:mod:`.forms` (review forms, parsed),
:mod:`.logview` (what the log pages show), :mod:`.transparency` (the figures),
:mod:`.chart` (SVG bar charts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from custodes.deployment import Deployment
from custodes.web.auth import SESSION_COOKIE

from .public import PublicPages
from .session import SessionPages, layout
from .staffpages import StaffPages

__all__ = ["console_router"]


def _visitor(request: Request) -> Mapping[str, Any]:
    """The layout of a public page: no staff member is looked up (the page is the same for
    everyone), but a visitor holding a session is not offered to sign in."""
    return {**layout(request, None), "has_session": SESSION_COOKIE in request.cookies}


def _home() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


def console_router(deployment: Deployment) -> APIRouter:
    """The console's routes over ``deployment``; include it in the application."""
    public = PublicPages(deployment, _visitor)
    session, staff = SessionPages(), StaffPages()
    router = APIRouter(include_in_schema=False)
    routes = (
        ("GET", "/console", _home),
        ("GET", "/console/", staff.queue),
        ("GET", "/console/login", session.form),
        ("POST", "/console/login", session.submit),
        ("POST", "/console/logout", session.sign_out),
        ("GET", "/console/demands/{demand_id}", staff.demand),
        ("POST", "/console/demands/{demand_id}/{action}", staff.act),
        ("GET", "/console/log", public.log),
        ("GET", "/console/log/entry", public.find_entry),
        ("GET", "/console/log/{index}", public.entry),
        ("GET", "/console/log/{index}/receipt", public.receipt),
        ("GET", "/console/log/{index}/entry", public.entry_bytes),
        ("GET", "/console/transparency", public.transparency),
        ("GET", "/console/static/{name}", public.static),
    )
    for method, path, view in routes:
        router.add_api_route(path, view, methods=[method])
    return router
