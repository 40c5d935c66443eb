"""The auditor: trust policies, checkpoints, sources, state, and the golden log audited clean."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from custodes.audit.auditor import audit_log
from custodes.audit.checks import default_checks
from custodes.audit.errors import FetchError, OpeningsError, PolicyError, StateError
from custodes.audit.logcheck import MissingFileError, dir_fetcher
from custodes.audit.openings import format_disclosure, parse_disclosure
from custodes.audit.policy import (
    Policy,
    PolicyGroup,
    PolicyLog,
    PolicyWitness,
    format_policy,
    has_quorum,
    parse_policy,
    verify_checkpoint,
)
from custodes.audit.source import open_source, url_fetcher
from custodes.audit.state import default_state_path, load_state
from custodes.events import Opening
from custodes.tlog import (
    Checkpoint,
    format_checkpoint,
    generate_cosigner_key,
    generate_key,
    new_cosigner,
    new_signer,
    sign_note,
)

GOLDEN = Path(__file__).parent / "testdata" / "golden"
LATER = datetime(2027, 1, 1, tzinfo=UTC)


def golden_policy() -> Policy:
    return parse_policy((GOLDEN / "policy").read_bytes())


def test_policy_round_trips_and_ignores_comments_and_whitespace() -> None:
    _, log = generate_key("log.example/a")
    _, w1 = generate_cosigner_key("w1.example")
    _, w2 = generate_cosigner_key("w2.example")
    text = (
        f"# trust\n\n  log\t{log} https://log.example/a/  \n"
        f"witness X1 {w1} https://w1.example/\nwitness X2 {w2}\n"
        "group both all X1 X2\n  # done\nquorum both"
    )
    policy = parse_policy(text.encode())
    assert policy == Policy(
        (PolicyLog(log, "https://log.example/a/"),),
        (PolicyWitness("X1", w1, "https://w1.example/"), PolicyWitness("X2", w2)),
        (PolicyGroup("both", "all", ("X1", "X2")),),
        "both",
    )
    assert parse_policy(format_policy(policy)) == policy
    assert policy.logs[0].origin == "log.example/a"


def test_policy_quorum_follows_the_spec_example_with_nested_groups() -> None:
    keys = [generate_cosigner_key(f"w{i}.example")[1] for i in range(6)]
    names = ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    lines = [f"witness {n} {k}" for n, k in zip(names, keys, strict=True)]
    lines += [
        "group X-witnesses 2 X1 X2 X3",
        "group Y-witnesses any Y1 Y2 Y3",
        "group X-and-Y all X-witnesses Y-witnesses",
        "quorum X-and-Y",
    ]
    policy = parse_policy("\n".join(lines).encode())
    assert has_quorum(policy, {"X1", "X3", "Y2"})
    assert not has_quorum(policy, {"X1", "Y1", "Y2", "Y3"})
    assert not has_quorum(policy, {"X1", "X2", "X3"})
    assert has_quorum(parse_policy(b"quorum none\n"), set())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quorum none\nquorum none\n", "exactly one quorum"),
        ("log\n", "not a log, witness"),
        ("wtness A B\nquorum none\n", "not a log, witness"),
        ("group G any A\nquorum none\n", "not defined above"),
        ("witness none {w1}\nquorum none\n", "reserved"),
        ("witness A {w1}\nwitness B {w1}\nquorum A\n", "share the public key"),
        ("witness A {w1}\ngroup G 2 A\nquorum G\n", "needs 1..1 members"),
        ("witness A {w1}\ngroup G 01 A\nquorum G\n", "canonical decimal"),
        ("witness A {w1}\ngroup G any A A\nquorum G\n", "member twice"),
        ("witness A {w1}\ngroup G any none\nquorum G\n", "not defined above"),
        ("witness A {log}\nquorum A\n", "signature type 0x01"),
        ("log {w1}\nquorum none\n", "signature type 0x04"),
        ("log {log}\n", "no quorum line"),
        ("quorum none\x0b\n", "control character"),
        ("quorum A\nwitness A {w1}\n", "not defined above"),
    ],
)
def test_policy_rejects_what_the_spec_forbids(text: str, message: str) -> None:
    _, log = generate_key("log.example/a")
    _, w1 = generate_cosigner_key("w1.example")
    with pytest.raises(PolicyError, match=message):
        parse_policy(text.format(log=log, w1=w1).encode())


def test_policy_refuses_oversized_files_before_parsing() -> None:
    with pytest.raises(PolicyError, match="over"):
        parse_policy(b"#" * (64 * 1024 + 1))


def _note(skey: str, size: int = 3, *cosigners: str) -> bytes:
    text = format_checkpoint(Checkpoint("log.example/a", size, bytes(32)))
    note = sign_note(text, new_signer(skey))
    for cosigner in cosigners:
        note += sign_note(text, new_cosigner(cosigner)).split(b"\n\n")[-1]
    return note


def test_verify_checkpoint_counts_valid_cosignatures_toward_the_quorum() -> None:
    skey, vkey = generate_key("log.example/a")
    (s1, w1), (s2, w2) = generate_cosigner_key("w1"), generate_cosigner_key("w2")
    policy = parse_policy(
        f"log {vkey}\nwitness A {w1}\nwitness B {w2}\ngroup AB all A B\nquorum AB\n".encode()
    )
    verified, findings = verify_checkpoint(_note(skey, 3, s1, s2), policy)
    assert findings == [] and verified is not None and verified.cosigners == ("A", "B")
    verified, findings = verify_checkpoint(_note(skey, 3, s1), policy)
    assert [f.code for f in findings] == ["witness_quorum"]
    assert verified is not None and verified.checkpoint.size == 3
    other, _ = generate_cosigner_key("w2")  # same name as B, another key: ignored as unknown
    _, findings = verify_checkpoint(_note(skey, 3, s1, other), policy)
    assert [f.code for f in findings] == ["witness_quorum"]


def test_verify_checkpoint_rejects_a_bad_cosignature_of_a_listed_witness() -> None:
    skey, vkey = generate_key("log.example/a")
    s1, w1 = generate_cosigner_key("w1")
    policy = parse_policy(f"log {vkey}\nwitness A {w1}\nquorum A\n".encode())
    good = _note(skey, 3, s1)
    forged = _note(skey, 4, s1).split(b"\n\n")[-1].splitlines(keepends=True)[1]
    bad = good.rsplit(b"\xe2\x80\x94", 1)[0] + forged  # a cosignature of another checkpoint
    _, findings = verify_checkpoint(bad, policy)
    assert [f.code for f in findings] == ["witness_cosignature", "witness_quorum"]


def test_verify_checkpoint_refuses_other_keys_and_other_origins() -> None:
    skey, vkey = generate_key("log.example/a")
    impostor, _ = generate_key("log.example/a")
    policy = parse_policy(f"log {vkey}\nquorum none\n".encode())
    verified, findings = verify_checkpoint(_note(impostor), policy)
    assert verified is None and [f.code for f in findings] == ["checkpoint_unverified"]
    other_skey, other_vkey = generate_key("log.example/b")
    both = parse_policy(f"log {vkey}\nlog {other_vkey}\nquorum none\n".encode())
    verified, findings = verify_checkpoint(_note(other_skey), both)  # origin is log.example/a
    assert verified is None and "signed only by" in findings[0].detail
    assert verify_checkpoint(_note(skey), both)[1] == []


def test_golden_log_audits_clean_with_every_check() -> None:
    disclosed = parse_disclosure((GOLDEN / "disclosure.json").read_bytes())
    report = audit_log(
        dir_fetcher(GOLDEN / "log"),
        golden_policy(),
        checks=default_checks(disclosed),
        as_of=LATER,
    )
    assert report.clean, report.findings
    assert report.checkpoint is not None and report.checkpoint.size == 300
    assert report.cosigners == ("w1",)
    assert report.events == 300
    assert report.notes == ()  # every approval's staff was disclosed and checked


def test_audit_remembers_the_checkpoint_and_its_leaf_tiles(tmp_path: Path) -> None:
    state = tmp_path / "state" / "golden.checkpoint"
    first = audit_log(dir_fetcher(GOLDEN / "log"), golden_policy(), state_path=state)
    assert first.clean and first.state_saved and first.previous is None
    assert state.read_bytes() == (GOLDEN / "log" / "checkpoint").read_bytes()
    cached = tmp_path / "state" / "golden.checkpoint.tiles" / "tile" / "0"
    assert (cached / "000").read_bytes() == (GOLDEN / "log" / "tile" / "0" / "000").read_bytes()
    assert (cached / "001.p" / "44").is_file()
    again = audit_log(dir_fetcher(GOLDEN / "log"), golden_policy(), state_path=state)
    assert again.clean and not again.state_saved
    assert again.previous is not None and again.previous.size == 300


def test_audit_grows_from_an_earlier_checkpoint(tmp_path: Path) -> None:
    early = tmp_path / "early"
    shutil.copytree(GOLDEN / "log", early)
    (early / "checkpoint").write_bytes((GOLDEN / "checkpoint-150").read_bytes())
    state = tmp_path / "s.checkpoint"
    assert audit_log(dir_fetcher(early), golden_policy(), state_path=state).clean
    report = audit_log(dir_fetcher(GOLDEN / "log"), golden_policy(), state_path=state)
    assert report.clean and report.state_saved
    assert report.previous is not None and report.previous.size == 150


def test_state_of_another_log_is_an_error(tmp_path: Path) -> None:
    state = tmp_path / "s.checkpoint"
    state.write_bytes((GOLDEN / "log" / "checkpoint").read_bytes())
    with pytest.raises(StateError, match="remembers the log"):
        load_state(state, golden_policy(), "another.example/log")
    state.write_bytes(b"not a checkpoint")
    with pytest.raises(StateError, match="not a checkpoint"):
        audit_log(dir_fetcher(GOLDEN / "log"), golden_policy(), state_path=state)


def test_default_state_path_is_per_origin_under_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    a = default_state_path("a.example/log")
    assert a.parent == tmp_path / "custodes" / "audit"
    assert a != default_state_path("a.example_log")  # slugs collide; the hash tells them apart


def test_missing_checkpoint_is_a_finding(tmp_path: Path) -> None:
    report = audit_log(dir_fetcher(tmp_path), golden_policy())
    assert [f.code for f in report.findings] == ["file_missing"]


def test_disclosure_round_trips_and_rejects_malformed_files() -> None:
    disclosed = {7: {"staff": Opening(bytes(range(32)), "staff-7")}}
    assert parse_disclosure(format_disclosure(disclosed)) == disclosed
    for bad in (b"[]", b"{", b'{"07": {}}', b'{"x": {}}', b'{"1": {"staff": {"salt": 1}}}'):
        with pytest.raises(OpeningsError):
            parse_disclosure(bad)


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(GOLDEN / "log"), **kwargs)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served_golden() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietFiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_audit_over_http_matches_the_directory(served_golden: str) -> None:
    report = audit_log(open_source(served_golden), golden_policy(), as_of=LATER)
    assert report.clean and report.checkpoint is not None and report.checkpoint.size == 300
    with pytest.raises(MissingFileError):
        url_fetcher(served_golden)("tile/0/999")


def test_sources_refuse_what_they_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(FetchError):
        open_source(str(tmp_path / "nothing"))
    with pytest.raises(FetchError):
        url_fetcher("file:///etc/")
    with pytest.raises(FetchError, match="cannot read"):
        url_fetcher("http://127.0.0.1:9/")("checkpoint")
    assert open_source(str(GOLDEN))("checkpoint") == (GOLDEN / "log" / "checkpoint").read_bytes()
