"""Group commit: many threads submit work, one thread commits it in batches.

Each submitted function runs in its own savepoint inside a shared transaction; the transaction
commits once for the whole batch, and every caller is released only after that commit (so a
caller's write is durable when :meth:`Writer.submit` returns). A function that raises rolls back
its savepoint alone, and its caller gets the exception.

Under load this turns N durable commits into one: the latency of one fsync is shared by every
writer waiting at that moment.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)
T = TypeVar("T")

_Work = tuple[Callable[[Connection], Any], "Future[Any]"]
_STOP: Any = object()


class Writer:
    """One writer thread per store and process."""

    def __init__(self, engine: Engine, max_batch: int = 1024) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="custodes-writer", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, fn: Callable[[Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("writer is closed")
        fut: Future[T] = Future()
        self._queue.put((fn, fut))
        return fut.result()

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
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take_batch()
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[_Work]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._engine.begin() as conn:
                for fn, _ in batch:
                    try:
                        with conn.begin_nested():
                            outcomes.append((True, fn(conn)))
                    except Exception as exc:  # handed to the caller
                        outcomes.append((False, exc))
        except Exception as exc:  # the commit itself failed: nobody's work is durable
            log.warning("group commit failed batch=%d error=%s", len(batch), exc)
            for _, fut in batch:
                fut.set_exception(exc)
            return
        for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
