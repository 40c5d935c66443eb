"""Crash safety: a writer process is SIGKILLed at random moments while it appends.

After every kill: no acknowledged entry is lost or changed, the published log verifies from its
entry bundles, and every checkpoint is consistent with the one seen before the kill. A writer
acknowledges an entry (writes its index to a pipe) only after ``append`` has returned.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from custodes.audit.logcheck import dir_fetcher, open_checkpoint, verify_log
from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.errors import LedgerError
from custodes.settings import load_settings
from custodes.tlog import EMPTY_ROOT, check_consistency, prove_consistency
from custodes.tlog.tiles import TileNodeReader, format_tile_path

KILLS = {"sqlite": 100, "postgresql": 100}


def _writer(data: Path, url: str, round_no: int, pipe: Connection) -> None:
    """Append forever (until killed), acknowledging each durable entry."""
    dep = open_deployment(load_settings(data, database_url=url))
    dep.start()
    rng = random.Random(round_no)
    n = 0
    while True:
        batch = [f"round {round_no} entry {n + i}".encode() for i in range(rng.randint(1, 40))]
        indexes = dep.ledger.append(batch)
        for index, entry in zip(indexes, batch, strict=True):
            pipe.send((index, entry))
        n += len(batch)


def _check_consistent(
    log_dir: Path, old: tuple[int, bytes], new_size: int, new_root: bytes
) -> None:
    old_size, old_root = old
    if old_size == new_size:
        assert old_root == new_root, "same size, different root"
        return
    if old_size == 0:
        return
    fetch = dir_fetcher(log_dir)
    reader = TileNodeReader(lambda t: fetch(format_tile_path(t)), new_size)
    proof = prove_consistency(old_size, new_size, reader)
    check_consistency(proof, old_size, new_size, old_root, new_root)


def _catch_up(dep: Deployment) -> None:
    """Integrate everything. The killed leader's last integration may still commit after
    its lock went with its session (its own transaction runs on another connection); the
    new leader then refuses to sign over it, and integrates again on top of it."""
    for _ in range(10):
        try:
            while dep.sequencer.integrate() is not None:
                pass
            return
        except LedgerError as exc:
            if "another sequencer integrated concurrently" not in str(exc):
                raise
            time.sleep(0.05)
    pytest.fail("the sequencer never caught up")


@pytest.mark.slow
def test_sigkill_during_appends_loses_nothing(
    tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> None:
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    data = tmp_path / "data"
    init_data_dir(data, "crash.custodes.example/log")
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(9162)
    acked: dict[int, bytes] = {}
    seen = (0, EMPTY_ROOT)
    kills = 0
    for round_no in range(KILLS[backend]):
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_writer, args=(data, database_url, round_no, sender))
        child.start()
        sender.close()
        deadline = time.monotonic() + rng.uniform(0.02, 0.4)
        while time.monotonic() < deadline:
            if receiver.poll(0.005):
                try:
                    index, entry = receiver.recv()
                except EOFError:
                    child.join()
                    pytest.fail(
                        f"writer died on its own (exit {child.exitcode}) in round {round_no}"
                    )
                acked[index] = entry
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        kills += 1
        while receiver.poll():  # acknowledgements already in the pipe count too
            try:
                index, entry = receiver.recv()
            except EOFError:
                break
            acked[index] = entry
        receiver.close()
        # What the killed writer published must be consistent with what we saw before.
        if (data / "log" / "checkpoint").exists():
            dep_verifier = open_deployment(load_settings(data, database_url=database_url))
            try:
                cp = open_checkpoint(dir_fetcher(data / "log"), dep_verifier.verifier)
            finally:
                dep_verifier.close()
            if cp.size >= seen[0]:
                _check_consistent(data / "log", seen, cp.size, cp.root)
            seen = (cp.size, cp.root)
        # Restart: recover, integrate everything, and check the whole published log.
        with open_deployment(load_settings(data, database_url=database_url)) as dep:
            assert dep.ledger.size() >= len(acked)
            for index in rng.sample(sorted(acked), min(50, len(acked))):
                assert dep.ledger.entry(index) == acked[index]
            _catch_up(dep)
            signed = dep.ledger.latest_checkpoint()
            assert signed is not None
            # the killed writer was the sequencer; this process took over and caught up
            assert signed.checkpoint.size == dep.ledger.size()
            _check_consistent(data / "log", seen, signed.checkpoint.size, signed.checkpoint.root)
            seen = (signed.checkpoint.size, signed.checkpoint.root)
            if round_no % 10 == 9 or round_no == KILLS[backend] - 1:
                result = verify_log(dir_fetcher(data / "log"), dep.verifier)
                assert result.entries == signed.checkpoint.size
                stored = dep.ledger.entries(0, signed.checkpoint.size)
                lost = [i for i, e in acked.items() if i >= len(stored) or stored[i] != e]
                assert lost == [], f"acknowledged entries lost or changed: {lost[:10]}"
    print(f"\n{backend}: {kills} SIGKILLs, {len(acked)} acknowledged entries, none lost")
    assert kills >= 100
