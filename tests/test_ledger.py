"""The ledger: durable append, one sequencer, tiles, signed checkpoints (both backends)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from custodes.audit.logcheck import LogVerificationError, dir_fetcher, verify_log
from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.errors import (
    EntryTooLargeError,
    ForkError,
    InputError,
    LedgerError,
    TileConflictError,
)
from custodes.settings import load_settings
from custodes.store.tables import log_checkpoints, log_entries, log_tiles
from custodes.tlog import (
    check_consistency,
    check_inclusion,
    leaf_hash,
    open_note,
    parse_checkpoint,
    prove_consistency,
)
from custodes.tlog.tiles import TileNodeReader, parse_tile_path
from support import run_threads


def _deployment(tmp_path: Path, url: str, name: str = "data") -> Deployment:
    data = tmp_path / name
    if not data.exists():
        init_data_dir(data, "test.custodes.example/log")
    return open_deployment(load_settings(data, database_url=url))


@pytest.fixture
def dep(tmp_path: Path, database_url: str) -> Iterator[Deployment]:
    d = _deployment(tmp_path, database_url)
    yield d
    d.close()


def _integrate_all(d: Deployment) -> None:
    while d.sequencer.integrate() is not None:
        pass


def test_append_returns_dense_indexes_in_order(dep: Deployment) -> None:
    assert dep.ledger.append([b"a", b"b", b"c"]) == [0, 1, 2]
    assert dep.ledger.append([b"d"]) == [3]
    assert dep.ledger.entry(1) == b"b"
    assert dep.ledger.size() == 4


def test_append_identical_entry_returns_first_index(dep: Deployment) -> None:
    assert dep.ledger.append([b"x", b"y"]) == [0, 1]
    assert dep.ledger.append([b"y", b"z", b"y"]) == [1, 2, 1]
    assert dep.ledger.size() == 3


def test_append_rejects_bad_entries_and_writes_nothing(dep: Deployment) -> None:
    with pytest.raises(EntryTooLargeError):
        dep.ledger.append([b"ok", b"x" * 65536])
    with pytest.raises(EntryTooLargeError):
        dep.ledger.append([b""])
    with pytest.raises(InputError):
        dep.ledger.append(["text, not bytes"])  # type: ignore[list-item]
    assert dep.ledger.size() == 0


def test_concurrent_appends_get_distinct_dense_indexes(dep: Deployment) -> None:
    results: dict[int, list[int]] = {}
    barrier = threading.Barrier(32)

    def writer(w: int) -> None:
        barrier.wait()
        got = []
        for i in range(20):
            got += dep.ledger.append([f"w{w}-{i}".encode()])
        results[w] = got

    run_threads(writer, range(32))
    every = sorted(i for got in results.values() for i in got)
    assert every == list(range(640))
    for w, got in results.items():  # each writer's entries keep its own order
        assert got == sorted(got)
        assert dep.ledger.entry(got[0]) == f"w{w}-0".encode()


def test_append_in_rolls_back_with_its_transaction(dep: Deployment) -> None:
    with pytest.raises(RuntimeError), dep.store.transaction() as conn:
        dep.ledger.append_in(conn, [b"never"])
        raise RuntimeError("the state change failed")
    assert dep.ledger.size() == 0
    assert dep.ledger.append([b"after"]) == [0]


def test_sequencer_publishes_tiles_bundles_and_signed_checkpoint(dep: Deployment) -> None:
    entries = [f"entry {i}".encode() for i in range(700)]
    dep.ledger.append(entries)
    signed = dep.sequencer.integrate()
    assert signed is not None and signed.checkpoint.size == 700
    log_dir = dep.settings.log_dir
    note = open_note((log_dir / "checkpoint").read_bytes(), [dep.verifier])
    assert parse_checkpoint(note.text) == signed.checkpoint
    published = {str(p.relative_to(log_dir)) for p in (log_dir / "tile").rglob("*") if p.is_file()}
    assert "tile/0/000" in published and "tile/0/001" in published
    assert "tile/0/002.p/188" in published and "tile/1/000.p/2" in published
    assert "tile/entries/002.p/188" in published
    for rel in published:
        parse_tile_path(rel)  # every published name is canonical
    result = verify_log(dir_fetcher(log_dir), dep.verifier)
    assert result.entries == 700


def test_checkpoints_stay_consistent_as_the_log_grows(dep: Deployment) -> None:
    sizes_roots: list[tuple[int, bytes]] = []
    for step in (1, 255, 1, 300, 256, 7):
        dep.ledger.append([f"{len(sizes_roots)}-{i}".encode() for i in range(step)])
        signed = dep.sequencer.integrate()
        assert signed is not None
        sizes_roots.append((signed.checkpoint.size, signed.checkpoint.root))
    last_size, last_root = sizes_roots[-1]
    with dep.store.read() as conn:
        from custodes.ledger.sequencer import StoredTiles

        reader = TileNodeReader(StoredTiles(conn), last_size)
        for size, root in sizes_roots[:-1]:
            proof = prove_consistency(size, last_size, reader)
            check_consistency(proof, size, last_size, root, last_root)


def test_inclusion_proofs_verify_against_checkpoint(dep: Deployment) -> None:
    entries = [f"proof {i}".encode() for i in range(300)]
    dep.ledger.append(entries)
    signed = dep.sequencer.integrate()
    assert signed is not None
    for index in (0, 1, 255, 256, 299):
        p = dep.sequencer.prove(index, 300)
        check_inclusion(p.hashes, index, 300, leaf_hash(entries[index]), signed.checkpoint.root)


def test_sequencer_refuses_to_sign_a_forked_tree(dep: Deployment) -> None:
    dep.ledger.append([f"e{i}".encode() for i in range(300)])
    assert dep.sequencer.integrate() is not None
    with dep.store.transaction() as conn:  # rewrite history behind the log's back
        conn.execute(
            log_tiles.update()
            .where(log_tiles.c.level == 0, log_tiles.c.idx == 1)
            .values(data=b"\x00" * (44 * 32))
        )
    dep.ledger.append([b"one more"])
    with pytest.raises(ForkError) as info:
        dep.sequencer.integrate()
    assert info.value.evidence["old_size"] == 300
    with dep.store.read() as conn:
        sizes = list(conn.execute(sa.select(log_checkpoints.c.size)).scalars())
    assert max(sizes) == 300


def test_published_tile_is_never_overwritten(dep: Deployment) -> None:
    dep.ledger.append([f"e{i}".encode() for i in range(256)])
    dep.sequencer.integrate()
    tile = dep.settings.log_dir / "tile" / "0" / "000"
    original = tile.read_bytes()
    from custodes.ledger.publish import Publisher

    with pytest.raises(TileConflictError):
        Publisher(dep.settings.log_dir).write_immutable([("tile/0/000", b"\x01" * 8192)])
    assert tile.read_bytes() == original


def test_republish_restores_missing_files(dep: Deployment) -> None:
    dep.ledger.append([f"e{i}".encode() for i in range(600)])
    dep.sequencer.integrate()
    log_dir = dep.settings.log_dir
    (log_dir / "tile" / "0" / "001").unlink()
    (log_dir / "tile" / "entries" / "002.p/88").unlink()
    (log_dir / "checkpoint").unlink()
    assert dep.sequencer.republish() == 2
    verify_log(dir_fetcher(log_dir), dep.verifier)


def test_verify_log_names_a_tampered_bundle(dep: Deployment) -> None:
    dep.ledger.append([f"e{i}".encode() for i in range(300)])
    dep.sequencer.integrate()
    bundle = dep.settings.log_dir / "tile" / "entries" / "000"
    data = bytearray(bundle.read_bytes())
    data[10] ^= 1
    bundle.write_bytes(bytes(data))
    with pytest.raises(LogVerificationError, match="tile/0/000"):
        verify_log(dir_fetcher(dep.settings.log_dir), dep.verifier)


def test_only_one_sequencer_leads(tmp_path: Path, database_url: str) -> None:
    a = _deployment(tmp_path, database_url)
    b = _deployment(tmp_path, database_url)
    try:
        a.ledger.append([b"first"])
        assert a.sequencer.integrate() is not None
        b.ledger.append([b"second"])
        assert b.sequencer.integrate() is None  # a holds leadership
        a.sequencer.lock.release()
        signed = b.sequencer.integrate()  # b takes over
        assert signed is not None and signed.checkpoint.size == 2
    finally:
        a.close()
        b.close()


def test_entries_table_rejects_rewrites(dep: Deployment) -> None:
    dep.ledger.append([b"a"])
    with pytest.raises(sa.exc.IntegrityError), dep.store.transaction() as conn:
        conn.execute(log_entries.insert().values(idx=1, leaf_hash=leaf_hash(b"a"), data=b"a"))


def test_a_late_commit_of_a_dead_leader_is_refused_not_overwritten(
    dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader killed with its integration in flight may still commit it after its lock
    went with its session. If its checkpoint lands between our check and our insert, we
    refuse to sign over it, store and publish nothing, and the next integration succeeds on
    top of it."""
    import custodes.ledger.sequencer as sequencer_module

    dep.ledger.append([b"a", b"b"])
    first = dep.sequencer.integrate()
    assert first is not None
    dep.ledger.append([b"c"])
    real_latest = sequencer_module._latest
    real_store = sequencer_module.Sequencer._store_checkpoint
    storing = {"now": False}

    def racing_latest(conn: sa.Connection) -> tuple[int, bytes]:
        found = real_latest(conn)
        if storing["now"]:  # the check inside the storing transaction: the dead leader lands
            storing["now"] = False
            conn.execute(
                log_checkpoints.insert().values(
                    size=3, root=b"\x00" * 32, note="late", created_at=datetime.now(UTC)
                )
            )
        return found

    def store(self: Any, *args: Any) -> None:
        storing["now"] = True
        real_store(self, *args)

    monkeypatch.setattr(sequencer_module.Sequencer, "_store_checkpoint", store)
    monkeypatch.setattr(sequencer_module, "_latest", racing_latest)
    before = (dep.settings.log_dir / "checkpoint").read_bytes()
    with pytest.raises(LedgerError, match="another sequencer integrated concurrently"):
        dep.sequencer.integrate()
    assert (dep.settings.log_dir / "checkpoint").read_bytes() == before
    with dep.store.read() as conn:
        sizes = sorted(conn.execute(sa.select(log_checkpoints.c.size)).scalars())
    assert sizes == [2]  # our transaction (with the late row inside it) rolled back whole
    monkeypatch.setattr(sequencer_module, "_latest", real_latest)
    signed = dep.sequencer.integrate()
    assert signed is not None and signed.checkpoint.size == 3


