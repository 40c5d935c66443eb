"""Screening figures: decisions per second and latency for demands naming 1, 25 and 100
targets, through the service beside the same Cedar evaluation called directly, in one run.

Six paths, over the same demands:

* ``cedar``: :func:`custodes.policy.evaluate` with every input already in hand (subjects,
  authority, context): the policy engine alone;
* ``service``: :func:`custodes.service.screening.judge`, the decision a screening makes:
  look up each target on the reference platform, the authority in the store, its rolling
  volume, then evaluate and fold the findings (no write);
* ``service, nothing remembered``: the same, with the entity layers the pack remembers
  (:meth:`custodes.policy.pack.StaticEntities.layer`) dropped before each decision, so each
  one parses every entity as a demand unlike any before it does: the worst case;
* ``service, subjects known``: the same with the platform's answers remembered, which
  separates the service's own cost from the reference platform's look-ups (one SQLite
  query for all of a demand's accounts: their holders and which categories of record
  exist);
* ``service, answers remembered``: the service's decision with Cedar's answers kept from
  one decision to the next (:class:`custodes.policy.screening._Judged`), as a server keeps
  them: the same demand again is answered without asking Cedar. Every other path forgets
  them before each decision, so that it asks Cedar every question;
* ``screen_demand``: the whole use-case, including the transaction that stores the screening
  and appends its two events (durable commit; SQLite).

The ratio compares the service's decision with Cedar alone. Goal: p99 under 2 ms at 25
targets for the service's decision, with and without remembered layers. 100 targets is over
the pack's cap (25): such a demand is refused as a whole, before any target is looked up.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from bench.common import console, median, percentile, show
from custodes.cli.demo import register_world
from custodes.ledger import Ledger
from custodes.model import (
    DataCategory,
    Demand,
    DemandKind,
    InstrumentKind,
    LegalInstrument,
    Offence,
    SignatureStatus,
    Subject,
    Target,
    TargetKind,
    TimeRange,
    summarize,
)
from custodes.platform import EPOCH, ReferencePlatform, build_reference_platform
from custodes.policy import evaluate, load_pack
from custodes.service import Services
from custodes.service.demands import get_demand, receive_demand
from custodes.service.screening import judge, screen_demand
from custodes.store import open_store

SIZES = (1, 25, 100)
ROUNDS = 400
FULL_ROUNDS = 60
GOAL_MS = 2.0


def _demand(n: int, targets: list[Target], i: int) -> Demand:
    return Demand(
        f"d_bench_{n}_{i}",
        "us-ndcal",
        DemandKind.DISCLOSURE,
        LegalInstrument(InstrumentKind.SEARCH_WARRANT, "bench", document_sha256="ab" * 32),
        tuple(targets[:n]),
        EPOCH,
        (DataCategory.SUBSCRIBER_INFO, DataCategory.IP_SESSION_LOGS),
        time_range=TimeRange(EPOCH - timedelta(days=30), EPOCH),
        offence=Offence("fraud"),
    )


def _time(fn: Callable[[], object], rounds: int) -> list[float]:
    for _ in range(min(20, rounds)):  # warm caches and Cedar's policy sets
        fn()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _row(label: str, n: int, ms: list[float]) -> list[str]:
    return [
        label,
        str(n),
        f"{1000 / median(ms):,.0f}",
        f"{median(ms):.3f}",
        f"{percentile(ms, 99):.3f}",
    ]


def bench_screening() -> None:
    with tempfile.TemporaryDirectory() as d:
        _run(Path(d))


def _run(root: Path) -> None:
    platform_db = root / "platform.db"
    build_reference_platform(platform_db, accounts=3000, region_accounts=100)
    with sqlite3.connect(platform_db) as db:
        ids = [r[0] for r in db.execute(
            "SELECT id FROM accounts WHERE jurisdiction LIKE 'US%' AND data_region = 'US' "
            "ORDER BY id LIMIT 100")]  # fmt: skip
    targets = [Target(TargetKind.ACCOUNT, i) for i in ids]
    pack = load_pack()
    store = open_store(f"sqlite:///{root / 'custodes.db'}")
    rows: list[list[str]] = []
    ratios: list[list[str]] = []
    with ReferencePlatform(platform_db) as platform:
        services = Services(store, Ledger(store), pack, platform, clock=lambda: EPOCH)
        register_world(services)
        for n in SIZES:
            direct, through, cold, known, answered = _decisions(
                services, _demand(n, targets, 0), platform_db
            )
            full = _full(services, targets, n)
            rows += [_row("cedar", n, direct), _row("service", n, through),
                     _row("service, nothing remembered", n, cold),
                     _row("service, subjects known", n, known),
                     _row("service, answers remembered", n, answered),
                     _row("screen_demand", n, full)]  # fmt: skip
            p99 = max(percentile(through, 99), percentile(cold, 99))
            verdict = "" if n > pack.tables.limits.target_cap else (
                "[green]met[/]" if p99 < GOAL_MS else "[red]missed[/]")  # fmt: skip
            ratios.append([str(n), f"{median(through) / median(direct):.2f}",
                           f"{percentile(through, 99) / percentile(direct, 99):.2f}",
                           f"{percentile(cold, 99) / percentile(direct, 99):.2f}",
                           f"{percentile(known, 99) / percentile(direct, 99):.2f}",
                           verdict])  # fmt: skip
    store.close()
    show("Screening decisions (ms)", ["path", "targets", "per second", "p50", "p99"], rows)
    show(
        f"Service / Cedar alone (goal: p99 under {GOAL_MS:g} ms at 25 targets)",
        [
            "targets",
            "p50 ratio",
            "p99 ratio",
            "p99 ratio, nothing remembered",
            "p99 ratio, subjects known",
            "goal",
        ],
        ratios,
    )
    console.print("screen_demand includes a durable commit (SQLite, synchronous=FULL).")


class _Remembering(ReferencePlatform):
    """The reference platform, answering each subject look-up from memory after the first."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.known: dict[Target, Subject | None] = {}

    def subjects(self, targets: Collection[Target]) -> dict[Target, Subject | None]:
        missing = [t for t in targets if t not in self.known]
        if missing:
            self.known.update(super().subjects(missing))
        return {t: self.known[t] for t in targets}


