"""Many rows in one statement, through the driver's cursor; statements built once per dialect.

The hottest writes in custodes (the log's entries, the openings of their events, the
by-subject rows of staff reads) run once per group commit with dozens of rows. Compiling
them with SQLAlchemy and processing each row's parameters cost more than the database's
own work; here each shape of statement is written once per dialect, values go through the
same bind processors SQLAlchemy would apply (so a ``DateTime`` is stored exactly as the
ORM-less Core path stores it), and the rows go in one multi-row ``INSERT``.

On PostgreSQL the statements are written with the server's own ``$n`` placeholders and run on
a psycopg ``RawCursor``: psycopg otherwise scans a query for ``%s`` markers on every run, and
does not remember the result for a statement of over 50 parameters (a multi-row ``INSERT``),
which cost 235 µs of processor time for 25 rows of 8 columns, against 31 µs raw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

import psycopg
from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect

from custodes.errors import StorageError

__all__ = [
    "Check",
    "Part",
    "defer",
    "defer_rows",
    "discard_deferred",
    "execute",
    "flush_deferred",
    "insert_count",
    "insert_part",
    "insert_rows",
    "mark",
    "per_dialect",
    "select_in",
    "stored",
    "together",
]

T = TypeVar("T")

CHUNK = 500
"""Rows per statement: far below every driver's limit on parameters."""

_MARKS = {"sqlite": "?", "postgresql": "%s"}


def per_dialect(build: Callable[[Callable[[Table], Any]], T]) -> Mapping[str, T]:
    """A statement built once for each dialect from that dialect's ``insert`` (``INSERT ...
    ON CONFLICT`` differs between them); look it up by ``conn.dialect.name``. A statement
    built once and run with parameters costs SQLAlchemy far less than one built per call."""
    return {"postgresql": build(postgresql.insert), "sqlite": build(sqlite.insert)}


def mark(dialect: Dialect) -> str:
    """The driver's positional parameter marker."""
    try:
        return _MARKS[dialect.name]
    except KeyError:
        raise StorageError(f"no fast statements for the {dialect.name} dialect") from None


@lru_cache(maxsize=1024)
def _numbered(width: int, count: int, after: int = 0) -> str:
    """``($1, $2), ($3, $4)``: ``count`` groups of ``width`` numbered placeholders, the first
    numbered ``after + 1``."""
    return ", ".join(
        "(" + ", ".join(f"${n}" for n in range(start + 1, start + width + 1)) + ")"
        for start in range(after, after + width * count, width)
    )


def _cursor(conn: Connection) -> Any:
    """A cursor of the driver: on PostgreSQL a raw one, which takes ``$n`` placeholders."""
    if conn.dialect.name == "postgresql":
        driver = conn.connection.dbapi_connection
        if not isinstance(driver, psycopg.Connection):
            raise StorageError("custodes drives PostgreSQL through psycopg 3")
        return psycopg.RawCursor(driver)
    return conn.connection.cursor()


@lru_cache(maxsize=256)
def _plan(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> tuple[str, tuple[Callable[[Any], Any] | None, ...]]:
    processors = tuple(_processor(dialect, table.c[c]) for c in columns)
    quote = dialect.identifier_preparer.quote
    head = f"INSERT INTO {table.name} ({', '.join(quote(c) for c in columns)}) VALUES "
    return head, processors


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], clause: str = ""
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (each with the same keys) into ``table`` in the caller's transaction.
    ``clause`` follows the values (``ON CONFLICT ...``, ``RETURNING ...``, written so that
    both dialects read it); the rows a ``RETURNING`` clause returns are returned."""
    return _insert(conn, table, rows, clause)[0]


def insert_count(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], clause: str = ""
) -> int:
    """As :func:`insert_rows`, but return how many rows were inserted (with ``ON CONFLICT
    DO NOTHING``, fewer than given when some were there already)."""
    return _insert(conn, table, rows, clause)[1]


def _insert(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], clause: str
) -> tuple[list[tuple[Any, ...]], int]:
    if not rows:
        return [], 0
    columns = tuple(rows[0])
    head, processors = _plan(conn.dialect, table, columns)
    m = mark(conn.dialect)
    one = "(" + ", ".join([m] * len(columns)) + ")"
    raw = conn.dialect.name == "postgresql"
    tail = " " + clause if clause else ""
    out: list[tuple[Any, ...]] = []
    count = 0
    # SQLite runs one prepared single-row statement many times faster than one statement of
    # many rows (a multi-row VALUES list is compiled into a co-routine over its rows); a
    # RETURNING clause needs the multi-row form, whose rows come back from one statement.
    many = conn.dialect.name == "sqlite" and "RETURNING" not in clause.upper()
    cursor = _cursor(conn)
    try:
        for chunk, values in _chunks(table, columns, processors, rows):
            if many:
                width = len(columns)
                cursor.executemany(
                    head + one + tail,
                    [values[i : i + width] for i in range(0, len(values), width)],
                )
            else:
                marks = (
                    _numbered(len(columns), len(chunk)) if raw else ", ".join([one] * len(chunk))
                )
                cursor.execute(head + marks + tail, values)
                if cursor.description is not None:
                    out.extend(tuple(r) for r in cursor.fetchall())
            count += cursor.rowcount
    finally:
        cursor.close()
    return out, count


def defer_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], clause: str = ""
) -> None:
    """:func:`insert_rows` for rows nothing in the caller's work reads back (``clause``, if
    given, returns nothing): on PostgreSQL they wait, with the transaction's other deferred
    statements, for :func:`flush_deferred`, which sends them all as one statement (one round
    trip to the server instead of one per table); on SQLite, which has no round trips, they
    are inserted at once."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        _insert(conn, table, rows, clause)
        return
    for start in range(0, len(rows), CHUNK):
        defer(conn, insert_part(conn, table, rows[start : start + CHUNK], clause))