def test_a_leader_publishes_what_a_dead_leader_stored_but_never_published(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b leads, then a leads and dies between storing its checkpoint and publishing it; when
    b leads again with nothing new to integrate, it still publishes a's checkpoint with every
    file it needs."""
    a = _deployment(tmp_path, database_url)
    b = _deployment(tmp_path, database_url)
    try:
        b.ledger.append([b"one", b"two"])
        assert b.sequencer.integrate() is not None
        b.sequencer.lock.release()
        a.ledger.append([f"entry {i}".encode() for i in range(300)])

        def dies(*_: object) -> int:
            raise RuntimeError("killed before publishing")

        assert a.sequencer.republish() == 0  # a has seen b's checkpoint published
        monkeypatch.setattr(a.sequencer.publisher, "write_immutable", dies)
        with pytest.raises(RuntimeError):
            a.sequencer.integrate()
        a.sequencer.lock.release()
        stored = b.ledger.latest_checkpoint()
        assert stored is not None and stored.checkpoint.size == 302
        assert b.sequencer.integrate() is None  # nothing new to integrate
        result = verify_log(dir_fetcher(b.settings.log_dir), b.verifier)
        assert result.entries == 302
        assert (b.settings.log_dir / "checkpoint").read_bytes() == stored.note
    finally:
        a.close()
        b.close()


def test_two_writers_appending_the_same_entries_get_one_index_each(
    tmp_path: Path, database_url: str
) -> None:
    """Two processes' writers (two deployments on one database) append overlapping entries
    at once, some already in the log: every entry is stored once, every caller gets that
    entry's one index, and the log stays dense."""
    first = _deployment(tmp_path, database_url)
    second = _deployment(tmp_path, database_url)
    try:
        first.ledger.append([b"e3", b"e7"])
        answers: list[tuple[bytes, int]] = []
        barrier = threading.Barrier(8)

        def work(w: int) -> None:
            d = first if w % 2 else second
            barrier.wait()
            for r in range(10):
                batch = [f"e{(w + r + k) % 12}".encode() for k in range(3)]
                answers.extend(zip(batch, d.ledger.append(batch), strict=True))

        run_threads(work, range(8))
        assert first.ledger.size() == 12
        stored = {first.ledger.entry(i): i for i in range(12)}
        assert sorted(stored) == sorted(f"e{i}".encode() for i in range(12))
        for entry, index in answers:
            assert stored[entry] == index
    finally:
        second.close()
        first.close()


def test_a_follower_retries_leadership_once_an_interval_however_often_it_is_poked(
    tmp_path: Path, database_url: str
) -> None:
    """The process that does not lead is poked by each of its own commits; it tries for the
    lead once per interval, not once per commit, and takes it when the leader lets go."""
    leader, follower = _deployment(tmp_path, database_url), _deployment(tmp_path, database_url)
    tries = [0]
    real = follower.sequencer.lock.try_acquire

    def counting() -> bool:
        tries[0] += 1
        return real()

    follower.sequencer.lock.try_acquire = counting  # type: ignore[method-assign]
    stop = threading.Event()
    try:
        assert leader.sequencer.lock.try_acquire()
        runner = threading.Thread(target=follower.sequencer.run, args=(stop, 0.5))
        runner.start()
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:  # a commit every few milliseconds
            follower.ledger.append([b"poke %f" % time.monotonic()])
            follower.sequencer.poke()
            time.sleep(0.005)
        assert follower.sequencer.following
        assert 2 <= tries[0] <= 4, tries[0]  # at the start, then every 0.5 s
        leader.sequencer.lock.release()
        assert follower.sequencer.wait_for(0, timeout=5), "the follower took the lead"
        assert not follower.sequencer.following
    finally:
        stop.set()
        follower.sequencer.poke()
        runner.join(timeout=10)
        leader.close()
        follower.close()
