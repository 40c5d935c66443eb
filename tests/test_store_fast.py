"""The driver-level statements, on both backends: inserts store exactly what SQLAlchemy Core
stores, and statements sent together return and check what each would alone."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa

from custodes.errors import ConflictError, StorageError
from custodes.store import open_store
from custodes.store.fast import (
    CHUNK,
    Check,
    Part,
    defer,
    defer_rows,
    execute,
    flush_deferred,
    insert_count,
    insert_part,
    insert_rows,
    select_in,
    stored,
    together,
)
from support import run_threads

meta = sa.MetaData()


def _table(name: str) -> sa.Table:
    return sa.Table(
        name,
        meta,
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blob", sa.LargeBinary, nullable=False),
        sa.Column("text", sa.Text),
        extend_existing=True,
    )


def _rows(n: int) -> list[dict[str, object]]:
    t0 = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    return [
        {
            "idx": i,
            "at": t0 + timedelta(seconds=i, microseconds=i % 7),
            "blob": bytes([i % 256]) * (i % 40 + 1),
            "text": None if i % 5 == 0 else f"row {i} 'quoted' %s ünïcode",
        }
        for i in range(n)
    ]


def test_insert_rows_stores_what_core_stores(database_url: str) -> None:
    store = open_store(database_url)
    core, fast = _table("probe_core"), _table("probe_fast")
    meta.create_all(store.engine, tables=[core, fast])
    rows = _rows(CHUNK + 37)  # more than one statement's worth
    with store.engine.begin() as conn:
        conn.execute(core.insert(), rows)
        insert_rows(conn, fast, rows)
    with store.engine.connect() as conn:
        raw = [
            conn.exec_driver_sql(f"SELECT idx, at, blob, text FROM {t} ORDER BY idx").all()
            for t in ("probe_core", "probe_fast")
        ]
        typed = conn.execute(sa.select(fast).order_by(fast.c.idx)).all()
    assert [tuple(r) for r in raw[0]] == [tuple(r) for r in raw[1]]
    assert [(r.idx, r.at.replace(tzinfo=UTC), bytes(r.blob), r.text) for r in typed] == [
        (r["idx"], r["at"], r["blob"], r["text"]) for r in rows
    ]
    store.close()


def test_select_in_finds_the_rows_asked_for(database_url: str) -> None:
    store = open_store(database_url)
    table = _table("probe_select")
    meta.create_all(store.engine, tables=[table])
    with store.engine.begin() as conn:
        insert_rows(conn, table, _rows(50))
        found = select_in(conn, "SELECT idx FROM probe_select WHERE idx IN ({in})", [3, 7, 99])
        assert sorted(r[0] for r in found) == [3, 7]
        with pytest.raises(StorageError):
            select_in(conn, "SELECT idx FROM probe_select WHERE idx IN ({in})", [0] * (CHUNK + 1))
    store.close()


def test_rows_with_different_columns_are_refused(database_url: str) -> None:
    store = open_store(database_url)
    table = _table("probe_shape")
    meta.create_all(store.engine, tables=[table])
    rows = _rows(2)
    del rows[1]["text"]
    with pytest.raises(StorageError), store.engine.begin() as conn:
        insert_rows(conn, table, rows)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
    store.close()


def test_insert_count_counts_only_rows_inserted(database_url: str) -> None:
    """With ON CONFLICT DO NOTHING the count is what was really inserted (the log relies on
    it to notice an entry already there); RETURNING still returns the inserted rows."""
    store = open_store(database_url)
    table = _table("probe_count")
    meta.create_all(store.engine, tables=[table])
    rows = _rows(CHUNK + 10)
    with store.engine.begin() as conn:
        assert insert_count(conn, table, rows[:300]) == 300
        again = rows[250:] + rows[:5]  # 50 + 5 known, CHUNK - 290 new, over two statements
        assert insert_count(conn, table, again, "ON CONFLICT (idx) DO NOTHING") == CHUNK - 290
        back = insert_rows(
            conn, table, _rows(CHUNK + 12)[-4:], "ON CONFLICT (idx) DO NOTHING RETURNING idx"
        )
        assert sorted(r[0] for r in back) == [CHUNK + 10, CHUNK + 11]
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == (
            CHUNK + 12
        )
    store.close()


def test_a_time_compared_through_execute_matches_what_core_compares(database_url: str) -> None:
    """A time handed to ``execute`` through ``stored`` is compared with stored times as
    SQLAlchemy compares it (on SQLite both are text, microseconds included)."""
    store = open_store(database_url)
    table = _table("probe_times")
    meta.create_all(store.engine, tables=[table])
    rows = _rows(40)
    with store.engine.begin() as conn:
        insert_rows(conn, table, rows)
    sql = "SELECT count(*) FROM probe_times WHERE at >= {mark} AND at <= {mark}"
    with store.read() as conn:
        for lo, hi in [(3, 17), (0, 39), (20, 20), (38, 39)]:
            since, until = rows[lo]["at"], rows[hi]["at"]
            core = conn.execute(
                sa.select(sa.func.count()).where(table.c.at >= since, table.c.at <= until)
            ).scalar_one()
            at = table.c.at
            row = execute(conn, sql, [stored(conn, at, since), stored(conn, at, until)])
            assert row is not None
            assert row[0] == core == hi - lo + 1
    store.close()


def _all(store: object, table: sa.Table) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.exec_driver_sql(f"SELECT idx, at, blob, text FROM {table.name} ORDER BY idx")
        return [tuple(r) for r in rows]


def _ids(store: object, table: sa.Table) -> list[object]:
    return [r[0] for r in _all(store, table)]


def test_deferred_rows_store_what_core_stores(database_url: str) -> None:
    """Rows deferred into two tables (sent together on PostgreSQL, as the transaction
    commits) are stored exactly as SQLAlchemy Core stores them."""
    store = open_store(database_url)
    core, one, two = _table("probe_dcore"), _table("probe_done"), _table("probe_dtwo")
    meta.create_all(store.engine, tables=[core, one, two])
    rows = _rows(CHUNK + 37)
    with store.engine.begin() as conn:
        conn.execute(core.insert(), rows)
        defer_rows(conn, one, rows[:100])
        defer_rows(conn, two, rows)
        defer_rows(conn, one, rows[100:])
        defer_rows(conn, two, [])
    assert _all(store, one) == _all(store, two) == _all(store, core)
    store.close()


def test_deferred_rows_go_with_a_rolled_back_transaction(database_url: str) -> None:
    """Rows deferred in a transaction that rolls back are never sent, not even by the next
    transaction on the same pooled connection."""
    store = open_store(database_url)
    table = _table("probe_dgone")
    meta.create_all(store.engine, tables=[table])
    rows = _rows(6)
    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        defer_rows(conn, table, rows[:3])
        raise RuntimeError("the use-case failed")
    with store.engine.begin() as conn:
        defer_rows(conn, table, rows[3:])
    assert [r[0] for r in _all(store, table)] == [3, 4, 5]
    store.close()


def test_a_deferred_insert_that_fails_fails_its_own_write_alone(database_url: str) -> None:
    """Writes through the store's writer that share a group commit: one whose deferred
    insert breaks a key gets the error, and nothing of it is stored; the others commit."""
    store = open_store(database_url)
    table = _table("probe_dwriter")
    meta.create_all(store.engine, tables=[table])
    rows = _rows(12)
    with store.engine.begin() as conn:
        insert_rows(conn, table, rows[:1])
    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(6)

    def write(n: int) -> None:
        mine = [rows[0]] if n == 5 else [rows[1 + 2 * n], rows[2 + 2 * n]]
        barrier.wait()
        try:
            store.write(lambda conn: defer_rows(conn, table, mine))
            outcomes[n] = "stored"
        except (sa.exc.IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError):
            outcomes[n] = "refused"

    assert not any(t.is_alive() for t in run_threads(write, range(6), timeout=30))
    assert outcomes == {0: "stored", 1: "stored", 2: "stored", 3: "stored", 4: "stored",
                        5: "refused"}  # fmt: skip
    assert [r[0] for r in _all(store, table)] == list(range(11))
    store.close()


def test_parts_run_together_return_what_each_returns(database_url: str) -> None:
    """Statements run as one (on PostgreSQL) return, part by part, what each returns run
    alone; a part that returns nothing still runs."""
    store = open_store(database_url)
    table, other = _table("probe_parts"), _table("probe_parts_other")
    meta.create_all(store.engine, tables=[table, other])
    rows = _rows(8)
    with store.engine.begin() as conn:
        insert_rows(conn, table, rows[:4])
        found, added, none = together(conn, [
            Part("SELECT idx, text FROM probe_parts WHERE idx IN ({mark}, {mark})", [1, 3],
                 ("idx", "text")),
            insert_part(conn, table, rows[4:7], "ON CONFLICT DO NOTHING RETURNING idx",
                        ("idx",)),
            insert_part(conn, other, rows[7:]),
        ])  # fmt: skip
    assert sorted(found) == [(1, "row 1 'quoted' %s ünïcode"), (3, "row 3 'quoted' %s ünïcode")]
    assert sorted(added) == [(4,), (5,), (6,)]
    assert none == []
    assert _ids(store, table) == list(range(7)) and _ids(store, other) == [7]
    store.close()


def test_a_deferred_part_is_checked_and_its_check_can_fail_the_write(database_url: str) -> None:
    """A deferred part's check sees what the part returned, once it ran (at once on SQLite,
    with the transaction's other deferred statements on PostgreSQL); a check that raises
    fails the write, and nothing of it is stored."""
    store = open_store(database_url)
    table, other = _table("probe_checked"), _table("probe_checked_other")
    meta.create_all(store.engine, tables=[table, other])
    rows = _rows(6)
    with store.engine.begin() as conn:
        insert_rows(conn, table, rows[:1])
    seen: list[list[tuple[object, ...]]] = []

    def written(count: int) -> Check:
        def check(returned: list[tuple[object, ...]]) -> None:
            seen.append(returned)
            if len(returned) != count:
                raise ConflictError("a row was there already")

        return check

    def write(some: list[dict[str, object]]) -> Callable[[sa.Connection], None]:
        def work(conn: sa.Connection) -> None:
            part = insert_part(conn, table, some, "ON CONFLICT DO NOTHING RETURNING idx", ("idx",))
            defer(conn, part, written(len(some)))
            defer_rows(conn, other, some)

        return work

    store.write(write(rows[1:3]))
    with pytest.raises(ConflictError):
        store.write(write(rows[:1] + rows[3:5]))  # row 0 is there: the check refuses
    assert sorted(seen[0]) == [(1,), (2,)] and sorted(seen[1]) == [(3,), (4,)]
    assert _ids(store, table) == [0, 1, 2] and _ids(store, other) == [1, 2]
    store.close()


def test_flushing_with_a_last_part_returns_its_rows(database_url: str) -> None:
    """What was deferred and a last part go together; the last part's rows come back."""
    store = open_store(database_url)
    table = _table("probe_last")
    meta.create_all(store.engine, tables=[table])
    rows = _rows(4)
    with store.engine.begin() as conn:
        insert_rows(conn, table, rows[:1])
        defer_rows(conn, table, rows[1:])
        last = Part("UPDATE probe_last SET text = {mark} WHERE idx = 0 RETURNING idx, text",
                    ["moved"], ("idx", "text"))  # fmt: skip
        assert flush_deferred(conn, last) == [(0, "moved")]
    assert len(_all(store, table)) == 4
    store.close()
