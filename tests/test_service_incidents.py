"""The 2020 incidents and the lawful demands, replayed through the service layer.

Each demand enters as the API or an intake employee would send it, is screened against the
default pack with subjects from the reference platform, and (if lawful) goes through dual
control. The tests read outcomes from the service and from the log itself, and finish by
auditing the log as an outsider would: what the service wrote must pass every check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from custodes.audit.checks import Replay, default_checks
from custodes.audit.findings import Finding as AuditFinding
from custodes.cli.demo import ADMIN, SFPD_LINE, register_world
from custodes.events import Event, parse_event
from custodes.ledger import Ledger
from custodes.model import (
    Channel,
    ChannelKind,
    DataCategory,
    Demand,
    DemandKind,
    DemandState,
    EvidenceRef,
    InstrumentKind,
    LegalInstrument,
    Offence,
    Outcome,
    Restriction,
    RestrictionAction,
    SignatureStatus,
    Target,
    TargetKind,
    TimeRange,
    new_demand_id,
)
from custodes.platform import EPOCH, FIXTURES, ReferencePlatform, build_reference_platform
from custodes.policy import PolicyPack, load_pack
from custodes.service import Services, openings_of
from custodes.service.authorities import add_channel, remove_channel
from custodes.service.demands import get_demand, history, receive_demand, record_callback
from custodes.service.review import approve, decide
from custodes.service.scope import approved_scope
from custodes.service.screening import screen_demand
from custodes.service.tos import record_tos_action, tos_counts
from custodes.store import open_store
from support import Clock

DOC = b"%PDF-1.7 the instrument"
PRC_REQUEST = LegalInstrument(InstrumentKind.ADMINISTRATIVE_REQUEST, "MPS-2020-0604")


@dataclass
class World:
    services: Services
    clock: Clock


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack()


@pytest.fixture(scope="module")
def platform_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("platform") / "platform.db"
    build_reference_platform(path, accounts=300, region_accounts=100)
    return path


@pytest.fixture
def world(database_url: str, platform_db: Path, pack: PolicyPack) -> Iterator[World]:
    store = open_store(database_url)
    clock = Clock(EPOCH)
    with ReferencePlatform(platform_db) as platform:
        services = Services(store, Ledger(store), pack, platform, clock=clock)
        register_world(services)
        yield World(services, clock)
    store.close()


def _demand(
    authority: str | None,
    kind: DemandKind,
    instrument: LegalInstrument,
    targets: tuple[Target, ...],
    **fields: object,
) -> Demand:
    return Demand(new_demand_id(), authority, kind, instrument, targets, EPOCH, **fields)  # type: ignore[arg-type]


def _events(services: Services, demand_id: str) -> list[Event]:
    return [parse_event(services.ledger.entry(h.index)) for h in history(services, demand_id)]


def _event(services: Services, demand_id: str, kind: str) -> Event:
    [event] = [e for e in _events(services, demand_id) if e.kind == kind]
    return event


def _logged(event: Event, outcome: str) -> set[tuple[str, int | str | None]]:
    """(rule, target position or item) of the findings with ``outcome`` in a screening."""
    findings = event.facts["findings"]
    assert isinstance(findings, tuple)
    return {
        (str(f["rule"]), f.get("target", f.get("item")))
        for f in findings
        if isinstance(f, dict) and f["outcome"] == outcome
    }


def _audit(services: Services, as_of: datetime) -> list[AuditFinding]:
    size = services.ledger.size()
    disclosed = {i: openings_of(services, i) for i in range(size)}
    replay = Replay(default_checks(disclosed))
    for i, entry in enumerate(services.ledger.entries(0, size)):
        replay.feed(i, entry)
    return replay.finish(as_of)


def _submit(services: Services, demand: Demand, **kw: object) -> None:
    receive_demand(services, demand, signature=SignatureStatus.VALID, document=DOC, **kw)  # type: ignore[arg-type]


# -- the 2020 incidents --------------------------------------------------------------------


def test_incident_1_participants_of_a_us_meeting_are_refused(world: World) -> None:
    """A PRC security agency asks for names, emails and IPs of everyone in a US meeting."""
    s = world.services
    meeting = FIXTURES.tiananmen_meetings[0]
    everyone = Target(TargetKind.SELECTOR, "all participants of meeting m-tam-1")
    demand = _demand(
        "cn-mps",
        DemandKind.DISCLOSURE,
        PRC_REQUEST,
        (meeting, everyone),
        categories=(
            DataCategory.SUBSCRIBER_INFO,
            DataCategory.IP_SESSION_LOGS,
            DataCategory.PARTICIPANT_LIST,
        ),
        time_range=TimeRange(EPOCH - timedelta(days=7), EPOCH),
        offence=Offence("subversion", "commemorating 4 June"),
    )
    _submit(s, demand)
    record = screen_demand(s, demand.id, by="s-rev-ams")
    assert record.state is DemandState.REFUSED
    screened = _event(s, demand.id, "demand.screened")
    assert screened.facts["outcome"] == "refuse"
    refused = _logged(screened, "refuse")
    assert {("jurisdiction.subject_outside", 0), ("jurisdiction.data_outside", 0)} <= refused
    assert ("scope.selector", 1) in refused
    assert ("instrument.insufficient", "participant_list") in refused
    assert ("expression.protected", None) in _logged(screened, "escalate")
    assert screened.facts["subject_jurisdictions"] == ("US-NY",)
    assert screened.facts["pack"] == s.pack.hash
    refusal = _event(s, demand.id, "demand.refused")
    assert "jurisdiction.subject_outside" in refusal.facts["rules"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("targets", "action"),
    [
        (FIXTURES.tiananmen_meetings, RestrictionAction.END_MEETING),
        (FIXTURES.tiananmen_hosts, RestrictionAction.SUSPEND_ACCOUNT),
    ],
)
def test_incident_2_ending_meetings_on_supplied_evidence_is_refused_and_the_pretext_linked(
    world: World, targets: tuple[Target, ...], action: RestrictionAction
) -> None:
    """End four US-hosted commemorations and suspend the hosts, on evidence the agency made."""
    s = world.services
    supplied = EvidenceRef(hashlib.sha256(b"screenshots").hexdigest(), "from the requester")
    demand = _demand(
        "cn-mps",
        DemandKind.RESTRICTION,
        PRC_REQUEST,
        targets,
        restriction=Restriction(action, ("CN",)),
        offence=Offence("assembly"),
        claims_tos_violation=True,
        evidence=(supplied,),
    )
    _submit(s, demand)
    record = screen_demand(s, demand.id)
    assert record.state is DemandState.REFUSED
    screened = _event(s, demand.id, "demand.screened")
    refused = _logged(screened, "refuse")
    for position in range(4):
        assert ("territory.effect_abroad", position) in refused
        assert ("jurisdiction.subject_outside", position) in refused
    assert record.screening is not None
    escalated = {
        f.rule_id: f.role for f in record.screening.findings if f.outcome is Outcome.ESCALATE
    }
    assert escalated == {
        "evidence.not_platform_held": "trust_safety",
        "expression.protected": "human_rights_reviewer",
    }
    # The pretext: a "terms-of-service" action on the same target, a month later.
    world.clock.advance(days=30)
    outcome = record_tos_action(s, targets[0], action, by="s-liaison-bj", reason="ToS breach")
    assert outcome.linked == (demand.id,) and outcome.state_involved
    linked = _event(s, demand.id, "tos_action.linked")
    assert linked.facts == {"restriction_action": action.value, "state_involved": True}
    assert tos_counts(s).state_involved == 1


def test_incident_3_a_spreadsheet_of_23000_accounts_is_refused_as_a_whole(world: World) -> None:
    s = world.services
    rows = tuple(FIXTURES.region_account(n) for n in range(23_000))
    demand = _demand(
        "cn-mps",
        DemandKind.DISCLOSURE,
        PRC_REQUEST,
        rows,
        categories=(DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("subversion"),
    )
    _submit(s, demand)
    record = screen_demand(s, demand.id)
    assert record.state is DemandState.REFUSED
    assert _event(s, demand.id, "demand.received").facts["target_count"] == 23_000
    screened = _event(s, demand.id, "demand.screened")
    assert ("scope.target_cap", None) in _logged(screened, "refuse")
    assert all("target" not in f for f in screened.facts["findings"])  # type: ignore[union-attr]
    assert record.screening is not None and record.screening.subjects == {}, "no row looked up"


def test_incident_4_typed_in_from_a_chat_message_is_refused(world: World) -> None:
    """The liaison types in a request from a chat: no signature, no document."""
    s = world.services
    demand = _demand(
        "cn-mps",
        DemandKind.DISCLOSURE,
        LegalInstrument(InstrumentKind.OTHER),
        (FIXTURES.us_person,),
        categories=(DataCategory.SUBSCRIBER_INFO,),
    )
    receive_demand(s, demand, signature=SignatureStatus.MISSING, intake="s-liaison-bj")
    record = screen_demand(s, demand.id)
    assert record.state is DemandState.REFUSED
    received = _event(s, demand.id, "demand.received")
    assert received.facts["signature"] == "missing"
    assert "document_sha256" not in received.commitments and "staff" in received.commitments
    refused = {rule for rule, _ in _logged(_event(s, demand.id, "demand.screened"), "refuse")}
    assert {"requester.unsigned", "requester.no_document"} <= refused


# -- lawful demands through dual control ---------------------------------------------------


def _dual_control(s: Services, demand_id: str, first: str, second: str | None) -> None:
    approve(s, demand_id, by=first, reason="specific, lawful, proportionate")
    if second is not None:
        approve(s, demand_id, by=second, reason="agreed")
    decide(s, demand_id, by=first, reason="dual control complete")


def test_us_search_warrant_for_a_us_users_content(world: World) -> None:
    s = world.services
    period = TimeRange(EPOCH - timedelta(days=90), EPOCH)
    warrant = LegalInstrument(InstrumentKind.SEARCH_WARRANT, "3:20-mj-70412", "N.D. Cal.")
    demand = _demand(
        "us-ndcal",
        DemandKind.DISCLOSURE,
        warrant,
        (FIXTURES.us_content_user,),
        categories=(DataCategory.CONTENT,),
        time_range=period,
        offence=Offence("fraud"),
    )
    _submit(s, demand)
    assert screen_demand(s, demand.id).state is DemandState.IN_REVIEW
    _dual_control(s, demand.id, "s-appr-sjc", "s-appr-dub")
    scope = approved_scope(s, demand.id)
    assert scope.state is DemandState.APPROVED
    assert (scope.targets, scope.categories, scope.time_range) == (
        (FIXTURES.us_content_user,),
        (DataCategory.CONTENT,),
        period,
    )
    assert scope.subjects[FIXTURES.us_content_user].jurisdiction == "US-CA"
    assert scope.authority.id == "us-ndcal" and scope.approvers == ("s-appr-sjc", "s-appr-dub")
    approved = _event(s, demand.id, "demand.approved")
    assert approved.facts == {
        "pack": s.pack.hash,
        "approvals": 2,
        "target_count": 1,
        "categories": ("content",),
    }
    assert [e.kind for e in _events(s, demand.id)] == [
        "demand.received",
        "demand.screened",
        "demand.review_opened",
        "approval.given",
        "approval.given",
        "demand.approved",
    ]
    assert _audit(s, world.clock()) == []


def test_eu_epoc_for_a_subscriber_in_the_issuing_state(world: World) -> None:
    s = world.services
    epoc = LegalInstrument(InstrumentKind.EPOC, "EPOC-2020-BER-17")
    demand = _demand(
        "de-sta-berlin",
        DemandKind.DISCLOSURE,
        epoc,
        (FIXTURES.de_subscriber,),
        categories=(DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("fraud"),
    )
    _submit(s, demand)
    screen_demand(s, demand.id)
    screened = _event(s, demand.id, "demand.screened")
    assert ("jurisdiction.treaty_route", 0) in _logged(screened, "pass")
    assert screened.facts["route"] == "eu_e_evidence"
    _dual_control(s, demand.id, "s-appr-ber", "s-appr-dub")  # DE-located: the subject is in DE
    assert get_demand(s, demand.id).state is DemandState.APPROVED
    assert _audit(s, world.clock()) == []


def test_uk_order_under_the_cloud_act_agreement_for_a_uk_subject(world: World) -> None:
    s = world.services
    order = LegalInstrument(InstrumentKind.CLOUD_ACT_ORDER, "OPO-2020-031")
    demand = _demand(
        "gb-met",
        DemandKind.DISCLOSURE,
        order,
        (FIXTURES.uk_subject,),
        categories=(DataCategory.CONTENT, DataCategory.IP_SESSION_LOGS),
        time_range=TimeRange(EPOCH - timedelta(days=60), EPOCH),
        offence=Offence("drug_trafficking"),
    )
    _submit(s, demand)
    screen_demand(s, demand.id)
    assert _event(s, demand.id, "demand.screened").facts["route"] == ("us_uk_data_access_agreement")
    _dual_control(s, demand.id, "s-appr-dub", "s-appr-sjc")
    scope = approved_scope(s, demand.id)
    assert scope.subjects[FIXTURES.uk_subject].data_region == "US"
    assert _audit(s, world.clock()) == []


def test_uk_order_naming_a_us_person_is_narrowed_to_the_uk_subject(world: World) -> None:
    s = world.services
    order = LegalInstrument(InstrumentKind.CLOUD_ACT_ORDER, "OPO-2020-032")
    demand = _demand(
        "gb-met",
        DemandKind.DISCLOSURE,
        order,
        (FIXTURES.uk_subject, FIXTURES.us_person),
        categories=(DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("fraud"),
    )
    _submit(s, demand)
    record = screen_demand(s, demand.id)
    assert record.state is DemandState.IN_REVIEW
    assert record.scope is not None and record.scope.dropped_targets == (FIXTURES.us_person,)
    _dual_control(s, demand.id, "s-appr-dub", "s-appr-ber")
    assert get_demand(s, demand.id).state is DemandState.PARTLY_APPROVED
    narrowed = _event(s, demand.id, "demand.narrowed")
    assert (narrowed.facts["target_count"], narrowed.facts["dropped_targets"]) == (1, 1)
    assert approved_scope(s, demand.id).targets == (FIXTURES.uk_subject,)
    assert _audit(s, world.clock()) == []


def test_emergency_disclosure_with_a_recorded_call_back_takes_one_approver(world: World) -> None:
    s = world.services
    request = LegalInstrument(InstrumentKind.EMERGENCY_REQUEST, "SFPD-EDR-2020-88")
    demand = _demand(
        "us-ca-sfpd",
        DemandKind.EMERGENCY_DISCLOSURE,
        request,
        (FIXTURES.emergency_subject,),
        categories=(DataCategory.SUBSCRIBER_INFO, DataCategory.IP_SESSION_LOGS),
        time_range=TimeRange(EPOCH - timedelta(days=2), EPOCH),
        offence=Offence("threat_to_life"),
    )
    _submit(s, demand)
    record = record_callback(s, demand.id, SFPD_LINE, by="s-intake-dub")
    assert record.callback.value == "registered"
    assert screen_demand(s, demand.id).state is DemandState.IN_REVIEW
    _dual_control(s, demand.id, "s-appr-sjc", None)
    assert approved_scope(s, demand.id).approvers == ("s-appr-sjc",)
    callback = _event(s, demand.id, "emergency.callback_recorded")
    assert callback.facts == {"callback": "registered", "channel_kind": "phone"}
    assert _audit(s, world.clock()) == []


def test_an_emergency_counts_a_call_back_only_on_channels_it_arrived_with(world: World) -> None:
    """A channel added while an emergency waits does not confirm it; the next emergency may
    use it. The auditor, replaying the log with the new registry events, finds nothing amiss."""
    s = world.services
    request = LegalInstrument(InstrumentKind.EMERGENCY_REQUEST, "SFPD-EDR-2020-90")
    portal = Channel(ChannelKind.PORTAL, "https://leportal.sfgov.example/emergency")

    def emergency() -> Demand:
        return _demand(
            "us-ca-sfpd", DemandKind.EMERGENCY_DISCLOSURE, request,
            (FIXTURES.emergency_subject,), categories=(DataCategory.SUBSCRIBER_INFO,),
            offence=Offence("threat_to_life"),
        )  # fmt: skip

    waiting = emergency()
    _submit(s, waiting)
    add_channel(s, "us-ca-sfpd", portal, by=ADMIN)
    remove_channel(s, "us-ca-sfpd", SFPD_LINE, by=ADMIN)
    assert record_callback(s, waiting.id, portal, by="s-intake-dub").callback.value == (
        "unregistered"
    )
    assert screen_demand(s, waiting.id).state is DemandState.REFUSED
    later = emergency()
    _submit(s, later)
    assert record_callback(s, later.id, SFPD_LINE, by="s-intake-dub").callback.value == (
        "unregistered"
    )
    assert record_callback(s, later.id, portal, by="s-intake-dub").callback.value == "registered"
    assert screen_demand(s, later.id).state is DemandState.IN_REVIEW
    _dual_control(s, later.id, "s-appr-sjc", None)
    assert get_demand(s, later.id).state is DemandState.APPROVED
    assert _audit(s, world.clock()) == []


def test_emergency_without_a_call_back_is_refused(world: World) -> None:
    s = world.services
    request = LegalInstrument(InstrumentKind.EMERGENCY_REQUEST, "SFPD-EDR-2020-89")
    demand = _demand(
        "us-ca-sfpd",
        DemandKind.EMERGENCY_DISCLOSURE,
        request,
        (FIXTURES.emergency_subject,),
        categories=(DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("threat_to_life"),
    )
    _submit(s, demand)
    record = screen_demand(s, demand.id)
    assert record.state is DemandState.REFUSED
    assert record.screening is not None
    assert "emergency.no_callback" in record.screening.verdict(record.demand).rules
