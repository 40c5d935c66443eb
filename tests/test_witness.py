"""The witness (c2sp.org/tlog-witness): wire format, status codes, atomic state, and the CLI."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from custodes.cli.witness import app as witness_cli
from custodes.ledger.witnessing import add_checkpoint_body
from custodes.tlog import (
    Checkpoint,
    MemoryNodeReader,
    format_checkpoint,
    generate_key,
    leaf_hash,
    new_cosignature_verifier,
    new_signer,
    open_note,
    prove_consistency,
    sign_note,
    tree_root,
)
from custodes.tlog.cosignature import cosignature_timestamp
from custodes.witness.cosigning import Witness
from custodes.witness.errors import MalformedRequestError, RequestTooLargeError
from custodes.witness.protocol import (
    MAX_REQUEST_SIZE,
    AddCheckpoint,
    format_add_checkpoint,
    format_size_conflict,
    parse_add_checkpoint,
    parse_size_conflict,
)
from custodes.witness.server import create_witness_app
from custodes.witness.store import WitnessStore, init_witness_dir

ORIGIN = "log.example/w-test"
SPEC_REQUEST = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
    "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
).encode()


def test_the_spec_example_request_parses_and_formats_back() -> None:
    request = parse_add_checkpoint(SPEC_REQUEST)
    assert request.old_size == 20852014 and len(request.proof) == 4
    assert request.checkpoint.startswith(b"example.com/behind-the-sofa\n20852163\n")
    assert format_add_checkpoint(request) == SPEC_REQUEST


def test_the_ledger_formats_requests_the_witness_parses() -> None:
    proof = [bytes([i]) * 32 for i in range(5)]
    body = add_checkpoint_body(17, proof, b"note\n\n- sig\n")
    assert parse_add_checkpoint(body) == AddCheckpoint(17, tuple(proof), b"note\n\n- sig\n")
    assert body == format_add_checkpoint(AddCheckpoint(17, tuple(proof), b"note\n\n- sig\n"))


@pytest.mark.parametrize(
    "body",
    [
        b"old 3\n",  # no empty line
        b"old 03\n\nx",
        b"old +3\n\nx",
        b"new 3\n\nx",
        b"old 0\n" + b"A" * 43 + b"=\n\nx",  # a proof from 0
        b"old 5\nAAAA\n\nx",  # a hash that is not 32 bytes
        b"old 5\n" + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + b"\nx",
        "old 5\nÄ\n\nx".encode(),
    ],
)
def test_malformed_requests_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedRequestError):
        parse_add_checkpoint(body)


def test_oversized_requests_are_refused_before_parsing() -> None:
    with pytest.raises(RequestTooLargeError):
        parse_add_checkpoint(b"x" * (MAX_REQUEST_SIZE + 1))


def test_size_conflict_body_round_trips_and_is_strict() -> None:
    assert format_size_conflict(0) == b"0\n"
    assert parse_size_conflict(format_size_conflict(20852014)) == 20852014
    for bad in (b"12", b"012\n", b"-1\n", b"1 2\n"):
        with pytest.raises(MalformedRequestError):
            parse_size_conflict(bad)


class Log:
    """A log in memory whose checkpoints a test submits by hand."""

    def __init__(self, skey: str, origin: str = ORIGIN) -> None:
        self.signer = new_signer(skey)
        self.origin = origin
        self.leaves: list[bytes] = []

    def grow(self, n: int) -> None:
        self.leaves += [leaf_hash(f"{ORIGIN} {len(self.leaves) + i}".encode()) for i in range(n)]

    def note(self, size: int | None = None, root: bytes | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        root = root or tree_root(size, MemoryNodeReader(self.leaves))
        return sign_note(format_checkpoint(Checkpoint(self.origin, size, root)), self.signer)

    def body(self, old: int, size: int | None = None, proof: list[bytes] | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        if proof is None:
            proof = prove_consistency(old, size, MemoryNodeReader(self.leaves)) if old else []
        return add_checkpoint_body(old, proof, self.note(size))


@pytest.fixture
def wdir(tmp_path: Path) -> Path:
    wdir = tmp_path / "witness"
    init_witness_dir(wdir, "witness.example/w1")
    return wdir


@pytest.fixture
def log_key() -> tuple[str, str]:
    return generate_key(ORIGIN)


@pytest.fixture
def client(wdir: Path, log_key: tuple[str, str]) -> Iterator[TestClient]:
    WitnessStore(wdir).add_log(log_key[1])
    store = WitnessStore(wdir)
    with TestClient(create_witness_app(Witness(store, store.cosigner(clock=lambda: 1.7e9)))) as c:
        yield c


def _post(client: TestClient, body: bytes) -> tuple[int, bytes, str]:
    r = client.post("/add-checkpoint", content=body)
    return r.status_code, r.content, r.headers.get("content-type", "")


def test_first_checkpoint_is_cosigned_and_remembered(
    client: TestClient, wdir: Path, log_key: tuple[str, str]
) -> None:
    log = Log(log_key[0])
    log.grow(10)
    status, lines, ctype = _post(client, log.body(0))
    assert (status, ctype) == (200, "text/plain; charset=utf-8")
    verifier = new_cosignature_verifier(WitnessStore(wdir).vkey)
    note = open_note(log.note() + lines, [verifier])
    assert [s.name for s in note.sigs] == ["witness.example/w1"]
    assert cosignature_timestamp(note.sigs[0]) == 1_700_000_000
    latest = WitnessStore(wdir).latest(ORIGIN)
    assert latest is not None and latest[1].size == 10


def test_a_consistent_extension_is_cosigned_and_the_wrong_old_size_is_409(
    client: TestClient, log_key: tuple[str, str]
) -> None:
    log = Log(log_key[0])
    log.grow(10)
    assert _post(client, log.body(0))[0] == 200
    log.grow(7)
    assert _post(client, log.body(0)) == (409, b"10\n", "text/x.tlog.size")
    assert _post(client, log.body(9))[:2] == (409, b"10\n")
    assert _post(client, log.body(10))[0] == 200
    assert _post(client, log.body(17))[0] == 200  # the same checkpoint again, no proof
    log.grow(1)
    assert _post(client, log.body(17))[0] == 200


def test_an_inconsistent_checkpoint_is_422_and_kept_as_evidence(
    client: TestClient, wdir: Path, log_key: tuple[str, str]
) -> None:
    log = Log(log_key[0])
    log.grow(10)
    assert _post(client, log.body(0))[0] == 200
    forked = Log(log_key[0])
    forked.leaves = [*log.leaves[:4], leaf_hash(b"rewritten"), *log.leaves[5:]]
    forked.grow(5)
    status, _, ctype = _post(client, forked.body(10))
    assert (status, ctype) == (422, "application/problem+json")
    assert len(list((wdir / "evidence").iterdir())) == 1
    latest = WitnessStore(wdir).latest(ORIGIN)
    assert latest is not None and latest[1].size == 10  # unchanged
    same_size = Log(log_key[0])
    same_size.leaves = forked.leaves[:10]
    assert _post(client, same_size.body(10))[:2] == (409, b"10\n")
    assert len(list((wdir / "evidence").iterdir())) == 2


def test_unknown_logs_untrusted_keys_and_bad_sizes(
    client: TestClient, log_key: tuple[str, str]
) -> None:
    stranger = Log(generate_key("other.example/log")[0], "other.example/log")
    stranger.grow(3)
    assert _post(client, stranger.body(0))[0] == 404
    impostor = Log(generate_key(ORIGIN)[0])  # a key with the log's name, not the log's key
    impostor.grow(3)
    assert _post(client, impostor.body(0))[0] == 403
    signed_by_stranger = Log(generate_key("other.example/log")[0])  # our origin, their key
    signed_by_stranger.grow(3)
    assert _post(client, signed_by_stranger.body(0))[0] == 403
    log = Log(log_key[0])
    log.grow(3)
    assert _post(client, add_checkpoint_body(4, [], log.note()))[0] == 400
    assert _post(client, b"old 0\n\nnot a note")[0] == 400
    big = client.post("/add-checkpoint", content=b"x" * (MAX_REQUEST_SIZE + 1))
    assert big.status_code == 413
    assert _post(client, log.body(0))[0] == 200  # none of that changed its state


def test_a_smaller_checkpoint_is_never_accepted(
    client: TestClient, log_key: tuple[str, str]
) -> None:
    log = Log(log_key[0])
    log.grow(20)
    assert _post(client, log.body(0))[0] == 200
    assert _post(client, add_checkpoint_body(20, [], log.note(12)))[0] == 400
    assert _post(client, add_checkpoint_body(12, [], log.note(12)))[:2] == (409, b"20\n")


def test_concurrent_submissions_update_the_state_atomically(
    client: TestClient, wdir: Path, log_key: tuple[str, str]
) -> None:
    log = Log(log_key[0])
    log.grow(40)
    assert _post(client, log.body(0, 8))[0] == 200
    results: dict[int, int] = {}
    barrier = threading.Barrier(16)

    def submit(size: int) -> None:
        barrier.wait()
        results[size] = _post(client, log.body(8, size))[0]

    threads = [threading.Thread(target=submit, args=(size,)) for size in range(24, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [size for size, status in results.items() if status == 200]
    assert len(winners) == 1  # every other request saw the size move and got 409
    assert sorted(results.values()) == [200] + [409] * 15
    latest = WitnessStore(wdir).latest(ORIGIN)
    assert latest is not None and latest[1].size == winners[0]


def test_witness_cli_init_key_and_add_log(tmp_path: Path, log_key: tuple[str, str]) -> None:
    runner = CliRunner()
    app = typer.Typer()
    app.add_typer(witness_cli, name="witness")
    wdir = str(tmp_path / "w")
    result = runner.invoke(app, ["witness", "init", "--data", wdir, "--name", "w.example/1"])
    assert result.exit_code == 0, result.output
    key = runner.invoke(app, ["witness", "key", "--data", wdir])
    assert key.output.strip().startswith("w.example/1+")
    assert (tmp_path / "w" / "witness.skey").stat().st_mode & 0o777 == 0o600
    added = runner.invoke(app, ["witness", "add-log", log_key[1], "--data", wdir])
    assert added.exit_code == 0 and ORIGIN in added.output
    again = runner.invoke(app, ["witness", "add-log", log_key[1], "--data", wdir])
    assert again.exit_code == 1 and "already witnesses" in again.output
    cosigner_key = key.output.strip()
    wrong = runner.invoke(app, ["witness", "add-log", cosigner_key, "--data", wdir])
    assert wrong.exit_code == 1 and "error[config]" in wrong.output
    twice = runner.invoke(app, ["witness", "init", "--data", wdir, "--name", "w.example/1"])
    assert twice.exit_code == 1 and "already holds" in twice.output
