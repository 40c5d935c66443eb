"""A transparency report over 1,000,000 events, beside reading the same leaves as plain JSON.

The events are real, canonical leaves: each kind of demand (disclosure, refusal, restriction,
emergency, preservation, narrowed under a gag) is encoded once per country and authority kind
with :func:`custodes.events.encode_event`, and copied for every demand with its own id and
times. The published log (bundles, tiles, signed checkpoint) is written straight with tlog.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import console, publish_log, show
from custodes.audit.logcheck import dir_fetcher, rebuild_log
from custodes.audit.policy import NONE, Policy, PolicyLog, verify_checkpoint
from custodes.events import encode_event, parse_event
from custodes.reports import compute_report, parse_period, render_report
from custodes.reports.leaves import parse_leaf

ORIGIN = "bench.custodes.example/log"
PACK = "ab" * 32
_ID = "d_TEMPLATE"
_T0 = datetime(2026, 1, 1, tzinfo=UTC)
_TIME = _T0.strftime("%Y-%m-%dT%H:%M:%SZ")
COUNTRIES = ("US", "DE", "FR", "GB", "BR", "IN", "JP", "NL", "ES", "IT", "CA", "AU", "CN")
KINDS = ("police", "prosecutor", "court", "regulator")

Step = tuple[str, dict[str, Any], dict[str, Any]]


def _received(country: str, kind: str, demand_kind: str, instrument: str, **facts: Any) -> Step:
    base = {
        "demand_kind": demand_kind,
        "instrument_kind": instrument,
        "target_count": 2,
        "signature": "valid",
        "authority_jurisdiction": country,
        "authority_kind": kind,
    }
    return "demand.received", base | facts, {"staff": "s", "targets": ["a", "b"]}


def _scenario(n: int, country: str, kind: str) -> list[Step]:
    screened: Step = ("demand.screened", {"pack": PACK, "outcome": "pass", "findings": []}, {})
    approvals: list[Step] = [("approval.given", {"role": "approver"}, {"staff": "s"})] * 2
    approved: Step = ("demand.approved", {"pack": PACK, "approvals": 2}, {})
    closed: Step = ("demand.closed", {"outcome": "pass"}, {"staff": "s"})
    cats = {"categories": ["subscriber_info"]}
    produced: Step = (
        "production.delivered",
        {**cats, "target_count": 2, "record_count": 3},
        {"recipient": "age1"},
    )
    executed = ("demand.executed", {"pack": PACK, "demand_kind": "disclosure"}, {"staff": "s"})
    if n == 0:  # disclosure, data produced, users told
        return [
            _received(country, kind, "disclosure", "court_order", **cats),
            screened,
            *approvals,
            approved,
            executed,
            produced,
            ("notice.sent", {"record_count": 2}, {"staff": "s"}),
            closed,
        ]
    if n == 1:  # refused
        return [
            _received(country, kind, "disclosure", "administrative_request", **cats),
            ("demand.screened", {"pack": PACK, "outcome": "refuse", "findings": []}, {}),
            ("demand.refused", {"pack": PACK}, {"staff": "s"}),
            ("demand.closed", {"outcome": "refuse"}, {"staff": "s"}),
        ]
    if n == 2:  # a restriction in the requesting state
        territory = {"restriction_action": "remove_content", "territories": [country]}
        return [
            _received(country, kind, "restriction", "court_order", **territory),
            screened,
            *approvals,
            approved,
            ("restriction.applied", {**territory, "target_count": 2}, {"staff": "s"}),
            closed,
        ]
    if n == 3:  # narrowed, under a dated gag
        return [
            _received(country, kind, "disclosure", "search_warrant", **cats),
            screened,
            *approvals,
            (
                "demand.narrowed",
                {"pack": PACK, "approvals": 2, "target_count": 1, "dropped_targets": 1},
                {},
            ),
            produced,
            ("notice.deferred", {"gag_until": "2027-01-01"}, {"staff": "s"}),
            closed,
        ]
    return [  # a preservation
        _received(country, kind, "preservation", "preservation_request", categories=["content"]),
        screened,
        *approvals,
        approved,
        (
            "preservation.placed",
            {"categories": ["content"], "target_count": 2, "due_at": "2026-12-31T00:00:00Z"},
            {"staff": "s"},
        ),
        closed,
    ]


def _templates() -> list[list[bytes]]:
    out = []
    for country in COUNTRIES:
        for kind in KINDS:
            for n in range(5):
                out.append(
                    [
                        encode_event(k, time=_T0, demand=_ID, facts=f, private=p)[0]
                        for k, f, p in _scenario(n, country, kind)
                    ]
                )
    return out


def synthetic_leaves(n: int) -> Iterator[bytes]:
    """``n`` canonical event leaves: demands of every kind, one after another, over 2026."""
    templates = _templates()
    made = demand = 0
    step = timedelta(days=365) / (n // 8 + 1)
    old_id, old_time = f'"{_ID}"'.encode(), f'"{_TIME}"'.encode()
    while made < n:
        template = templates[demand * 7 % len(templates)]
        start = _T0 + demand * step
        new_id = f'"d_{demand:012d}"'.encode()
        for i, leaf in enumerate(template):
            when = (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            yield leaf.replace(old_id, new_id).replace(old_time, f'"{when}"'.encode())
            made += 1
            if made == n:
                return
        demand += 1


def publish(root: Path, leaves: list[bytes]) -> str:
    """Write the published log of ``leaves`` (bundles, tiles, signed checkpoint) into ``root``."""
    return publish_log(root, leaves, ORIGIN)


def _each(fn: Callable[[bytes], object], leaves: list[bytes]) -> float:
    t0 = time.perf_counter()
    for leaf in leaves:
        fn(leaf)
    return time.perf_counter() - t0


def bench_report(n: int = 1_000_000, sample: int = 50_000) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        console.print(f"making and publishing {n:,} events ...")
        leaves = list(synthetic_leaves(n))
        vkey = publish(root, leaves)
        policy = Policy((PolicyLog(vkey),), (), (), NONE)
        fetch = dir_fetcher(root)
        loads = _each(json.loads, leaves)
        fast = _each(parse_leaf, leaves)
        slow = _each(parse_event, leaves[:sample]) * n / sample
        verified, _ = verify_checkpoint(fetch("checkpoint"), policy)
        assert verified is not None
        t0 = time.perf_counter()
        rebuild_log(fetch, verified.checkpoint)
        verify = time.perf_counter() - t0
        del leaves
        t0 = time.perf_counter()
        report = compute_report(fetch, policy, parse_period("2026"), source=str(root))
        compute = time.perf_counter() - t0
        files = render_report(report)
        render = time.perf_counter() - compute - t0
    rows = [
        [what, f"{seconds:.1f}", f"{n / seconds:,.0f}", f"{seconds / loads:.1f}x"]
        for what, seconds in (
            ("json.loads of every leaf (baseline)", loads),
            (f"parse_event (timed on {sample:,}, scaled)", slow),
            ("parse_leaf, the report's parser", fast),
            ("verify the log alone (rebuild every tile)", verify),
            ("compute the report (verify + count)", compute),
            ("compute and render every file", compute + render),
        )
    ]
    show(
        f"custodes report over {n:,} events ({report.events:,} counted; "
        f"{sum(len(v) for v in files.values()) / 1e3:,.0f} kB of report files)",
        ["measure", "seconds", "events/s", "time / json.loads"],
        rows,
    )
