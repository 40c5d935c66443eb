"""``custodes audit --evidence DIR`` and ``custodes log check``: each entry a finding names,
written with a tlog-proof receipt that anyone checks offline, without the rest of the log."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from custodes.audit import evidence as evidence_module
from custodes.audit.auditor import audit_log
from custodes.audit.checks import default_checks
from custodes.audit.errors import EvidenceError
from custodes.audit.evidence import EvidenceChecker, check_evidence, write_evidence
from custodes.audit.policy import Policy, parse_policy, verify_checkpoint
from custodes.audit.source import url_fetcher
from custodes.cli.log import app as log_app
from custodes.tlog import (
    TlogError,
    check_receipt,
    generate_cosigner_key,
    generate_key,
    new_verifier,
    parse_receipt,
)
from test_audit_cli import POLICY, app, runner
from test_audit_http import serving
from test_audit_tamper import ENTRIES, ORIGIN, memory_fetcher, publish

LATER = "2027-01-01T00:00:00Z"
LOG_VKEY = next(line.split()[1] for line in Path(POLICY).read_text().splitlines()
                if line.startswith("log "))  # fmt: skip
# Two demands lose their approvals: d_golden0003 in the first bundle, d_golden0028 in the second.
DROPPED = [e for e in ENTRIES
           if b'"approval.given"' in e and (b"golden0003" in e or b"golden0028" in e)]  # fmt: skip
VIOLATING = [e for e in ENTRIES if e not in DROPPED]
NAMED = [28, 34, 290, 294]  # the approval each decision claims, and the execution
log_runner = CliRunner()


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))


def _publish(entries: list[bytes], root: Path) -> dict[str, bytes]:
    files = publish(entries)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _audit(source: str, *extra: str) -> tuple[int, str]:
    args = ["audit", source, "--policy", POLICY, "--no-state", "--as-of", LATER, *extra]
    result = runner.invoke(app, args)
    return result.exit_code, result.output


def _check(*args: str) -> tuple[int, str]:
    result = log_runner.invoke(log_app, ["check", *args])
    return result.exit_code, result.output


def test_evidence_holds_each_named_entry_with_a_receipt_that_checks(tmp_path: Path) -> None:
    files = _publish(VIOLATING, tmp_path / "log")
    out = tmp_path / "evidence"
    code, output = _audit(str(tmp_path / "log"), "--evidence", str(out))
    assert code == 1, output
    assert f"evidence 4 entries with their receipts, the checkpoint and the report in {out}" in (
        output.replace("\n", " ")
    )
    assert (out / "checkpoint").read_bytes() == files["checkpoint"]
    report = json.loads((out / "report.json").read_text())
    assert [f["code"] for f in report["findings"]] == ["missing_approvals"] * 2
    assert sorted(i for f in report["findings"] for i in f["entries"]) == NAMED
    assert sorted(p.name for p in (out / "entries").iterdir()) == sorted(
        [str(i) for i in NAMED] + [f"{i}.tlog-proof" for i in NAMED]
    )
    log_verifier = new_verifier(LOG_VKEY)
    for i in NAMED:
        entry = (out / "entries" / str(i)).read_bytes()
        assert entry == VIOLATING[i]
        receipt = parse_receipt((out / "entries" / f"{i}.tlog-proof").read_text())
        assert receipt.index == i and receipt.checkpoint == files["checkpoint"]
        # any tlog-proof verifier holding the log's key accepts it
        assert check_receipt(receipt, entry, [log_verifier], ORIGIN).size == len(VIOLATING)

    receipts = sorted(str(p) for p in (out / "entries").glob("*.tlog-proof"))
    code, output = _check(*receipts, "--policy", POLICY)
    assert code == 0, output
    assert "4 of 4 receipt(s) verified" in output
    assert f"checkpoint {ORIGIN} size {len(VIOLATING)}" in output and ", w1" in output
    assert "demand.executed" in output and "d_golden0028" in output


def test_json_report_with_evidence_stays_json(tmp_path: Path) -> None:
    _publish(VIOLATING, tmp_path / "log")
    out = tmp_path / "evidence"
    args = [str(tmp_path / "log"), "--policy", POLICY, "--no-state", "--as-of", LATER]
    result = runner.invoke(app, ["audit", *args, "--json", "--evidence", str(out)])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == json.loads((out / "report.json").read_text())
    assert "evidence 4 entries with their receipts" in result.stderr


def test_a_clean_audit_keeps_its_checkpoint_and_report(tmp_path: Path) -> None:
    files = _publish(ENTRIES, tmp_path / "log")
    out = tmp_path / "evidence"
    out.mkdir()  # an empty directory is taken
    code, output = _audit(str(tmp_path / "log"), "--evidence", str(out))
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "report.json"]
    assert (out / "checkpoint").read_bytes() == files["checkpoint"]
    assert json.loads((out / "report.json").read_text())["clean"] is True
    assert "evidence 0 entries" in output


def test_a_log_that_does_not_verify_gives_its_findings_and_no_receipts(tmp_path: Path) -> None:
    _publish(VIOLATING, tmp_path / "log")
    bundle = tmp_path / "log" / "tile" / "entries" / "000"
    data = bytearray(bundle.read_bytes())
    data[-3] ^= 1  # inside entry 255
    bundle.write_bytes(bytes(data))
    out = tmp_path / "evidence"
    code, output = _audit(str(tmp_path / "log"), "--evidence", str(out))
    assert code == 1, output
    assert not (out / "entries").exists()
    report = json.loads((out / "report.json").read_text())
    assert [(f["code"], f["entries"]) for f in report["findings"]] == [("entry_mismatch", [255])]


@pytest.mark.parametrize("kind", ["full", "file"])
def test_a_directory_in_use_is_refused_before_the_audit(tmp_path: Path, kind: str) -> None:
    _publish(VIOLATING, tmp_path / "log")
    out = tmp_path / "evidence"
    if kind == "full":
        out.mkdir()
        (out / "earlier").write_text("evidence of another audit")
    else:
        out.write_text("a file")
    code, output = _audit(str(tmp_path / "log"), "--evidence", str(out))
    assert code == 2
    assert "error[audit_evidence]" in output and "log      " not in output  # nothing audited
    assert (
        (sorted(p.name for p in out.iterdir()) == ["earlier"])
        if kind == "full"
        else (out.read_text() == "a file")
    )


def test_a_log_that_changed_since_the_audit_is_refused(tmp_path: Path) -> None:
    files = publish(VIOLATING)
    policy = parse_policy(Path(POLICY).read_bytes())
    when = datetime(2027, 1, 1, tzinfo=UTC)
    report = audit_log(memory_fetcher(files), policy, checks=default_checks({}, None), as_of=when)
    assert not report.clean
    rewritten = publish([e.replace(b"golden0003", b"golden0099") for e in VIOLATING])
    out = tmp_path / "evidence"
    with pytest.raises(EvidenceError, match="no longer match the checkpoint audited"):
        write_evidence(memory_fetcher(rewritten), report, out)
    assert list(tmp_path.iterdir()) == []  # neither the directory nor its staging copy


def test_evidence_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence_module, "MAX_EVIDENCE_ENTRIES", 3)
    _publish(VIOLATING, tmp_path / "log")
    out = tmp_path / "evidence"
    code, output = _audit(str(tmp_path / "log"), "--evidence", str(out))
    assert code == 1
    assert "evidence 3 entries with their receipts (1 more named, not written)" in output
    assert sorted(int(p.name) for p in (out / "entries").iterdir() if p.suffix == "") == NAMED[:3]


def test_evidence_from_a_log_read_over_http(tmp_path: Path) -> None:
    _publish(VIOLATING, tmp_path / "log")
    with serving(tmp_path / "log") as served:
        code, output = _audit(served.url, "--evidence", str(tmp_path / "evidence"))
    assert code == 1, output
    receipts = [str(tmp_path / "evidence" / "entries" / f"{i}.tlog-proof") for i in NAMED]
    assert _check(*receipts, "--vkey", LOG_VKEY)[0] == 0


def test_evidence_over_http_reads_its_files_ahead(tmp_path: Path) -> None:
    """Each named bundle and its tile are asked for at once, each once, as the audit reads
    them: over a network, evidence of many bundles does not pay a round trip per file."""
    files = _publish(VIOLATING, tmp_path / "log")
    policy = parse_policy(Path(POLICY).read_bytes())
    when = datetime(2027, 1, 1, tzinfo=UTC)
    report = audit_log(memory_fetcher(files), policy, checks=default_checks({}, None), as_of=when)
    with serving(tmp_path / "log") as served:
        served.delay = 0.05  # a round trip: files asked for one after another would not overlap
        fetch = url_fetcher(served.url)
        try:
            written = write_evidence(fetch, report, tmp_path / "evidence")
        finally:
            fetch.close()
    assert written.proved == tuple(NAMED)
    ahead = ["tile/entries/000", "tile/0/000", "tile/entries/001.p/41", "tile/0/001.p/41"]
    above = ["tile/1/000.p/1"]  # the few tiles above level 0, asked for when first needed
    assert sorted(served.paths()) == sorted(ahead + above)  # each once, and no other
    assert served.most_in_flight >= len(ahead)


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    _publish(VIOLATING, tmp_path / "log")
    assert _audit(str(tmp_path / "log"), "--evidence", str(tmp_path / "evidence"))[0] == 1
    return tmp_path / "evidence" / "entries"


def test_an_altered_entry_fails_its_receipt(evidence: Path) -> None:
    (evidence / "28").write_bytes((evidence / "28").read_bytes().replace(b"0003", b"0004"))
    code, output = _check(str(evidence / "28.tlog-proof"), str(evidence / "34.tlog-proof"),
                          "--policy", POLICY)  # fmt: skip
    assert code == 1
    assert "1 of 2 receipt(s) verified, 1 failed" in output
    assert "this is not entry 28 of the log at size 297" in output


def test_an_entry_passed_as_another_fails(evidence: Path) -> None:
    args = [str(evidence / "28.tlog-proof"), "--entry", str(evidence / "34"), "--policy", POLICY]
    code, output = _check(*args)
    assert code == 1 and "this is not entry 28" in output


def test_a_receipt_checked_against_another_log_or_quorum_fails(
    evidence: Path, tmp_path: Path
) -> None:
    _, other = generate_key(ORIGIN)  # a key of the same name, but not the log's
    code, output = _check(str(evidence / "28.tlog-proof"), "--vkey", other)
    assert code == 1 and "checkpoint is not accepted" in output
    stricter = tmp_path / "stricter"
    text = Path(POLICY).read_text()
    _, w2 = generate_cosigner_key("witness.custodes.example/w2")
    stricter.write_text(
        text.replace("quorum w1", f"witness w2 {w2}\ngroup both all w1 w2\nquorum both")
    )
    assert len(parse_policy(stricter.read_bytes()).witnesses) == 2
    code, output = _check(str(evidence / "28.tlog-proof"), "--policy", str(stricter))
    assert code == 1 and "quorum both is not met" in output


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            "not a receipt\n\nnor a checkpoint\n",
            "receipt does not start with c2sp.org/tlog-proof@v1",
        ),
        ("c2sp.org/tlog-proof@v1\nindex 28\n\n", "receipt has no blank line"),
        ("x" * (512 * 1024 + 1), "is over 524288 bytes"),
    ],
)
def test_a_malformed_receipt_fails_with_its_reason(
    evidence: Path, content: str, reason: str
) -> None:
    (evidence / "28.tlog-proof").write_text(content)
    code, output = _check(str(evidence / "28.tlog-proof"), "--policy", POLICY)
    assert code == 1 and reason in output, output


def test_a_receipt_without_its_entry_fails(evidence: Path) -> None:
    (evidence / "28").unlink()
    code, output = _check(str(evidence / "28.tlog-proof"), "--policy", POLICY)
    assert code == 1 and "No such file or directory" in output


def test_an_evidence_directory_is_checked_whole_in_entry_order(evidence: Path) -> None:
    code, output = _check(str(evidence.parent), "--policy", POLICY)
    assert code == 0, output
    assert "4 of 4 receipt(s) verified" in output
    cells = [line.split("│")[2].strip() for line in output.splitlines() if "│" in line]
    assert [cell for cell in cells if cell] == [str(i) for i in NAMED]


def test_a_policy_that_cannot_be_read_stops_the_check(evidence: Path, tmp_path: Path) -> None:
    receipt = str(evidence / "28.tlog-proof")
    code, output = _check(receipt, "--policy", str(tmp_path / "missing"))
    assert code == 2 and "error[audit_io]" in output and "No such file or directory" in output
    code, output = _check(receipt, "--vkey", "not a key")
    assert code == 2 and "error[audit_policy]" in output
    code, output = _check(str(tmp_path / "log"), "--policy", POLICY)  # a directory of none
    assert code == 2 and "no .tlog-proof files in" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give one of --policy and --vkey"),
        (["--policy", POLICY, "--vkey", LOG_VKEY], "give one of --policy and --vkey"),
        (["--policy", POLICY, "--entry", "x", "EXTRA"], "--entry goes with a single receipt"),
    ],
)
def test_usage_errors_exit_two(evidence: Path, args: list[str], message: str) -> None:
    receipt = str(evidence / "28.tlog-proof")
    args = [evidence.name if a == "EXTRA" else a for a in args]
    code, output = _check(receipt, *args)
    assert code == 2 and message in output


def test_a_receipt_named_otherwise_needs_its_entry(evidence: Path) -> None:
    renamed = evidence / "receipt.txt"
    (evidence / "28.tlog-proof").rename(renamed)
    code, output = _check(str(renamed), "--policy", POLICY)
    assert code == 2 and "pass its entry with --entry" in output
    code, output = _check(str(renamed), "--entry", str(evidence / "28"), "--policy", POLICY)
    assert code == 0, output


MUTATIONS = 2000


def test_no_changed_byte_of_a_receipt_or_its_entry_verifies(evidence: Path) -> None:
    """What a court relies on: a receipt and its entry verify as they were written, and
    with any one byte changed, never."""
    checker = EvidenceChecker(parse_policy(Path(POLICY).read_bytes()))  # one, remembering
    text, entry = (evidence / "290.tlog-proof").read_bytes(), (evidence / "290").read_bytes()
    assert checker.check(parse_receipt(text.decode()), entry).index == 290
    rng = random.Random(6962)
    refused = 0
    for _ in range(MUTATIONS):
        receipt, data = bytearray(text), bytearray(entry)
        target = receipt if rng.random() < 0.7 else data
        at = rng.randrange(len(target))
        target[at] = (target[at] + rng.randrange(1, 256)) % 256
        with pytest.raises((TlogError, UnicodeDecodeError)):
            checker.check(parse_receipt(bytes(receipt).decode()), bytes(data))
        refused += 1
    print(f"\n{refused} receipts or entries with one byte changed, every one refused")
    assert refused == MUTATIONS


def test_a_checkpoint_shared_by_receipts_is_verified_once(
    evidence: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []
    verify = verify_checkpoint

    def counted(note: bytes, policy: Policy) -> Any:
        calls.append(note)
        return verify(note, policy)

    monkeypatch.setattr(evidence_module, "verify_checkpoint", counted)
    checker = EvidenceChecker(parse_policy(Path(POLICY).read_bytes()))
    for i in NAMED:
        receipt = parse_receipt((evidence / f"{i}.tlog-proof").read_text())
        assert checker.check(receipt, (evidence / str(i)).read_bytes()).index == i
    assert len(calls) == 1
    assert check_evidence(receipt, (evidence / str(NAMED[-1])).read_bytes(), checker.policy)
