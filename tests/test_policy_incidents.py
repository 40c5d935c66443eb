"""The 2020 incidents and lawful demands, replayed against the default policy pack.

The service-level replays (intake, dual control, the log) come with the service; these pin
down what the policy itself says, rule id by rule id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from custodes.model import (
    Authority,
    AuthorityKind,
    CallbackStatus,
    DataCategory,
    Demand,
    DemandKind,
    EvidenceRef,
    EvidenceStatus,
    Finding,
    InstrumentKind,
    LegalInstrument,
    Nondisclosure,
    Offence,
    Outcome,
    Restriction,
    RestrictionAction,
    ScreeningContext,
    SignatureStatus,
    Subject,
    Target,
    TargetKind,
    TimeRange,
    summarize,
)
from custodes.policy import PolicyPack, evaluate, load_pack

NOW = datetime(2020, 6, 4, 12, tzinfo=UTC)
DOC = "9f" * 32
PRC = Authority("cn-mps", "PRC Ministry of Public Security", AuthorityKind.POLICE, "CN")
FBI = Authority("us-fbi-sf", "FBI San Francisco", AuthorityKind.POLICE, "US")
BERLIN = Authority("de-sta-berlin", "Staatsanwaltschaft Berlin", AuthorityKind.PROSECUTOR, "DE")
MET = Authority("gb-met", "Metropolitan Police Service", AuthorityKind.POLICE, "GB")
SFPD = Authority("us-ca-sfpd", "San Francisco Police", AuthorityKind.POLICE, "US-CA")
SIGNED = ScreeningContext(NOW, SignatureStatus.VALID, volume=5)
WEEK = TimeRange(NOW - timedelta(days=7), NOW)
WORLD = frozenset({"US", "HK", "CN", "TW", "CA", "GB"})

MEETINGS = tuple(Target(TargetKind.MEETING, f"m-tam-{i}") for i in range(1, 5))
HOSTS = tuple(Target(TargetKind.ACCOUNT, f"u-tam-host-{i}") for i in range(1, 5))
STATES = ("US-NY", "US-CA", "US-MA", "US-VA")
SUBJECTS: dict[Target, Subject | None] = {
    **{
        m: Subject(m, s, "US", "business", affected=WORLD)
        for m, s in zip(MEETINGS, STATES, strict=True)
    },
    **{h: Subject(h, s, "US", "business") for h, s in zip(HOSTS, STATES, strict=True)},
}


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack()


def _demand(authority: Authority | None, **fields: object) -> Demand:
    base: dict[str, object] = {
        "id": "d_2020",
        "authority_id": authority.id if authority else None,
        "kind": DemandKind.DISCLOSURE,
        "instrument": LegalInstrument(InstrumentKind.ADMINISTRATIVE_REQUEST, document_sha256=DOC),
        "received_at": NOW,
    }
    base.update(fields)
    return Demand(**base)  # type: ignore[arg-type]


def _rules(findings: list[Finding], outcome: Outcome, target: Target | None = None) -> set[str]:
    return {f.rule_id for f in findings if f.outcome is outcome and f.target == target}


def test_incident_1_participants_of_a_us_meeting(pack: PolicyPack) -> None:
    """Names, emails and IPs of all participants of a US-hosted commemoration."""
    selector = Target(TargetKind.SELECTOR, "all participants of meeting m-tam-1")
    demand = _demand(
        PRC,
        targets=(MEETINGS[0], selector),
        categories=(
            DataCategory.IP_SESSION_LOGS,
            DataCategory.PARTICIPANT_LIST,
            DataCategory.SUBSCRIBER_INFO,
        ),
        time_range=WEEK,
        offence=Offence("subversion", "commemorating 4 June"),
    )
    findings = evaluate(pack, demand, PRC, SUBJECTS, SIGNED)
    assert _rules(findings, Outcome.REFUSE, MEETINGS[0]) == {
        "jurisdiction.subject_outside",
        "jurisdiction.data_outside",
    }
    assert _rules(findings, Outcome.REFUSE, selector) == {"scope.selector"}
    assert _rules(findings, Outcome.ESCALATE) == {"expression.protected"}
    refused_items = {f.item for f in findings if f.rule_id == "instrument.insufficient"}
    assert refused_items == {"ip_session_logs", "participant_list", "subscriber_info"}
    verdict = summarize(demand, findings)
    assert verdict.outcome is Outcome.REFUSE
    assert verdict.refused_targets == demand.targets


def test_incident_1_participants_named_one_by_one(pack: PolicyPack) -> None:
    people = {
        Target(TargetKind.ACCOUNT, "u-p-us"): Subject(
            Target(TargetKind.ACCOUNT, "u-p-us"), "US-NY", "US", "free"
        ),
        Target(TargetKind.ACCOUNT, "u-p-hk"): Subject(
            Target(TargetKind.ACCOUNT, "u-p-hk"), "HK", "SG", "free"
        ),
        Target(TargetKind.ACCOUNT, "u-p-cn"): Subject(
            Target(TargetKind.ACCOUNT, "u-p-cn"), "CN-BJ", "SG", "free"
        ),
    }
    demand = _demand(
        PRC,
        targets=tuple(people),
        categories=(DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("subversion"),
    )
    findings = evaluate(pack, demand, PRC, people, SIGNED)
    us, hk, cn = people
    assert "jurisdiction.subject_outside" in _rules(findings, Outcome.REFUSE, us)
    assert "jurisdiction.subject_outside" in _rules(findings, Outcome.REFUSE, hk)
    # A participant in China: the state reaches them, but not data held in Singapore.
    assert _rules(findings, Outcome.REFUSE, cn) == {"jurisdiction.data_outside"}


@pytest.mark.parametrize(
    ("targets", "action"),
    [(MEETINGS, RestrictionAction.END_MEETING), (HOSTS, RestrictionAction.SUSPEND_ACCOUNT)],
)
def test_incident_2_end_meetings_and_suspend_hosts_on_supplied_evidence(
    pack: PolicyPack, targets: tuple[Target, ...], action: RestrictionAction
) -> None:
    demand = _demand(
        PRC,
        kind=DemandKind.RESTRICTION,
        targets=targets,
        restriction=Restriction(action, ("CN",)),
        offence=Offence("assembly"),
        claims_tos_violation=True,
        evidence=(EvidenceRef("3c" * 32, "screenshots sent by the requester"),),
    )
    context = ScreeningContext(NOW, SignatureStatus.VALID, evidence=(EvidenceStatus.NOT_HELD,))
    findings = evaluate(pack, demand, PRC, SUBJECTS, context)
    escalations = {(f.rule_id, f.role) for f in findings if f.outcome is Outcome.ESCALATE}
    assert escalations == {
        ("evidence.not_platform_held", "trust_safety"),
        ("expression.protected", "human_rights_reviewer"),
    }
    for target in targets:
        assert {"territory.effect_abroad", "jurisdiction.subject_outside"} <= _rules(
            findings, Outcome.REFUSE, target
        )
    assert summarize(demand, findings).outcome is Outcome.REFUSE


def test_incident_2_evidence_changed_since_captured(pack: PolicyPack) -> None:
    demand = _demand(
        PRC,
        kind=DemandKind.RESTRICTION,
        targets=MEETINGS[:1],
        restriction=Restriction(RestrictionAction.END_MEETING),
        offence=Offence("assembly"),
        claims_tos_violation=True,
        evidence=(EvidenceRef("3c" * 32, platform_ref="ev-77"),),
    )
    context = ScreeningContext(NOW, SignatureStatus.VALID, evidence=(EvidenceStatus.MISMATCH,))
    assert "evidence.hash_mismatch" in _rules(
        evaluate(pack, demand, PRC, SUBJECTS, context), Outcome.REFUSE
    )


def test_incident_3_a_spreadsheet_of_23000_accounts(pack: PolicyPack) -> None:
    rows = tuple(Target(TargetKind.ACCOUNT, f"u-gd-{i:05d}") for i in range(23_000))
    demand = _demand(
        PRC,
        targets=rows,
        categories=(DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("subversion"),
    )
    findings = evaluate(pack, demand, PRC, {}, SIGNED)
    assert "scope.target_cap" in _rules(findings, Outcome.REFUSE)
    assert all(f.target is None for f in findings), "refused as a whole, not row by row"
    assert summarize(demand, findings).outcome is Outcome.REFUSE


def test_incident_3_every_user_from_a_region(pack: PolicyPack) -> None:
    region = Target(TargetKind.SELECTOR, "every account registered in CN-GD")
    also = Target(TargetKind.ACCOUNT, "all free accounts in Guangdong")
    demand = _demand(
        PRC,
        targets=(region, also),
        categories=(DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("subversion"),
    )
    findings = evaluate(pack, demand, PRC, {}, SIGNED)
    assert _rules(findings, Outcome.REFUSE, region) == {"scope.selector"}
    assert _rules(findings, Outcome.REFUSE, also) == {"scope.selector"}


def test_incident_4_typed_in_from_a_chat_message(pack: PolicyPack) -> None:
    demand = _demand(
        PRC,
        instrument=LegalInstrument(InstrumentKind.OTHER),
        targets=(Target(TargetKind.ACCOUNT, "u-p-us"),),
        categories=(DataCategory.SUBSCRIBER_INFO,),
    )
    unsigned = ScreeningContext(NOW, SignatureStatus.MISSING)
    findings = evaluate(pack, demand, PRC, {}, unsigned)
    assert {"requester.unsigned", "requester.no_document"} <= _rules(findings, Outcome.REFUSE)
    assert summarize(demand, findings).outcome is Outcome.REFUSE


def _passes(findings: list[Finding]) -> None:
    blocking = [(f.rule_id, f.target and str(f.target)) for f in findings if f.blocks]
    assert blocking == []


def test_lawful_us_search_warrant_for_us_content(pack: PolicyPack) -> None:
    user = Target(TargetKind.ACCOUNT, "u-us-content")
    demand = _demand(
        FBI,
        instrument=LegalInstrument(InstrumentKind.SEARCH_WARRANT, "3:20-mj-7", document_sha256=DOC),
        targets=(user,),
        categories=(DataCategory.CONTENT,),
        time_range=TimeRange(NOW - timedelta(days=90), NOW),
        offence=Offence("fraud"),
    )
    subjects = {user: Subject(user, "US-CA", "US", "pro")}
    findings = evaluate(pack, demand, FBI, subjects, SIGNED)
    _passes(findings)
    assert _rules(findings, Outcome.PASS, user) == {"jurisdiction.domestic"}
    assert summarize(demand, findings).outcome is Outcome.PASS


def test_lawful_eu_epoc_for_a_subscriber_in_the_issuing_state(pack: PolicyPack) -> None:
    user = Target(TargetKind.ACCOUNT, "u-de-subscriber")
    demand = _demand(
        BERLIN,
        instrument=LegalInstrument(InstrumentKind.EPOC, "EPOC-2020-1", document_sha256=DOC),
        targets=(user,),
        categories=(DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("fraud"),
    )
    subjects = {user: Subject(user, "DE-BE", "IE", "free")}
    findings = evaluate(pack, demand, BERLIN, subjects, SIGNED)
    _passes(findings)
    route = next(f for f in findings if f.target == user)
    assert route.rule_id == "jurisdiction.treaty_route"
    assert "2023/1543" in route.reason


def test_lawful_uk_order_under_the_us_uk_agreement(pack: PolicyPack) -> None:
    user = Target(TargetKind.ACCOUNT, "u-gb-subject")
    demand = _demand(
        MET,
        instrument=LegalInstrument(InstrumentKind.CLOUD_ACT_ORDER, "OPO-7", document_sha256=DOC),
        targets=(user,),
        categories=(DataCategory.CONTENT, DataCategory.IP_SESSION_LOGS),
        time_range=TimeRange(NOW - timedelta(days=60), NOW),
        offence=Offence("drug_trafficking"),
    )
    subjects = {user: Subject(user, "GB-ENG", "US", "pro")}
    findings = evaluate(pack, demand, MET, subjects, SIGNED)
    _passes(findings)
    route = next(f for f in findings if f.target == user)
    assert route.rule_id == "jurisdiction.treaty_route"
    assert "US–UK" in route.reason


@pytest.mark.parametrize(
    ("callback", "outcome"),
    [(CallbackStatus.REGISTERED, Outcome.PASS), (CallbackStatus.NONE, Outcome.REFUSE)],
)
def test_emergency_needs_a_recorded_call_back(
    pack: PolicyPack, callback: CallbackStatus, outcome: Outcome
) -> None:
    user = Target(TargetKind.ACCOUNT, "u-us-threat")
    demand = _demand(
        SFPD,
        kind=DemandKind.EMERGENCY_DISCLOSURE,
        instrument=LegalInstrument(InstrumentKind.EMERGENCY_REQUEST, "EDR-1", document_sha256=DOC),
        targets=(user,),
        categories=(DataCategory.SUBSCRIBER_INFO, DataCategory.IP_SESSION_LOGS),
        time_range=TimeRange(NOW - timedelta(days=2), NOW),
        offence=Offence("threat_to_life"),
    )
    context = ScreeningContext(NOW, SignatureStatus.VALID, callback)
    findings = evaluate(pack, demand, SFPD, {user: Subject(user, "US-CA", "US", "free")}, context)
    assert summarize(demand, findings).outcome is outcome
    if outcome is Outcome.REFUSE:
        assert _rules(findings, Outcome.REFUSE) == {"emergency.no_callback"}


def test_gag_without_end_date_is_escalated_for_challenge(pack: PolicyPack) -> None:
    user = Target(TargetKind.ACCOUNT, "u-us-content")
    demand = _demand(
        FBI,
        instrument=LegalInstrument(InstrumentKind.SUBPOENA, document_sha256=DOC),
        targets=(user,),
        categories=(DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("fraud"),
        nondisclosure=Nondisclosure(None),
    )
    findings = evaluate(pack, demand, FBI, {user: Subject(user, "US-CA", "US", "free")}, SIGNED)
    gag = next(f for f in findings if f.rule_id == "gag.no_end_date")
    assert (gag.outcome, gag.role) == (Outcome.ESCALATE, "legal_counsel")
    dated = _demand(
        FBI,
        instrument=LegalInstrument(InstrumentKind.SUBPOENA, document_sha256=DOC),
        targets=(user,),
        categories=(DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("fraud"),
        nondisclosure=Nondisclosure(date(2020, 12, 1)),
    )
    _passes(evaluate(pack, dated, FBI, {user: Subject(user, "US-CA", "US", "free")}, SIGNED))
