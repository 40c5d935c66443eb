"""Limits every request meets before any work is done: body size, and request rates.

**Body size** is checked before anything parses the body: :class:`BodyLimit` refuses a
``Content-Length`` over the route's limit on the first read, and counts the bytes of a body
sent without one (chunked), so a client cannot make the server buffer more than the limit.
Demands may be up to :data:`custodes.model.MAX_DEMAND_BYTES`, instrument documents up to
:data:`custodes.service.lifecycle.MAX_DOCUMENT_BYTES`, every other body up to
:attr:`custodes.web.context.ApiConfig.json_limit`.

**Rates** are counted in the database (``api_rate_windows``), per bucket and fixed window, so
that several server processes share one count: :func:`count_request` runs inside a write and
raises :class:`~custodes.errors.RateLimitError` (with ``retry_after`` seconds) past the limit.

>>> window_start(datetime(2024, 1, 1, 0, 1, 30, tzinfo=UTC), timedelta(minutes=1))
1704067260
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custodes.errors import RateLimitError
from custodes.model import MAX_DEMAND_BYTES
from custodes.service.lifecycle import MAX_DOCUMENT_BYTES
from custodes.store.api_tables import api_rate_windows
from custodes.store.fast import Part, insert_part, together

__all__ = [
    "BodyLimit",
    "BodyTooLarge",
    "body_limit_for",
    "count_many",
    "count_part",
    "count_request",
    "counted_within",
    "window_start",
]

_DEMAND_PATHS = re.compile(r"/v1/(staff/)?demands(/[^/]+/amendments)?")
_DOCUMENT_PATHS = re.compile(r"/v1/(staff/)?documents")


class BodyTooLarge(HTTPException):
    """A request body over its route's limit (rendered as the ``too_large`` problem)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the {limit}-byte limit for this route")


def body_limit_for(path: str, default: int) -> int:
    """The most bytes a request body to ``path`` may have."""
    if _DEMAND_PATHS.fullmatch(path):
        return MAX_DEMAND_BYTES
    if _DOCUMENT_PATHS.fullmatch(path):
        return MAX_DOCUMENT_BYTES
    return default


class BodyLimit:
    """ASGI middleware: a body over ``limit_for(path)`` bytes fails the read that crosses it."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 19 else None
    return None


def window_start(now: datetime, window: timedelta) -> int:
    """The start (Unix seconds) of the fixed window holding ``now``."""
    seconds = max(1, int(window.total_seconds()))
    return int(now.timestamp()) // seconds * seconds


def count_request(
    conn: Connection, bucket: str, *, limit: int, window: timedelta, now: datetime
) -> int:
    """Count one request against ``bucket`` inside the caller's write; returns the count so far
    this window, or raises ``RateLimitError`` once it passes ``limit``."""
    start = window_start(now, window)
    [counted] = together(conn, [count_part(conn, [bucket], window=window, now=now)])
    _forget_old(conn, counted, {bucket: 1}, start)
    [(_, counted_so_far)] = counted
    count = int(counted_so_far)
    if count > limit:
        seconds = max(1, int(window.total_seconds()))
        retry = start + seconds - int(now.astimezone(UTC).timestamp())
        raise RateLimitError(
            f"more than {limit} requests in {seconds} seconds",
            retry_after=max(1, retry),
        )
    return count


def count_many(
    conn: Connection, buckets: Sequence[str], *, limit: int, window: timedelta, now: datetime
) -> bool:
    """:func:`count_request` for one request per bucket named (a bucket may be named more
    than once), one statement for all: True if every bucket stays within ``limit``. False
    if one passes it: the caller then rolls back and counts each request alone, which says
    which one passed."""
    [counted] = together(conn, [count_part(conn, buckets, window=window, now=now)])
    return counted_within(conn, counted, buckets, limit=limit, window=window, now=now)


def count_part(
    conn: Connection, buckets: Sequence[str], *, window: timedelta, now: datetime
) -> Part:
    """:func:`count_many`'s count as a part of a statement
    (:func:`~custodes.store.fast.together`); its rows go to :func:`counted_within`."""
    start = window_start(now, window)
    rows = [{"bucket": b, "window": start, "count": k} for b, k in Counter(buckets).items()]
    return insert_part(conn, api_rate_windows, rows, _COUNT_MANY, ("bucket", "count"))


def counted_within(
    conn: Connection,
    counted: Sequence[tuple[str, int]],
    buckets: Sequence[str],
    *,
    limit: int,
    window: timedelta,
    now: datetime,
) -> bool:
    """After a :func:`count_part` of ``buckets`` ran: True if every bucket stays within
    ``limit``, as :func:`count_many` says. Buckets that began a new window forget their
    old ones."""
    _forget_old(conn, counted, Counter(buckets), window_start(now, window))
    return all(count <= limit for _, count in counted)


def _forget_old(
    conn: Connection, counted: Sequence[tuple[str, int]], added: Mapping[str, int], start: int
) -> None:
    for bucket, count in counted:
        if count == added[bucket]:  # first of a new window: forget the old ones
            conn.execute(_FORGET_WINDOWS, {"b_bucket": bucket, "b_start": start})


_COUNT_MANY = (
    'ON CONFLICT (bucket, "window") DO UPDATE SET count = api_rate_windows.count + '
    "excluded.count RETURNING bucket, count"
)

_t = api_rate_windows
_FORGET_WINDOWS = _t.delete().where(
    _t.c.bucket == sa.bindparam("b_bucket"), _t.c.window < sa.bindparam("b_start")
)
