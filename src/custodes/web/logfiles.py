"""Serving the published log read-only at ``/log/`` (c2sp.org/tlog-tiles).

- ``/log/checkpoint``: ``text/plain; charset=utf-8``; mutable, so cached for a few seconds only.
- ``/log/tile/<L>/<N>[.p/<W>]`` and ``/log/tile/entries/<N>[.p/<W>]``:
  ``application/octet-stream``; immutable, so cached for a year.

Only paths that parse as a checkpoint or a canonical tile path are served: nothing else under
the data directory can be reached.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Response

from custodes.errors import NotFoundError
from custodes.tlog import TlogError
from custodes.tlog.tiles import parse_tile_path

CHECKPOINT_CACHE = "public, max-age=2, must-revalidate"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"


def log_router(log_dir: Path) -> APIRouter:
    router = APIRouter()

    @router.get("/log/checkpoint", include_in_schema=False)
    def checkpoint() -> Response:
        path = log_dir / "checkpoint"
        if not path.is_file():
            raise NotFoundError("the log has no checkpoint yet")
        return Response(
            path.read_bytes(),
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": CHECKPOINT_CACHE},
        )

    @router.get("/log/tile/{rest:path}", include_in_schema=False)
    def tile(rest: str) -> Response:
        rel = f"tile/{rest}"
        try:
            parse_tile_path(rel)
        except TlogError as exc:
            raise NotFoundError(f"not a tile path: {exc}") from exc
        path = log_dir / rel
        if not path.is_file():
            raise NotFoundError(f"{rel} is not published")
        return Response(
            path.read_bytes(),
            media_type="application/octet-stream",
            headers={"Cache-Control": IMMUTABLE_CACHE},
        )

    return router
