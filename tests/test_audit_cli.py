"""``custodes audit``: exit status, the report, JSON, and where it keeps its state."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from custodes.cli.audit import audit

GOLDEN = Path(__file__).parent / "testdata" / "golden"
POLICY = str(GOLDEN / "policy")
LATER = "2027-01-01T00:00:00Z"

app = typer.Typer()
app.command("audit")(audit)


@app.command("version")
def _version() -> None:  # a second command keeps ``audit`` a named subcommand
    pass


runner = CliRunner()


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))


def test_clean_log_exits_zero_and_remembers_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", str(GOLDEN), "--policy", POLICY, "--as-of", LATER])
    assert result.exit_code == 0, result.output
    assert "clean: no violations" in result.output
    assert "size 300" in result.output and "witness  w1" in result.output
    saved = list((tmp_path / "state-home" / "custodes" / "audit").glob("*.checkpoint"))
    assert [p.read_bytes() for p in saved] == [(GOLDEN / "log" / "checkpoint").read_bytes()]
    again = runner.invoke(app, ["audit", str(GOLDEN), "--policy", POLICY, "--as-of", LATER])
    assert "seen     size 300" in again.output


def test_tampered_copy_exits_one_and_names_the_entry(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(GOLDEN / "log", copy)
    bundle = copy / "tile" / "entries" / "001.p" / "44"
    data = bytearray(bundle.read_bytes())
    data[-3] ^= 0x01  # inside the last entry, 299
    bundle.write_bytes(bytes(data))
    result = runner.invoke(app, ["audit", str(copy), "--policy", POLICY, "--no-state"])
    assert result.exit_code == 1, result.output
    assert "entry_mismatch" in result.output and "299" in result.output


def test_json_report_lists_findings_with_evidence(tmp_path: Path) -> None:
    rolled_back = tmp_path / "old"
    shutil.copytree(GOLDEN / "log", rolled_back)
    (rolled_back / "checkpoint").write_bytes((GOLDEN / "checkpoint-150").read_bytes())
    state = tmp_path / "s.checkpoint"
    first = runner.invoke(app, ["audit", str(GOLDEN), "--policy", POLICY, "--state", str(state)])
    assert first.exit_code == 0, first.output
    args = ["audit", str(rolled_back), "--policy", POLICY, "--state", str(state), "--json"]
    result = runner.invoke(app, [*args, "--as-of", "2026-01-12T00:00:00Z"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["clean"] is False and report["checkpoint"]["size"] == 150
    assert report["previous"]["size"] == 300
    [rollback] = report["findings"]
    assert rollback["code"] == "rollback" and rollback["entries"] == [150]
    assert rollback["evidence"]["seen_checkpoint"].startswith("golden.custodes.example/log\n300\n")
    assert state.read_bytes() == (GOLDEN / "log" / "checkpoint").read_bytes()  # kept as it was


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--policy", "/nonexistent/policy"], "audit_io"),
        (["--policy", str(GOLDEN / "log" / "checkpoint")], "audit_policy"),
        (["--policy", POLICY, "--as-of", "yesterday"], "audit_error"),
        (["--policy", POLICY, "--as-of", "2026-01-01T00:00:00"], "audit_error"),
        (["--policy", POLICY, "--disclosure", POLICY], "audit_openings"),
    ],
)
def test_an_audit_that_cannot_run_exits_two(args: list[str], code: str) -> None:
    result = runner.invoke(app, ["audit", str(GOLDEN), *args])
    assert result.exit_code == 2, result.output
    assert f"error[{code}]" in result.output


def test_unreachable_source_exits_two() -> None:
    result = runner.invoke(app, ["audit", "http://127.0.0.1:9/log/", "--policy", POLICY])
    assert result.exit_code == 2
    assert "error[audit_fetch]" in result.output
