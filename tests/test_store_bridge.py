"""Callers of the writer that run on an event loop (custodes.store.bridge): they await their
commit instead of blocking a thread, share commits with each other and with threads, and get
their own result or their own error."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from custodes.store import Store, open_store
from custodes.store.bridge import bridged, run_bridged, wait_for

probe = sa.Table(
    "bridge_probe",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("by", sa.String(16), nullable=False),
)


def _store(url: str) -> Store:
    s = open_store(url)
    engine = sa.create_engine(url)
    probe.metadata.create_all(engine)
    engine.dispose()
    return s


def _insert(s: Store, key: int, by: str) -> int:
    """Blocking code, as a route writes it: one row, through the writer."""

    def fn(conn: sa.Connection) -> int:
        conn.execute(probe.insert().values(id=key, by=by))
        if key % 10 == 7:
            raise ValueError(f"{key} is refused")
        return key * 2

    return s.write(fn)


def _held(gate: threading.Event, by: str) -> Callable[[sa.Connection], int]:
    """A write of row 1 that waits for ``gate`` first (at most 5 s): its caller waits long
    enough to be cancelled."""

    def slow(conn: sa.Connection) -> int:
        gate.wait(5)
        conn.execute(probe.insert().values(id=1, by=by))
        return 1

    return slow


def _ids(s: Store) -> list[int]:
    with s.read() as conn:
        return sorted(conn.execute(sa.select(probe.c.id)).scalars())


def test_awaiting_callers_share_commits_and_get_their_own_outcome(database_url: str) -> None:
    s = _store(database_url)
    commits: list[int] = []
    s.writer.on_commit.append(lambda: commits.append(1))
    callers, rounds = 24, 5
    loop_thread: list[threading.Thread] = []

    async def one(c: int) -> list[object]:
        got: list[object] = []
        for r in range(rounds):
            key = c * rounds + r

            def call(key: int = key) -> int:
                assert bridged()
                loop_thread.append(threading.current_thread())
                return _insert(s, key, "loop")

            try:
                got.append(await run_bridged(call))
            except ValueError as exc:
                got.append(str(exc))
        return got

    async def main() -> list[list[object]]:
        return await asyncio.gather(*(one(c) for c in range(callers)))

    results = asyncio.run(main())
    for c, got in enumerate(results):
        for r, value in enumerate(got):
            key = c * rounds + r
            assert value == (f"{key} is refused" if key % 10 == 7 else key * 2)
    assert _ids(s) == [k for k in range(callers * rounds) if k % 10 != 7]
    # every call ran on the loop's own thread, and the callers waited together
    assert {t.ident for t in loop_thread} == {threading.main_thread().ident}
    assert len(commits) <= callers * rounds / 4, f"{len(commits)} commits"
    s.close()


def test_threads_and_awaiting_callers_mix_in_one_batch(database_url: str) -> None:
    s = _store(database_url)
    threads = 6
    started = threading.Barrier(threads + 1)
    thread_results: dict[int, int] = {}

    def thread_work(t: int) -> None:
        started.wait()
        for r in range(10):
            key = 1000 + t * 10 + r
            if key % 10 != 7:
                thread_results[key] = _insert(s, key, "thread")

    workers = [threading.Thread(target=thread_work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()

    async def main() -> list[int]:
        started.wait()
        keys = [k for k in range(60) if k % 10 != 7]
        calls = [functools.partial(_insert, s, key, "loop") for key in keys]
        return list(await asyncio.gather(*(run_bridged(call) for call in calls)))

    loop_results = asyncio.run(main())
    for w in workers:
        w.join()
    assert loop_results == [k * 2 for k in range(60) if k % 10 != 7]
    assert all(v == k * 2 for k, v in thread_results.items())
    assert len(_ids(s)) == len(loop_results) + len(thread_results)
    s.close()


def test_a_cancelled_caller_leaves_the_writer_working(database_url: str) -> None:
    """A request cancelled while it waits for its commit: its write still commits (as for a
    thread that gave up), nothing is handed to the cancelled caller, and the writer goes on."""
    s = _store(database_url)
    gate = threading.Event()
    slow = _held(gate, "cancelled")

    async def main() -> int:
        waiting = asyncio.ensure_future(run_bridged(lambda: s.write(slow)))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.set()
        return await run_bridged(lambda: _insert(s, 2, "after"))

    assert asyncio.run(main()) == 4
    assert _ids(s) == [1, 2]
    s.close()


def test_wait_for_outside_a_bridge_is_refused() -> None:
    async def main() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        with pytest.raises(RuntimeError, match="run_bridged"):
            wait_for(future)

    asyncio.run(main())
    assert not bridged()


def test_a_caller_whose_loop_closed_leaves_the_writer_working(database_url: str) -> None:
    """The event loop of a waiting caller closes before its commit (a server shutting down):
    the writer cannot hand it the outcome, and goes on serving the others."""
    s = _store(database_url)
    gate = threading.Event()
    slow = _held(gate, "orphan")
    loop = asyncio.new_event_loop()
    waiting = loop.create_task(run_bridged(lambda: s.write(slow)))
    loop.run_until_complete(asyncio.sleep(0.05))
    waiting.cancel()
    loop.run_until_complete(asyncio.gather(waiting, return_exceptions=True))
    loop.close()
    gate.set()
    assert _insert(s, 2, "thread") == 4
    assert _ids(s) == [1, 2]
    s.close()