Check = Callable[[list[tuple[Any, ...]]], None]
"""What a deferred part's caller does with the rows it returned: raise if they are not
what it expected (the transaction then fails as if the statement had)."""


def defer(conn: Connection, part: Part, check: Check | None = None) -> None:
    """Send ``part`` with the transaction's other deferred statements (see
    :func:`defer_rows`), and hand what it returns to ``check``: at once on SQLite, at the
    next :func:`flush_deferred` on PostgreSQL. For a write nothing in the caller's work reads
    back, whose outcome the caller need only confirm by then."""
    if conn.dialect.name != "postgresql":
        [rows] = together(conn, [part])
        if check is not None:
            check(rows)
        return
    conn.info.setdefault(_DEFERRED, []).append((part, check))


def _chunks(
    table: Table,
    columns: tuple[str, ...],
    processors: tuple[Callable[[Any], Any] | None, ...],
    rows: Sequence[Mapping[str, Any]],
) -> Iterator[tuple[Sequence[Mapping[str, Any]], list[Any]]]:
    """``rows`` by :data:`CHUNK`, each chunk with its values in order, as the driver takes
    them (through the columns' bind processors)."""
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        values: list[Any] = []
        for row in chunk:
            if len(row) != len(columns):
                raise StorageError(f"rows for {table.name} differ in their columns")
            for name, process in zip(columns, processors, strict=True):
                v = row[name]
                values.append(v if process is None or v is None else process(v))
        yield chunk, values


_DEFERRED = "custodes.deferred"
"""Where a connection keeps its deferred rows (in ``Connection.info``). The store's writer
flushes them after each use-case's work, and every transaction flushes before it commits."""

_MAX_PARAMETERS = 30_000
"""Parameters in one flushed statement at most (PostgreSQL takes 65,535)."""


def flush_deferred(conn: Connection, last: Part | None = None) -> list[tuple[Any, ...]]:
    """Send every statement deferred on ``conn``, and then ``last`` if given, as one
    statement (:func:`together`: they run on one snapshot, so none may read what another
    writes), and check what each returned; the rows ``last`` returned."""
    queued: list[tuple[Part, Check | None]] = conn.info.pop(_DEFERRED, None) or []
    if last is not None:
        queued.append((last, None))
    rows: list[tuple[Any, ...]] = []
    while queued:
        batch: list[tuple[Part, Check | None]] = []
        size = 0
        while queued and (not batch or size + len(queued[0][0].params) <= _MAX_PARAMETERS):
            batch.append(queued.pop(0))
            size += len(batch[-1][0].params)
        found = together(conn, [part for part, _ in batch])
        for (_, check), returned in zip(batch, found, strict=True):
            if check is not None:
                check(returned)
        rows = found[-1]
    return rows if last is not None else []


def discard_deferred(conn: Connection) -> None:
    """Forget the inserts deferred on ``conn`` (its work was rolled back)."""
    conn.info.pop(_DEFERRED, None)


