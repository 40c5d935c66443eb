"""Group commit: many threads submit work, one thread commits it in batches.

Every function of a batch runs inside one shared transaction, which commits once for the whole
batch, and every caller is released only after that commit (so a caller's write is durable when
:meth:`Writer.submit` returns). A function that raises undoes its own work alone, and its caller
gets the exception.

A batch first runs without savepoints (two round trips per request saved, which is most of
what a short request costs the writer). If any function raises, the whole transaction is rolled
back and the batch runs again, each function in its own savepoint; the writer then stays careful
until a batch passes without a failure. So a function may run more than once before the run
that commits: it must leave nothing behind outside the database from a run that raised or was
rolled back (set what it reports afresh on every run).

Work submitted with :meth:`Writer.submit_merged` under the same key is merged: the items of
every such request in a batch go to one call of its ``run`` function (the log appends a whole
batch of entries with one statement this way); if that call fails, each request is retried alone
so that the failure reaches only the caller it belongs to. A batch that is a single run commits
without savepoints.

Under load this turns N durable commits into one: the latency of one fsync is shared by every
writer waiting at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

from custodes.store.bridge import bridged, wait_for
from custodes.store.fast import discard_deferred, flush_deferred

log = logging.getLogger(__name__)
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - item type of merged work
R = TypeVar("R")

MergedRun = Callable[[Connection, list[Any]], list[Any]]


class _Work:
    """One request, and the lock its caller waits on until the writer settles it.

    The lock is taken when the request is made and released once the outcome is set: the
    cheapest hand-off between two threads CPython has (a ``Future`` costs a condition
    variable and a list of waiters per request, which shows under 32 writers). The callers
    of a batch are released in a relay (:func:`_release`).
    """

    __slots__ = (
        "_done", "_future", "_gone", "_ok", "_relay", "_value", "fn", "items", "key", "run",
    )  # fmt: skip

    def __init__(
        self,
        fn: Callable[[Connection], Any] | None = None,
        key: str = "",
        items: Sequence[Any] = (),
        run: MergedRun | None = None,
    ) -> None:
        self.fn = fn
        self.key = key
        self.items = items
        self.run = run
        self._ok = False
        self._value: Any = None
        self._gone = False
        self._relay: deque[_Work] | None = None
        self._future: asyncio.Future[Any] | None = None
        """For a caller under :func:`~custodes.store.bridge.run_bridged`: what it awaits
        (such a caller has no lock: the writer never hands it a turn in a relay)."""
        if bridged():
            self._future = asyncio.get_running_loop().create_future()
        else:
            self._done = threading.Lock()
            self._done.acquire()

    def set_result(self, value: Any) -> None:
        self._ok, self._value = True, value

    def set_exception(self, exc: BaseException) -> None:
        self._ok, self._value = False, exc

    def settle(self) -> None:
        """In the event loop's thread: hand the outcome to the awaiting caller."""
        future = self._future
        assert future is not None
        if future.done():  # the caller was cancelled meanwhile
            return
        if self._ok:
            future.set_result(self._value)
        else:
            future.set_exception(self._value)

    def result(self) -> Any:
        if self._future is not None:
            return wait_for(self._future)
        try:
            self._done.acquire()
        except BaseException:  # interrupted: hand on the turn the relay may give us
            self._gone = True
            if self._relay is not None and self._done.acquire(blocking=False):
                _wake_next(self._relay)
            raise
        if self._relay:
            _wake_next(self._relay)
        if self._ok:
            return self._value
        raise self._value


def _release(batch: list[_Work]) -> None:
    """Release the callers of a settled batch one after another: the writer wakes the
    first, and each caller, once awake, wakes the next. Waking them all at once would have
    32 threads fight for the interpreter, which costs the kernel more than the work. A
    caller that awaits (:mod:`custodes.store.bridge`) is settled by its event loop."""
    relay: deque[_Work] = deque()
    for work in batch:
        if work._future is not None:
            # an event loop that closed meanwhile took its caller with it
            with contextlib.suppress(RuntimeError):
                work._future.get_loop().call_soon_threadsafe(work.settle)
        else:
            work._relay = relay
            relay.append(work)
    _wake_next(relay)


