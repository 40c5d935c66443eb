"""The ledger submits each checkpoint to its witnesses and publishes it once the quorum cosigned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from custodes.audit.auditor import audit_log
from custodes.audit.logcheck import dir_fetcher
from custodes.audit.policy import parse_policy
from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.errors import ConfigError
from custodes.ledger.witnessing import WitnessEndpoint, Witnessing, WitnessQuorumError
from custodes.settings import WitnessSetting, load_settings
from custodes.tlog import generate_cosigner_key, new_cosignature_verifier, open_note
from custodes.witness.cosigning import Witness
from custodes.witness.server import create_witness_app
from custodes.witness.store import WitnessStore, init_witness_dir

ORIGIN = "witnessed.custodes.example/log"


class Witnesses:
    """Witness apps served in-process behind one transport; each can be taken down."""

    def __init__(self, root: Path, log_vkey: str, count: int) -> None:
        self.clients: dict[str, TestClient] = {}
        self.up: dict[str, bool] = {}
        self.endpoints: list[WitnessEndpoint] = []
        for i in range(count):
            wdir = root / f"w{i}"
            vkey = init_witness_dir(wdir, f"w{i}.example")
            store = WitnessStore(wdir)
            store.add_log(log_vkey)
            host = f"w{i}.test"
            self.clients[host] = TestClient(create_witness_app(Witness(store, store.cosigner())))
            self.up[host] = True
            self.endpoints.append(WitnessEndpoint(vkey, f"http://{host}/"))
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if not self.up[host]:
            raise httpx.ConnectError("connection refused", request=request)
        r = self.clients[host].post(request.url.path, content=request.content)
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)

    def witnessing(self, quorum: int, clock: list[float] | None = None) -> Witnessing:
        now = clock if clock is not None else [0.0]
        client = httpx.Client(transport=self.transport)
        return Witnessing(self.endpoints, quorum, client=client, clock=lambda: now[0])


@pytest.fixture
def dep(tmp_path: Path) -> Iterator[Deployment]:
    init_data_dir(tmp_path / "data", ORIGIN)
    with open_deployment(load_settings(tmp_path / "data")) as d:
        yield d


def _policy(dep: Deployment, witnesses: Witnesses, quorum: str) -> bytes:
    lines = [f"log {dep.vkey}"]
    lines += [f"witness W{i} {w.vkey}" for i, w in enumerate(witnesses.endpoints)]
    lines += [f"group all-of-them all {' '.join(f'W{i}' for i in range(len(witnesses.endpoints)))}"]
    return ("\n".join([*lines, f"quorum {quorum}"]) + "\n").encode()


def test_published_checkpoints_carry_every_witness_cosignature(
    dep: Deployment, tmp_path: Path
) -> None:
    witnesses = Witnesses(tmp_path, dep.vkey, 2)
    dep.sequencer.cosign = witnesses.witnessing(quorum=2)
    for batch in range(3):
        dep.ledger.append([f"entry {batch}-{i}".encode() for i in range(120)])
        assert dep.sequencer.integrate() is not None
    published = (dep.settings.log_dir / "checkpoint").read_bytes()
    verifiers = [new_cosignature_verifier(w.vkey) for w in witnesses.endpoints]
    assert sorted(s.name for s in open_note(published, verifiers).sigs) == [
        "w0.example",
        "w1.example",
    ]
    signed = dep.ledger.latest_checkpoint()
    assert signed is not None and signed.note == published  # stored as published
    policy = parse_policy(_policy(dep, witnesses, "all-of-them"))
    report = audit_log(dir_fetcher(dep.settings.log_dir), policy)
    assert report.clean and report.cosigners == ("W0", "W1")


def test_a_witness_that_is_ahead_answers_409_and_gets_a_proof_from_its_size(
    dep: Deployment, tmp_path: Path
) -> None:
    witnesses = Witnesses(tmp_path, dep.vkey, 1)
    dep.sequencer.cosign = witnesses.witnessing(quorum=1)
    dep.ledger.append([f"a{i}".encode() for i in range(300)])
    assert dep.sequencer.integrate() is not None
    dep.sequencer.cosign = witnesses.witnessing(quorum=1)  # a restarted log forgot its sizes
    dep.ledger.append([f"b{i}".encode() for i in range(5)])
    signed = dep.sequencer.integrate()
    assert signed is not None and signed.checkpoint.size == 305
    assert b"\xe2\x80\x94 w0.example " in (dep.settings.log_dir / "checkpoint").read_bytes()


def test_without_the_quorum_nothing_is_stored_or_published_until_it_is_met(
    dep: Deployment, tmp_path: Path
) -> None:
    witnesses = Witnesses(tmp_path, dep.vkey, 2)
    clock = [0.0]
    dep.sequencer.cosign = witnesses.witnessing(quorum=2, clock=clock)
    dep.ledger.append([b"first"])
    assert dep.sequencer.integrate() is not None
    before = (dep.settings.log_dir / "checkpoint").read_bytes()
    witnesses.up["w1.test"] = False
    dep.ledger.append([b"second"])
    with pytest.raises(WitnessQuorumError, match="1 of 2 witnesses"):
        dep.sequencer.integrate()
    assert (dep.settings.log_dir / "checkpoint").read_bytes() == before
    signed = dep.ledger.latest_checkpoint()
    assert signed is not None and signed.checkpoint.size == 1
    witnesses.up["w1.test"] = True
    with pytest.raises(WitnessQuorumError):  # w1 is left alone while its back-off runs
        dep.sequencer.integrate()
    clock[0] += 1.5
    signed = dep.sequencer.integrate()
    assert signed is not None and signed.checkpoint.size == 2
    assert (dep.settings.log_dir / "checkpoint").read_bytes() == signed.note


def test_quorum_zero_publishes_whatever_cosignatures_came(dep: Deployment, tmp_path: Path) -> None:
    witnesses = Witnesses(tmp_path, dep.vkey, 1)
    witnesses.up["w0.test"] = False
    dep.sequencer.cosign = witnesses.witnessing(quorum=0)
    dep.ledger.append([b"alone"])
    signed = dep.sequencer.integrate()
    assert signed is not None and b"w0.example" not in signed.note


def test_witness_endpoints_and_quorum_are_checked() -> None:
    _, vkey = generate_cosigner_key("w.example")
    with pytest.raises(ConfigError, match="http"):
        WitnessEndpoint(vkey, "ftp://w.example/")
    with pytest.raises(ConfigError, match="witness key"):
        WitnessEndpoint("not a key", "https://w.example/")
    with pytest.raises(ConfigError, match="quorum"):
        Witnessing([WitnessEndpoint(vkey, "https://w.example/")], 2)


def test_settings_list_witnesses_and_a_quorum(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init_data_dir(data, ORIGIN)
    _, w1 = generate_cosigner_key("w1.example")
    _, w2 = generate_cosigner_key("w2.example")
    config = data / "custodes.toml"
    base = config.read_text()
    config.write_text(
        base + f'[[witnesses]]\nvkey = "{w1}"\nurl = "https://w1.example/"\n'
        f'[[witnesses]]\nvkey = "{w2}"\nurl = "http://127.0.0.1:7380/"\n'
    )
    settings = load_settings(data)
    assert settings.witnesses == (
        WitnessSetting(w1, "https://w1.example/"),
        WitnessSetting(w2, "http://127.0.0.1:7380/"),
    )
    assert settings.witness_quorum == 2  # all of them, unless told otherwise
    config.write_text("witness_quorum = 1\n" + config.read_text())
    assert load_settings(data).witness_quorum == 1
    for bad in ("witness_quorum = 3\n", 'witnesses = "w1"\n'):
        config.write_text(bad + base)
        with pytest.raises(ConfigError):
            load_settings(data)
    config.write_text(base + '[[witnesses]]\nvkey = "w1+00000000+AA=="\nurl = "https://w/"\n')
    with pytest.raises(ConfigError, match="vkey"):
        load_settings(data)
