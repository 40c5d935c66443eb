"""Small pieces the test modules share (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta


class Clock:
    """The services' clock, moved by hand: set ``now`` or :meth:`advance` it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def run_threads(
    target: Callable[[int], object], args: Iterable[int], timeout: float | None = None
) -> list[threading.Thread]:
    """Start one thread of ``target(arg)`` per arg, all at once, and join them (each for at
    most ``timeout`` seconds); returns the threads, to check that none is still alive."""
    threads = [threading.Thread(target=target, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return threads
