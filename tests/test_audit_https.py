"""Reading a published log over https: the server's certificate must verify, against the
system's CA certificates or only those of ``--ca-file``; anything else stops the audit, or the
report, with one line and changes nothing."""

from __future__ import annotations

import ipaddress
import json
import select
import shutil
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from custodes.audit.auditor import audit_log
from custodes.audit.checks import default_checks
from custodes.audit.errors import FetchError
from custodes.audit.source import open_source, tls_context, url_fetcher
from custodes.cli.audit import audit
from custodes.cli.report import report
from test_audit import GOLDEN, LATER, golden_policy
from test_audit_http import Served, serving

POLICY = str(GOLDEN / "policy")
AS_OF = LATER.isoformat()

cli = typer.Typer()
cli.command("audit")(audit)
cli.command("report")(report)
runner = CliRunner()


@dataclass
class Pki:
    """A private CA and the files a test needs: its certificate, and a server's."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    ca_file: Path
    dir: Path

    def server(self, names: list[x509.GeneralName], *, expired: bool = False) -> ssl.SSLContext:
        """A server's TLS settings, with a certificate this CA issued for ``names``."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        start, end = (now - timedelta(days=30), now - timedelta(days=1)) if expired else (
            now - timedelta(hours=1), now + timedelta(days=1)
        )  # fmt: skip
        cert = (
            _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "server")]), self.cert)
            .public_key(key.public_key())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        chain, key_file = self.dir / "server.pem", self.dir / "server.key"
        chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key_file)
        return context


def _builder(subject: x509.Name, issuer: x509.Certificate | None) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .serial_number(x509.random_serial_number())
    )


LOCAL: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
"""What the tests' server is called in its URLs."""


def _ca(where: Path, name: str) -> Pki:
    """A new CA called ``name``, its certificate in ``where/ca.pem``."""
    where.mkdir(exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), None)
        .public_key(key.public_key())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    (where / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Pki(key, cert, where / "ca.pem", where)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return _ca(tmp_path, "custodes test CA")


@pytest.fixture
def log_root(tmp_path: Path) -> Path:
    root = tmp_path / "log"
    shutil.copytree(GOLDEN / "log", root)
    return root


@pytest.fixture
def served(pki: Pki, log_root: Path) -> Iterator[Served]:
    with serving(log_root, pki.server(LOCAL)) as state:
        yield state


@pytest.fixture(autouse=True)
def _no_outside_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No state, CA file or proxy of the machine's own: each test says what it uses."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)


def _saved_state(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "state-home").rglob("*.checkpoint"))


def test_audit_over_https_with_the_platforms_ca_is_clean(served: Served, pki: Pki) -> None:
    args = ["audit", served.url, "--policy", POLICY, "--as-of", AS_OF]
    result = runner.invoke(cli, [*args, "--ca-file", str(pki.ca_file)])
    assert result.exit_code == 0, result.output
    assert "clean: no violations" in result.output and "300 events" in result.output
    connections = {port for _, port in served.requests}
    assert len(connections) < len(served.requests), "TLS connections are kept and used again"


def test_a_certificate_the_system_does_not_trust_stops_the_audit_and_saves_nothing(
    served: Served, tmp_path: Path
) -> None:
    result = runner.invoke(cli, ["audit", served.url, "--policy", POLICY, "--as-of", AS_OF])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error[audit_fetch]: cannot read https://127.0.0.1:")
    assert "the server's certificate does not verify" in lines[0]
    assert served.requests == [], "nothing was asked of a server that did not prove itself"
    assert _saved_state(tmp_path) == []


def test_a_ca_file_of_the_machine_is_used_when_none_is_given(
    served: Served, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))  # how OpenSSL is told of another CA
    report = audit_log(open_source(served.url), golden_policy(), as_of=LATER)
    assert report.clean and report.tiles_checked > 0


@pytest.mark.parametrize(
    ("names", "expired", "why"),
    [
        ([x509.DNSName("log.example.org")], False, "IP address mismatch"),
        (LOCAL, True, "certificate has expired"),
    ],
    ids=["another-name", "expired"],
)
def test_a_certificate_for_another_name_or_out_of_date_is_refused(
    pki: Pki, log_root: Path, names: list[x509.GeneralName], expired: bool, why: str
) -> None:
    with serving(log_root, pki.server(names, expired=expired)) as state:
        fetch = url_fetcher(state.url, tls=tls_context(pki.ca_file))
        with pytest.raises(FetchError, match=f"certificate does not verify: {why}"):
            audit_log(fetch, golden_policy(), checks=default_checks(), as_of=LATER)
        fetch.close()
        assert state.requests == []


