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
- ``custodes audit URL`` as it reads a URL (its read-ahead), and with the read-ahead off.

The server process is started here and ended here, by its process id.
"""

from __future__ import annotations

import http.server
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.audit_bench import AS_OF, publish, synthetic_leaves
from bench.audit_bench import _progress as bar_of_audit
from bench.common import console, show
from custodes.audit.auditor import audit_log
from custodes.audit.checks import default_checks
from custodes.audit.logcheck import Fetch, dir_fetcher, entry_files
from custodes.audit.policy import NONE, Policy, PolicyLog
from custodes.audit.source import url_fetcher
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


def _serve(root: str, port: Any) -> None:
    """The server process: serve ``root`` on 127.0.0.1, telling the port it got."""

    def handler(*args: Any, **kwargs: Any) -> _SlowFiles:
        return _SlowFiles(*args, directory=root, **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port.value = server.server_address[1]
    server.serve_forever()


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
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        vkey = publish(root, synthetic_leaves(n, load_pack()), n, lambda k: None)
        policy = Policy((PolicyLog(vkey),), (), (), NONE)
        context = multiprocessing.get_context("spawn")
        port = context.Value("i", 0)
        server = context.Process(target=_serve, args=(str(root), port), daemon=True)
        server.start()
        try:
            while not port.value:
                time.sleep(0.01)
            base = f"http://127.0.0.1:{port.value}/"
            local = _audit(dir_fetcher(root), policy, n, "audit from the directory")
            fetched = _download(base, n)
            measured = [
                ("download each file in turn", fetched),
                ("audit from the directory", local),
                ("audit over HTTP", _audit(url_fetcher(base), policy, n, "audit over HTTP")),
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
    console.print(f"chart: {_chart(measured, n, files, CHART)}")


CHART = Path("artifacts/bench/audit-http.svg")
"""Where :func:`bench_audit_http` draws its figures."""


def _chart(measured: list[tuple[str, float]], n: int, files: int, path: Path) -> Path:
    """Each measure's seconds, the baselines in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2))
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
