"""Transparency reports on a hand-built log with every figure known in advance.

The log (:func:`build_leaves`) is published through the real ledger. Period 2026H2 (the
cohort: demands first received from 1 July to 31 December 2026):

====================  ==========================================================================
DE court, 6 demands   disclosures of 2 subjects each; 5 deliver records 1-5 hours after receipt,
                      one delivers none; one challenged, one under a dated gag, one narrowed,
                      one amended without repeating its authority
US police, 7          5 emergency disclosures (1 subject, records delivered), a preservation of 3
                      subjects, a suspend_account in US (1 subject) with a linked ToS action
CN intelligence, 5    3 subjects each, all refused, received in October (Q4)
FR regulator, 7       DSA Art. 9 orders: 5 remove_content in FR (2 items), a
                      geo_restrict_content in DE and FR, an end_meeting with no territory for
                      one day; each applied k+1 hours after receipt (k = 0..6)
US NSL, 3             national security letters of 100 subjects each
outside the cohort    a US police demand received 30 June, refused 2 July; another received
                      1 January 2027
====================  ==========================================================================

The last entries are one that is not an event at all, and a ``policy.activated`` on
2 July 2027, after the national-security delay for 2026H2 (30 June 2027) has passed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from custodes.audit.logcheck import dir_fetcher
from custodes.audit.policy import NONE, Policy, PolicyLog
from custodes.audit.source import open_source
from custodes.cli.report import report as report_command
from custodes.deployment import init_data_dir, open_deployment
from custodes.events import encode_event
from custodes.reports import (
    FILES,
    Report,
    compute_report,
    parse_period,
    parse_report_json,
    render_report,
    verify_report,
    write_report,
)
from custodes.reports.dsa import EEA
from custodes.reports.errors import LogChangedError, ReportMismatchError, UnverifiedLogError
from custodes.reports.package import parse_csv
from custodes.reports.tables import SCHEMAS, SUPPRESSED
from custodes.settings import load_settings
from custodes.tlog import (
    TILE_WIDTH,
    Checkpoint,
    Tile,
    TileNodeReader,
    bundle_tile,
    format_bundle,
    format_checkpoint,
    format_tile_path,
    leaf_hash,
    new_signer,
    new_tiles,
    sign_note,
    tree_root,
)

GOLDEN = Path(__file__).parent / "testdata" / "golden"

ORIGIN = "reports.custodes.example/log"
PACK = hashlib.sha256(b"report test pack").hexdigest()
JULY = datetime(2026, 7, 6, 9, tzinfo=UTC)


@dataclass
class LogBuilder:
    """Leaves in log order, with deterministic salts."""

    leaves: list[bytes] = field(default_factory=list)
    _salts: itertools.count[int] = field(default_factory=itertools.count)

    def add(
        self,
        kind: str,
        when: datetime,
        demand: str | None = None,
        facts: dict[str, Any] | None = None,
        private: dict[str, Any] | None = None,
    ) -> None:
        def salt(n: int) -> bytes:
            return hashlib.sha256(f"salt {next(self._salts)}".encode()).digest()[:n]

        leaf, _ = encode_event(
            kind, time=when, demand=demand, facts=facts, private=private, salt=salt
        )
        self.leaves.append(leaf)

    def received(
        self, demand: str, when: datetime, who: str, what: str, targets: int, **facts: Any
    ) -> None:
        """``who``: country and authority kind; ``what``: demand and instrument kinds."""
        country, authority = who.split()
        kind, instrument = what.split()
        self.add(
            "demand.received",
            when,
            demand,
            {
                "demand_kind": kind,
                "instrument_kind": instrument,
                "target_count": targets,
                "signature": "valid",
                "authority_jurisdiction": country,
                "authority_kind": authority,
                **facts,
            },
            {"staff": "staff-01"},
        )

    def approved(self, demand: str, when: datetime) -> None:
        self.add("demand.approved", when, demand, {"pack": PACK, "approvals": 2})

    def delivered(self, demand: str, when: datetime, records: int, targets: int = 1) -> None:
        facts = {
            "categories": ["subscriber_info"],
            "target_count": targets,
            "record_count": records,
        }
        self.add("production.delivered", when, demand, facts)


def _germany(log: LogBuilder) -> None:
    for k in range(6):
        d, t = f"d_de{k}", JULY + timedelta(days=k)
        log.received(d, t, "DE court", "disclosure court_order", 2, categories=["subscriber_info"])
        if k == 3:
            log.add(
                "demand.narrowed",
                t + timedelta(minutes=30),
                d,
                {"pack": PACK, "approvals": 2, "target_count": 1, "dropped_targets": 1},
            )
        else:
            log.approved(d, t + timedelta(minutes=30))
        if k == 4:  # an amendment that does not repeat the authority's facts
            log.add(
                "demand.amended",
                t + timedelta(minutes=40),
                d,
                {
                    "demand_kind": "disclosure",
                    "instrument_kind": "court_order",
                    "target_count": 2,
                    "signature": "valid",
                },
            )
        log.delivered(d, t + timedelta(hours=k + 1), records=0 if k == 5 else 2, targets=2)
    log.add(
        "demand.challenged",
        JULY + timedelta(days=1, hours=8),
        "d_de1",
        private={"staff": "staff-02"},
    )
    log.add(
        "notice.deferred", JULY + timedelta(days=2, hours=8), "d_de2", {"gag_until": "2026-12-01"}
    )


def _united_states(log: LogBuilder) -> None:
    for k in range(5):
        d, t = f"d_use{k}", JULY + timedelta(days=10 + k)
        log.received(
            d,
            t,
            "US police",
            "emergency_disclosure emergency_request",
            1,
            categories=["subscriber_info"],
        )
        log.add("demand.approved", t + timedelta(minutes=5), d, {"pack": PACK, "approvals": 1})
        log.delivered(d, t + timedelta(minutes=20), records=1)
    t = JULY + timedelta(days=20)
    log.received(
        "d_usp",
        t,
        "US police",
        "preservation preservation_request",
        3,
        categories=["content"],
    )
    log.received(
        "d_usr",
        t,
        "US-CA police",
        "restriction court_order",
        1,
        restriction_action="suspend_account",
        territories=["US"],
    )
    log.approved("d_usr", t + timedelta(hours=1))
    log.add(
        "restriction.applied",
        t + timedelta(hours=2),
        "d_usr",
        {"restriction_action": "suspend_account", "target_count": 1, "territories": ["US"]},
    )
    log.add(
        "tos_action.linked",
        t + timedelta(hours=3),
        "d_usr",
        {"restriction_action": "suspend_account", "state_involved": True},
    )
    for k in range(3):
        log.received(
            f"d_nsl{k}",
            t + timedelta(days=k),
            "US intelligence",
            "disclosure national_security_letter",
            100,
            categories=["subscriber_info"],
        )


def _china(log: LogBuilder) -> None:
    for k in range(5):
        d, t = f"d_cn{k}", datetime(2026, 10, 5 + k, tzinfo=UTC)
        log.received(
            d,
            t,
            "CN intelligence",
            "disclosure administrative_request",
            3,
            categories=["participant_list"],
        )
        log.add("demand.refused", t + timedelta(hours=1), d, {"pack": PACK})


def _france(log: LogBuilder) -> None:
    actions = [("remove_content", ["FR"], 2, None)] * 5 + [
        ("geo_restrict_content", ["DE", "FR"], 1, None),
        ("end_meeting", [], 1, 1),
    ]
    for k, (action, territories, items, days) in enumerate(actions):
        d, t = f"d_fr{k}", datetime(2026, 8, 3 + k, 10, tzinfo=UTC)
        extra: dict[str, Any] = {"restriction_action": action}
        if territories:
            extra["territories"] = territories
        log.received(d, t, "FR regulator", "restriction dsa_art9_order", items, **extra)
        log.approved(d, t + timedelta(minutes=30))
        facts: dict[str, Any] = {"restriction_action": action, "target_count": items}
        if territories:
            facts["territories"] = territories
        if days:
            facts["duration_days"] = days
        log.add("restriction.applied", t + timedelta(hours=k + 1), d, facts)


def build_leaves() -> list[bytes]:
    log = LogBuilder()
    log.add("policy.activated", datetime(2026, 1, 2, tzinfo=UTC), None, {"pack": PACK})
    june = datetime(2026, 6, 30, 23, 59, tzinfo=UTC)
    log.received(
        "d_june", june, "US police", "disclosure subpoena", 1, categories=["subscriber_info"]
    )
    log.add("demand.refused", datetime(2026, 7, 2, tzinfo=UTC), "d_june")
    _germany(log)
    _united_states(log)
    _france(log)
    _china(log)
    log.received(
        "d_next",
        datetime(2027, 1, 1, tzinfo=UTC),
        "US police",
        "disclosure subpoena",
        1,
        categories=["subscriber_info"],
    )
    log.leaves.append(b'{"not": "an event"}')
    log.add("policy.activated", datetime(2027, 7, 2, tzinfo=UTC), None, {"pack": PACK})
    return log.leaves


def publish(data: Path, leaves: list[bytes], origin: str = ORIGIN) -> str:
    """Append ``leaves`` to the log of the data directory ``data`` (made if need be, for a
    log of ``origin``) and integrate them; returns the log's verifier key."""
    if not (data / "custodes.toml").exists():
        init_data_dir(data, origin)
    settings = load_settings(data, database_url=f"sqlite:///{data / 'custodes.db'}")
    with open_deployment(settings) as dep:
        dep.ledger.append(leaves)
        while dep.sequencer.integrate() is not None:
            pass
        return dep.vkey


