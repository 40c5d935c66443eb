"""End to end: a log witnessed by a separate witness process, audited clean; then a database row
is deleted behind the service's back, and every way that deletion can reach the public log fails
the next audit, naming the entry.

The deleted row is an approval of a demand that was later executed. Deleting it from
``log_entries`` does not touch what was already published, so:

1. while the service just keeps going, the public log still holds the approval: the audit stays
   clean, and the row is still readable in the published bundle;
2. when the published files are rebuilt from the database (a new host, a lost bucket), the
   rebuilt bundle lacks the row: the audit names the entry;
3. when an insider covers it up (renumbers the rows after it, drops the stored tree, and lets
   the sequencer re-sign a log without it), the witness refuses to cosign the rewritten history,
   so the checkpoint can only be published without it; the audit reports the missing
   cosignature, the fork from what it saw before naming the entry, and, from the rewritten
   events, the demand executed without its approvals.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from custodes.cli.audit import audit
from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.events import encode_event, parse_event
from custodes.ledger.publish import Publisher
from custodes.ledger.sequencer import Sequencer
from custodes.ledger.witnessing import WitnessEndpoint, Witnessing, WitnessQuorumError
from custodes.settings import load_settings
from custodes.tlog import leaf_hash
from custodes.tlog.tiles import bundles_for_size, format_tile_path, parse_bundle
from custodes.witness.store import WitnessStore, init_witness_dir

GOLDEN = Path(__file__).parent / "testdata" / "golden" / "log"
ORIGIN = "e2e.custodes.example/log"
READY_WITHIN = 30.0

cli = typer.Typer()
cli.command("audit")(audit)


@cli.command("version")
def _version() -> None:  # a second command keeps ``audit`` a named subcommand
    pass


def golden_entries() -> list[bytes]:
    return [
        e
        for t in bundles_for_size(300)
        for e in parse_bundle((GOLDEN / format_tile_path(t)).read_bytes(), t.width)
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class WitnessProcess:
    wdir: Path
    url: str
    vkey: str
    process: subprocess.Popen[bytes]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, WitnessProcess]]:
    """A data directory whose log a witness, served by another process, witnesses."""
    data = tmp_path / "data"
    init_data_dir(data, ORIGIN)
    log_vkey = (data / "keys" / "log.vkey").read_text().strip()
    wdir = tmp_path / "witness"
    witness_vkey = init_witness_dir(wdir, "witness.e2e.example")
    WitnessStore(wdir).add_log(log_vkey)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    with (tmp_path / "witness.out").open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "custodes.cli.witness",
                "serve",
                "--data",
                str(wdir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_serving(url, process, tmp_path / "witness.out")
        config = data / "custodes.toml"
        config.write_text(
            config.read_text()
            + f'witness_quorum = 1\n[[witnesses]]\nvkey = "{witness_vkey}"\nurl = "{url}"\n'
        )
        yield data, WitnessProcess(wdir, url, witness_vkey, process)
    finally:
        process.terminate()  # by its PID: only the process this test started
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], out: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the witness exited: {out.read_text()}")
        try:
            if httpx.post(url + "add-checkpoint", content=b"").status_code == 400:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"the witness did not start serving: {out.read_text()}")


def _witnessing(data: Path) -> Witnessing:
    settings = load_settings(data)
    endpoints = [WitnessEndpoint(w.vkey, w.url) for w in settings.witnesses]
    return Witnessing(endpoints, settings.witness_quorum)


def _publish(dep: Deployment, entries: list[bytes], batch: int = 100) -> None:
    for start in range(0, len(entries), batch):
        dep.ledger.append(entries[start : start + batch])
        while dep.sequencer.integrate() is not None:
            pass


def _audit(source: Path, policy: Path, state: Path) -> tuple[int, dict[str, Any]]:
    args = ["audit", str(source), "--policy", str(policy), "--state", str(state), "--json"]
    result = CliRunner().invoke(cli, [*args, "--as-of", "2027-01-01T00:00:00Z"])
    return result.exit_code, json.loads(result.output)


def _extra_events(n: int) -> list[bytes]:
    pack = hashlib.sha256(b"e2e pack").hexdigest()
    when = datetime(2026, 2, 1, tzinfo=UTC)
    return [
        encode_event(
            "policy.activated", time=when, facts={"pack": pack}, private={"staff": f"s{i}"}
        )[0]
        for i in range(n)
    ]


def _deleted_approval(entries: list[bytes]) -> int:
    """The index of an approval whose demand was executed afterwards."""
    events = [parse_event(e) for e in entries]
    executed = {e.demand for e in events if e.kind == "demand.executed"}
    return next(
        i for i, e in enumerate(events) if e.kind == "approval.given" and e.demand in executed
    )


def _delete_row(data: Path, index: int) -> bytes:
    """Behind the service's back: straight into its database, no service code involved."""
    with sqlite3.connect(data / "custodes.db") as db:
        (row,) = db.execute("SELECT data FROM log_entries WHERE idx = ?", (index,)).fetchone()
        db.execute("DELETE FROM log_entries WHERE idx = ?", (index,))
    return bytes(row)