def _wake_next(relay: deque[_Work]) -> None:
    while True:
        try:
            work = relay.popleft()
        except IndexError:
            return
        work._done.release()
        if not work._gone:
            return


_STOP: Any = object()


class _RolledBack(Exception):
    """Raised inside a transaction to roll it back on purpose (the connection is fine)."""


class Writer:
    """One writer thread per store and process."""

    def __init__(self, engine: Engine, max_batch: int = 4096, linger: float = 0.001) -> None:
        self._engine = engine
        self._careful = False
        """Whether batches run each request in a savepoint (after a batch had a failure)."""
        self._max_batch = max_batch
        self._linger = linger
        self._last_batch = 1
        self._want = 0
        self._enough = threading.Lock()
        self._enough.acquire()
        self._conn: Connection | None = None
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="custodes-writer", daemon=True)
        self._closed = False
        self.on_commit: list[Callable[[], None]] = []
        """Called (in the writer thread) after every durable commit."""
        self._thread.start()

    def submit(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in the next group commit; returns its result once durable."""
        return self._wait(_Work(fn=fn))  # type: ignore[no-any-return]

    def submit_merged(
        self, key: str, items: Sequence[I], run: Callable[[Connection, list[I]], list[R]]
    ) -> list[R]:
        """Run ``run(conn, items)`` merged with other requests of the same key; returns this
        request's share of the results (one per item) once durable."""
        work = _Work(key=key, items=items, run=run)
        return self._wait(work)  # type: ignore[no-any-return]

    def _wait(self, work: _Work) -> Any:
        if self._closed:
            raise RuntimeError("writer is closed")
        self._queue.put(work)
        want = self._want
        if want and self._queue.qsize() >= want:
            self._want = 0
            # another caller may have woken the writer at the same moment
            with contextlib.suppress(RuntimeError):
                self._enough.release()
        return work.result()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout=30)

    def _take_batch(self) -> tuple[list[_Work], bool]:
        """The next batch: up to ``linger`` seconds for the callers of the last batch to
        come back, then everything waiting.

        Callers released by a commit usually submit again at once, but each needs the
        interpreter in turn to do so; a writer that took only what was already queued would
        commit half of them and leave the other half for the next fsync. Sleeping (without
        holding the interpreter) from the end of the last commit until as many requests have
        arrived as it held, or the linger has passed, lets one commit carry them all; the
        request that completes the batch wakes the writer, once. A lone caller never waits:
        its last batch held one request.
        """
        missing = self._last_batch
        if missing > 1:
            self._want = missing
            if self._queue.qsize() < missing:  # checked after _want is set: no lost wake-up
                self._enough.acquire(timeout=self._linger)
            self._want = 0
            self._enough.acquire(blocking=False)  # a wake-up that came late is spent here
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        stop = self._drain(batch, max(1, len(first.items)))
        self._last_batch = len(batch)
        return batch, stop

    def _drain(self, batch: list[_Work], size: int) -> bool:
        """Move what is queued into ``batch`` (up to the batch limit); True on a stop."""
        while size < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            batch.append(item)
            size += max(1, len(item.items))
        return False

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One transaction on the writer's own connection, kept between batches.

        Keeping it saves a pool check-out and its reset for every commit. If anything goes
        wrong the connection is given up (returned to the pool, which discards it if it is
        broken) and the next batch opens a fresh one.
        """
        if self._conn is None:
            self._conn = self._engine.connect()
        conn = self._conn
        try:
            # The engine sends deferred inserts at commit, and drops them on rollback.
            with conn.begin():
                yield conn
        except _RolledBack:
            if conn.invalidated:
                self._conn = None
                conn.close()
            raise
        except BaseException:
            self._conn = None
            conn.close()
            raise

    def _run(self) -> None:
        stop = False
        try:
            while not stop:
                batch, stop = self._take_batch()
                if batch:
                    self._commit(batch)
                    _release(batch)
                    for listener in self.on_commit:
                        listener()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _commit(self, batch: list[_Work]) -> None:
        # One run (a single request, or merged requests of one key) always tries the plain
        # transaction first; a mixed batch only while no recent batch had a failure.
        single = _single_run(batch)
        if (single or not self._careful) and self._commit_optimistic(batch, single):
            return
        outcomes: list[tuple[_Work, bool, Any]] = []
        plain, merged = _grouped(batch)
        try:
            with self._transaction() as conn:
                outcomes += [(work, *_attempt(conn, work)) for work in plain]
                for group in merged:
                    outcomes += _run_merged(conn, group)
        except Exception as exc:  # the commit itself failed: nobody's work is durable
            self._fail(batch, exc)
            return
        self._careful = not all(ok for _, ok, _ in outcomes)
        for work, ok, value in outcomes:
            if ok:
                work.set_result(value)
            else:
                work.set_exception(value)

    def _commit_optimistic(self, batch: list[_Work], single: bool) -> bool:
        """Every request in one transaction, without savepoints. False (nothing committed) if
        it failed, so that the careful path can run each request in its own savepoint; a
        lone request gets its failure at once, and a mixed batch whose commit itself failed
        fails every request, as on the careful path."""
        outcomes: list[tuple[_Work, Any]] = []
        plain, merged = _grouped(batch)
        failure: Exception | None = None
        try:
            with self._transaction() as conn:
                try:
                    for work in plain:
                        assert work.fn is not None
                        outcomes.append((work, work.fn(conn)))
                        flush_deferred(conn)  # before the next work, which may read them
                    for group in merged:
                        run = group[0].run
                        assert run is not None
                        value = run(conn, [item for work in group for item in work.items])
                        flush_deferred(conn)
                        outcomes += _shares(group, value)
                except Exception as exc:
                    failure = exc
                    raise _RolledBack from exc
        except _RolledBack:
            pass
        except Exception as exc:  # the commit itself failed: nobody's work is durable
            if not single:
                self._fail(batch, exc)
                return True
            failure = exc
        if failure is not None:
            if len(batch) == 1:
                batch[0].set_exception(failure)
                return True
            if not single:
                self._careful = True
            return False
        for work, value in outcomes:
            work.set_result(value)
        return True

    def _fail(self, batch: list[_Work], exc: Exception) -> None:
        log.warning("group commit failed batch=%d error=%s", len(batch), exc)
        for work in batch:
            work.set_exception(exc)


def _shares(group: list[_Work], value: list[Any]) -> list[tuple[_Work, list[Any]]]:
    """Each request's share of a merged run's results, one per item, in order."""
    out = []
    at = 0
    for work in group:
        out.append((work, value[at : at + len(work.items)]))
        at += len(work.items)
    return out


def _grouped(batch: list[_Work]) -> tuple[list[_Work], list[list[_Work]]]:
    """The batch's plain requests, and its merged ones grouped by key (in order)."""
    plain: list[_Work] = []
    merged: dict[str, list[_Work]] = {}
    for work in batch:
        if work.run is None:
            plain.append(work)
        else:
            merged.setdefault(work.key, []).append(work)
    return plain, list(merged.values())


def _single_run(batch: list[_Work]) -> bool:
    """True when the batch is one plain request, or merged requests all of one key."""
    if len(batch) == 1:
        return True
    key = batch[0].key
    return all(w.run is not None and w.key == key for w in batch)


def _attempt(conn: Connection, work: _Work) -> tuple[bool, Any]:
    try:
        with conn.begin_nested():
            if work.fn is not None:
                value = work.fn(conn)
            else:
                assert work.run is not None
                value = work.run(conn, list(work.items))
            flush_deferred(conn)  # inside the savepoint: a failing insert is this work's
            return True, value
    except Exception as exc:  # handed to the caller
        discard_deferred(conn)
        return False, exc


def _run_merged(conn: Connection, group: list[_Work]) -> list[tuple[_Work, bool, Any]]:
    if len(group) == 1:
        return [(group[0], *_attempt(conn, group[0]))]
    run = group[0].run
    assert run is not None
    items = [item for work in group for item in work.items]
    ok, value = _attempt(conn, _Work(key=group[0].key, items=items, run=run))
    if not ok:
        log.warning("merged work failed, retrying alone requests=%d", len(group))
        return [(work, *_attempt(conn, work)) for work in group]
    return [(work, True, share) for work, share in _shares(group, value)]
