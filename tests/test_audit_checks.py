"""Event checks: each rule a platform can break shows up as its finding, naming the entries."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custodes.audit.approvals import Disclosed
from custodes.audit.checks import Replay, default_checks
from custodes.audit.findings import CODES, Finding
from custodes.events import Opening, encode_event

START = datetime(2026, 3, 2, 8, tzinfo=UTC)
PACK = hashlib.sha256(b"pack").hexdigest()
OTHER_PACK = hashlib.sha256(b"other pack").hexdigest()


class Story:
    """A log told one event at a time; every event is an hour after the one before."""

    def __init__(self) -> None:
        self.leaves: list[bytes] = []
        self.disclosed: dict[int, dict[str, Opening | tuple[Opening, ...]]] = {}
        self.time = START

    def add(
        self,
        kind: str,
        demand: str | None = "d_1",
        private: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
        disclose: bool = False,
        **facts: Any,
    ) -> int:
        self.time = at or self.time + timedelta(hours=1)
        leaf, openings = encode_event(
            kind, time=self.time, demand=demand, facts=facts, private=private or {}
        )
        self.leaves.append(leaf)
        if disclose:
            self.disclosed[len(self.leaves) - 1] = dict(openings)
        return len(self.leaves) - 1

    def received(
        self,
        demand: str = "d_1",
        kind: str = "disclosure",
        instrument: str = "court_order",
        authority: str = "US",
        staff: str = "intake-1",
        **facts: Any,
    ) -> int:
        return self.add(
            "demand.received",
            demand,
            {"staff": staff},
            disclose=True,
            demand_kind=kind,
            instrument_kind=instrument,
            target_count=facts.pop("target_count", 1),
            signature="valid",
            authority_jurisdiction=authority,
            **facts,
        )

    def screened(
        self,
        demand: str = "d_1",
        outcome: str = "pass",
        subjects: tuple[str, ...] = ("US",),
        **f: Any,
    ) -> int:
        findings = f.pop("findings", [])
        return self.add(
            "demand.screened",
            demand,
            pack=f.pop("pack", PACK),
            outcome=outcome,
            findings=findings,
            subject_jurisdictions=sorted(subjects),
            **f,
        )

    def approval(
        self, demand: str = "d_1", role: str = "approver", staff: str = "approver-1"
    ) -> int:
        return self.add("approval.given", demand, {"staff": staff}, disclose=True, role=role)

    def approved(self, demand: str = "d_1", approvals: int = 2, pack: str = PACK) -> int:
        return self.add("demand.approved", demand, pack=pack, approvals=approvals)

    def executed(self, demand: str = "d_1", kind: str = "disclosure", pack: str = PACK) -> int:
        return self.add("demand.executed", demand, pack=pack, demand_kind=kind)

    def produced(self, demand: str = "d_1") -> int:
        return self.add(
            "production.delivered",
            demand,
            categories=["subscriber_info"],
            target_count=1,
            record_count=2,
        )

    def lawful_disclosure(
        self, demand: str = "d_1", subjects: tuple[str, ...] | None = None, **received: Any
    ) -> int:
        """A demand handled by the book, up to its production; returns the execution index."""
        self.received(demand, **received)
        self.screened(demand, subjects=subjects or (str(received.get("authority", "US")),))
        self.approval(demand, "approver", "approver-1")
        self.approval(demand, "approver", "approver-2")
        self.approved(demand)
        executed = self.executed(demand)
        self.produced(demand)
        return executed

    def findings(
        self, as_of: datetime | None = None, disclosed: Disclosed | None = None
    ) -> list[Finding]:
        replay = Replay(default_checks(self.disclosed if disclosed is None else disclosed))
        for index, leaf in enumerate(self.leaves):
            replay.feed(index, leaf)
        return replay.finish(as_of or self.time + timedelta(hours=1))


def codes(findings: list[Finding]) -> list[tuple[str, tuple[int, ...]]]:
    return [(f.code, f.entries) for f in findings]


def test_a_demand_handled_by_the_book_has_no_findings() -> None:
    story = Story()
    story.lawful_disclosure()
    story.add("notice.sent", record_count=1)
    story.add("demand.closed", outcome="pass")
    assert story.findings(as_of=START + timedelta(days=400)) == []


def test_execution_without_a_decision_is_unapproved() -> None:
    story = Story()
    story.received()
    screened = story.screened()
    story.approval()
    executed = story.executed()
    assert codes(story.findings()) == [("unapproved_effect", (screened, executed))]


def test_one_approval_is_not_dual_control() -> None:
    story = Story()
    story.received()
    story.screened()
    first = story.approval()
    decided = story.approved(approvals=1)
    executed = story.executed()
    story.produced()  # the same lack of approval is reported once per demand version
    assert codes(story.findings()) == [("missing_approvals", (first, decided, executed))]


def test_a_decision_claiming_approvals_that_were_not_logged() -> None:
    story = Story()
    story.received()
    story.screened()
    a = story.approval(staff="a")
    b = story.approval(role="approver", staff="b")
    decided = story.approved(approvals=3)
    executed = story.executed()
    assert codes(story.findings()) == [("missing_approvals", (a, b, decided, executed))]


def test_approvals_given_after_the_decision_do_not_count() -> None:
    story = Story()
    story.received()
    story.screened()
    a = story.approval(staff="a")
    decided = story.approved(approvals=1)
    story.approval(role="approver", staff="b")
    executed = story.executed()
    assert codes(story.findings()) == [("missing_approvals", (a, decided, executed))]


def test_specialist_sign_offs_come_on_top_of_dual_control() -> None:
    story = Story()
    story.received()
    story.screened()
    story.add("demand.review_opened", roles=["legal_counsel"])
    counsel = story.approval(role="legal_counsel", staff="c")
    approver = story.approval(staff="a")
    decided = story.approved()
    executed = story.executed()
    assert codes(story.findings()) == [
        ("missing_approvals", (counsel, approver, decided, executed))
    ]


def test_a_role_review_asked_for_must_approve() -> None:
    story = Story()
    story.received()
    story.screened()
    story.add("demand.review_opened", roles=["legal_counsel"])
    story.approval(staff="a")
    story.approval(role="approver", staff="b")
    decided = story.approved()
    executed = story.executed()
    assert codes(story.findings()) == [("missing_role", (decided, executed))]


def test_effects_after_a_refusal() -> None:
    story = Story()
    story.received()
    screened = story.screened(outcome="refuse")
    executed = story.executed()
    story.received("d_2")
    story.screened("d_2")
    refused = story.add("demand.refused", "d_2")
    restricted = story.add(
        "restriction.applied", "d_2", restriction_action="suspend_account", target_count=1
    )
    assert codes(story.findings()) == [
        ("effect_after_refusal", (screened, executed)),
        ("effect_after_refusal", (refused, restricted)),
    ]


def test_an_amended_demand_must_be_screened_and_approved_again() -> None:
    story = Story()
    story.lawful_disclosure()
    story.add(
        "demand.amended",
        demand_kind="disclosure",
        instrument_kind="court_order",
        target_count=3,
        signature="valid",
    )
    produced = story.produced()
    assert codes(story.findings()) == [("unscreened_effect", (produced,))]


def test_effects_on_closed_or_unknown_demands() -> None:
    story = Story()
    story.lawful_disclosure()
    story.add("notice.sent", record_count=1)
    closed = story.add("demand.closed", outcome="pass")
    again = story.produced()
    ghost = story.approval("d_ghost")
    story.executed("d_ghost")  # one finding per unknown demand
    assert codes(story.findings()) == [
        ("unapproved_effect", (closed, again)),
        ("unknown_demand", (ghost,)),
    ]


def test_an_execution_under_another_pack() -> None:
    story = Story()
    story.received()
    screened = story.screened()
    story.approval(staff="a")
    story.approval(role="approver", staff="b")
    decided = story.approved()
    executed = story.executed(pack=OTHER_PACK)
    assert codes(story.findings()) == [("pack_mismatch", (screened, decided, executed))]


def test_an_emergency_needs_one_approval_after_a_registered_callback() -> None:
    story = Story()
    story.received(kind="emergency_disclosure", instrument="emergency_request")
    story.add("emergency.callback_recorded", callback="registered", channel_kind="phone")
    story.screened()
    story.approval(role="approver")
    story.approved(approvals=1)
    story.executed(kind="emergency_disclosure")
    story.add("emergency.follow_up_completed")
    assert story.findings() == []

    unverified = Story()
    unverified.received(kind="emergency_disclosure", instrument="emergency_request")
    call = unverified.add(
        "emergency.callback_recorded", callback="unregistered", channel_kind="chat"
    )
    unverified.screened()
    unverified.approval(role="approver")
    decided = unverified.approved(approvals=1)
    executed = unverified.executed(kind="emergency_disclosure")
    unverified.add("emergency.follow_up_completed")
    assert codes(unverified.findings()) == [
        ("emergency_without_callback", (call, decided, executed))
    ]


def test_call_back_channels_added_and_removed_are_well_formed_registry_events() -> None:
    story = Story()
    who = {"authority": "us-ca-sfpd", "staff": "admin-1"}
    story.add("authority.channel_added", None, who | {"channel": "+1 415 555 0100"},
              disclose=True, channel_kind="phone")  # fmt: skip
    story.received(kind="emergency_disclosure", instrument="emergency_request")
    story.add("emergency.callback_recorded", callback="registered", channel_kind="phone")
    story.screened()
    story.approval(role="approver")
    story.approved(approvals=1)
    story.executed(kind="emergency_disclosure")
    story.add("emergency.follow_up_completed")
    story.add("authority.channel_removed", None, who | {"channel": "+1 415 555 0100"},
              disclose=True, channel_kind="phone")  # fmt: skip
    assert story.findings() == []


def test_self_approval_and_duplicate_approvers_from_disclosed_openings() -> None:
    story = Story()
    intake = story.received(staff="alice")
    story.screened()
    own = story.approval(staff="alice")
    twice = story.approval(role="approver", staff="alice")
    story.approved()
    story.executed()
    assert codes(story.findings()) == [
        ("self_approval", (intake, own)),
        ("self_approval", (intake, twice)),
        ("duplicate_approver", (own, twice)),
    ]
    undisclosed = Replay(default_checks({}))
    for i, leaf in enumerate(story.leaves):
        undisclosed.feed(i, leaf)
    assert undisclosed.finish(story.time) == []
    assert undisclosed.notes() == [
        "self-approval: 2 of 2 approvals not checked (their staff openings were not disclosed)"
    ]


def test_a_disclosed_opening_that_does_not_open_its_commitment() -> None:
    story = Story()
    story.lawful_disclosure()
    lie = dict(story.disclosed)
    lie[2] = {"staff": Opening(bytes(32), "approver-9")}  # entry 2 is the first approval
    assert codes(story.findings(disclosed=lie)) == [("opening_mismatch", (2,))]


def test_a_foreign_subject_without_a_treaty_route() -> None:
    story = Story()
    received = story.received(authority="CN")
    screened = story.screened(subjects=("US",))
    story.approval(staff="a")
    story.approval(role="approver", staff="b")
    story.approved()
    executed = story.executed()
    assert codes(story.findings()) == [("foreign_effect", (received, screened, executed))]


def test_foreign_subjects_refused_and_dropped_are_lawful() -> None:
    story = Story()
    story.received(authority="DE", target_count=2)
    refusal = {"rule": "jurisdiction.subject_outside", "outcome": "refuse", "target": 1}
    story.screened(outcome="escalate", subjects=("DE", "FR"), findings=[refusal])
    story.approval(staff="a")
    story.approval(role="approver", staff="b")
    narrowed: dict[str, Any] = {
        "pack": PACK,
        "approvals": 2,
        "target_count": 1,
        "dropped_targets": 0,
    }
    story.add("demand.narrowed", **narrowed)
    executed = story.executed()
    assert codes(story.findings())[0] == ("foreign_effect", (0, 1, executed))
    fixed = Story()
    fixed.received(authority="DE", target_count=2)
    fixed.screened(outcome="escalate", subjects=("DE", "FR"), findings=[refusal])
    fixed.approval(staff="a")
    fixed.approval(role="approver", staff="b")
    fixed.add("demand.narrowed", **(narrowed | {"dropped_targets": 1}))
    fixed.executed()
    assert fixed.findings() == []


def test_treaty_instruments_and_domestic_subdivisions_reach() -> None:
    story = Story()
    story.lawful_disclosure("d_mlat", ("US",), authority="BR", instrument="mlat_request")
    story.lawful_disclosure("d_uk", ("FR",), authority="GB", instrument="cloud_act_order")
    story.lawful_disclosure("d_ca", ("US-CA", "US-NY"), authority="US")
    assert [f for f in story.findings() if f.code == "foreign_effect"] == []
    story.lawful_disclosure("d_br", ("US",), authority="BR", instrument="court_order")
    assert [f.demand for f in story.findings() if f.code == "foreign_effect"] == ["d_br"]


def test_a_route_does_not_undo_a_jurisdiction_refusal() -> None:
    story = Story()
    story.received(authority="GB", instrument="cloud_act_order")
    refusal = {"rule": "jurisdiction.subject_outside", "outcome": "refuse", "target": 0}
    story.screened(subjects=("US",), findings=[refusal], route="us_uk_data_access_agreement")
    story.approval(staff="a")
    story.approval(staff="b")
    story.approved()
    executed = story.executed()
    findings = story.findings()
    assert codes(findings) == [("foreign_effect", (0, 1, executed))]
    assert "1 target(s) refused on jurisdiction grounds, 0 dropped" in findings[0].detail


def test_a_restriction_in_a_foreign_territory() -> None:
    story = Story()
    received = story.received(
        kind="restriction", restriction_action="geo_restrict_content", territories=["US"]
    )
    story.screened()
    story.approval(staff="a")
    story.approval(role="approver", staff="b")
    story.approved()
    applied = story.add(
        "restriction.applied",
        restriction_action="geo_restrict_content",
        target_count=1,
        territories=["DE", "US"],
    )
    findings = story.findings()
    assert codes(findings)[0] == ("foreign_effect", (received, 1, applied))
    assert "restricts in DE" in findings[0].detail


def test_emergency_follow_up_late_and_missing() -> None:
    story = Story()
    story.received(kind="emergency_disclosure", instrument="emergency_request")
    story.add("emergency.callback_recorded", callback="registered", channel_kind="phone")
    story.screened()
    story.approval(role="approver")
    story.approved(approvals=1)
    executed = story.executed(kind="emergency_disclosure")
    late = story.add("emergency.follow_up_completed", at=story.time + timedelta(hours=49))
    assert codes(story.findings()) == [("follow_up_late", (executed, late))]
    story.leaves.pop()  # no follow-up at all
    executed_at = START + timedelta(hours=executed + 1)
    assert story.findings(as_of=executed_at + timedelta(hours=47)) == []  # not due yet
    overdue = story.findings(as_of=executed_at + timedelta(hours=49))
    assert codes(overdue) == [("follow_up_missing", (executed,))]


def test_the_platforms_own_overdue_alerts_are_findings() -> None:
    story = Story()
    story.lawful_disclosure()
    alert = story.add("clock.overdue", clock="response", due_at="2026-03-02T12:00:00Z")
    findings = story.findings()
    assert codes(findings) == [("deadline_missed", (alert,))]
    assert "response clock" in findings[0].detail


def test_notice_during_a_gag_after_it_and_missing() -> None:
    story = Story()
    story.lawful_disclosure()
    gag = story.add("notice.deferred", gag_until="2026-06-01")
    early = story.add("notice.sent", record_count=1)
    assert codes(story.findings()) == [("notice_during_gag", (gag, early))]
    story.leaves.pop()
    assert story.findings(as_of=datetime(2026, 6, 20, tzinfo=UTC)) == []  # within the grace
    assert codes(story.findings(as_of=datetime(2026, 7, 2, tzinfo=UTC))) == [
        ("notice_overdue", (gag,))
    ]
    story.add("notice.sent", record_count=1, at=datetime(2026, 6, 1, 9, tzinfo=UTC))
    assert story.findings(as_of=datetime(2027, 1, 1, tzinfo=UTC)) == []

    silent = Story()
    silent.lawful_disclosure()
    produced = len(silent.leaves) - 1
    closed = silent.add("demand.closed", outcome="pass")
    assert codes(silent.findings()) == [("notice_missing", (produced, closed))]


def test_entries_that_are_not_events() -> None:
    story = Story()
    story.lawful_disclosure()
    story.leaves.insert(1, b'{"kind":"demand.screened"}')
    story.leaves.append(b"\xff")
    findings = story.findings()
    assert ("event_malformed", (1, len(story.leaves) - 1)) in codes(findings)


def test_every_code_has_a_title_and_a_part() -> None:
    assert {c.part for c in CODES.values()} == {"log", "events"}
    assert all(c.title and c.code == name for name, c in CODES.items())


@pytest.mark.parametrize("until", ["2026-02-30", "\uff12\uff10\uff12\uff16-03-01"])
def test_a_gag_whose_end_is_not_a_real_date_is_no_dated_gag(until: str) -> None:
    story = Story()
    story.lawful_disclosure()
    delivered = len(story.leaves) - 1
    deferred = story.add("notice.deferred", gag_until=until)
    closed = story.add("demand.closed", outcome="pass")
    replay = Replay(default_checks(story.disclosed))
    for index, leaf in enumerate(story.leaves):
        replay.feed(index, leaf)  # the fact's shape lets these dates through; the audit reads on
    assert codes(replay.finish(story.time)) == [("notice_missing", (delivered, closed))]
    assert f"entries {deferred}" in " ".join(replay.notes())
