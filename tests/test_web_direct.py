"""The direct routes (custodes.web.direct): an exact POST goes straight to its endpoint,
everything else to the app's router, and errors to the app's handlers as before."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from custodes.errors import ConflictError, CustodesError
from custodes.web.direct import Direct, DirectRoutes
from custodes.web.intake import Gate


class Unhandled(Exception):
    """An error no handler of the app takes."""


async def gate(request: Request) -> Gate:
    return Gate(request, "demand.submit", await request.body())


async def endpoint(gate: Gate, request: Request) -> Response:
    raised = {
        b"conflict": ConflictError("taken"),
        b"too large": HTTPException(413, "over the limit"),
        b"teapot": HTTPException(418, "short and stout"),
        b"unhandled": Unhandled("nobody takes this"),
    }.get(gate.body)
    if raised is not None:
        raise raised
    return PlainTextResponse(f"direct {gate.action} {gate.body.decode()}", status_code=201)


async def routed(request: Request) -> Response:
    return PlainTextResponse(f"routed {request.method} {request.url.path}")


async def custodes_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CustodesError)
    return JSONResponse({"code": exc.code}, status_code=409)


def too_large(request: Request, exc: Exception) -> Response:  # a handler that is not async
    return JSONResponse({"code": "too_large"}, status_code=413)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"code": "http", "detail": exc.detail}, status_code=exc.status_code)


async def unexpected(request: Request, exc: Exception) -> Response:
    return JSONResponse({"code": "internal"}, status_code=500)


def client(**options: Any) -> TestClient:
    app = Starlette(
        routes=[Route("/v1/{rest:path}", routed, methods=["GET", "POST"])],
        middleware=[Middleware(DirectRoutes, routes={"/v1/demands": Direct(gate, endpoint)})],
        exception_handlers={
            CustodesError: custodes_error,
            413: too_large,
            HTTPException: http_error,
            Exception: unexpected,
        },
    )
    return TestClient(app, **options)


def test_an_exact_post_goes_straight_to_its_endpoint() -> None:
    r = client().post("/v1/demands", content=b"body")
    assert (r.status_code, r.text) == (201, "direct demand.submit body")


@pytest.mark.parametrize(
    ("method", "path", "root_path"),
    [
        ("GET", "/v1/demands", ""),
        ("POST", "/v1/demands/", ""),
        ("POST", "/v1/demands/d-1/withdrawal", ""),
        ("POST", "/v1/documents", ""),
        ("POST", "/v1/demands", "/mounted"),
    ],
)
def test_anything_else_goes_to_the_router(method: str, path: str, root_path: str) -> None:
    r = client(root_path=root_path).request(method, root_path + path)
    assert r.status_code == 200 and r.text.startswith(f"routed {method}")


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        (b"conflict", 409, {"code": "conflict"}),  # by the class of the error
        (b"too large", 413, {"code": "too_large"}),  # by its status, before its class
        (b"teapot", 418, {"code": "http", "detail": "short and stout"}),
    ],
)
def test_an_error_goes_to_the_apps_handler(
    body: bytes, status: int, answer: dict[str, str]
) -> None:
    r = client().post("/v1/demands", content=body)
    assert r.status_code == status and r.json() == answer


def test_an_error_no_handler_takes_goes_on_to_the_server_error_handler() -> None:
    r = client(raise_server_exceptions=False).post("/v1/demands", content=b"unhandled")
    assert r.status_code == 500 and r.json() == {"code": "internal"}
    with pytest.raises(Unhandled):
        client().post("/v1/demands", content=b"unhandled")
