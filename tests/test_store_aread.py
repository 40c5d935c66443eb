"""Reads awaited on the event loop (PostgreSQL): the loop serves other work while a bridged
read waits, the connections are bounded, a dropped one is replaced, and closing ends them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from custodes.errors import StorageError
from custodes.store import Store, open_store
from custodes.store.aread import AsyncReads
from custodes.store.bridge import run_bridged


@pytest.fixture
def store(pg_schema_url: str) -> Iterator[Store]:
    opened = open_store(pg_schema_url)
    yield opened
    opened.close()


def _conninfo(store: Store) -> str:
    return store.read_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def test_a_bridged_read_lets_the_loop_serve_other_work(store: Store) -> None:
    """While a bridged read waits for the server, the loop runs other tasks; the row is the
    one the blocking path reads."""
    sql = "SELECT {mark}::int, 'x' FROM pg_sleep(0.3)"

    async def main() -> tuple[tuple[object, ...] | None, int]:
        ticks = 0
        done = asyncio.Event()

        async def tick() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        row = await run_bridged(lambda: store.read_row(sql, [7]))
        done.set()
        await ticker
        await store.close_reads()
        return row, ticks

    row, ticks = asyncio.run(main())
    assert row == (7, "x") == store.read_row(sql, [7])  # outside the bridge: a plain read
    assert ticks >= 5  # a blocking read would have held the loop for the whole 0.3 s


def test_the_reads_share_a_bounded_number_of_connections(store: Store) -> None:
    """Six reads at once on at most two connections all get their rows."""
    reads = AsyncReads(_conninfo(store), most=2)

    async def main() -> list[tuple[object, ...] | None]:
        sql = "SELECT pg_backend_pid(), %s::int FROM pg_sleep(0.05)"
        rows = await asyncio.gather(*(reads.row(sql, [n]) for n in range(6)))
        await reads.close()
        return rows

    rows = asyncio.run(main())
    assert [r[1] for r in rows if r is not None] == list(range(6))
    assert len({r[0] for r in rows if r is not None}) <= 2


def test_a_dropped_connection_fails_one_read_and_is_replaced(store: Store) -> None:
    """The server ends a reading session: the read that finds out fails with a storage
    error, and the next read opens a fresh session."""
    reads = AsyncReads(_conninfo(store), most=1)

    async def main() -> tuple[str, tuple[object, ...] | None, tuple[object, ...] | None]:
        first = await reads.row("SELECT pg_backend_pid()", [])
        assert first is not None
        with store.engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first[0]})
        await asyncio.sleep(0.1)
        try:
            await reads.row("SELECT 1", [])
            failure = "none"
        except StorageError as exc:
            failure = exc.detail
        again = await reads.row("SELECT pg_backend_pid()", [])
        await reads.close()
        return failure, first, again

    failure, first, again = asyncio.run(main())
    assert failure == "the database could not be read just now; try again"
    assert again is not None and first is not None and again[0] != first[0]


def test_closed_reads_refuse_to_read(store: Store) -> None:
    reads = AsyncReads(_conninfo(store))

    async def main() -> None:
        assert await reads.row("SELECT %s::int", [1]) == (1,)
        await reads.close()
        with pytest.raises(StorageError, match="closed"):
            await reads.row("SELECT 1", [])

    asyncio.run(main())
