"""Screenings judged again by the auditor, from the log and the published policy pack.

A demo log written by the real service, under the real pack, must pass; screenings that
say something the pack would not have said, or that the platform did not follow, must not.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from custodes.audit.checks import Replay, default_checks
from custodes.audit.errors import PackError
from custodes.audit.findings import Finding
from custodes.audit.logcheck import dir_fetcher
from custodes.audit.packs import PublishedPack, load_published_pack
from custodes.audit.screening import DEMAND_CHECKS, ITEM_CHECK, TARGET_CHECK
from custodes.cli import app
from custodes.events import Opening, encode_event, parse_openings
from custodes.policy import DEFAULT_PACK, load_pack
from custodes.policy import screening as policy_screening
from custodes.tlog import TILE_WIDTH, bundle_tile, format_tile_path, parse_bundle

PUBLISHED = load_published_pack(DEFAULT_PACK)
PACK = PUBLISHED.hash
START = datetime(2026, 3, 2, 8, tzinfo=UTC)

# -- the published pack, read as an outsider ------------------------------------------------


def test_the_published_pack_reads_as_custodes_loads_it() -> None:
    pack = load_pack()
    assert PUBLISHED.hash == pack.hash
    assert {r.id: (r.actions, r.outcome.value, r.role) for r in pack.rules.values()} == {
        r.id: (r.actions, r.outcome, r.role) for r in PUBLISHED.rules.values()
    }
    lim = pack.tables.limits
    assert PUBLISHED.limits["target_cap"] == lim.target_cap
    assert PUBLISHED.limits["time_bound"] == sorted(lim.time_bound_categories)
    assert PUBLISHED.limits["global_actions"] == sorted(lim.global_actions)
    offences = pack.tables.offences.values()
    assert PUBLISHED.limits["protected_offences"] == sorted(o.id for o in offences if o.protected)
    assert PUBLISHED.limits["emergency_offences"] == sorted(o.id for o in offences if o.emergency)


def test_the_checks_are_those_screening_asks() -> None:
    assert DEMAND_CHECKS == policy_screening.DEMAND_CHECKS
    from custodes.audit import screening

    assert {c: {k.value for k in kinds} for c, kinds in policy_screening._APPLIES.items()} == {
        c: set(kinds) for c, kinds in screening._ONLY_FOR.items()
    }
    assert policy_screening._NEEDS_AUTHORITY == screening._NEEDS_AUTHORITY
    used = {a for r in PUBLISHED.rules.values() for a in r.actions}
    assert {*DEMAND_CHECKS, ITEM_CHECK, TARGET_CHECK} <= used


def test_checks_that_read_private_facts_or_the_hierarchy_are_never_rerun() -> None:
    reads = {check: PUBLISHED.checks[check][1] for check in (*DEMAND_CHECKS, TARGET_CHECK)}
    assert reads["territory"] is None and reads["reach"] is None  # they use `in`
    scope = reads["scope"]
    assert scope is not None and scope.attrs == {"resource.target_count", "resource.volume"}
    assert PUBLISHED.decide("evidence", {}, {"kind": "disclosure"}) is None


def test_remembered_answers_are_the_answers_cedar_gives() -> None:
    rng = random.Random(9)
    fresh = load_published_pack(DEFAULT_PACK)
    policies, _ = fresh.checks["scope"]
    for _ in range(300):
        resource = {"target_count": rng.choice([0, 1, 24, 25, 26, 23_000, rng.randrange(99)]),
                    "volume": rng.choice([0, 249, 250, 251, rng.randrange(10**6)])}  # fmt: skip
        assert PUBLISHED.decide("scope", {}, resource) == fresh._ask(
            "scope", policies, {}, resource
        )
    assert len(PUBLISHED._answers) < 40


def test_an_integer_used_otherwise_than_in_comparisons_is_remembered_as_it_is(
    tmp_path: Path,
) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, pack)
    with (pack / "scope.cedar").open("a") as fh:
        fh.write(
            '\n@id("scope.seven")\n@outcome("escalate")\n@role("legal_counsel")\n'
            '@reason("r")\n@remedy("r")\nforbid (principal, action == Action::"scope", '
            "resource)\nwhen { resource.volume + 1 == 8 };\n"
        )
    published = load_published_pack(pack)
    reads = published.checks["scope"][1]
    assert reads is not None and "resource.volume" not in reads.thresholds
    seven = published.decide("scope", {}, {"target_count": 1, "volume": 7})
    nine = published.decide("scope", {}, {"target_count": 1, "volume": 9})
    assert seven == frozenset({("scope.seven", "escalate")})  # a forbid matched: forbids only
    assert nine == frozenset({("scope.within_limits", "pass")})


def test_a_pack_that_cannot_be_read_stops_the_audit(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="not a directory"):
        load_published_pack(tmp_path / "nowhere")
    broken = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, broken)
    (broken / "pack.toml").write_text("[limits\n")
    with pytest.raises(PackError, match=r"pack\.toml"):
        load_published_pack(broken)
    (broken / "pack.toml").unlink()
    with pytest.raises(PackError, match=r"no pack\.toml"):
        load_published_pack(broken)
    shutil.copy(DEFAULT_PACK / "pack.toml", broken / "pack.toml")
    (broken / "scope.cedar").write_text("permit (principal, action, resource) when {")
    with pytest.raises(PackError, match=r"scope\.cedar"):
        load_published_pack(broken)


def test_a_changed_file_changes_the_hash(tmp_path: Path) -> None:
    copy = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, copy)
    assert load_published_pack(copy).hash == PACK
    with (copy / "README.md").open("a") as fh:
        fh.write("\n")
    assert load_published_pack(copy).hash != PACK


# -- a log told event by event -------------------------------------------------------------


class Story:
    def __init__(self) -> None:
        self.leaves: list[bytes] = []
        self.disclosed: dict[int, dict[str, Opening | tuple[Opening, ...]]] = {}
        self.time = START

    def add(self, kind: str, private: dict[str, Any] | None = None, **facts: Any) -> int:
        self.time += timedelta(hours=1)
        demand = facts.pop("demand", "d_1")
        leaf, openings = encode_event(
            kind, time=self.time, demand=demand, facts=facts, private=private or {}
        )
        self.leaves.append(leaf)
        self.disclosed[len(self.leaves) - 1] = dict(openings)
        return len(self.leaves) - 1

    def received(self, registered: bool = True, offence: str | None = "fraud", **f: Any) -> int:
        facts: dict[str, Any] = {
            "demand_kind": "disclosure",
            "instrument_kind": "court_order",
            "target_count": 1,
            "signature": "valid",
            "categories": ["subscriber_info"],
        }
        if registered:
            facts |= {"authority_jurisdiction": "US", "authority_kind": "police"}
        private = {"targets": [f"u-{i}" for i in range(f.get("target_count", 1))],
                   "document_sha256": "ab" * 32}  # fmt: skip
        if offence is not None:
            private["offence"] = offence
        return self.add("demand.received", private, **(facts | f))

    def screened(self, findings: list[dict[str, Any]], outcome: str = "pass", **f: Any) -> int:
        rules = sorted({x["rule"] for x in findings if x["outcome"] != "pass"})
        facts: dict[str, Any] = {
            "pack": PACK,
            "outcome": outcome,
            "findings": findings,
            "volume": 1,
        }
        return self.add("demand.screened", **(facts | ({"rules": rules} if rules else {}) | f))

    def findings(
        self,
        disclosed: bool = True,
        packs: list[PublishedPack] | None = [PUBLISHED],  # noqa: B006
    ) -> list[Finding]:
        """What the auditor finds, with the default pack published (None: no --pack)."""
        replay = Replay(default_checks(self.disclosed if disclosed else {}, packs))
        for index, leaf in enumerate(self.leaves):
            replay.feed(index, leaf)
        return replay.finish(self.time + timedelta(hours=1))


def lawful(**changes: Any) -> list[dict[str, Any]]:
    """The findings of a lawful US court order for one US subscriber's data, as the pack
    gives them; ``changes`` replace the findings of a rule (None: drop it)."""
    found: list[dict[str, Any]] = [
        {"rule": "requester.verified", "outcome": "pass"},
        {"rule": "scope.within_limits", "outcome": "pass"},
        {"rule": "scope.time_range_within", "outcome": "pass"},
        {"rule": "instrument.fits", "outcome": "pass"},
        {"rule": "expression.not_protected", "outcome": "pass"},
        {"rule": "evidence.none_needed", "outcome": "pass"},
        {"rule": "gag.none", "outcome": "pass"},
        {"rule": "instrument.sufficient", "outcome": "pass", "item": "subscriber_info"},
        {"rule": "jurisdiction.domestic", "outcome": "pass", "target": 0},
    ]
    out = []
    for f in found:
        key = f["rule"].replace(".", "_")
        if key not in changes:
            out.append(f)
        elif changes[key] is not None:
            out += changes[key]
    return out


def codes(findings: list[Finding]) -> list[tuple[str, tuple[int, ...]]]:
    return [(f.code, f.entries) for f in findings]


def test_a_screening_as_the_pack_gives_it_passes() -> None:
    story = Story()
    story.received()
    story.screened(lawful())
    story.add("demand.review_opened", roles=[])
    assert story.findings() == []
    assert story.findings(disclosed=False) == []


def test_a_cap_the_log_shows_exceeded_must_be_refused() -> None:
    story = Story()
    received = story.received(target_count=23_000)
    screened = story.screened(lawful(jurisdiction_domestic=None), volume=23_010)
    [finding] = story.findings()
    assert (finding.code, finding.entries) == ("screening_mismatch", (received, screened))
    assert "scope check finds [scope.target_cap refuse, scope.volume escalate]" in finding.detail


def test_a_verdict_that_does_not_follow_from_its_findings_is_inconsistent() -> None:
    story = Story()
    story.received()
    screened = story.screened(lawful(), outcome="escalate")
    story.add("demand.review_opened", roles=["legal_counsel"])
    found = story.findings()
    assert [f.code for f in found] == ["screening_inconsistent", "screening_mismatch"]
    assert "its findings make it pass" in found[0].detail
    assert found[1].entries == (screened, screened + 1) and "roles ['legal_counsel']" in (
        found[1].detail
    )


def test_rules_outcomes_and_positions_are_checked_against_the_pack() -> None:
    story = Story()
    story.received()
    story.screened(
        lawful(
            gag_none=[{"rule": "gag.none", "outcome": "escalate"}],
            evidence_none_needed=[{"rule": "evidence.made_up", "outcome": "pass"}],
            jurisdiction_domestic=[
                {"rule": "jurisdiction.domestic", "outcome": "pass", "target": 3}
            ],
        ),
        outcome="escalate",
    )  # fmt: skip
    found = {f.code: f for f in story.findings()}
    assert set(found) == {"screening_inconsistent", "screening_mismatch"}
    assert "names target 3 of 1" in found["screening_inconsistent"].detail
    problems = found["screening_mismatch"].evidence["problems"]
    assert "rule gag.none passs in the pack, the screening says escalate" in problems
    assert "rule evidence.made_up is not in the pack" in problems


def test_an_escalation_without_its_specialist_in_review_is_a_mismatch() -> None:
    story = Story()
    story.received(offence="political_opinion")
    protected = [{"rule": "expression.protected", "outcome": "escalate"}]
    story.screened(lawful(expression_not_protected=protected), outcome="escalate")
    opened = story.add("demand.review_opened", roles=[])
    [finding] = story.findings()
    assert finding.code == "screening_mismatch" and finding.entries == (opened - 1, opened)
    assert "need ['human_rights_reviewer']" in finding.detail


def test_a_disclosed_offence_lets_the_expression_check_run_again() -> None:
    story = Story()
    story.received(offence="political_opinion")
    story.screened(lawful())  # says: not protected
    [finding] = story.findings()
    assert "expression check finds [expression.protected escalate]" in finding.detail
    assert story.findings(disclosed=False) == []  # the offence is private: not re-run
    story.disclosed[0] = {"offence": Opening(bytes(32), "fraud")}  # a false disclosure
    assert [f.code for f in story.findings()] == ["opening_mismatch"]


def test_a_demand_naming_no_offence_is_judged_without_one() -> None:
    story = Story()
    story.received(offence=None)
    story.screened(lawful())
    [finding] = story.findings(disclosed=False)
    assert "expression check finds [expression.no_offence escalate]" in finding.detail


def test_an_unregistered_requester_cannot_pass_the_requester_check() -> None:
    story = Story()
    story.received(registered=False, signature="missing")
    story.screened(lawful(instrument_fits=None, instrument_sufficient=None,
                          jurisdiction_domestic=None))  # fmt: skip
    [finding] = story.findings()
    assert "requester check finds [requester.unregistered refuse, requester.unsigned refuse]" in (
        finding.detail
    )


def test_instrument_and_gag_are_rerun_from_public_facts() -> None:
    story = Story()
    story.received(instrument_kind="emergency_request", nondisclosure="undated")
    story.screened(lawful())
    [finding] = story.findings()
    problems = " ".join(finding.evidence["problems"])
    assert "instrument check finds [instrument.emergency_only refuse] from the log" in (problems)
    assert "gag check finds [gag.no_end_date escalate]" in problems


def test_screenings_under_an_unpublished_pack_are_named_once() -> None:
    story = Story()
    story.received()
    first = story.screened(lawful(), pack="cd" * 32)
    story.received()
    second = story.screened(lawful(), pack="cd" * 32)
    [finding] = story.findings()
    assert finding.code == "pack_unpublished" and finding.entries == (first, second)
    assert finding.evidence == {"pack": "cd" * 32, "count": 2}
    assert story.findings(packs=[]) == [finding]


def test_without_published_packs_screenings_are_not_judged() -> None:
    story = Story()
    story.received(target_count=23_000)
    story.screened(lawful(jurisdiction_domestic=None), outcome="escalate")
    replay = Replay(default_checks(story.disclosed))
    for index, leaf in enumerate(story.leaves):
        replay.feed(index, leaf)
    assert replay.finish(story.time) == [] and replay.notes() == []


# -- refused targets and items are never acted on ------------------------------------------


def _decided(story: Story, screened: list[dict[str, Any]], targets: int, **decision: Any) -> int:
    story.received(target_count=targets)
    story.screened(screened)
    story.add("demand.review_opened", roles=[])
    story.add("approval.given", {"staff": "a"}, role="approver")
    story.add("approval.given", {"staff": "b"}, role="approver")
    kind = "demand.narrowed" if "dropped_targets" in decision else "demand.approved"
    story.add(kind, pack=PACK, approvals=2, **decision)
    story.add("demand.executed", {"staff": "c"}, pack=PACK, demand_kind="disclosure")
    return story.add(
        "production.delivered", categories=["subscriber_info"],
        target_count=decision.get("target_count", targets), record_count=1,
    )  # fmt: skip


def test_a_target_screening_refused_and_kept_is_a_violation() -> None:
    selector = [{"rule": "scope.selector", "outcome": "refuse", "target": 1}]
    story = Story()
    delivered = _decided(story, lawful(jurisdiction_domestic=selector), 2, target_count=2)
    [finding] = story.findings()
    assert finding.code == "refused_target_effect"
    assert finding.entries == (1, 5, delivered - 1)  # the execution is the first effect
    assert "dropped 0" in finding.detail
    fine = Story()
    _decided(fine, lawful(jurisdiction_domestic=selector), 2, target_count=1, dropped_targets=1)
    assert fine.findings() == []


def test_a_jurisdiction_refusal_kept_is_a_foreign_effect_only() -> None:
    outside = [{"rule": "jurisdiction.subject_outside", "outcome": "refuse", "target": 1}]
    story = Story()
    _decided(story, lawful(jurisdiction_domestic=outside), 2, target_count=2)
    assert [f.code for f in story.findings()] == ["foreign_effect"]


def test_a_data_category_screening_refused_is_never_delivered() -> None:
    story = Story()
    story.received(categories=["content", "subscriber_info"])
    insufficient = [{"rule": "instrument.insufficient", "outcome": "refuse", "item": "content"},
                    {"rule": "instrument.sufficient", "outcome": "pass",
                     "item": "subscriber_info"}]  # fmt: skip
    story.screened(lawful(instrument_sufficient=insufficient, scope_time_range_within=None,
                          expression_not_protected=None))  # fmt: skip
    story.add("approval.given", {"staff": "a"}, role="approver")
    story.add("approval.given", {"staff": "b"}, role="approver")
    story.add("demand.approved", pack=PACK, approvals=2, categories=["content"])
    story.add("demand.executed", {"staff": "c"}, pack=PACK, demand_kind="disclosure")
    found = story.findings(packs=None)  # no pack: only the refused scope is judged
    assert [f.code for f in found] == ["refused_target_effect"]
    assert "screening refused content" in found[0].detail


# -- the real service's log, under the real pack -------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = tmp_path_factory.mktemp("demo") / "data"
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--data", str(data)])
    assert result.exit_code == 0, result.output
    yield data


def _demo_leaves(data: Path) -> list[bytes]:
    fetch = dir_fetcher(data / "log")
    size = int(fetch("checkpoint").split(b"\n")[1])
    leaves: list[bytes] = []
    for start in range(0, size, TILE_WIDTH):
        width = min(TILE_WIDTH, size - start)
        bundle = fetch(format_tile_path(bundle_tile(start // TILE_WIDTH, width)))
        leaves += parse_bundle(bundle, width)
    return leaves


def _disclosure(data: Path) -> dict[int, Any]:
    with sqlite3.connect(data / "custodes.db") as db:
        rows = db.execute("SELECT idx, openings FROM event_openings").fetchall()
    return {int(i): parse_openings(bytes(o)) for i, o in rows}


def test_the_demo_log_passes_every_screening_check(demo: Path) -> None:
    leaves = _demo_leaves(demo)
    replay = Replay(default_checks(_disclosure(demo), [PUBLISHED]))
    for index, leaf in enumerate(leaves):
        replay.feed(index, leaf)
    assert replay.finish(datetime.now(UTC)) == []
    [note] = replay.notes()
    judged = sum(b'"kind":"demand.screened"' in leaf for leaf in leaves)
    assert judged >= 10 and f"{judged} screening(s) judged" in note
    assert "check(s) re-run with Cedar" in note


def test_custodes_audit_with_the_pack_and_the_disclosure(demo: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.write_text(f"log {(demo / 'keys' / 'log.vkey').read_text().strip()}\nquorum none\n")
    disclosure = tmp_path / "disclosure.json"
    from custodes.audit.openings import format_disclosure

    disclosure.write_bytes(format_disclosure(_disclosure(demo)))
    args = ["audit", str(demo), "--policy", str(policy), "--no-state", "--json"]
    result = CliRunner().invoke(app, [*args, "--pack", str(DEFAULT_PACK), "--disclosure",
                                      str(disclosure)])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["clean"] and any("re-run with Cedar" in n for n in report["notes"])
    other = tmp_path / "other-pack"
    shutil.copytree(DEFAULT_PACK, other)
    (other / "README.md").write_text("another pack\n")
    result = CliRunner().invoke(app, [*args, "--pack", str(other)])
    assert result.exit_code == 1
    [finding] = json.loads(result.output)["findings"]
    assert finding["code"] == "pack_unpublished" and finding["evidence"]["pack"] == PACK
    result = CliRunner().invoke(app, [*args, "--pack", str(tmp_path / "none")])
    assert result.exit_code == 2 and "error[audit_pack]" in result.output
