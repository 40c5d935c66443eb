"""``custodes audit`` of a log read over HTTP, where each request waits a network round trip.

An auditor reads a published log from the platform's web server or object store, often
across an ocean: a million events are 7,813 files (a bundle and a level-0 tile per 256
entries), and each request costs at least a round trip however fast the server is. This
benchmark publishes :data:`EVENTS` events of the audit benchmark's kinds
(:func:`bench.audit_bench.synthetic_leaves`), serves them from a second process on
127.0.0.1 with HTTP/1.1 and a pause of :data:`ROUND_TRIP` before every answer, and times:

- the baselines: every file the audit needs downloaded one after another on one kept-alive
  connection, without looking at it (what any reader that asks for one file at a time
  pays); and the same audit from the directory (no network at all);
- ``custodes audit URL`` as it reads a URL (its read-ahead), and with the read-ahead off;
- the same over https (TLS 1.3, a certificate of the server's own for 127.0.0.1, given to the
  audit as its CA file): what verified TLS adds when connections are kept alive;
- ``custodes audit URL --cache DIR`` twice: filling the cache, then reading the full tiles and
  bundles from it (the log unchanged in between, as a daily audit mostly finds it).

The server process is started here and ended here, by its process id.
"""

from __future__ import annotations

import http.server
import ipaddress
import multiprocessing
import ssl
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.audit_bench import AS_OF, publish, synthetic_leaves
from bench.audit_bench import _progress as bar_of_audit
from bench.common import console, show
from custodes.audit.auditor import audit_log
from custodes.audit.cache import tile_cache
from custodes.audit.checks import default_checks
from custodes.audit.logcheck import Fetch, dir_fetcher, entry_files
from custodes.audit.policy import NONE, Policy, PolicyLog
from custodes.audit.source import tls_context, url_fetcher
from custodes.policy import load_pack

EVENTS = 200_000
ROUND_TRIP = 0.010
"""Seconds the server waits before each answer: a round trip to a server in the same region
of the world (across an ocean it is ten times that)."""


class _SlowFiles(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # connections kept alive, as a web server or CDN keeps them
    disable_nagle_algorithm = True  # as such servers do: no wait between headers and body

    def do_GET(self) -> None:
        time.sleep(ROUND_TRIP)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _TlsServer(http.server.ThreadingHTTPServer):
    tls: ssl.SSLContext

    def get_request(self) -> tuple[Any, Any]:
        conn, address = super().get_request()
        # the handshake happens in the connection's own thread, at its first read
        return self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), address


def _serve(root: str, ports: Any, cert: str, key: str) -> None:
    """The server process: serve ``root`` on 127.0.0.1 over http and https (with the
    certificate ``cert`` and its ``key``), telling the two ports it got."""

    def handler(*args: Any, **kwargs: Any) -> _SlowFiles:
        return _SlowFiles(*args, directory=root, **kwargs)

    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    secure = _TlsServer(("127.0.0.1", 0), handler)
    secure.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    secure.tls.load_cert_chain(cert, key)
    threading.Thread(target=secure.serve_forever, daemon=True).start()
    ports[1] = secure.server_address[1]
    ports[0] = plain.server_address[1]
    plain.serve_forever()


