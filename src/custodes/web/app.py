"""The ASGI application that ``custodes serve`` runs.

One app serves the published log (``/log/``), the JSON API (``/v1/``: the authorities'
signed intake and the staff API) and the console. Every route module contributes one router,
listed in :func:`routers`; all of them call the same :class:`~custodes.service.Services`,
kept on ``app.state`` (see :mod:`custodes.web.context`).

Without ``services``, the app builds them over the deployment: its store and log, the policy
pack shipped with custodes, and the built-in reference platform in ``DATA/platform.db``
(generated on first start if it is missing).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from custodes import __version__
from custodes.deployment import Deployment
from custodes.platform import ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services
from custodes.service.gateway import AccessGateway
from custodes.web.account import account_router
from custodes.web.authority_api import DIRECT, authority_router
from custodes.web.console import console_router
from custodes.web.context import ApiConfig
from custodes.web.direct import DirectRoutes
from custodes.web.intake import KnownAuthorities, OverRate, refusal_listener
from custodes.web.limits import BodyLimit, body_limit_for
from custodes.web.logfiles import log_router
from custodes.web.openapi import build_openapi
from custodes.web.problems import install_problem_handlers
from custodes.web.staff_access import staff_access_router
from custodes.web.staff_admin import staff_admin_router
from custodes.web.staff_demands import staff_demands_router

__all__ = ["create_app", "routers"]

log = logging.getLogger(__name__)

DESCRIPTION = """\
The single intake of government demands for user data, and the staff API that handles them.
Every step is an event in a verifiable transparency log (published at `/log/`).

* **Authority API** (`/v1/demands`, `/v1/documents`, `/v1/productions`): every request is
  signed with RFC 9421 HTTP Message Signatures (Ed25519) covering `@method`, `@target-uri`
  and `content-digest` (RFC 9530), with `created`, `nonce` and `keyid` parameters.
* **Staff API** (`/v1/staff/...`): a session cookie (with its CSRF token) or an API token.
  Reads of user data through the staff access gateway also present a short-lived capability
  in `Custodes-Capability`.
* Every POST takes an `Idempotency-Key`; every error is RFC 9457 problem+json with a stable
  `code` (see docs/api.md).
"""


def routers(deployment: Deployment) -> list[APIRouter]:
    """Every router of the app, in the order they are matched."""
    return [
        log_router(deployment.settings.log_dir),
        account_router(),
        authority_router(),
        staff_demands_router(),
        staff_admin_router(),
        staff_access_router(),
        console_router(deployment),
    ]


def default_services(deployment: Deployment) -> Services:
    """Services over ``deployment`` with the shipped pack and the reference platform."""
    path = deployment.settings.data_dir / "platform.db"
    if not path.is_file():
        log.warning("no platform database at %s: generating the reference platform", path)
        build_reference_platform(path)
    platform = ReferencePlatform(path)
    return Services(deployment.store, deployment.ledger, load_pack(), platform)


def create_app(
    deployment: Deployment,
    *,
    services: Services | None = None,
    config: ApiConfig | None = None,
    direct: bool = True,
) -> FastAPI:
    """The app over ``deployment``; ``services`` and ``config`` default as the module says.
    ``direct`` serves the authority API's busiest routes without FastAPI's router
    (:mod:`custodes.web.direct`); without it, FastAPI routes them as every other route."""
    owned = services is None
    services = services or default_services(deployment)
    config = config or ApiConfig.from_env()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await services.store.close_reads()
        if owned and isinstance(services.platform, ReferencePlatform):
            services.platform.close()

    app = FastAPI(
        title="custodes",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.deployment = deployment
    app.state.services = services
    app.state.api_config = config
    app.state.gateway = AccessGateway(services)
    app.state.problem_listener = refusal_listener
    known: KnownAuthorities = {}
    app.state.known_authorities = known
    over_rate: OverRate = {}
    app.state.over_rate = over_rate
    if direct:  # added first: inside the body limit
        app.add_middleware(DirectRoutes, routes=DIRECT)
    app.add_middleware(BodyLimit, limit_for=lambda path: body_limit_for(path, config.json_limit))
    install_problem_handlers(app)
    for router in routers(deployment):
        app.include_router(router)
    app.openapi = lambda: _cached_openapi(app)  # type: ignore[method-assign]
    return app


def _cached_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = build_openapi(app)
    return app.openapi_schema