def _decisions(services: Services, demand: Demand, platform_db: Path) -> list[list[float]]:
    """Cedar alone, the service's decision, the same with nothing remembered, with subjects
    known, and with Cedar's answers remembered, on one demand."""
    record = receive_demand(services, demand, signature=SignatureStatus.VALID)
    remembering = replace(services, platform=_Remembering(platform_db))
    with services.store.read() as conn:
        screening = judge(services, conn, record)
        subjects = dict(screening.subjects)

        verdicts = services.pack.verdicts

        def cedar() -> object:
            verdicts.clear()
            return evaluate(services.pack, demand, screening.authority, subjects, screening.context)

        def service() -> object:
            verdicts.clear()
            return summarize(record.demand, judge(services, conn, record).findings)

        def cold() -> object:
            verdicts.clear()
            services.pack.entities.layers.clear()
            return summarize(record.demand, judge(services, conn, record).findings)

        def known() -> object:
            verdicts.clear()
            return summarize(record.demand, judge(remembering, conn, record).findings)

        def answered() -> object:
            return summarize(record.demand, judge(services, conn, record).findings)

        return [_time(f, ROUNDS) for f in (cedar, service, cold, known, answered)]


def _full(services: Services, targets: list[Target], n: int) -> list[float]:
    """The whole use-case, each round on a freshly received demand."""
    out = []
    for i in range(1, FULL_ROUNDS + 1):
        demand = _demand(n, targets, i)
        receive_demand(services, demand, signature=SignatureStatus.VALID)
        t0 = time.perf_counter()
        screen_demand(services, demand.id)
        out.append((time.perf_counter() - t0) * 1000)
        assert get_demand(services, demand.id).screening is not None
    return out


if __name__ == "__main__":
    bench_screening()
