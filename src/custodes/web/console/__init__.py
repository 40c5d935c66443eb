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
``/console/log/{index}/receipt``        no      the entry's c2sp.org/tlog-proof receipt
``/console/transparency``               no      demands by country, kind and outcome, per
                                                quarter (SVG charts drawn on the server)
``/console/static/{name}``              no      the console's CSS and JavaScript
======================================  ======  ===============================================

Modules: :mod:`.page` (templates, headers, static files), :mod:`.public` (the public pages),
:mod:`.logview` (what the log pages show), :mod:`.transparency` (the figures),
:mod:`.chart` (SVG bar charts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request

from custodes.deployment import Deployment

from .public import PublicPages

__all__ = ["console_router"]


def _visitor(_: Request) -> Mapping[str, Any]:
    return {"staff": None, "csrf_token": "", "flash": None, "error": None, "section": ""}


def console_router(deployment: Deployment) -> APIRouter:
    """The console's routes over ``deployment``; include it in the application."""
    public = PublicPages(deployment, _visitor)
    router = APIRouter(include_in_schema=False)
    routes = (
        ("GET", "/console/log", public.log),
        ("GET", "/console/log/entry", public.find_entry),
        ("GET", "/console/log/{index}", public.entry),
        ("GET", "/console/log/{index}/receipt", public.receipt),
        ("GET", "/console/transparency", public.transparency),
        ("GET", "/console/static/{name}", public.static),
    )
    for method, path, view in routes:
        router.add_api_route(path, view, methods=[method])
    return router