def _renumber_after(data: Path, index: int) -> None:
    """The cover-up: close the gap, forget the tree, and let the sequencer sign it anew."""
    with sqlite3.connect(data / "custodes.db") as db:
        db.execute("UPDATE log_entries SET idx = -idx WHERE idx > ?", (index,))
        db.execute("UPDATE log_entries SET idx = -idx - 1 WHERE idx < 0")
        db.execute("UPDATE log_state SET next_index = next_index - 1")
        db.execute("DELETE FROM log_tiles")
        db.execute("DELETE FROM log_checkpoints")
    shutil.rmtree(data / "log")
    (data / "log").mkdir()


def test_a_row_deleted_behind_the_services_back_fails_the_audit_naming_it(
    world: tuple[Path, WitnessProcess], tmp_path: Path
) -> None:
    data, witness = world
    entries = golden_entries()
    policy = tmp_path / "policy"
    state = tmp_path / "auditor" / "state.checkpoint"
    with open_deployment(load_settings(data)) as dep:
        policy.write_text(f"log {dep.vkey}\nwitness W {witness.vkey}\nquorum W\n")
        witnessing = _witnessing(data)
        dep.sequencer.cosign = witnessing
        _publish(dep, entries)
        code, report = _audit(data, policy, state)
        assert code == 0, report
        assert report["clean"] and report["cosigners"] == ["W"] and report["events"] == 300

        k = _deleted_approval(entries)
        deleted = _delete_row(data, k)
        assert deleted == entries[k]

        # 1. The service keeps going: the public log still holds the approval.
        _publish(dep, _extra_events(10))
        code, report = _audit(data, policy, state)
        assert code == 0, report
        assert report["checkpoint"]["size"] == 310 and report["previous"]["size"] == 300
        assert deleted in (data / "log" / "tile" / "entries" / "000").read_bytes()

        # 2. The published files are rebuilt from the database on a new host.
        rebuilt = tmp_path / "new-host"
        Sequencer(
            dep.store, dep.sequencer.signer, ORIGIN, Publisher(rebuilt), dep.sequencer.lock
        ).republish()
        code, report = _audit(rebuilt, policy, state)
        assert code == 1
        [finding] = report["findings"]
        assert finding["code"] == "bundle_malformed" and finding["entries"] == [k]

        # 3. The cover-up: the history is rewritten without the row and signed again.
        _renumber_after(data, k)
        dep.ledger.append(_extra_events(5))
        witnessing.close()
        witnessing = _witnessing(data)  # a fresh start: it asks the witness for its size
        dep.sequencer.cosign = witnessing
        with pytest.raises(WitnessQuorumError):
            dep.sequencer.integrate()  # the witness refuses: not consistent with size 310
        witnessing.close()
        assert not (data / "log" / "checkpoint").exists()
        assert len(list((witness.wdir / "evidence").iterdir())) == 1
        latest = WitnessStore(witness.wdir).latest(ORIGIN)
        assert latest is not None and latest[1].size == 310

        dep.sequencer.cosign = None  # so the insider publishes without witnesses
        signed = dep.sequencer.integrate()
        assert signed is not None and signed.checkpoint.size == 314

    code, report = _audit(data, policy, state)
    assert code == 1
    found = {f["code"]: f for f in report["findings"]}
    assert set(found) >= {"witness_quorum", "fork", "missing_approvals"}
    assert found["fork"]["entries"] == [k]
    assert found["fork"]["evidence"]["seen_leaf_hash"] == leaf_hash(deleted).hex()
    assert found["missing_approvals"]["demand"] == parse_event(deleted).demand
    assert report["previous"]["size"] == 310  # the auditor's state kept what it had seen
