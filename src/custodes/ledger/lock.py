"""Leadership: exactly one sequencer integrates at a time.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own; if the
process dies, its connection closes and the lock is free for another process to take. On SQLite
(one host) the leader holds an exclusive ``flock`` on ``DATA/sequencer.lock``, which the kernel
releases when the process dies.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

_LOCK_NAME = "custodes.sequencer"


class LeaderLock(Protocol):
    def try_acquire(self) -> bool:
        """True if this process holds the lock (now or already)."""

    def release(self) -> None: ...


class FileLock:
    """Leadership among processes of one host sharing an SQLite database."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        log.info("sequencer leadership taken lock=%s pid=%d", self._path, os.getpid())
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class AdvisoryLock:
    """Leadership among processes on several hosts sharing a PostgreSQL database. The lock key
    is derived from the schema name, so that separate deployments in one database do not
    contend."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            try:  # still alive? a dropped connection has dropped the lock with it
                self._conn.execute(sa.text("SELECT 1"))
                return True
            except sa.exc.DBAPIError:
                self._drop()
        conn = self._engine.connect()
        got = conn.execute(
            sa.text("SELECT pg_try_advisory_lock(hashtext(current_schema() || :n))"),
            {"n": _LOCK_NAME},
        ).scalar()
        conn.commit()
        if not got:
            conn.close()
            return False
        self._conn = conn
        log.info("sequencer leadership taken pid=%d", os.getpid())
        return True

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except sa.exc.DBAPIError:
                pass
            self._conn = None

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(
                    sa.text("SELECT pg_advisory_unlock(hashtext(current_schema() || :n))"),
                    {"n": _LOCK_NAME},
                )
                self._conn.commit()
                self._conn.close()
            except sa.exc.DBAPIError:
                self._drop()
            self._conn = None


def leader_lock(engine: Engine, lock_path: Path) -> LeaderLock:
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    return FileLock(lock_path)
