"""The storage contract: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from custodes import store as store_module
from custodes.errors import MigrationError, StorageError
from custodes.store import open_store
from custodes.store.tables import log_state
from support import run_threads

probe = sa.Table(
    "probe",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("v", sa.Text),
)


def _with_probe(url: str) -> None:
    engine = sa.create_engine(url)
    probe.metadata.create_all(engine)
    engine.dispose()


def test_open_store_migrates_once_and_again(database_url: str) -> None:
    s = open_store(database_url)
    with s.read() as conn:
        assert conn.execute(sa.select(log_state.c.next_index)).scalar_one() == 0
    s.close()
    s = open_store(database_url)  # second open finds the schema current
    with s.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(log_state)).scalar_one() == 1
    s.close()


def test_open_store_refuses_newer_schema(database_url: str) -> None:
    s = open_store(database_url)
    with s.transaction() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    s.close()
    with pytest.raises(MigrationError, match="newer than this code"):
        open_store(database_url)


def test_open_store_rejects_unknown_dialect() -> None:
    with pytest.raises(StorageError, match="unsupported database"):
        open_store("mysql://localhost/x")


def test_write_is_visible_to_other_connections_on_return(database_url: str) -> None:
    s = open_store(database_url)
    _with_probe(database_url)
    s.write(lambda c: c.execute(probe.insert().values(id=1, v="a")))
    other = sa.create_engine(database_url)
    with other.connect() as conn:
        assert conn.execute(sa.select(probe.c.v)).scalar_one() == "a"
    other.dispose()
    s.close()


def test_a_read_cannot_write(database_url: str) -> None:
    """PostgreSQL refuses a write in a read (its sessions are read-only: each statement of a
    read commits on its own); on SQLite the read's transaction is rolled back."""
    s = open_store(database_url)
    _with_probe(database_url)
    if s.dialect == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="read-only"), s.read() as conn:
            conn.execute(probe.insert().values(id=1, v="a"))
    else:
        with s.read() as conn:
            conn.execute(probe.insert().values(id=1, v="a"))
    with s.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar_one() == 0
    s.close()


def test_write_failure_undoes_only_its_own_work(database_url: str) -> None:
    s = open_store(database_url)
    _with_probe(database_url)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait()

        def fn(c: sa.Connection) -> None:
            c.execute(probe.insert().values(id=i, v=str(i)))
            if i % 2:
                raise ValueError(f"work {i} fails")

        try:
            s.write(fn)
        except ValueError as exc:
            errors.append(exc)

    run_threads(work, range(8))
    with s.read() as conn:
        ids = sorted(conn.execute(sa.select(probe.c.id)).scalars())
    assert ids == [0, 2, 4, 6]
    assert len(errors) == 4
    s.close()


def test_transaction_rolls_back_on_error(database_url: str) -> None:
    s = open_store(database_url)
    _with_probe(database_url)
    with pytest.raises(RuntimeError), s.transaction() as conn:
        conn.execute(probe.insert().values(id=1, v="x"))
        raise RuntimeError("crash before commit")
    with s.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar_one() == 0
    s.close()


