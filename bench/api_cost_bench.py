"""Where the processor time of a signed submission goes, at the peak: ``python -m bench
api-cost`` (Linux: it reads ``/proc``).

The same submissions as ``bench api`` (:mod:`bench.api_bench`), 3,000 of them from 16 threads
after a warm-up, with 1 and 2 ``custodes serve`` processes on PostgreSQL. For each, per
submission: the servers' processor time (user and system, from ``/proc/<pid>/stat``), their
voluntary context switches (every thread's, from ``/proc/<pid>/task/*/status``), PostgreSQL's
processor time (every process whose name starts with ``postgres``) and the load generator's
own. The baseline, in the same run, is the bare endpoint of ``bench api`` under the same
load: its server's processor time per request.

The rate alone moves with whatever else the machine runs; the processor time a submission
costs moves much less, so this is the figure to compare two versions of the code with
(interleave them: run this, switch the code, run it again).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.api_bench import (
    AUTHORITIES,
    BARE_APP,
    DEMAND,
    _free_port,
    _peak,
    _prepare,
    _servers,
    _signed,
)
from bench.common import backend_url, console, show

SUBMISSIONS = 3000
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu(pid: int) -> float:
    """Seconds of processor time (user and system) process ``pid`` has used (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _switches(pid: int) -> int:
    """Voluntary context switches of every thread of process ``pid``."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def _postgres() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith("postgres"):
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def _measure(pids: list[int], run: Callable[[], tuple[float, int]], n: int) -> list[float]:
    """Run the load; per request: servers' ms, PostgreSQL's ms, client's ms, switches, rate."""

    def total(measure: Callable[[int], float], of: Iterable[int]) -> float:
        return sum(measure(p) for p in of)

    postgres = _postgres()
    before = (total(_cpu, pids), total(_cpu, postgres), time.process_time(),
              total(_switches, pids))  # fmt: skip
    rate, failures = run()
    after = (total(_cpu, pids), total(_cpu, postgres), time.process_time(),
             total(_switches, pids))  # fmt: skip
    if failures:
        raise RuntimeError(f"{failures} of {n} requests failed")
    ms = [(a - b) / n * 1000 for a, b in zip(after[:3], before[:3], strict=True)]
    return [*ms, (after[3] - before[3]) / n, rate]


def _custodes(processes: int) -> list[float]:
    with tempfile.TemporaryDirectory() as d, backend_url("postgresql") as url:
        data = Path(d) / "data"
        keys = _prepare(data, url)
        env = {
            **os.environ,
            "CUSTODES_DATABASE_URL": url,
            "CUSTODES_API_AUTHORITY_RATE": "10000000",
            "CUSTODES_LOG_LEVEL": "ERROR",
        }
        commands = [
            [sys.executable, "-m", "custodes", "serve", "--data", str(data), "--port",
             str(_free_port())]
            for _ in range(processes)
        ]  # fmt: skip
        pids: list[int] = []
        with _servers(commands, env, pids) as urls:
            for url_ in urls:
                _peak(_signed([url_], keys, AUTHORITIES, "/v1/documents"))
            _peak(_signed(urls, keys, 200, "/v1/demands"))  # warm up
            requests = _signed(urls, keys, SUBMISSIONS, "/v1/demands")
            return _measure(pids, lambda: _peak(requests), SUBMISSIONS)


def _bare() -> list[float]:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
        command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", d,
                   "--log-level", "warning", "--port", str(_free_port())]  # fmt: skip
        pids: list[int] = []
        with _servers([command], dict(os.environ), pids) as [url]:
            requests = [(url + "/v1/demands", {"content-type": "application/json"}, DEMAND)]
            _peak(requests * 200)
            return _measure(pids, lambda: _peak(requests * SUBMISSIONS), SUBMISSIONS)


def bench_api_cost() -> None:
    if not Path("/proc/self/stat").exists():
        raise SystemExit("bench api-cost reads /proc: it runs on Linux only")
    console.print("[bold]API[/]: processor time per signed submission at the peak, PostgreSQL")
    bare = _bare()
    rows = [["bare FastAPI, one SHA-256", "1", f"{bare[0]:.2f}", "1.0x", f"{bare[1]:.2f}",
             f"{bare[2]:.2f}", f"{bare[3]:.1f}", f"{bare[4]:,.0f}"]]  # fmt: skip
    for processes in (1, 2):
        got = _custodes(processes)
        rows.append([
            "signed demand", str(processes), f"{got[0]:.2f}", f"{got[0] / bare[0]:.1f}x",
            f"{got[1]:.2f}", f"{got[2]:.2f}", f"{got[3]:.1f}", f"{got[4]:,.0f}",
        ])  # fmt: skip
    show(
        f"Per request, {SUBMISSIONS:,} requests from 16 threads at the peak",
        ["endpoint", "processes", "servers ms", "/ bare", "PostgreSQL ms", "client ms",
         "switches", "req/s"],
        rows,
    )  # fmt: skip