def trust(vkey: str) -> Policy:
    return Policy((PolicyLog(vkey),), (), (), NONE)


def forge(root: Path, leaves: list[bytes], skey: str) -> None:
    """Publish ``leaves`` as a whole new log in ``root``, signed with ``skey``."""
    hashes = [leaf_hash(e) for e in leaves]
    tiles = {(t.level, t.index): data for t, data in new_tiles(0, len(leaves), hashes, _no_tile)}
    for (level, index), data in tiles.items():
        path = root / format_tile_path(_tile(level, index, len(data) // 32))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for start in range(0, len(leaves), TILE_WIDTH):
        chunk = leaves[start : start + TILE_WIDTH]
        path = root / format_tile_path(bundle_tile(start // TILE_WIDTH, len(chunk)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(format_bundle(chunk))
    reader = TileNodeReader(lambda t: tiles[(t.level, t.index)][: t.width * 32], len(leaves))
    cp = Checkpoint(ORIGIN, len(leaves), tree_root(len(leaves), reader))
    (root / "checkpoint").write_bytes(sign_note(format_checkpoint(cp), new_signer(skey)))


def _tile(level: int, index: int, width: int) -> Tile:
    return Tile(level, index, width)


def _no_tile(tile: Tile) -> bytes:
    raise AssertionError(f"a fresh log reads no tile ({tile})")


# -- fixtures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    data: Path
    vkey: str
    leaves: list[bytes]

    def report(self, period: str, data: Path | None = None) -> Report:
        where = str(data or self.data)
        return compute_report(
            open_source(where), trust(self.vkey), parse_period(period), source=where
        )


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    data = tmp_path_factory.mktemp("reports") / "data"
    leaves = build_leaves()
    return Published(data, publish(data, leaves), leaves)


@pytest.fixture(scope="module")
def h2(published: Published) -> Report:
    return published.report("2026H2")


@pytest.fixture(scope="module")
def h2_files(h2: Report) -> dict[str, bytes]:
    return render_report(h2)


def rows(report: Report, table: str) -> list[tuple[Any, ...]]:
    return list(report.table(table).rows)


# -- the figures -----------------------------------------------------------------------------


def test_demands_are_counted_exactly_per_country_and_authority_kind(h2: Report) -> None:
    assert rows(h2, "demands") == [
        ("CN", "intelligence", 5, 15, 0, 0.0, 5, 0, 0, 0, 0, 0, 0),
        ("DE", "court", 6, 12, 5, 83.3, 0, "<5", "<5", 0, 0, "<5", 0),
        ("FR", "regulator", 7, 12, 0, 0.0, 0, 0, 0, 0, 0, 0, 0),
        ("US", "police", 7, 9, 5, 71.4, 0, 0, 0, 5, "<5", 0, "<5"),
    ]


def test_totals_and_summaries_are_summed_before_suppression(h2: Report) -> None:
    assert rows(h2, "totals") == [(25, 48, 10, 40.0, 5, "<5", "<5", 5, "<5", "<5", "<5")]
    by_kind = {r[0]: r[1] for r in rows(h2, "demands_by_authority_kind")}
    assert by_kind == {"court": 6, "intelligence": 5, "police": 7, "regulator": 7}
    by_country = {r[0]: r[1:3] for r in rows(h2, "demands_by_country")}
    assert by_country == {"CN": (5, 15), "DE": (6, 12), "FR": (7, 12), "US": (7, 9)}


def test_restrictions_are_counted_by_kind_and_territorial_scope(h2: Report) -> None:
    assert rows(h2, "restrictions") == [
        ("FR", "regulator", "end_meeting", "unlimited", "<5", "<5"),
        ("FR", "regulator", "geo_restrict_content", "beyond_requesting_state", "<5", "<5"),
        ("FR", "regulator", "remove_content", "requesting_state", 5, 10),
        ("US", "police", "suspend_account", "requesting_state", "<5", "<5"),
    ]


def test_national_security_process_appears_only_in_bands_after_its_delay(
    published: Published, h2: Report
) -> None:
    assert rows(h2, "national_security") == [
        ("US", "national_security_letter", 250, "0-249", "250-499", 180, "2027-06-30", "published")
    ]
    assert all(r[1] != "intelligence" or r[0] != "US" for r in rows(h2, "demands"))
    later = published.report("2027H1")  # the log ends on 2 July 2027: before 28 December
    assert rows(later, "national_security") == [
        ("US", "national_security_letter", 250, None, None, 180, "2027-12-28", "withheld")
    ]
    assert not later.provisional and published.report("2027H2").provisional


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("2026Q3", {"DE": 6, "FR": 7, "US": 7}),  # the refusals from CN came in October
        ("2026Q4", {"CN": 5}),
        ("2026H1", {"US": "<5"}),  # received 30 June, refused 2 July: counted in H1
        ("2026", {"CN": 5, "DE": 6, "FR": 7, "US": 8}),
        ("2027Q1", {"US": "<5"}),
    ],
)
def test_periods_count_demands_by_their_first_receipt(
    published: Published, period: str, expected: dict[str, Any]
) -> None:
    got = {r[0]: r[1] for r in rows(published.report(period), "demands_by_country")}
    assert got == expected


def test_a_demand_is_refused_in_the_period_it_was_received(published: Published) -> None:
    h1 = published.report("2026H1")
    assert rows(h1, "totals")[0][4] == "<5"  # refused
    assert published.report("2026").table("demands").rows[-1][:7] == (
        "US",
        "police",
        8,
        10,
        5,
        62.5,
        "<5",
    )


def test_entries_that_are_not_events_are_counted_and_left_out(
    published: Published, h2: Report
) -> None:
    assert (h2.not_events, h2.events) == (1, len(published.leaves) - 1)
    assert h2.logs[0].checkpoint.size == len(published.leaves)
    assert h2.as_of == datetime(2027, 7, 2, tzinfo=UTC)


def test_suppression_never_publishes_a_count_from_one_to_four(h2_files: dict[str, bytes]) -> None:
    checked = 0
    for schema in SCHEMAS.values():
        lines = list(csv.DictReader(io.StringIO(h2_files[schema.path].decode())))
        for column in schema.columns:
            for line in lines:
                value = line[column.name]
                if column.suppressible:
                    assert value in {SUPPRESSED, ""} or int(value) == 0 or int(value) >= 5
                    checked += 1
    assert checked > 100
    doc = json.loads(h2_files["report.json"])
    assert doc["suppression"] == {"counts_below": 5, "shown_as": "<5"}
    assert doc["tables"]["demands"][1]["narrowed"] == "<5"
    assert doc["tables"]["demands"][1]["share_with_data_produced"] == 83.3


# -- the files -------------------------------------------------------------------------------

_TYPES: dict[str, Callable[[str], bool]] = {
    "integer": lambda v: re.fullmatch(r"-?\d+", v) is not None,
    "number": lambda v: re.fullmatch(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", v) is not None,
    "string": lambda v: True,
    "date": lambda v: date.fromisoformat(v) is not None,
}


def test_every_csv_file_matches_its_datapackage_schema(h2_files: dict[str, bytes]) -> None:
    package = json.loads(h2_files["datapackage.json"])
    assert package["profile"] == "data-package"
    assert re.fullmatch(r"[a-z0-9._-]+", package["name"])
    tabular = [r for r in package["resources"] if r.get("profile") == "tabular-data-resource"]
    assert sorted(r["path"] for r in tabular) == sorted(s.path for s in SCHEMAS.values())
    for resource in package["resources"]:
        data = h2_files[resource["path"]]
        assert resource["bytes"] == len(data)
        assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    for resource in tabular:
        schema = resource["schema"]
        fields = schema["fields"]
        lines = list(csv.reader(io.StringIO(h2_files[resource["path"]].decode(), newline="")))
        assert lines[0] == [f["name"] for f in fields], resource["path"]
        keys = set()
        for line in lines[1:]:
            assert len(line) == len(fields)
            for f, value in zip(fields, line, strict=True):
                assert value in schema["missingValues"] or _TYPES[f["type"]](value), (f, value)
            key = tuple(
                line[[f["name"] for f in fields].index(k)] for k in schema.get("primaryKey", [])
            )
            assert key not in keys
            keys.add(key)
        assert h2_files[resource["path"]].endswith(b"\r\n")


def test_report_json_and_every_csv_file_round_trip(h2: Report, h2_files: dict[str, bytes]) -> None:
    assert parse_report_json(h2_files["report.json"]) == h2
    for table in h2.tables:
        assert parse_csv(table.schema, h2_files[table.schema.path]) == table


def test_the_html_page_holds_the_charts_the_tables_and_the_checkpoint(
    h2: Report, h2_files: dict[str, bytes]
) -> None:
    page = h2_files["report.html"].decode()
    charts = re.findall(
        r'<figure class="chart" id="chart-([a-z-]+)"><svg[^>]*>.*?</svg>', page, re.S
    )
    assert charts == ["demands-by-country", "demands-by-authority-kind", "outcomes", "restrictions"]
    assert h2.logs[0].checkpoint.root.hex() in page and ORIGIN in page
    for schema in SCHEMAS.values():
        assert f'id="table-{schema.name}"' in page
    assert "Demands by country" in page and ">FR<" in page
    assert page.count("<svg") == 4
    assert ">&lt;5</abbr>" in page
    assert "<5" not in re.sub(r"<svg.*?</svg>", "", page, flags=re.S)  # escaped everywhere
    assert render_report(h2)["report.html"] == h2_files["report.html"]  # deterministic


# -- EU exports ------------------------------------------------------------------------------


def test_dsa_orders_table_gives_counts_and_median_hours(h2: Report) -> None:
    context = rows(h2, "dsa_orders")[0][-1]
    assert "0 hours" in context
    assert [r[:-1] for r in rows(h2, "dsa_orders")] == [
        ("DE", "not_specified", 0, 0, None, None, 6, 0.0, 3.0),
        ("FR", "not_specified", 7, 12, 0.0, 4.0, 0, None, None),
    ]


_ENUMS = {
    "decision_visibility": {
        "DECISION_VISIBILITY_CONTENT_REMOVED",
        "DECISION_VISIBILITY_CONTENT_DISABLED",
        "DECISION_VISIBILITY_CONTENT_DEMOTED",
        "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
        "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
        "DECISION_VISIBILITY_CONTENT_LABELLED",
        "DECISION_VISIBILITY_OTHER",
    },
    "decision_account": {"DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"},
    "decision_provision": {
        "DECISION_PROVISION_PARTIAL_SUSPENSION",
        "DECISION_PROVISION_TOTAL_SUSPENSION",
        "DECISION_PROVISION_PARTIAL_TERMINATION",
        "DECISION_PROVISION_TOTAL_TERMINATION",
    },
    "decision_ground": {"DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"},
    "content_type": {
        "CONTENT_TYPE_APP",
        "CONTENT_TYPE_AUDIO",
        "CONTENT_TYPE_IMAGE",
        "CONTENT_TYPE_OTHER",
        "CONTENT_TYPE_PRODUCT",
        "CONTENT_TYPE_SYNTHETIC_MEDIA",
        "CONTENT_TYPE_TEXT",
        "CONTENT_TYPE_VIDEO",
    },
    "source_type": {
        "SOURCE_ARTICLE_16",
        "SOURCE_TRUSTED_FLAGGER",
        "SOURCE_TYPE_OTHER_NOTIFICATION",
        "SOURCE_VOLUNTARY",
    },
    "automated_detection": {"Yes", "No"},
    "automated_decision": {
        "AUTOMATED_DECISION_FULLY",
        "AUTOMATED_DECISION_PARTIALLY",
        "AUTOMATED_DECISION_NOT_AUTOMATED",
    },
}
_LIMITS = {
    "decision_visibility_other": 500,
    "illegal_content_legal_ground": 500,
    "illegal_content_explanation": 2000,
    "content_type_other": 500,
    "decision_facts": 5000,
    "source_identity": 500,
    "puid": 500,
}
_API_FIELDS = (
    set(_ENUMS)
    | set(_LIMITS)
    | {
        "decision_monetary",
        "category",
        "territorial_scope",
        "content_date",
        "application_date",
        "end_date_account_restriction",
        "end_date_monetary_restriction",
        "end_date_service_restriction",
        "end_date_visibility_restriction",
        "account_type",
    }
)


def check_statement(s: dict[str, Any]) -> None:
    """The validation rules of the DSA Transparency Database's statement API."""
    assert set(s) <= _API_FIELDS, set(s) - _API_FIELDS
    for name in (
        "decision_ground",
        "content_type",
        "category",
        "content_date",
        "application_date",
        "decision_facts",
        "source_type",
        "automated_detection",
        "automated_decision",
        "puid",
    ):
        assert name in s, name
    assert {"decision_visibility", "decision_account", "decision_provision"} & set(s)
    for name, allowed in _ENUMS.items():
        if name in s:
            values = s[name] if isinstance(s[name], list) else [s[name]]
            assert set(values) <= allowed, (name, values)
    for name, limit in _LIMITS.items():
        assert len(s.get(name, "")) <= limit
    if s["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT":
        assert s["illegal_content_legal_ground"] and s["illegal_content_explanation"]
    if "DECISION_VISIBILITY_OTHER" in s.get("decision_visibility", []):
        assert s["decision_visibility_other"]
    if "CONTENT_TYPE_OTHER" in s["content_type"]:
        assert s["content_type_other"]
    assert s["category"].startswith("STATEMENT_CATEGORY_")
    assert set(s["territorial_scope"]) <= set(EEA) and s["territorial_scope"]
    assert re.fullmatch(r"[a-zA-Z0-9-_]+", s["puid"])
    applied = date.fromisoformat(s["application_date"])
    assert applied >= date(2020, 1, 1) and date.fromisoformat(s["content_date"]) <= applied
    for name in [n for n in s if n.startswith("end_date_")]:
        assert date.fromisoformat(s[name]) >= applied


def test_dsa_statements_of_reasons_follow_the_transparency_database_api(
    h2_files: dict[str, bytes],
) -> None:
    statements = json.loads(h2_files["dsa-statements.json"])["statements"]
    assert len(statements) == 12  # 5 x 2 items removed, 1 geo-restricted, 1 meeting ended
    for s in statements:
        check_statement(s)
    assert len({s["puid"] for s in statements}) == 12
    by_demand = {s["puid"].rsplit("-", 2)[0]: s for s in statements}
    assert set(by_demand) == {f"d_fr{k}" for k in range(7)}  # the US suspension is not in the EEA
    removed, geo, meeting = by_demand["d_fr0"], by_demand["d_fr5"], by_demand["d_fr6"]
    assert removed["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    assert removed["territorial_scope"] == ["FR"]
    assert removed["application_date"] == removed["content_date"] == "2026-08-03"
    assert geo["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_DISABLED"]
    assert geo["territorial_scope"] == ["DE", "FR"]
    assert meeting["decision_visibility"] == ["DECISION_VISIBILITY_OTHER"]
    assert meeting["territorial_scope"] == list(EEA) and len(EEA) == 30
    assert meeting["end_date_visibility_restriction"] == "2026-08-10"
    assert "Article 9" in removed["illegal_content_legal_ground"]
    assert "a regulator of FR" in removed["source_identity"]
    assert "staff-01" not in json.dumps(statements)  # nothing private: staff ids are committed


# -- --verify --------------------------------------------------------------------------------


def test_verify_passes_on_an_untouched_report(
    tmp_path: Path, h2: Report, h2_files: dict[str, bytes]
) -> None:
    write_report(h2_files, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)
    verified = verify_report(tmp_path / "out")
    assert verified.report == h2 and verified.charts_compared


def _replace(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        assert old in data
        return data.replace(old, new, 1)

    return edit


@pytest.mark.parametrize(
    ("name", "edit", "names"),
    [
        ("report.json", _replace(b'"refused": 5', b'"refused": 6'), "$.tables.totals[0].refused"),
        (
            "demands.csv",
            _replace(b"CN,intelligence,5,15", b"CN,intelligence,5,16"),
            "column subjects",
        ),
        ("dsa-orders.csv", _replace(b",3.0,", b",2.5,"), "dsa-orders.csv line 2"),
        ("dsa-statements.json", _replace(b"d_fr1-", b"d_fr9-"), "$.statements[2].puid"),
        (
            "datapackage.json",
            _replace(b'"title": "Demands', b'"title": "Requests'),
            "datapackage.json",
        ),
        ("report.html", _replace(b"<h2>Charts", b"<h2>Graphs"), "report.html line"),
        ("report.html", _replace(b"<svg", b"<svg data-x='1'"), "report.html line"),
        ("restrictions.csv", lambda d: b"", "restrictions.csv has 0 lines"),
    ],
)
def test_verify_names_the_first_difference_in_an_edited_report(
    tmp_path: Path,
    h2_files: dict[str, bytes],
    name: str,
    edit: Callable[[bytes], bytes],
    names: str,
) -> None:
    out = tmp_path / "out"
    write_report(h2_files, out)
    (out / name).write_bytes(edit((out / name).read_bytes()))
    with pytest.raises(ReportMismatchError) as caught:
        verify_report(out)
    assert caught.value.detail.startswith(name) and names in caught.value.detail
    assert "\n" not in caught.value.detail


def test_charts_drawn_by_another_matplotlib_are_not_compared_but_the_rest_is(
    tmp_path: Path, h2_files: dict[str, bytes]
) -> None:
    out = tmp_path / "out"
    write_report(h2_files, out)
    page = (out / "report.html").read_bytes()
    older = re.sub(
        rb'content="custodes [^"]*"', b'content="custodes 0.0.1; matplotlib 3.8.0"', page
    )
    (out / "report.html").write_bytes(older.replace(b"<svg", b"<svg data-old='1'"))
    verified = verify_report(out)
    assert not verified.charts_compared
    (out / "report.html").write_bytes(older.replace(b'<td class="s">CN<', b'<td class="s">XX<', 1))
    with pytest.raises(ReportMismatchError, match=r"report\.html line"):
        verify_report(out)


def test_verify_fails_when_a_file_is_missing(tmp_path: Path, h2_files: dict[str, bytes]) -> None:
    write_report(h2_files, tmp_path / "out")
    (tmp_path / "out" / "national-security.csv").unlink()
    with pytest.raises(ReportMismatchError, match=r"national-security\.csv is missing"):
        verify_report(tmp_path / "out")


def test_a_log_that_grew_still_verifies_the_report_of_its_earlier_checkpoint(
    tmp_path: Path, published: Published, h2_files: dict[str, bytes]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(published.data, data)
    out = tmp_path / "out"
    files = dict(h2_files)
    write_report(files, out)
    more = LogBuilder()
    more.received(
        "d_late",
        datetime(2026, 12, 30, tzinfo=UTC),
        "DE court",
        "disclosure court_order",
        1,
        categories=["subscriber_info"],
    )
    publish(data, more.leaves)
    verified = verify_report(out, fetch=open_source(str(data)))
    assert verified.report.logs[0].checkpoint.size == len(published.leaves)
    again = published.report("2026H2", data)  # a new report from the longer log counts it
    assert again.logs[0].checkpoint.size == len(published.leaves) + 1
    assert rows(again, "demands_by_country")[1][:2] == ("DE", 7)


def test_a_rewritten_log_fails_verification(
    tmp_path: Path, published: Published, h2_files: dict[str, bytes]
) -> None:
    out = tmp_path / "out"
    write_report(h2_files, out)
    skey = (published.data / "keys" / "log.skey").read_text().strip()
    forged = list(published.leaves)
    forged[3], forged[4] = forged[4], forged[3]  # same events, another history
    forge(tmp_path / "forged", forged, skey)
    with pytest.raises(LogChangedError, match="not to the report's checkpoint root"):
        verify_report(out, fetch=dir_fetcher(tmp_path / "forged"))
    forge(tmp_path / "short", forged[:10], skey)
    with pytest.raises(LogChangedError, match="fewer than the"):
        verify_report(out, fetch=dir_fetcher(tmp_path / "short"))


def test_a_tampered_log_is_refused_before_anything_is_counted(
    tmp_path: Path, published: Published
) -> None:
    copy = tmp_path / "log"
    shutil.copytree(published.data / "log", copy)
    bundle = next((copy / "tile" / "entries").rglob("*"))
    while bundle.is_dir():
        bundle = next(bundle.iterdir())
    data = bytearray(bundle.read_bytes())
    data[40] ^= 1
    bundle.write_bytes(bytes(data))
    with pytest.raises(UnverifiedLogError, match="does not verify"):
        published.report("2026H2", copy)
    other = Policy((PolicyLog(_other_key()),), (), (), NONE)
    with pytest.raises(UnverifiedLogError, match="checkpoint does not verify"):
        compute_report(open_source(str(published.data)), other, parse_period("2026"), source="x")


def _other_key() -> str:
    from custodes.tlog import generate_key

    return generate_key(ORIGIN)[1]


def test_the_golden_log_gives_a_report_that_round_trips(tmp_path: Path) -> None:
    from custodes.audit.policy import parse_policy

    policy = parse_policy((GOLDEN / "policy").read_bytes())
    report = compute_report(
        open_source(str(GOLDEN)), policy, parse_period("2026"), source=str(GOLDEN)
    )
    assert rows(report, "totals")[0][0] == 31 and report.not_events == 0
    files = render_report(report)
    assert parse_report_json(files["report.json"]) == report
    write_report(files, tmp_path / "golden")
    assert verify_report(tmp_path / "golden").report == report


# -- the command -----------------------------------------------------------------------------

cli = typer.Typer()
cli.command("report")(report_command)


@cli.command("other")
def _other() -> None:  # a second command keeps ``report`` a named subcommand
    pass


runner = CliRunner()


def test_command_writes_a_report_and_verifies_it(tmp_path: Path, published: Published) -> None:
    out = tmp_path / "out"
    made = runner.invoke(
        cli,
        [
            "report",
            str(published.data),
            "--period",
            "2026Q3",
            "--vkey",
            published.vkey,
            "--out",
            str(out),
        ],
    )
    assert made.exit_code == 0, made.output
    assert "wrote the 2026Q3 report" in made.output and (out / "report.html").is_file()
    checked = runner.invoke(cli, ["report", "--verify", str(out)])
    assert checked.exit_code == 0, checked.output
    assert "verified" in checked.output and "trust policy the report names" in checked.output
    policy = tmp_path / "policy"
    policy.write_text(f"log {published.vkey}\nquorum none\n")
    again = runner.invoke(
        cli, ["report", str(published.data), "--verify", str(out), "--policy", str(policy)]
    )
    assert again.exit_code == 0, again.output
    assert "trust policy the report names" not in again.output


def test_command_fails_with_one_line_on_a_difference(tmp_path: Path, published: Published) -> None:
    out = tmp_path / "out"
    runner.invoke(
        cli,
        [
            "report",
            str(published.data),
            "--period",
            "2026H2",
            "--vkey",
            published.vkey,
            "--out",
            str(out),
        ],
    )
    csv_file = out / "demands-by-country.csv"
    csv_file.write_bytes(csv_file.read_bytes().replace(b"FR,7,", b"FR,8,"))
    result = runner.invoke(cli, ["report", "--verify", str(out)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error[report_mismatch]: demands-by-country.csv line 4")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026H3"], "report_period"),
        (["--period", "2026H2"], "--policy"),
        (["--period", "2026H2", "--policy", "/nonexistent/policy"], "report_io"),
    ],
)
def test_command_refuses_what_it_cannot_run(
    published: Published, args: list[str], message: str
) -> None:
    if "--policy" not in args and args[1] == "2026H3":
        args = [*args, "--vkey", published.vkey]
    result = runner.invoke(cli, ["report", str(published.data), *args])
    assert result.exit_code == 2
    assert message in result.output
