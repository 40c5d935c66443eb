"""The command line of the API: register the first administrator and an authority with a
generated key, then submit a demand to a running server as the authority's system would,
and see a revoked key refused."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from custodes.cli import app
from custodes.cli.authority import deployment_services
from custodes.deployment import open_deployment
from custodes.model import Channel, ChannelKind
from custodes.service.authorities import get_authority
from custodes.settings import load_settings
from custodes.tlog import generate_key
from custodes.web.app import create_app
from custodes.web.client import AuthorityKey, format_private_jwk

runner = CliRunner()
DEMAND = {
    "kind": "disclosure",
    "instrument": {"kind": "search_warrant", "reference": "2:24-mj-0042"},
    "targets": [{"kind": "account", "id": "u-us-content"}],
    "categories": ["subscriber_info"],
    "offence": {"category": "fraud"},
    "time_range": {"start": "2024-01-01T00:00:00Z", "end": "2024-03-01T00:00:00Z"},
}


def _ok(args: list[str], stdin: str | None = None) -> str:
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    _ok(["init", "--data", str(data), "--origin", "cli.test/log"])
    return data


@pytest.fixture
def server(data: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _ok(["staff", "list", "--data", str(data)])  # builds the platform before the server opens it
    with open_deployment(load_settings(data)) as dep:
        dep.start()  # as custodes serve does: the log signs checkpoints as entries come
        config = uvicorn.Config(create_app(dep), host="127.0.0.1", port=port, log_level="error")
        serving = uvicorn.Server(config)
        thread = threading.Thread(target=serving.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(url + "/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
        serving.should_exit = True
        thread.join(timeout=10)


def test_the_first_administrator_needs_nobody_and_the_second_needs_one(data: Path) -> None:
    out = _ok(["staff", "add", "root", "--role", "admin", "--location", "IE",
               "--password-stdin", "--data", str(data)], "a long enough password\n")  # fmt: skip
    assert re.search(r"TOTP secret for root \(shown once\): [A-Z2-7]{32}", out)
    assert "otpauth://totp/custodes:root?secret=" in out
    result = runner.invoke(app, ["staff", "add", "eve", "--role", "admin", "--location", "CN",
                                 "--password-stdin", "--data", str(data)],
                           input="another long password\n")  # fmt: skip
    assert result.exit_code == 1 and "error[forbidden]" in result.output
    weak = runner.invoke(app, ["staff", "add", "x", "--role", "admin", "--location", "IE",
                               "--password-stdin", "--by", "root", "--data", str(data)],
                         input="short\n")  # fmt: skip
    assert weak.exit_code == 1 and "error[weak_password]" in weak.output


def test_an_authority_submits_with_its_generated_key_until_it_is_revoked(
    data: Path, server: str, tmp_path: Path
) -> None:
    _ok(["staff", "add", "root", "--role", "admin", "--location", "IE", "--password-stdin",
         "--data", str(data)], "a long enough password\n")  # fmt: skip
    key = tmp_path / "fbi.jwk"
    out = _ok(["authority", "add", "us-fbi", "--name", "FBI San Francisco", "--kind", "police",
               "--jurisdiction", "US", "--by", "root", "--generate-key", str(key),
               "--channel", "phone:+1 415 555 0100", "--data", str(data)])  # fmt: skip
    keyid = re.search(r"key id: (us-fbi/ed25519:[A-Za-z0-9_-]{43})", out)
    assert keyid is not None and key.stat().st_mode & 0o777 == 0o600
    assert json.loads(key.read_text())["kid"] == keyid.group(1)
    assert keyid.group(1) in _ok(["authority", "list", "--data", str(data)])
    demand, document = tmp_path / "demand.json", tmp_path / "warrant.pdf"
    demand.write_text(json.dumps(DEMAND))
    document.write_bytes(b"%PDF-1.7 the warrant, signed by the magistrate")
    out = _ok(["submit", str(demand), "--key", str(key), "--url", server,
               "--document", str(document)])  # fmt: skip
    assert re.fullmatch(r"demand d_[0-9a-f]{24}: in_review\n", out), out
    vkey = (data / "keys" / "log.vkey").read_text().strip()
    kept = tmp_path / "receipts"
    out = _ok(["submit", str(demand), "--key", str(key), "--url", server, "--document",
               str(document), "--receipts", str(kept), "--vkey", vkey])  # fmt: skip
    assert "receipts verified against cli.test/log" in out
    kinds = re.search(r"saved in .*: (.*)$", " ".join(out.split()))
    assert kinds is not None and "demand.received" in kinds.group(1)
    assert len(list(kept.glob("*.tlog-proof"))) == len(kinds.group(1).split(", ")) >= 2
    checked = runner.invoke(app, ["log", "check", str(kept), "--vkey", vkey])
    assert checked.exit_code == 0, checked.output
    _, other = generate_key("cli.test/log")  # the log's name, but not its key
    wrong = runner.invoke(app, ["submit", str(demand), "--key", str(key), "--url", server,
                                "--receipts", str(tmp_path / "r2"), "--vkey", other])  # fmt: skip
    assert wrong.exit_code == 1 and "error[receipt_invalid]" in wrong.output
    assert not (tmp_path / "r2").exists()
    usage = runner.invoke(app, ["submit", str(demand), "--key", str(key), "--url", server,
                                "--receipts", str(tmp_path / "r3")])  # fmt: skip
    assert usage.exit_code == 2 and "--receipts needs one of --vkey and --policy" in usage.output
    _ok(["authority", "revoke-key", keyid.group(1), "--by", "root", "--data", str(data)])
    refused = runner.invoke(app, ["submit", str(demand), "--key", str(key), "--url", server])
    assert refused.exit_code == 1 and "error[key_revoked]" in refused.output


def test_an_administrator_adds_and_removes_call_back_channels(data: Path) -> None:
    _ok(["staff", "add", "root", "--role", "admin", "--location", "IE", "--password-stdin",
         "--data", str(data)], "a long enough password\n")  # fmt: skip
    _ok(["staff", "add", "intake", "--role", "intake", "--location", "IE", "--password-stdin",
         "--by", "root", "--data", str(data)], "a long enough password\n")  # fmt: skip
    _ok(["authority", "add", "us-fbi", "--name", "FBI San Francisco", "--kind", "police",
         "--jurisdiction", "US", "--by", "root", "--generate-key", str(data / "fbi.jwk"),
         "--channel", "phone:+1 415 555 0100", "--data", str(data)])  # fmt: skip
    where = ["--data", str(data)]
    out = _ok(["authority", "channel-add", "us-fbi", "email:duty@fbi.example", "--by", "root",
               *where])  # fmt: skip
    assert out == "us-fbi: email channel added\n"
    out = _ok(["authority", "channel-remove", "us-fbi", "phone:+1 415 555 0100", "--by", "root",
               *where])  # fmt: skip
    assert out == "us-fbi: phone channel removed\n"
    refused = {
        "conflict": ["channel-add", "us-fbi", "email:duty@fbi.example", "--by", "root"],
        "not_found": ["channel-remove", "us-fbi", "phone:+1 415 555 0100", "--by", "root"],
        "forbidden": ["channel-add", "us-fbi", "portal:https://le.fbi.example", "--by", "intake"],
        "bad_input": ["channel-add", "us-fbi", "fax:+1 415 555 0199", "--by", "root"],
    }
    for code, args in refused.items():
        result = runner.invoke(app, ["authority", *args, *where])
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"error[{code}]") and result.output.count("\n") == 1
    with deployment_services(data) as services:
        channels = get_authority(services, "us-fbi").channels
    assert channels == (Channel(ChannelKind.EMAIL, "duty@fbi.example"),)


def test_submit_refuses_a_document_that_is_not_the_one_cited(tmp_path: Path) -> None:
    demand, document, key = tmp_path / "d.json", tmp_path / "w.pdf", tmp_path / "k.jwk"
    instrument = {"kind": "search_warrant", "document_sha256": "ab" * 32}
    cited = {**DEMAND, "instrument": instrument}
    demand.write_text(json.dumps(cited))
    document.write_bytes(b"another document")
    key.write_text(format_private_jwk(AuthorityKey.generate("us-fbi")))
    result = runner.invoke(app, ["submit", str(demand), "--key", str(key), "--url",
                                 "http://127.0.0.1:9", "--document", str(document)])  # fmt: skip
    assert result.exit_code == 1 and "error[bad_input]" in result.output
