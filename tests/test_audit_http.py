"""Reading a published log over HTTP: kept-alive connections, read-ahead, and the same report
as from the directory, whatever the server answers."""

from __future__ import annotations

import gc
import http.server
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from custodes.audit.auditor import audit_log
from custodes.audit.checks import default_checks
from custodes.audit.errors import FetchError
from custodes.audit.logcheck import MissingFileError, ReadsAhead, _reading_ahead, dir_fetcher
from custodes.audit.source import READ_AHEAD, open_source, url_fetcher
from custodes.tlog import SizeLimitError
from test_audit import GOLDEN, LATER, golden_policy

ENTRY_FILES = ["tile/entries/000", "tile/0/000", "tile/entries/001.p/44", "tile/0/001.p/44"]
"""What an audit of the golden log (300 entries) reads bundle by bundle, in its order."""


@dataclass
class Served:
    """A published log served on 127.0.0.1, and what the server saw."""

    url: str
    root: Path
    delay: float = 0.0
    answers: dict[str, int] = field(default_factory=dict)  # path: status to answer instead
    moved: dict[str, str] = field(default_factory=dict)  # path: where a 301 sends it
    requests: list[tuple[str, int]] = field(default_factory=list)  # path, client port
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@contextmanager
def serving(root: Path, tls: ssl.SSLContext | None = None) -> Iterator[Served]:
    """Serve the published log in ``root`` on 127.0.0.1 (over TLS with ``tls``) until the
    block ends; every connection's thread has ended when it does."""
    state = Served("", root)

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        timeout = 5  # a connection kept alive and left idle ends, and its thread with it

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            path = self.path.lstrip("/")
            with state.lock:
                state.requests.append((path, self.client_address[1]))
                state.in_flight += 1
                state.most_in_flight = max(state.most_in_flight, state.in_flight)
            try:
                time.sleep(state.delay)
                if path in state.answers:
                    self.send_error(state.answers[path])
                elif path in state.moved:
                    self.send_response(301)
                    self.send_header("Location", state.moved[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    super().do_GET()
            finally:
                with state.lock:
                    state.in_flight -= 1

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = False  # joined when the server closes: none outlives its test
        block_on_close = True

        def get_request(self) -> tuple[socket.socket, Any]:
            conn, address = super().get_request()
            if tls is None:
                return conn, address
            # the handshake happens in the connection's own thread, at its first read
            return tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), address

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that refused the server's certificate: what some tests want

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "http" if tls is None else "https"
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/"
    try:
        yield state
    finally:
        gc.collect()  # fetchers the test left in a cycle close their connections
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = tmp_path / "log"
    shutil.copytree(GOLDEN / "log", root)
    with serving(root) as state:
        yield state


def _findings(report: Any) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(f.code, f.detail, f.entries) for f in report.findings]


def test_audit_over_http_reads_ahead_on_kept_alive_connections(served: Served) -> None:
    served.delay = 0.05  # a round trip: the files must be asked for at once to overlap
    fetch = url_fetcher(served.url)
    assert isinstance(fetch, ReadsAhead) and fetch.read_ahead == READ_AHEAD
    report = audit_log(fetch, golden_policy(), checks=default_checks(), as_of=LATER)
    fetch.close()
    local = audit_log(dir_fetcher(GOLDEN / "log"), golden_policy(), checks=default_checks(),
                      as_of=LATER)  # fmt: skip
    assert report.clean and report.events == local.events == 300
    asked = served.paths()
    assert sorted(p for p in asked if p in ENTRY_FILES) == sorted(ENTRY_FILES), "each once"
    assert served.most_in_flight == len(ENTRY_FILES), "every bundle and tile asked for at once"
    connections = {port for _, port in served.requests}
    assert len(connections) < len(asked), "connections are kept alive and used again"


def test_audit_over_http_without_read_ahead_asks_one_file_at_a_time(served: Served) -> None:
    fetch = url_fetcher(served.url, read_ahead=0)
    report = audit_log(fetch, golden_policy(), as_of=LATER)
    fetch.close()
    assert report.clean
    assert served.most_in_flight == 1
    assert len({port for _, port in served.requests}) == 1, "one connection, kept alive"


def test_a_missing_bundle_is_named_over_http_as_in_the_directory(served: Served) -> None:
    (served.root / "tile" / "entries" / "000").unlink()
    over_http = audit_log(open_source(served.url), golden_policy(), as_of=LATER)
    local = audit_log(dir_fetcher(served.root), golden_policy(), as_of=LATER)
    assert ("file_missing", "tile/entries/000 is missing", ()) in _findings(local)
    assert _findings(over_http) == _findings(local)


