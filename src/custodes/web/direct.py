"""The authority API's busiest routes served without FastAPI's router.

Every signed submission and upload went through FastAPI's routing: the router looked for
the route among every route of the app (the log, the console, the staff API), solved the
route's one dependency and called the endpoint, which returns its own response. That
work is the same for every such request, and it took about an eighth of the processor time
of a whole submission (measured: docs/performance.md, "Eighth round").

:class:`DirectRoutes` serves an exact method and path straight: it runs the route's own
dependency (:func:`custodes.web.intake.signed`) and its own endpoint, the very functions
FastAPI would call. An exception goes to the app's exception handlers as Starlette's
``ExceptionMiddleware`` would send it there (an ``HTTPException`` to a handler for its status
first, then anything to the handler of the nearest class in its MRO), and one that no
handler takes goes on up to ``ServerErrorMiddleware``, as before. The middleware sits
inside the body limit (:class:`custodes.web.limits.BodyLimit`), so a direct route's body is
bounded as every other. Any other request, and every request under a root path, goes on to
the app unchanged; the routes stay in the app, so the OpenAPI document does not change.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from custodes.web.intake import Gate

__all__ = ["Direct", "DirectRoutes"]


@dataclass(frozen=True)
class Direct:
    """One route served directly: its dependency and its endpoint, as FastAPI has them."""

    dependency: Callable[[Request], Awaitable[Gate]]
    endpoint: Callable[[Gate, Request], Awaitable[Response]]


class DirectRoutes:
    """ASGI middleware: ``POST`` to a path of ``routes`` is served by its :class:`Direct`."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, Direct]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(await route.dependency(request), request)
        except Exception as exc:
            response = await _handled(request, exc)
        await response(scope, receive, send)


async def _handled(request: Request, exc: Exception) -> Response:
    """What the app's exception handlers answer to ``exc``; raises it again if none takes it
    (the handlers of 500 and ``Exception`` belong to ``ServerErrorMiddleware``)."""
    handlers: Mapping[Any, Callable[..., Any]] = request.app.exception_handlers
    handler = None
    if isinstance(exc, HTTPException) and exc.status_code != 500:
        handler = handlers.get(exc.status_code)
    if handler is None:
        handler = next(
            (handlers[c] for c in type(exc).__mro__ if c is not Exception and c in handlers), None
        )
    if handler is None:
        raise exc
    if inspect.iscoroutinefunction(handler):
        response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    if not isinstance(response, Response):
        raise exc
    exc.__traceback__ = None  # a reused exception would gather tracebacks
    return response
