"""Staff access through the gateway: checked reads per second, each with its durable
``staff_access.read`` event, beside the ledger's own append rate in the same run.

Each measured read is what the platform's data path would do before serving a staff member
any data: ``AccessGateway.read`` checks the capability (holder, expiry, subject, categories),
builds the event, and returns once the event is durable. The baseline appends leaves of the
same size with ``Ledger.append`` from the same number of threads, one leaf per call. The goal
is 5,000 checked accesses per second with a p99 under 10 ms.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import backend_url, console, percentile, show
from custodes.events import STAFF_ACCESS_READ, encode_event
from custodes.ledger import Ledger
from custodes.model import DataCategory, Staff, Target, TargetKind
from custodes.platform import ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services
from custodes.service.access import (
    AccessRequest,
    Capability,
    Justification,
    JustificationKind,
    request_access,
)
from custodes.service.gateway import AccessGateway
from custodes.service.staff import register_staff
from custodes.store import open_store

THREADS = (8, 16, 32, 64)
CATEGORIES = (DataCategory.SUBSCRIBER_INFO, DataCategory.IP_SESSION_LOGS)


def _accounts(path: Path, n: int) -> list[Target]:
    import sqlite3

    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id FROM accounts WHERE id LIKE 'u-%' LIMIT ?", (n,)).fetchall()
    db.close()
    return [Target(TargetKind.ACCOUNT, r[0]) for r in rows]


def _capabilities(services: Services, subjects: list[Target], holders: int) -> list[Capability]:
    """One support agent per thread, each with a capability over a few users."""
    register_staff(services, Staff("admin", frozenset({"admin"}), "IE"), by=None)
    caps = []
    for n in range(holders):
        staff = f"support-{n}"
        register_staff(services, Staff(staff, frozenset({"support"}), "IE"), by="admin")
        mine = tuple(subjects[(n * 4 + k) % len(subjects)] for k in range(4))
        justification = Justification(JustificationKind.USER_REQUEST, f"ticket-{n}")
        caps.append(request_access(services, AccessRequest(staff, mine, CATEGORIES, justification)))
    return caps


def _gateway(services: Services, caps: list[Capability], n: int) -> tuple[float, list[float]]:
    gateway = AccessGateway(services)
    per_thread = n // len(caps)
    latencies: list[list[float]] = [[] for _ in caps]
    barrier = threading.Barrier(len(caps) + 1)

    def work(i: int) -> None:
        cap = caps[i]
        mine = latencies[i]
        barrier.wait()
        for k in range(per_thread):
            t0 = time.perf_counter()
            gateway.read(
                cap.token,
                staff_id=cap.staff_id,
                subject=cap.subjects[k % len(cap.subjects)],
                categories=CATEGORIES[: 1 + k % 2],
            )
            mine.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(caps))]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    flat = [x for xs in latencies for x in xs]
    return len(flat) / elapsed, flat


def _ledger(services: Services, threads: int, n: int) -> float:
    """The same number of threads appending one leaf of a read event each, per call."""
    per_thread = n // threads
    now = datetime.now(UTC)
    leaves = [
        [
            encode_event(
                STAFF_ACCESS_READ,
                time=now,
                facts={"categories": sorted(c.value for c in CATEGORIES)},
                private={"staff": f"support-{w}", "subject": f"account:u-{k}"},
            )[0]
            for k in range(per_thread)
        ]
        for w in range(threads)
    ]
    barrier = threading.Barrier(threads + 1)

    def work(w: int) -> None:
        barrier.wait()
        for leaf in leaves[w]:
            services.ledger.append([leaf])

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for t in workers:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in workers:
        t.join()
    return per_thread * threads / (time.perf_counter() - t0)


def bench_access(
    n: int = 12_000, thread_counts: tuple[int, ...] = THREADS, rounds: int = 3
) -> None:
    """Each configuration alternates ``rounds`` gateway runs with ``rounds`` ledger runs of
    ``n / rounds`` operations, so that a change in the machine's load hits both sides."""
    rows = []
    pack = load_pack()
    with tempfile.TemporaryDirectory() as d:
        platform_path = Path(d) / "platform.db"
        build_reference_platform(platform_path, accounts=400, region_accounts=0)
        subjects = _accounts(platform_path, 256)
        for backend in ("sqlite", "postgresql"):
            for threads in thread_counts:
                with backend_url(backend) as url, ReferencePlatform(platform_path) as platform:
                    store = open_store(url)
                    services = Services(store, Ledger(store), pack, platform)
                    caps = _capabilities(services, subjects, threads)
                    rates, bases, latencies = [], [], []
                    for _ in range(rounds):
                        rate, lat = _gateway(services, caps, n // rounds)
                        rates.append(rate)
                        latencies += lat
                        bases.append(_ledger(services, threads, n // rounds))
                    store.close()
                rate, base = statistics.median(rates), statistics.median(bases)
                rows.append(
                    [
                        backend,
                        str(threads),
                        f"{rate:,.0f}",
                        f"{percentile(latencies, 50) * 1000:.1f} / "
                        f"{percentile(latencies, 99) * 1000:.1f}",
                        f"{base:,.0f}",
                        f"{rate / base:.0%}",
                    ]
                )
                console.print(f"  {backend} threads={threads}: {rate:,.0f}/s", style="dim")
    show(
        f"checked staff accesses/s through the gateway, each with its durable event ({n:,} "
        f"reads in {rounds} rounds, medians; baseline: ledger appends of one leaf per call from "
        "the same threads, in rounds alternating with the gateway's)",
        ["backend", "threads", "accesses/s", "p50 / p99 ms", "ledger appends/s", "ratio"],
        rows,
    )