def execute(conn: Connection, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run ``sql``, whose ``{mark}`` stand for the driver's positional placeholders, with
    ``params``; return its first row (``RETURNING ...``), if it has any."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql.format(mark=mark(conn.dialect)), list(params))
        row = cursor.fetchone() if cursor.description is not None else None
    finally:
        cursor.close()
    return None if row is None else tuple(row)


def stored(conn: Connection | Dialect, column: Column[Any], value: Any) -> Any:
    """``value`` as the driver is handed it for ``column`` (what SQLAlchemy's bind processor
    for the column's type makes of it), on ``conn``'s dialect (or that dialect): for a
    parameter of :func:`execute` compared with a stored value, a time on SQLite say."""
    dialect = conn if isinstance(conn, Dialect) else conn.dialect
    process = _processor(dialect, column)
    return value if process is None or value is None else process(value)


@lru_cache(maxsize=256)
def _processor(dialect: Dialect, column: Column[Any]) -> Callable[[Any], Any] | None:
    """The bind processor SQLAlchemy applies to ``column``'s values on ``dialect`` (None:
    values go to the driver as they are); for inserts (:func:`_plan`) and :func:`stored`."""
    processor: Callable[[Any], Any] | None = column.type.dialect_impl(dialect).bind_processor(
        dialect
    )
    return processor


def select_in(conn: Connection, sql: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run ``sql``, whose one ``{in}`` is replaced by a parameter list for ``values`` (at most
    :data:`CHUNK` of them), and return every row."""
    if len(values) > CHUNK:
        raise StorageError(f"at most {CHUNK} values in one look-up")
    if conn.dialect.name == "postgresql":
        marks = ", ".join(f"${n}" for n in range(1, len(values) + 1))
    else:
        marks = ", ".join([mark(conn.dialect)] * len(values))
    cursor = _cursor(conn)
    try:
        cursor.execute(sql.format(**{"in": marks}), list(values))
        return [tuple(r) for r in cursor.fetchall()]
    finally:
        cursor.close()


class Part(NamedTuple):
    """One statement of :func:`together`: its text, its parameters, and the columns its
    ``RETURNING`` clause (or its select list) returns. The text has ``{mark}`` for each
    parameter, or, if ``width`` is set, ``{values}`` where ``groups`` rows of ``width``
    parameters go (as ``VALUES`` lists them)."""

    sql: str
    params: Sequence[Any]
    returns: tuple[str, ...] = ()
    width: int = 0
    groups: int = 0


def insert_part(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    clause: str = "",
    returns: tuple[str, ...] = (),
) -> Part:
    """:func:`insert_rows`'s statement (at most :data:`CHUNK` rows), as a :class:`Part`."""
    if not rows or len(rows) > CHUNK:
        raise StorageError(f"a part inserts 1 to {CHUNK} rows")
    columns = tuple(rows[0])
    head, processors = _plan(conn.dialect, table, columns)
    [(_, values)] = _chunks(table, columns, processors, rows)
    tail = " " + clause if clause else ""
    return Part(head + "{values}" + tail, values, returns, len(columns), len(rows))


def _text(part: Part, dialect: str, after: int) -> str:
    """``part``'s text for the driver, its parameters numbered from ``after + 1`` (on
    PostgreSQL; SQLite's are not numbered)."""
    pg = dialect == "postgresql"
    if part.width:
        if pg:
            groups = _numbered(part.width, part.groups, after)
        else:
            groups = ", ".join(["(" + ", ".join(["?"] * part.width) + ")"] * part.groups)
        return part.sql.replace("{values}", groups, 1)
    if not pg:
        return part.sql.replace("{mark}", "?")
    first, *pieces = part.sql.split("{mark}")
    if len(pieces) != len(part.params):
        raise StorageError("a part's parameters and its markers differ in number")
    return first + "".join(f"${after + i}{piece}" for i, piece in enumerate(pieces, 1))


def together(conn: Connection, parts: Sequence[Part]) -> list[list[tuple[Any, ...]]]:
    """Run ``parts`` in the caller's transaction; what each returns (its rows, in order).

    On PostgreSQL they go as one statement, one round trip: each part a ``WITH`` clause (a
    data-modifying one runs whether or not anything reads it), all on one snapshot, so none
    may read or change what another changes; each part's returned columns come back as
    arrays. SQLite runs them one after another."""
    out: list[list[tuple[Any, ...]]] = []
    cursor = _cursor(conn)
    try:
        if conn.dialect.name != "postgresql":
            for part in parts:
                cursor.execute(_text(part, "sqlite", 0), list(part.params))
                out.append([tuple(r) for r in cursor.fetchall()] if part.returns else [])
            return out
        clauses: list[str] = []
        columns: list[str] = []
        params: list[Any] = []
        for n, part in enumerate(parts):
            clauses.append(f"p{n} AS ({_text(part, 'postgresql', len(params))})")
            params += part.params
            columns += [f"ARRAY(SELECT {c} FROM p{n})" for c in part.returns]
        if len(parts) == 1 and not parts[0].returns:  # nothing to gather: the statement alone
            cursor.execute(_text(parts[0], "postgresql", 0), params)
            return [[]]
        cursor.execute(f"WITH {', '.join(clauses)} SELECT {', '.join(columns) or 'NULL'}", params)
        row = cursor.fetchone()
    finally:
        cursor.close()
    at = 0
    for part in parts:
        arrays = row[at : at + len(part.returns)]
        at += len(part.returns)
        out.append(list(zip(*arrays, strict=True)) if arrays else [])
    return out