def test_only_the_ca_file_is_trusted_when_one_is_given(served: Served, tmp_path: Path) -> None:
    other = _ca(tmp_path / "other", "another CA")
    fetch = url_fetcher(served.url, tls=tls_context(other.ca_file))
    with pytest.raises(FetchError, match="does not verify: unable to get local issuer"):
        fetch("checkpoint")


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read the CA file"),
        (b"not a certificate\n", "is not a file of PEM CA certificates"),
    ],
    ids=["missing", "not-pem"],
)
def test_a_ca_file_that_cannot_be_read_is_one_line_and_changes_nothing(
    served: Served, tmp_path: Path, content: bytes | None, said: str
) -> None:
    ca_file = tmp_path / "given.pem"
    if content is not None:
        ca_file.write_bytes(content)
    for command in (
        ["audit", served.url, "--policy", POLICY, "--ca-file", str(ca_file)],
        ["report", served.url, "--period", "2026", "--policy", POLICY, "--ca-file", str(ca_file),
         "--out", str(tmp_path / "out")],
    ):  # fmt: skip
        result = runner.invoke(cli, command)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and said in lines[0], result.output
    assert served.requests == [] and _saved_state(tmp_path) == []
    assert not (tmp_path / "out").exists()


def test_a_report_is_made_and_verified_from_a_log_read_over_https(
    served: Served, pki: Pki, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ca = ["--ca-file", str(pki.ca_file)]
    made = runner.invoke(
        cli, ["report", served.url, "--period", "2026", "--policy", POLICY, "--out", str(out), *ca]
    )
    assert made.exit_code == 0, made.output
    named = json.loads((out / "report.json").read_bytes())["source"]
    assert named == served.url, "the report names where its log was read"
    checked = runner.invoke(cli, ["report", "--verify", str(out), *ca])  # the source it names
    assert checked.exit_code == 0, checked.output
    assert "verified" in checked.output
    untrusted = runner.invoke(cli, ["report", "--verify", str(out)])
    assert untrusted.exit_code == 2, untrusted.output
    assert "the server's certificate does not verify" in untrusted.output


@dataclass
class Tunnels:
    """A proxy on 127.0.0.1 that only tunnels (HTTP CONNECT), and what it was asked."""

    url: str
    asked: list[str]


@pytest.fixture
def proxy() -> Iterator[Tunnels]:
    asked: list[str] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request = self.rfile.readline(1024).decode("ascii").strip()
            while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # the request's headers
            asked.append(request)
            method, target, _ = request.split()
            host, port = target.rsplit(":", 1)
            if method != "CONNECT":
                self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            with socket.create_connection((host, int(port)), timeout=5) as upstream:
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                _pipe(self.connection, upstream)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = False
        block_on_close = True

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Tunnels(f"http://127.0.0.1:{server.server_address[1]}", asked)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes or resets, or both are idle for 5 s."""
    ends = {a: b, b: a}
    while True:
        ready, _, _ = select.select(list(ends), [], [], 5)
        if not ready:
            return
        for sock in ready:
            try:
                data = sock.recv(65536)
                if data:
                    ends[sock].sendall(data)
            except ConnectionError:  # a client that refused the server's certificate
                return
            if not data:
                return


def test_https_through_a_proxy_is_tunnelled_and_verified_end_to_end(
    served: Served, pki: Pki, proxy: Tunnels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", proxy.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    fetch = url_fetcher(served.url, tls=tls_context(pki.ca_file))
    report = audit_log(fetch, golden_policy(), checks=default_checks(), as_of=LATER)
    fetch.close()
    assert report.clean and report.events == 300
    port = served.url.rstrip("/").rsplit(":", 1)[1]
    assert proxy.asked and {" ".join(r.split()[:2]) for r in proxy.asked} == {
        f"CONNECT 127.0.0.1:{port}"
    }, "the proxy was asked only for a tunnel to the log's server"
    assert len(proxy.asked) < len(served.requests), "tunnels are kept and used again"
    untrusted = url_fetcher(served.url)  # the proxy cannot stand in for the server
    with pytest.raises(FetchError, match="certificate does not verify"):
        untrusted("checkpoint")


def test_https_to_a_server_that_speaks_no_tls_is_one_line(log_root: Path) -> None:
    with serving(log_root) as plain:  # http only
        url = plain.url.replace("http://", "https://")
        with pytest.raises(FetchError, match=r"^cannot read https://.*/checkpoint: TLS failed: \w"):
            url_fetcher(url)("checkpoint")
