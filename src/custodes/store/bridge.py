"""Blocking code run on the event loop's own thread, its waits for the writer awaited.

A route of the API written as plain blocking code (it reads through :meth:`Store.read` and
writes through the :class:`~custodes.store.writer.Writer`) would need a worker thread of its
own for every request in flight, so that the writer can gather many of them into one commit.
Under load those threads cost more than the work: each hands the interpreter to the next
every time it waits, and the kernel spent a third of a server's processor time switching
between them.

:func:`run_bridged` runs such code in a greenlet on the event loop's thread instead. It
still blocks for most reads, but when it submits to the writer (or reads through
:meth:`~custodes.store.Store.read_row` on PostgreSQL), :func:`wait_for` hands the future
back to the coroutine, which awaits it: the event loop serves other requests meanwhile, and
the code resumes where it was once the commit is durable (or the row is read). The writer
settles such a request with ``call_soon_threadsafe`` instead of waking a thread.

>>> import asyncio
>>> async def main() -> int:
...     loop = asyncio.get_running_loop()
...     def blocking() -> int:
...         later = loop.create_future()
...         loop.call_soon(later.set_result, 41)
...         return wait_for(later) + 1
...     return await run_bridged(blocking)
>>> asyncio.run(main())
42
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar, cast

import greenlet

__all__ = ["bridged", "run_bridged", "wait_for"]

T = TypeVar("T")


class _Bridged(greenlet.greenlet):
    """The greenlet of one :func:`run_bridged` call; its parent is the coroutine's."""


def bridged() -> bool:
    """Whether this code runs under :func:`run_bridged` (then it may call :func:`wait_for`)."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def wait_for(future: asyncio.Future[T]) -> T:
    """From code under :func:`run_bridged`: the result of ``future``, which the coroutine
    awaits meanwhile (its exception is raised here)."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged) or current.parent is None:
        raise RuntimeError("wait_for is for code run under run_bridged")
    return cast(T, current.parent.switch(future))


async def run_bridged(fn: Callable[[], T]) -> T:
    """Run ``fn()`` on this thread; every future it waits for (:func:`wait_for`) is awaited
    here. Its result, or its exception."""
    parent = greenlet.getcurrent()
    child = _Bridged(fn, parent)
    child.gr_context = parent.gr_context  # the task's context variables, as in the coroutine
    value: Any = child.switch()
    while not child.dead:
        try:
            result = await value
        except BaseException as exc:  # cancelled, or the future's own error: raised in fn
            value = child.throw(exc)
        else:
            value = child.switch(result)
    return cast(T, value)
