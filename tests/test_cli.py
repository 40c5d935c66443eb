"""The command line: init, demo, log key/verify/prove, and clear one-line errors."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from custodes.cli import app
from custodes.deployment import open_deployment
from custodes.settings import load_settings
from custodes.tlog import leaf_hash, new_verifier, parse_receipt
from custodes.tlog.receipt import check_receipt
from custodes.web.app import create_app

runner = CliRunner()


def test_init_creates_key_origin_and_signed_empty_checkpoint(tmp_path: Path) -> None:
    data = tmp_path / "d"
    result = runner.invoke(app, ["init", "--data", str(data), "--origin", "x.example/log"])
    assert result.exit_code == 0, result.output
    assert (data / "keys" / "log.skey").stat().st_mode & 0o777 == 0o600
    vkey = (data / "keys" / "log.vkey").read_text().strip()
    assert vkey.startswith("x.example/log+")
    assert (data / "log" / "checkpoint").read_text().startswith("x.example/log\n0\n")
    again = runner.invoke(app, ["init", "--data", str(data)])
    assert again.exit_code == 1
    assert "already initialised" in again.output


def test_demo_no_serve_builds_a_verifiable_log(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--no-serve", "--data", str(data), "--events", "600"])
    assert result.exit_code == 0, result.output
    assert "Audited from the published files alone: clean, 600 events" in result.output
    audit = runner.invoke(
        app, ["audit", str(data / "log"), "--policy", str(data / "audit.policy"), "--no-state"]
    )
    assert audit.exit_code == 0 and "clean: no violations" in audit.output
    key = runner.invoke(app, ["log", "key", "--data", str(data)])
    assert key.exit_code == 0
    verifier = new_verifier(key.output.strip())
    verify = runner.invoke(app, ["log", "verify", str(data)])
    assert verify.exit_code == 0, verify.output
    assert "size 600" in verify.output
    prove = runner.invoke(app, ["log", "prove", "421", "--data", str(data)])
    assert prove.exit_code == 0, prove.output
    receipt = parse_receipt(prove.output)
    with open_deployment(load_settings(data)) as dep:
        entry = dep.ledger.entry(421)
    cp = check_receipt(receipt, entry, [verifier], "demo.custodes.example/log")
    assert cp.size == 600
    assert leaf_hash(entry)  # the receipt is for exactly this entry
    saved = runner.invoke(
        app, ["log", "prove", "421", "--data", str(data), "--out", str(tmp_path / "p")]
    )
    assert saved.exit_code == 0, saved.output
    assert (tmp_path / "p" / "421").read_bytes() == entry
    assert (tmp_path / "p" / "421.tlog-proof").read_text() == prove.output
    checked = runner.invoke(
        app, ["log", "check", str(tmp_path / "p"), "--vkey", key.output.strip()]
    )
    assert checked.exit_code == 0 and "1 of 1 receipt(s) verified" in checked.output
    tampered = runner.invoke(app, ["log", "prove", "600", "--data", str(data)])
    assert tampered.exit_code == 1
    assert "error[not_found]" in tampered.output


def test_log_verify_reports_tampering_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    runner.invoke(app, ["demo", "--no-serve", "--data", str(data), "--events", "300"])
    bundle = data / "log" / "tile" / "entries" / "001.p/44"
    raw = bytearray(bundle.read_bytes())
    raw[-1] ^= 0x20
    bundle.write_bytes(bytes(raw))
    result = runner.invoke(app, ["log", "verify", str(data)])
    assert result.exit_code == 1
    assert result.output.startswith("error[log_verification]")
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["log", "key", "--data", str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert "error[config]" in result.output and "custodes init" in result.output


def test_serve_publishes_log_with_tlog_tiles_headers(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    runner.invoke(app, ["demo", "--no-serve", "--data", str(data), "--events", "300"])
    with open_deployment(load_settings(data)) as dep:
        client = TestClient(create_app(dep))
        cp = client.get("/log/checkpoint")
        assert cp.status_code == 200
        assert cp.headers["content-type"] == "text/plain; charset=utf-8"
        assert "max-age=2" in cp.headers["cache-control"]
        tile = client.get("/log/tile/0/000")
        assert tile.status_code == 200 and len(tile.content) == 8192
        assert tile.headers["content-type"] == "application/octet-stream"
        assert "immutable" in tile.headers["cache-control"]
        assert client.get("/log/tile/entries/001.p/44").status_code == 200
        for bad in ("/log/tile/0/0", "/log/tile/../keys/log.skey", "/log/tile/0/001.p/256"):
            r = client.get(bad)
            assert r.status_code == 404
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "not_found"
        assert client.post("/log/checkpoint").status_code == 405


def test_demo_carries_a_lawful_case_end_to_end_and_staff_can_sign_in(tmp_path: Path) -> None:
    import pyotp

    from custodes.cli.demo import DEMO_PASSWORD, demo_services
    from custodes.web.auth import login
    from custodes.web.context import ApiConfig

    data = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--no-serve", "--data", str(data)])
    assert result.exit_code == 0, result.output
    # the lawful warrant is carried all the way, in this order
    steps = ["demand.received", "demand.screened", "approval.given", "approval.given",
             "demand.approved", "production.delivered", "demand.executed",
             "production.downloaded", "notice.sent", "demand.notified"]  # fmt: skip
    table = result.output.split("end to end", 1)[1].split("Console sign-in", 1)[0]
    shown = [w for line in table.splitlines() for w in line.split() if w in steps]
    assert shown == steps
    secret = next(
        line.split("│")[3].strip()
        for line in result.output.splitlines()
        if "s-appr-dub" in line and "approver" in line and len(line.split("│")) > 3
    )
    with (
        open_deployment(load_settings(data)) as dep,
        demo_services(dep, data / "platform.db") as services,
    ):
        session = login(
            services, ApiConfig(), "s-appr-dub", DEMO_PASSWORD, pyotp.TOTP(secret).now()
        )
        assert session.staff.id == "s-appr-dub"


def test_serve_runs_the_api_console_and_log_until_stopped(tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    data = tmp_path / "d"
    assert runner.invoke(app, ["init", "--data", str(data)]).exit_code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "custodes", "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"{base}/log/checkpoint", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "custodes serve did not start in 30 s"
                time.sleep(0.2)
        assert r.status_code == 200 and r.text.startswith("custodes.example/log\n")
        assert httpx.get(f"{base}/console/log", timeout=5).status_code == 200
        assert httpx.get(f"{base}/openapi.json", timeout=5).json()["info"]["title"] == "custodes"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