def test_merged_writes_fail_only_for_their_own_caller(database_url: str) -> None:
    s = open_store(database_url)
    _with_probe(database_url)

    def run(c: sa.Connection, items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("13 is refused")
        c.execute(probe.insert(), [{"id": i, "v": "m"} for i in items])
        return [i * 10 for i in items]

    barrier = threading.Barrier(6)
    results: dict[int, object] = {}

    def work(i: int) -> None:
        items = [13] if i == 3 else [i * 2, i * 2 + 1]
        barrier.wait()
        try:
            results[i] = s.writer.submit_merged("probe", items, run)
        except ValueError as exc:
            results[i] = exc

    run_threads(work, range(6))
    assert isinstance(results[3], ValueError)
    for i in (0, 1, 2, 4, 5):
        assert results[i] == [i * 20, (i * 2 + 1) * 10]
    with s.read() as conn:
        ids = sorted(conn.execute(sa.select(probe.c.id)).scalars())
    assert ids == [0, 1, 2, 3, 4, 5, 8, 9, 10, 11]
    s.close()


def test_concurrent_first_writes_share_one_writer(database_url: str) -> None:
    """Threads that all write first at once get the same writer: two writers would split
    the group commit and hold two connections."""
    s = open_store(database_url)
    _with_probe(database_url)
    barrier = threading.Barrier(16)
    seen: list[object] = []

    def work(i: int) -> None:
        barrier.wait()
        seen.append(s.writer)
        s.write(lambda c: c.execute(probe.insert().values(id=i, v="w")))

    run_threads(work, range(16))
    assert len({id(w) for w in seen}) == 1
    with s.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar_one() == 16
    s.close()


def test_writer_recovers_after_losing_its_connection(database_url: str) -> None:
    """A batch whose connection breaks fails for its callers alone; the next batch runs on
    a fresh connection and commits."""
    s = open_store(database_url)
    _with_probe(database_url)
    s.write(lambda c: c.execute(probe.insert().values(id=1, v="before")))

    def breaks(c: sa.Connection) -> None:
        c.execute(probe.insert().values(id=2, v="lost"))
        c.invalidate()  # as if the server went away mid-transaction
        c.execute(sa.select(1))

    with pytest.raises(sa.exc.SQLAlchemyError):
        s.write(breaks)
    s.write(lambda c: c.execute(probe.insert().values(id=3, v="after")))
    with s.read() as conn:
        rows = conn.execute(sa.select(probe.c.id, probe.c.v).order_by(probe.c.id)).all()
    assert [tuple(r) for r in rows] == [(1, "before"), (3, "after")]
    s.close()


def test_callers_coming_back_share_commits(database_url: str) -> None:
    """Writers that append one row after another (the shape of a busy intake) are gathered
    into shared commits: far fewer commits than writes."""
    s = open_store(database_url)
    _with_probe(database_url)
    commits: list[int] = []
    s.writer.on_commit.append(lambda: commits.append(1))
    writers, rounds = 16, 20
    barrier = threading.Barrier(writers)

    def work(w: int) -> None:
        barrier.wait()
        for r in range(rounds):
            row = {"id": w * rounds + r, "v": "x"}

            def insert(c: sa.Connection, row: dict[str, object] = row) -> None:
                c.execute(probe.insert().values(**row))

            s.write(insert)

    run_threads(work, range(writers))
    with s.read() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar_one()
    assert total == writers * rounds
    assert len(commits) <= writers * rounds / 4, f"{len(commits)} commits for {total} writes"
    s.close()


def test_batches_with_failures_commit_each_success_once(database_url: str) -> None:
    """Requests that fail now and then, among many that share commits: every other request
    commits exactly once and gets back what its own committed run returned."""
    s = open_store(database_url)
    _with_probe(database_url)
    writers, rounds = 8, 12
    barrier = threading.Barrier(writers)
    results: dict[int, object] = {}

    def work(w: int) -> None:
        barrier.wait()
        for r in range(rounds):
            key = w * rounds + r

            def fn(c: sa.Connection, key: int = key) -> int:
                c.execute(probe.insert().values(id=key, v="x"))
                if key % 16 == 5:
                    raise ValueError(f"{key} fails")
                seen = c.execute(sa.select(probe.c.v).where(probe.c.id == key)).scalar_one()
                return key if seen == "x" else -1

            try:
                results[key] = s.write(fn)
            except ValueError as exc:
                results[key] = exc

    run_threads(work, range(writers))
    with s.read() as conn:
        ids = sorted(conn.execute(sa.select(probe.c.id)).scalars())
    assert ids == [k for k in range(writers * rounds) if k % 16 != 5]
    for key, got in results.items():
        assert isinstance(got, ValueError) if key % 16 == 5 else got == key
    s.close()


def test_a_pooled_connection_dropped_while_it_rested_is_replaced(
    pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server drops a connection that waits in the pool (a restart, an idle timeout):
    the next read gets a live one."""
    s = open_store(pg_schema_url)
    with s.read() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    other = sa.create_engine(pg_schema_url)
    with other.begin() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()
    monkeypatch.setattr(store_module, "IDLE_PING", 0.0)
    with s.read() as conn:
        assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
    s.close()


def test_release_hands_on_past_a_caller_that_stopped_waiting() -> None:
    """Callers of a settled batch are woken one after another, each waking the next; one
    whose wait was interrupted (nobody to hand on) must not leave the rest asleep."""
    from custodes.store.writer import _release, _Work

    works = [_Work(items=[i]) for i in range(6)]
    for i, w in enumerate(works):
        w.set_result([i])
    works[0]._gone = True  # the first in line was interrupted before its turn
    works[3]._gone = True
    got: dict[int, object] = {}

    def wait(i: int) -> None:
        got[i] = works[i].result()

    threads = [threading.Thread(target=wait, args=(i,)) for i in (1, 2, 4, 5)]
    for t in threads:
        t.start()
    _release(works)
    for t in threads:
        t.join(timeout=10)
    assert got == {1: [1], 2: [2], 4: [4], 5: [5]}


def test_a_failure_reaches_its_caller_through_the_relay(database_url: str) -> None:
    s = open_store(database_url)
    _with_probe(database_url)
    errors: list[BaseException] = []
    ok: list[int] = []
    barrier = threading.Barrier(8)

    def work(w: int) -> None:
        barrier.wait()

        def insert(c: sa.Connection) -> None:
            c.execute(probe.insert().values(id=0 if w % 2 else w + 100, v="x"))

        try:
            s.write(insert)
            ok.append(w)
        except Exception as exc:
            errors.append(exc)

    threads = run_threads(work, range(8), timeout=30)
    assert not any(t.is_alive() for t in threads), "a caller was never woken"
    # four writers want id 0: one of them wins, three fail; the four others all succeed
    assert len(ok) == 5 and len(errors) == 3
    s.close()