def _certificate(where: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as files in ``where``: the server's
    certificate and, for the audit, its CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench log server")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder(name, name, key.public_key(), x509.random_serial_number(),
                                now - timedelta(hours=1), now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = where / "server.pem", where / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _download(base: str, n: int) -> float:
    """Seconds to download every bundle and level-0 tile in turn, on one connection."""
    t0 = time.perf_counter()
    with httpx.Client(base_url=base) as client:
        for path in entry_files(n):
            client.get(path).raise_for_status()
    return time.perf_counter() - t0


def _audit(fetch: Fetch, policy: Policy, n: int, label: str) -> float:
    with bar_of_audit() as bar:
        task = bar.add_task(label, total=n)
        t0 = time.perf_counter()
        report = audit_log(
            fetch,
            policy,
            checks=default_checks(),
            as_of=AS_OF,
            progress=lambda done, total: bar.update(task, completed=done),
        )
        elapsed = time.perf_counter() - t0
    assert report.events == n and report.clean, report.findings[:3]
    return elapsed


def bench_audit_http(n: int = EVENTS) -> None:
    with (
        tempfile.TemporaryDirectory() as d,
        tempfile.TemporaryDirectory() as keys,
        tempfile.TemporaryDirectory() as cache,
    ):
        root = Path(d)
        vkey = publish(root, synthetic_leaves(n, load_pack()), n, lambda k: None)
        policy = Policy((PolicyLog(vkey),), (), (), NONE)
        cert, key = _certificate(Path(keys))
        context = multiprocessing.get_context("spawn")
        ports = context.Array("i", 2)
        server = context.Process(
            target=_serve, args=(str(root), ports, str(cert), str(key)), daemon=True
        )
        server.start()
        try:
            while not ports[0]:
                time.sleep(0.01)
            base = f"http://127.0.0.1:{ports[0]}/"
            secure = url_fetcher(f"https://127.0.0.1:{ports[1]}/", tls=tls_context(cert))
            filling = tile_cache(url_fetcher(base), Path(cache))
            cached = tile_cache(url_fetcher(base), Path(cache))
            local = _audit(dir_fetcher(root), policy, n, "audit from the directory")
            fetched = _download(base, n)
            measured = [
                ("download each file in turn", fetched),
                ("audit from the directory", local),
                ("audit over HTTP", _audit(url_fetcher(base), policy, n, "audit over HTTP")),
                ("audit over HTTPS", _audit(secure, policy, n, "audit over HTTPS")),
                ("audit over HTTP, filling a cache",
                 _audit(filling, policy, n, "audit, filling a cache")),
                ("audit over HTTP, with the cache",
                 _audit(cached, policy, n, "audit, with the cache")),
                ("audit over HTTP, no read-ahead",
                 _audit(url_fetcher(base, read_ahead=0), policy, n, "audit, no read-ahead")),
            ]  # fmt: skip
        finally:
            server.terminate()
            server.join()
    files = sum(1 for _ in entry_files(n))
    show(
        f"custodes audit of {n:,} events over HTTP: {files:,} files, "
        f"{ROUND_TRIP * 1000:.0f} ms per request",
        ["measure", "seconds", "/ download in turn", "/ audit from the directory"],
        [[what, f"{s:.2f}", f"{s / fetched:.2f}x", f"{s / local:.2f}x"] for what, s in measured],
    )
    console.print(
        "download each file in turn: every bundle and level-0 tile fetched one after another "
        "on one kept-alive connection, unread (the least a reader that waits for each file "
        "pays); audit from the directory: the same audit with no network. The server waits "
        f"{ROUND_TRIP * 1000:.0f} ms before each answer, as a round trip would."
    )
    console.print(
        f"cache: the first audit kept {filling.stored:,} full tiles and bundles; the second "
        f"read {cached.hits:,} from disk and fetched only the checkpoint and partial tiles "
        f"({cached.stored} kept)."
    )
    console.print(f"chart: {_chart(measured, n, files, CHART)}")


CHART = Path("artifacts/bench/audit-http.svg")
"""Where :func:`bench_audit_http` draws its figures."""


def _chart(measured: list[tuple[str, float]], n: int, files: int, path: Path) -> Path:
    """Each measure's seconds, the baselines in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2))
    labels = [what for what, _ in measured][::-1]
    seconds = [s for _, s in measured][::-1]
    colours = ["tab:blue" if "over HTTP" in label else "tab:grey" for label in labels]
    ax.barh(labels, seconds, color=colours)
    for y, value in enumerate(seconds):
        ax.text(value, y, f" {value:.2f} s", va="center", fontsize=8)
    ax.set(
        title=f"custodes audit of {n:,} events ({files:,} files), "
        f"{ROUND_TRIP * 1000:.0f} ms per request: seconds",
        xlim=(0, max(seconds) * 1.2),
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
