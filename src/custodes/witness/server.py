"""The witness's HTTP interface: ``POST /add-checkpoint`` (c2sp.org/tlog-witness).

The submission prefix is the server's root. A 200 carries the cosignature lines as
``text/plain``; a 409 carries the witness's size as ``text/x.tlog.size``; every other refusal is
an RFC 9457 problem+json with the status the spec asks for. The body is read only up to
:data:`~custodes.witness.protocol.MAX_REQUEST_SIZE`; checking and storing run in a worker
thread, one log at a time.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from custodes import __version__
from custodes.web.problems import install_problem_handlers
from custodes.witness.cosigning import Witness
from custodes.witness.errors import ConflictingCheckpointError, RequestTooLargeError
from custodes.witness.protocol import MAX_REQUEST_SIZE, SIZE_CONTENT_TYPE, format_size_conflict

__all__ = ["create_witness_app"]


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_SIZE:
        raise RequestTooLargeError(f"request of {declared} bytes is over {MAX_REQUEST_SIZE}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_SIZE:
            raise RequestTooLargeError(f"request is over {MAX_REQUEST_SIZE} bytes")
    return bytes(body)


def create_witness_app(witness: Witness) -> FastAPI:
    app = FastAPI(title="custodes witness", version=__version__, docs_url=None, redoc_url=None)
    install_problem_handlers(app)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await _read_body(request)
        try:
            lines = await run_in_threadpool(witness.add_checkpoint, body)
        except ConflictingCheckpointError as exc:
            headers = {"Content-Type": SIZE_CONTENT_TYPE}  # exactly this, with no charset
            return Response(format_size_conflict(exc.size), 409, headers=headers)
        return Response(lines, media_type="text/plain; charset=utf-8")

    return app
