"""Small pieces the test modules share (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

from datetime import datetime, timedelta


class Clock:
    """The services' clock, moved by hand: set ``now`` or :meth:`advance` it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
