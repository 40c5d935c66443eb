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
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from bench.api_bench import (
    bare_requests,
    bare_server,
    custodes_servers,
    peak,
    signed_requests,
)
from bench.common import console, show

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


class _Cost(NamedTuple):
    """Per request, at the peak."""

    servers_ms: float
    postgres_ms: float
    client_ms: float
    switches: float
    rate: float

    def row(self, what: str, processes: int, bare: _Cost) -> list[str]:
        return [what, str(processes), f"{self.servers_ms:.2f}",
                f"{self.servers_ms / bare.servers_ms:.1f}x", f"{self.postgres_ms:.2f}",
                f"{self.client_ms:.2f}", f"{self.switches:.1f}", f"{self.rate:,.0f}"]  # fmt: skip


def _measure(pids: list[int], run: Callable[[], tuple[float, int]], n: int) -> _Cost:
    """Run the load of ``n`` requests; what each cost."""
    postgres = _postgres()

    def counters() -> tuple[float, float, float, int]:
        return (sum(map(_cpu, pids)), sum(map(_cpu, postgres)), time.process_time(),
                sum(map(_switches, pids)))  # fmt: skip

    before = counters()
    rate, failures = run()
    after = counters()
    if failures:
        raise RuntimeError(f"{failures} of {n} requests failed")
    servers, pg, client = ((a - b) / n * 1000 for a, b in zip(after[:3], before[:3], strict=True))
    return _Cost(servers, pg, client, (after[3] - before[3]) / n, rate)


def _custodes(processes: int) -> _Cost:
    pids: list[int] = []
    with custodes_servers(processes, pids) as (urls, keys):
        peak(signed_requests(urls, keys, 200, "/v1/demands"))  # warm up
        requests = signed_requests(urls, keys, SUBMISSIONS, "/v1/demands")
        return _measure(pids, lambda: peak(requests), SUBMISSIONS)


def _bare() -> _Cost:
    pids: list[int] = []
    with bare_server(pids) as url:
        peak(bare_requests(url, 200))
        requests = bare_requests(url, SUBMISSIONS)
        return _measure(pids, lambda: peak(requests), SUBMISSIONS)


def bench_api_cost() -> None:
    if not Path("/proc/self/stat").exists():
        raise SystemExit("bench api-cost reads /proc: it runs on Linux only")
    console.print("[bold]API[/]: processor time per signed submission at the peak, PostgreSQL")
    bare = _bare()
    rows = [bare.row("bare FastAPI, one SHA-256", 1, bare)]
    rows += [_custodes(n).row("signed demand", n, bare) for n in (1, 2)]
    show(
        f"Per request, {SUBMISSIONS:,} requests from 16 threads at the peak",
        ["endpoint", "processes", "servers ms", "/ bare", "PostgreSQL ms", "client ms",
         "switches", "req/s"],
        rows,
    )  # fmt: skip
