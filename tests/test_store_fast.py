"""The driver-level inserts store exactly what SQLAlchemy Core stores, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from custodes.errors import StorageError
from custodes.store import open_store
from custodes.store.fast import CHUNK, execute, insert_count, insert_rows, select_in, stored

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
