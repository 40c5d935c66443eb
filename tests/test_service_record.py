"""record(): one event per call, even when two events are alike in every public fact."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from custodes.deployment import init_data_dir, open_deployment
from custodes.events import POLICY_ACTIVATED, parse_event
from custodes.platform import ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services, openings_of, record
from custodes.settings import load_settings


def test_events_alike_in_public_facts_get_distinct_entries(
    tmp_path: Path, database_url: str
) -> None:
    data = tmp_path / "d"
    init_data_dir(data, "record.custodes.example/log")
    build_reference_platform(tmp_path / "p.db", accounts=40, region_accounts=10)
    at = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    pack = load_pack()
    with (
        open_deployment(load_settings(data, database_url=database_url)) as dep,
        ReferencePlatform(tmp_path / "p.db") as platform,
    ):
        services = Services(dep.store, dep.ledger, pack, platform, clock=lambda: at)
        facts = {"pack": pack.hash}
        first, second = (
            services.write(lambda c: record(c, services, POLICY_ACTIVATED, facts=facts))
            for _ in range(2)
        )
        assert first != second, "two events collapsed into one log entry"
        a, b = parse_event(dep.ledger.entry(first)), parse_event(dep.ledger.entry(second))
        assert (a.kind, a.time, a.facts) == (b.kind, b.time, b.facts)
        assert "nonce" in openings_of(services, first)