def test_a_server_error_stops_the_audit_at_the_file_it_hit(served: Served) -> None:
    served.answers["tile/0/001.p/44"] = 503
    with pytest.raises(FetchError, match=r"tile/0/001\.p/44 answered 503"):
        audit_log(open_source(served.url), golden_policy(), as_of=LATER)
    served.answers = {"tile/entries/000": 410}
    report = audit_log(open_source(served.url), golden_policy(), as_of=LATER)
    assert ("file_missing", "tile/entries/000 is missing", ()) in _findings(report)


def test_an_oversized_tile_over_http_is_refused(served: Served) -> None:
    (served.root / "tile" / "0" / "000").write_bytes(bytes(256 * 32 + 1))
    with pytest.raises(SizeLimitError, match="tile/0/000 is over 8192 bytes"):
        audit_log(open_source(served.url), golden_policy(), as_of=LATER)


def test_read_ahead_hands_over_what_fetching_gave_and_holds_no_more_than_asked() -> None:
    lock = threading.Lock()
    busy = most = 0
    calls: list[str] = []

    def fetch(rel: str) -> bytes:
        nonlocal busy, most
        ahead = threading.current_thread().name.startswith("custodes-read-ahead")
        with lock:
            calls.append(rel)
            busy += ahead
            most = max(most, busy)
        time.sleep(0.01)
        with lock:
            busy -= ahead
        if rel == "b":
            raise MissingFileError("b is missing", path="b")
        if rel == "c":
            raise FetchError("cannot read c")
        return rel.encode()

    with _reading_ahead(fetch, iter("abcdefgh"), 3) as ahead:
        assert ahead("a") == b"a"
        with pytest.raises(MissingFileError):
            ahead("b")
        with pytest.raises(FetchError, match="cannot read c"):
            ahead("c")
        assert ahead("z") == b"z", "a file not ahead is fetched when asked for"
        assert ahead("d") == b"d"
    assert most <= 3, "no more than three files fetched ahead at once"
    assert calls.count("d") == 1 and "h" not in calls, "nothing fetched beyond what was ahead"


def test_a_proxy_the_environment_names_is_asked_for_the_whole_url(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = served.url.removesuffix("/")
    monkeypatch.setenv("http_proxy", origin)  # the log's own server, standing in for a proxy
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    fetch = url_fetcher("http://log.example.org/pub/log/")
    with pytest.raises(MissingFileError, match=r"404 from http://log\.example\.org/pub/log/x"):
        fetch("x")
    assert served.paths() == ["http://log.example.org/pub/log/x"], "asked in a proxy's form"
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(FetchError, match="cannot read"):
        url_fetcher(served.url)("checkpoint")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert url_fetcher(served.url)("checkpoint") == (served.root / "checkpoint").read_bytes()


def test_redirects_are_followed_to_http_urls_only_and_not_forever(served: Served) -> None:
    served.moved = {"checkpoint": "/tile/../checkpoint-now", "checkpoint-now": "checkpoint.v2"}
    (served.root / "checkpoint.v2").write_bytes((served.root / "checkpoint").read_bytes())
    fetch = url_fetcher(served.url)
    assert fetch("checkpoint") == (served.root / "checkpoint").read_bytes()
    served.moved = {"checkpoint": "file:///etc/passwd"}
    with pytest.raises(FetchError, match="redirected to 'file:///etc/passwd'"):
        fetch("checkpoint")
    served.moved = {"checkpoint": "/checkpoint"}
    with pytest.raises(FetchError, match="redirected more than 5 times"):
        fetch("checkpoint")


def test_read_ahead_leaves_no_cyclic_garbage_when_files_fail() -> None:
    """The audit runs with the cycle collector paused: a file that could not be fetched
    must not leave its error, and the fetcher behind it, in a reference cycle."""

    def fetch(rel: str) -> bytes:
        raise MissingFileError(f"{rel} is missing", path=rel)

    gc.collect()
    gc.disable()
    try:
        with _reading_ahead(fetch, iter("abcd"), 2) as ahead:
            for rel in "abcd":
                with pytest.raises(MissingFileError):
                    ahead(rel)
        assert gc.collect() == 0
    finally:
        gc.enable()
