"""One transparency report from several logs: one deployment per data-residency region.

The first log is the hand-built one of ``test_reports`` (its figures are known); the second,
another region's, reuses demand ids of the first for other demands, so a report that counted
by demand id alone would lose some:

- five US police disclosures, ``d_de0`` to ``d_de4``, received in July 2026, refused;
- one FR regulator order ``d_fr0`` to remove two content items in FR, applied.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from custodes.audit.logcheck import dir_fetcher
from custodes.audit.policy import NONE, Policy, PolicyLog
from custodes.audit.source import open_source
from custodes.cli.report import report as report_command
from custodes.reports import (
    Report,
    compute_report,
    parse_period,
    parse_report_json,
    render_report,
    verify_report,
    write_report,
)
from custodes.reports.errors import (
    LogChangedError,
    ReportError,
    ReportFormatError,
    UnverifiedLogError,
)
from test_reports import (
    JULY,
    ORIGIN,
    PACK,
    LogBuilder,
    Published,
    build_leaves,
    forge,
    publish,
    rows,
)

US_ORIGIN = "us.reports.custodes.example/log"


def _us_leaves() -> list[bytes]:
    log = LogBuilder()
    for k in range(5):
        d, t = f"d_de{k}", JULY + timedelta(days=k, hours=3)
        log.received(d, t, "US police", "disclosure subpoena", 1, categories=["subscriber_info"])
        log.add("demand.refused", t + timedelta(hours=1), d, {"pack": PACK})
    t = datetime(2026, 9, 1, 10, tzinfo=UTC)
    log.received(
        "d_fr0",
        t,
        "FR regulator",
        "restriction dsa_art9_order",
        2,
        restriction_action="remove_content",
        territories=["FR"],
    )
    log.approved("d_fr0", t + timedelta(minutes=30))
    log.add(
        "restriction.applied",
        t + timedelta(hours=2),
        "d_fr0",
        {"restriction_action": "remove_content", "target_count": 2, "territories": ["FR"]},
    )
    return log.leaves


class Regions:
    def __init__(self, eu: Published, us: Published) -> None:
        self.eu, self.us = eu, us
        self.policy = Policy((PolicyLog(eu.vkey), PolicyLog(us.vkey)), (), (), NONE)

    def report(self, period: str = "2026H2") -> Report:
        return compute_report(
            [(str(p.data), open_source(str(p.data))) for p in (self.eu, self.us)],
            self.policy,
            parse_period(period),
        )


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Regions:
    root = tmp_path_factory.mktemp("regions")
    eu_leaves, us_leaves = build_leaves(), _us_leaves()
    eu = Published(root / "eu", publish(root / "eu", eu_leaves), eu_leaves)
    us = Published(root / "us", publish(root / "us", us_leaves, US_ORIGIN), us_leaves)
    return Regions(eu, us)


@pytest.fixture(scope="module")
def merged(regions: Regions) -> Report:
    return regions.report()


def test_every_region_is_counted_and_a_demand_id_counts_within_its_own_log(
    regions: Regions, merged: Report
) -> None:
    alone = compute_report(
        open_source(str(regions.eu.data)),
        Policy((PolicyLog(regions.eu.vkey),), (), (), NONE),
        parse_period("2026H2"),
        source=str(regions.eu.data),
    )
    by_country = {r[0]: r[1] for r in rows(alone, "demands_by_country")}
    assert by_country == {"CN": 5, "DE": 6, "FR": 7, "US": 7}
    both = {r[0]: r[1] for r in rows(merged, "demands_by_country")}
    # d_de0..d_de4 of the US log are other demands than the EU log's: DE keeps its 6
    assert both == {"CN": 5, "DE": 6, "FR": 8, "US": 12}
    assert merged.events == len(regions.eu.leaves) - 1 + len(regions.us.leaves)
    assert merged.not_events == 1
    assert merged.as_of == alone.as_of  # the latest event of either log


def test_the_report_names_each_log_and_its_checkpoint_in_order(
    regions: Regions, merged: Report
) -> None:
    assert [(g.source, g.checkpoint.origin, g.checkpoint.size) for g in merged.logs] == [
        (str(regions.eu.data), ORIGIN, len(regions.eu.leaves)),
        (str(regions.us.data), US_ORIGIN, len(regions.us.leaves)),
    ]
    files = render_report(merged)
    doc = json.loads(files["report.json"])
    assert "source" not in doc and "checkpoint" not in doc
    assert [g["checkpoint"]["origin"] for g in doc["logs"]] == [ORIGIN, US_ORIGIN]
    assert parse_report_json(files["report.json"]) == merged
    page = files["report.html"].decode()
    for g in merged.logs:
        assert g.checkpoint.root.hex() in page and g.checkpoint.origin in page
    package = json.loads(files["datapackage.json"])
    assert [s["path"] for s in package["sources"]] == [str(regions.eu.data), str(regions.us.data)]
    assert ORIGIN in package["title"] and US_ORIGIN in package["title"]


def test_statements_of_reasons_name_their_log_and_stay_unique(merged: Report) -> None:
    puids = [s.puid for s in merged.statements]
    # EU log: 5 orders of 2 items in FR, one in DE and FR, one with no territory; US log: 2
    assert len(puids) == 14 and len(set(puids)) == 14
    ours = [s for s in merged.statements if s.puid.startswith(f"{US_ORIGIN}/d_fr0-")]
    assert len(ours) == 2
    assert f"of log {US_ORIGIN}" in ours[0].decision_facts
    # statements keep the order of the logs, then of the entries
    assert [s.puid.split("/d_")[0] for s in merged.statements] == [ORIGIN] * 12 + [US_ORIGIN] * 2


def test_a_merged_report_verifies_and_names_the_log_that_changed(
    tmp_path: Path, regions: Regions, merged: Report
) -> None:
    out = tmp_path / "out"
    write_report(render_report(merged), out)
    assert verify_report(out).report == merged  # from the sources it names
    eu, us = (dir_fetcher(p.data / "log") for p in (regions.eu, regions.us))
    assert verify_report(out, fetch=[eu, us]).report == merged
    with pytest.raises(LogChangedError, match=f"the log read is {US_ORIGIN}, not {ORIGIN}"):
        verify_report(out, fetch=[us, eu])
    with pytest.raises(ReportError, match=r"made from 2 log\(s\); 1 given"):
        verify_report(out, fetch=[eu])
    skey = (regions.eu.data / "keys" / "log.skey").read_text().strip()
    forged = list(regions.eu.leaves)
    forged[3], forged[4] = forged[4], forged[3]
    forge(tmp_path / "forged", forged, skey)
    with pytest.raises(LogChangedError, match=r"log reports\.custodes\.example/log \(read from"):
        verify_report(out, fetch=[dir_fetcher(tmp_path / "forged"), us])


def test_a_region_whose_log_grew_still_verifies_the_report(
    tmp_path: Path, regions: Regions, merged: Report
) -> None:
    out = tmp_path / "out"
    write_report(render_report(merged), out)
    grown = tmp_path / "us"
    shutil.copytree(regions.us.data, grown)
    more = LogBuilder()
    more.received(
        "d_late", datetime(2026, 12, 30, tzinfo=UTC), "DE court", "disclosure court_order", 1
    )
    publish(grown, more.leaves)
    eu = open_source(str(regions.eu.data))
    assert verify_report(out, fetch=[eu, open_source(str(grown))]).report == merged


def test_each_log_must_be_named_by_the_policy_and_read_once(regions: Regions) -> None:
    eu, us = (str(p.data) for p in (regions.eu, regions.us))
    period = parse_period("2026H2")
    with pytest.raises(ReportError, match=r"is log \S+ again"):
        compute_report([(eu, open_source(eu)), (eu, open_source(eu))], regions.policy, period)
    only_eu = Policy((PolicyLog(regions.eu.vkey),), (), (), NONE)
    with pytest.raises(UnverifiedLogError, match="checkpoint does not verify"):
        compute_report([(eu, open_source(eu)), (us, open_source(us))], only_eu, period)
    with pytest.raises(ReportError, match="from 1 to 64 logs"):
        compute_report([], regions.policy, period)
    with pytest.raises(ReportError, match="give its source"):
        compute_report(open_source(eu), regions.policy, period)


def test_report_json_of_several_logs_is_read_strictly(merged: Report) -> None:
    raw = render_report(merged)["report.json"]
    doc = json.loads(raw)
    one = dict(doc, logs=doc["logs"][:1])
    twice = dict(doc, logs=[doc["logs"][0], doc["logs"][0]])
    bad = dict(doc, logs=[doc["logs"][0], "us"])
    for edited, message in (
        (one, "2 to 64 logs"),
        (twice, "one log twice"),
        (bad, "source, checkpoint"),
    ):
        with pytest.raises(ReportFormatError, match=message):
            parse_report_json(json.dumps(edited, indent=2).encode() + b"\n")


cli = typer.Typer()
cli.command("report")(report_command)


@cli.command("other")
def _other() -> None:  # a second command keeps ``report`` a named subcommand
    pass


runner = CliRunner()


def test_command_reports_on_several_logs_and_verifies_them(
    tmp_path: Path, regions: Regions
) -> None:
    out = tmp_path / "out"
    eu, us = (str(p.data) for p in (regions.eu, regions.us))
    keys = ["--vkey", regions.eu.vkey, "--vkey", regions.us.vkey]
    made = runner.invoke(cli, ["report", eu, us, "--period", "2026H2", *keys, "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert ORIGIN in made.output and US_ORIGIN in made.output
    assert len(json.loads((out / "report.json").read_bytes())["logs"]) == 2
    checked = runner.invoke(cli, ["report", "--verify", str(out)])
    assert checked.exit_code == 0, checked.output
    assert "verified" in checked.output and US_ORIGIN in checked.output
    again = runner.invoke(cli, ["report", eu, us, "--verify", str(out), *keys])
    assert again.exit_code == 0, again.output
    short = runner.invoke(cli, ["report", eu, "--verify", str(out)])
    assert short.exit_code == 2
    assert short.output.strip().splitlines() == [
        "error[report_error]: the report was made from 2 log(s); 1 given"
    ]
    one_key = runner.invoke(
        cli, ["report", eu, us, "--period", "2026H2", "--vkey", regions.eu.vkey]
    )
    assert one_key.exit_code == 1
    assert "report_unverified_log" in one_key.output
