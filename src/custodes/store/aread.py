"""Reads that a route running under the bridge awaits, on PostgreSQL.

A POST route of the API runs on the event loop's own thread (:mod:`custodes.store.bridge`).
Its commits are awaited, but a read through :meth:`~custodes.store.Store.read` blocks the
thread, and with it every other request the loop serves, for the whole round trip to the
server: under load that was about a quarter of the loop's time for each submission, spent
waiting with nothing to do. :class:`AsyncReads` keeps a few psycopg ``AsyncConnection``\\ s
for one event loop, sessions read-only and in autocommit as the store's reading engine's
are, and :meth:`~custodes.store.Store.read_row` awaits a one-row read on one of them when
it is called under the bridge: the loop serves other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

import psycopg

from custodes.errors import StorageError

__all__ = ["AsyncReads"]

log = logging.getLogger(__name__)

_UNREADABLE = "the database could not be read just now; try again"
"""What a caller is told (the driver's own message, which names the server, is logged)."""


class AsyncReads:
    """At most ``most`` read-only connections of one event loop, opened when first needed
    and kept; a caller waits for one when all are busy."""

    def __init__(self, conninfo: str, most: int = 8) -> None:
        self._conninfo = conninfo
        self._most = most
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[psycopg.AsyncConnection[Any] | None]] = deque()
        self._closed = False

    async def row(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The first row ``sql`` (``%s`` for each parameter) returns, if any."""
        conn = await self._take()
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(sql, params)
                row = await cursor.fetchone()
        except psycopg.Error as exc:
            await self._drop(conn)
            log.warning("awaited read failed error=%s", exc)
            raise StorageError(_UNREADABLE) from exc
        except BaseException:  # cancelled mid-read: the session's state is unknown
            await self._drop(conn)
            raise
        self._give(conn)
        return None if row is None else tuple(row)

    async def _take(self) -> psycopg.AsyncConnection[Any]:
        while True:
            if self._closed:
                raise StorageError("the store is closed")
            if self._idle:
                return self._idle.pop()
            if self._open < self._most:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake(None)
                    raise
            waiter: asyncio.Future[psycopg.AsyncConnection[Any] | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiting.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed one as it was cancelled
                    handed = waiter.result()
                    if handed is None:
                        self._wake(None)
                    else:
                        self._give(handed)
                raise
            if conn is not None:
                return conn
            # None: a connection was dropped, and its place is free: try again

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            await conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        except psycopg.Error as exc:
            log.warning("awaited read could not connect error=%s", exc)
            raise StorageError(_UNREADABLE) from exc
        return conn

    def _give(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if not self._wake(conn):
            self._idle.append(conn)

    def _wake(self, conn: psycopg.AsyncConnection[Any] | None) -> bool:
        """Hand ``conn`` (None: a free place) to the first caller still waiting, if any."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def _drop(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._open -= 1
        self._wake(None)
        await conn.close()

    async def close(self) -> None:
        """Close every connection (on the loop they belong to)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
