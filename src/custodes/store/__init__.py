"""Storage: one small interface over SQLite (embedded default) and PostgreSQL (production).

:func:`open_store` connects, brings the schema up to date through the Alembic migrations and
returns a :class:`Store`. Writes go through :meth:`Store.write`, which hands the work to the
store's :class:`~custodes.store.writer.Writer`: concurrent writers share one transaction and one
durable commit (group commit), and one failure does not undo the others (the batch runs again,
each in its own savepoint). Reads use :meth:`Store.read`.

Reads on PostgreSQL run on an engine of their own whose sessions are read-only (``SET SESSION
CHARACTERISTICS AS TRANSACTION READ ONLY``) and in autocommit: each statement is its own
transaction. Under PostgreSQL's default isolation, READ COMMITTED, a statement inside a
transaction sees a snapshot of its own all the same, so a reader sees what it saw before; it
saves the ``BEGIN`` and ``ROLLBACK`` round trips every read paid, and a write attempted in a
read fails instead of being rolled back. A one-row read made under the bridge
(:meth:`Store.read_row`) is awaited on the event loop's own sessions, alike
(:mod:`custodes.store.aread`).

Durability: SQLite runs in WAL mode with ``synchronous=FULL``; PostgreSQL keeps its default
``synchronous_commit=on``. A write returns only after its commit is durable.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

import custodes.migrations
from custodes.errors import MigrationError, StorageError
from custodes.store.aread import AsyncReads
from custodes.store.bridge import bridged, wait_for
from custodes.store.fast import discard_deferred, execute, flush_deferred, mark
from custodes.store.writer import Writer

log = logging.getLogger(__name__)
T = TypeVar("T")

# Key of the PostgreSQL advisory lock that serialises schema migrations.
MIGRATION_LOCK_KEY = 0x637573746F6401


class Store:
    """A database holding custodes' state and its log."""

    def __init__(self, engine: Engine, read_engine: Engine | None = None) -> None:
        self.engine = engine
        self.read_engine = read_engine or engine
        self._writer: Writer | None = None
        self._writer_lock = threading.Lock()
        self._reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncReads] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction of its own, committed on exit (not group-committed)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StorageError(f"database error: {exc.orig}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading; it cannot write (PostgreSQL refuses; on SQLite nothing it
        does is committed). On SQLite the block reads one snapshot; on PostgreSQL each
        statement reads its own (READ COMMITTED, as inside a transaction there).

        Consume every result inside the block: on SQLite an unread result keeps its statement,
        and with it the read snapshot, alive on the pooled connection after the block ends."""
        with self.read_engine.connect() as conn:
            yield conn
            conn.rollback()

    def read_row(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The first row of one read, ``sql`` with ``{mark}`` for each parameter (as
        :func:`~custodes.store.fast.execute` takes it). Under the bridge on PostgreSQL it is
        awaited on the event loop's own connections (:mod:`custodes.store.aread`), so that
        the loop serves other requests meanwhile; elsewhere it is a :meth:`read`."""
        if self.read_engine.dialect.name == "postgresql" and bridged():
            reads = self._reads_of(asyncio.get_running_loop())
            text = sql.format(mark=mark(self.read_engine.dialect))
            return wait_for(asyncio.ensure_future(reads.row(text, params)))
        with self.read() as conn:
            return execute(conn, sql, params)

    def _reads_of(self, loop: asyncio.AbstractEventLoop) -> AsyncReads:
        reads = self._reads.get(loop)
        if reads is None:
            url = self.read_engine.url.set(drivername="postgresql")
            reads = self._reads[loop] = AsyncReads(url.render_as_string(hide_password=False))
        return reads

    async def close_reads(self) -> None:
        """Close the awaited reads' connections of the running event loop (as it stops)."""
        reads = self._reads.pop(asyncio.get_running_loop(), None)
        if reads is not None:
            await reads.close()

    @property
    def writer(self) -> Writer:
        """The store's one writer, started on first use (by whichever thread comes first:
        two writers would split the group commit and fight over the write lock)."""
        writer = self._writer
        if writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = Writer(self.engine)
                writer = self._writer
        return writer

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` inside a group-committed transaction; returns once it is durable."""
        return self.writer.submit(fn)

    def close(self) -> None:
        with self._writer_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE: writers queue on the lock up front
    # instead of failing to upgrade a read lock half-way through.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_on_begin_read(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


IDLE_PING = 1.0
"""Seconds a pooled PostgreSQL connection may rest before it is pinged on its way out."""


def _pg_read_only(dbapi_conn: Any, _record: Any) -> None:
    """Make a new reading session read-only, once (not through the URL's ``options``, which
    would replace any the deployment gives there or in ``PGOPTIONS``)."""
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    try:
        dbapi_conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    finally:
        dbapi_conn.autocommit = autocommit


def _pg_on_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info["rested_from"] = time.monotonic()


def _ping_rested(engine: Engine) -> Callable[[Any, Any, Any], None]:
    def on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        """Ping a connection that rested in the pool (the server may have dropped it since);
        a dead one is replaced. One returned a moment ago is not pinged: under load, every
        request would otherwise pay a round trip for each of its reads. Should the server
        go away all the same, the read that finds out fails, and the pool then replaces
        every connection it holds."""
        rested_from = record.info.get("rested_from")
        if rested_from is None or time.monotonic() - rested_from < IDLE_PING:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception:
            alive = False
        if not alive:
            raise sa.exc.DisconnectionError("a pooled connection went away while it rested")

    return on_checkout


def create_store_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine with custodes' durability settings for the URL's dialect. On SQLite, writers
    take the write lock when they begin (BEGIN IMMEDIATE); readers (``read_only``) begin a
    deferred transaction and read a snapshot without blocking writers. On PostgreSQL, readers
    (``read_only``) run each statement on its own in a read-only session (see the module)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StorageError(f"bad database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin_read if read_only else _sqlite_on_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if read_only else {}
        engine = sa.create_engine(parsed, pool_size=20, max_overflow=20, **options)
        if read_only:
            sa.event.listen(engine, "connect", _pg_read_only)
        sa.event.listen(engine, "checkin", _pg_on_checkin)
        sa.event.listen(engine, "checkout", _ping_rested(engine))
        if not read_only:
            # Inserts deferred in a transaction (store.fast.defer_rows) are sent before it
            # commits and dropped with it, whoever ran it.
            sa.event.listen(engine, "commit", flush_deferred)
            sa.event.listen(engine, "rollback", discard_deferred)
        return engine
    raise StorageError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(custodes.migrations.__file__).parent))
    cfg.attributes["connection"] = conn
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; refuse a database newer than this code."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        cfg = _alembic_config(conn)
        heads = set(ScriptDirectory.from_config(cfg).get_heads())
        current = set(MigrationContext.configure(conn).get_current_heads())
        known = {rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()}
        if current - known:
            raise MigrationError(
                f"the database is at revision {sorted(current - known)}, newer than this code"
            )
        if current != heads:
            log.info("migrating schema from=%s to=%s", sorted(current), sorted(heads))
            command.upgrade(cfg, "heads")


def open_store(url: str, *, migrate_schema: bool = True) -> Store:
    """Connect to ``url`` and bring its schema up to date."""
    engine = create_store_engine(url)
    try:
        if migrate_schema:
            migrate(engine)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise StorageError(f"cannot open database {engine.url!r}: {exc.orig}") from exc
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, create_store_engine(url, read_only=True))
