"""Group commit: many threads submit work, one thread commits it in batches.

Each submitted function runs in its own savepoint inside a shared transaction; the transaction
commits once for the whole batch, and every caller is released only after that commit (so a
caller's write is durable when :meth:`Writer.submit` returns). A function that raises rolls back
its savepoint alone, and its caller gets the exception.

Work submitted with :meth:`Writer.submit_merged` under the same key is merged: the items of
every such request in a batch go to one call of its ``run`` function (the log appends a whole
batch of entries with one statement this way); if that call fails, each request is retried alone
so that the failure reaches only the caller it belongs to. A batch that is a single run commits
without savepoints.

Under load this turns N durable commits into one: the latency of one fsync is shared by every
writer waiting at that moment.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - item type of merged work
R = TypeVar("R")

MergedRun = Callable[[Connection, list[Any]], list[Any]]


@dataclass
class _Work:
    fut: Future[Any]
    fn: Callable[[Connection], Any] | None = None
    key: str = ""
    items: Sequence[Any] = ()
    run: MergedRun | None = None


_STOP: Any = object()


class Writer:
    """One writer thread per store and process."""

    def __init__(self, engine: Engine, max_batch: int = 4096) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="custodes-writer", daemon=True)
        self._closed = False
        self.on_commit: list[Callable[[], None]] = []
        """Called (in the writer thread) after every durable commit."""
        self._thread.start()

    def submit(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in the next group commit; returns its result once durable."""
        return self._wait(_Work(Future(), fn=fn))  # type: ignore[no-any-return]

    def submit_merged(
        self, key: str, items: Sequence[I], run: Callable[[Connection, list[I]], list[R]]
    ) -> list[R]:
        """Run ``run(conn, items)`` merged with other requests of the same key; returns this
        request's share of the results (one per item) once durable."""
        work = _Work(Future(), key=key, items=items, run=run)
        return self._wait(work)  # type: ignore[no-any-return]

    def _wait(self, work: _Work) -> Any:
        if self._closed:
            raise RuntimeError("writer is closed")
        self._queue.put(work)
        return work.fut.result()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout=30)

    def _take_batch(self) -> tuple[list[_Work], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        stop = False
        size = max(1, len(first.items))
        while size < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
            size += max(1, len(item.items))
        return batch, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take_batch()
            if batch:
                self._commit(batch)
                for listener in self.on_commit:
                    listener()

    def _commit(self, batch: list[_Work]) -> None:
        if _single_run(batch) and self._commit_fast(batch):
            return
        outcomes: list[tuple[_Work, bool, Any]] = []
        try:
            with self._engine.begin() as conn:
                merged: dict[str, list[_Work]] = {}
                for work in batch:
                    if work.run is None:
                        outcomes.append((work, *_attempt(conn, work)))
                    else:
                        merged.setdefault(work.key, []).append(work)
                for group in merged.values():
                    outcomes += _run_merged(conn, group)
        except Exception as exc:  # the commit itself failed: nobody's work is durable
            log.warning("group commit failed batch=%d error=%s", len(batch), exc)
            for work in batch:
                work.fut.set_exception(exc)
            return
        for work, ok, value in outcomes:
            if ok:
                work.fut.set_result(value)
            else:
                work.fut.set_exception(value)

    def _commit_fast(self, batch: list[_Work]) -> bool:
        """One run, no savepoints; False (nothing committed) if it failed, so that the
        careful path can retry each request alone."""
        try:
            with self._engine.begin() as conn:
                if batch[0].fn is not None:
                    value = batch[0].fn(conn)
                else:
                    run = batch[0].run
                    assert run is not None
                    value = run(conn, [item for work in batch for item in work.items])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].fut.set_exception(exc)
                return True
            return False
        if batch[0].fn is not None:
            batch[0].fut.set_result(value)
            return True
        at = 0
        for work in batch:
            work.fut.set_result(value[at : at + len(work.items)])
            at += len(work.items)
        return True


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
                return True, work.fn(conn)
            assert work.run is not None
            return True, work.run(conn, list(work.items))
    except Exception as exc:  # handed to the caller
        return False, exc


def _run_merged(conn: Connection, group: list[_Work]) -> list[tuple[_Work, bool, Any]]:
    if len(group) == 1:
        return [(group[0], *_attempt(conn, group[0]))]
    run = group[0].run
    assert run is not None
    items = [item for work in group for item in work.items]
    ok, value = _attempt(conn, _Work(Future(), key=group[0].key, items=items, run=run))
    if not ok:
        log.warning("merged work failed, retrying alone requests=%d", len(group))
        return [(work, *_attempt(conn, work)) for work in group]
    out: list[tuple[_Work, bool, Any]] = []
    at = 0
    for work in group:
        out.append((work, True, value[at : at + len(work.items)]))
        at += len(work.items)
    return out
