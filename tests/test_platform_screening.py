"""The reference platform's fixtures screened by the default pack: the pieces fit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from custodes.model import (
    Authority,
    AuthorityKind,
    DataCategory,
    Demand,
    DemandKind,
    EvidenceRef,
    EvidenceStatus,
    InstrumentKind,
    LegalInstrument,
    Offence,
    Outcome,
    Restriction,
    RestrictionAction,
    ScreeningContext,
    SignatureStatus,
    Subject,
    Target,
    TimeRange,
    summarize,
)
from custodes.platform import EPOCH, FIXTURES, PlatformAdapter, build_reference_platform
from custodes.platform import ReferencePlatform as Platform
from custodes.policy import evaluate, load_pack

DOC = "9f" * 32
PRC = Authority("cn-mps", "PRC Ministry of Public Security", AuthorityKind.POLICE, "CN")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    path = tmp_path_factory.mktemp("screen") / "platform.db"
    build_reference_platform(path, accounts=300, region_accounts=100)
    with Platform(path) as p:
        yield p


def _subjects(p: PlatformAdapter, targets: tuple[Target, ...]) -> dict[Target, Subject | None]:
    return {t: p.subject(t) for t in targets}


def _evidence(p: PlatformAdapter, refs: tuple[EvidenceRef, ...]) -> tuple[EvidenceStatus, ...]:
    out = []
    for ref in refs:
        held = p.evidence(ref.platform_ref) if ref.platform_ref else None
        if held is None:
            out.append(EvidenceStatus.NOT_HELD)
        else:
            ok = held.sha256 == ref.sha256
            out.append(EvidenceStatus.VERIFIED if ok else EvidenceStatus.MISMATCH)
    return tuple(out)


def test_ending_the_commemorations_is_refused_for_every_meeting(platform: Platform) -> None:
    evidence = (EvidenceRef("3c" * 32, "screenshots sent by the requester"),)
    demand = Demand(
        "d_tam", PRC.id, DemandKind.RESTRICTION,
        LegalInstrument(InstrumentKind.ADMINISTRATIVE_REQUEST, document_sha256=DOC),
        FIXTURES.tiananmen_meetings, EPOCH,
        offence=Offence("assembly"),
        restriction=Restriction(RestrictionAction.END_MEETING, ("CN",)),
        claims_tos_violation=True, evidence=evidence,
    )  # fmt: skip
    context = ScreeningContext(EPOCH, SignatureStatus.VALID, evidence=_evidence(platform, evidence))
    findings = evaluate(load_pack(), demand, PRC, _subjects(platform, demand.targets), context)
    for meeting in FIXTURES.tiananmen_meetings:
        mine = {f.rule_id for f in findings if f.target == meeting and f.blocks}
        assert {"territory.effect_abroad", "jurisdiction.subject_outside"} <= mine
    assert summarize(demand, findings).outcome is Outcome.REFUSE


def test_platform_held_evidence_is_verified_and_changed_evidence_is_not(
    platform: Platform,
) -> None:
    held = platform.evidence(FIXTURES.spam_evidence)
    assert held is not None
    good = (EvidenceRef(held.sha256, platform_ref=held.ref),)
    bad = (EvidenceRef("00" * 32, platform_ref=held.ref),)
    assert _evidence(platform, good) == (EvidenceStatus.VERIFIED,)
    assert _evidence(platform, bad) == (EvidenceStatus.MISMATCH,)


def test_the_province_spreadsheet_is_refused_by_scope(platform: Platform) -> None:
    rows = tuple(FIXTURES.region_account(i) for i in range(100))
    demand = Demand(
        "d_gd", PRC.id, DemandKind.DISCLOSURE,
        LegalInstrument(InstrumentKind.ADMINISTRATIVE_REQUEST, document_sha256=DOC),
        rows, EPOCH, (DataCategory.SUBSCRIBER_INFO,), offence=Offence("subversion"),
    )  # fmt: skip
    findings = evaluate(
        load_pack(), demand, PRC, _subjects(platform, rows),
        ScreeningContext(EPOCH, SignatureStatus.VALID),
    )  # fmt: skip
    assert "scope.target_cap" in {f.rule_id for f in findings if f.outcome is Outcome.REFUSE}


def test_a_lawful_uk_order_passes_with_platform_subjects(platform: Platform) -> None:
    met = Authority("gb-met", "Metropolitan Police Service", AuthorityKind.POLICE, "GB")
    demand = Demand(
        "d_uk", met.id, DemandKind.DISCLOSURE,
        LegalInstrument(InstrumentKind.CLOUD_ACT_ORDER, "OPO-1", document_sha256=DOC),
        (FIXTURES.uk_subject,), EPOCH, (DataCategory.CONTENT, DataCategory.IP_SESSION_LOGS),
        TimeRange(EPOCH - timedelta(days=30), EPOCH), Offence("drug_trafficking"),
    )  # fmt: skip
    findings = evaluate(
        load_pack(), demand, met, _subjects(platform, demand.targets),
        ScreeningContext(EPOCH, SignatureStatus.VALID),
    )  # fmt: skip
    assert [f.rule_id for f in findings if f.blocks] == []
    records = platform.read(FIXTURES.uk_subject, demand.categories, demand.time_range)
    assert set(records.rows) == set(demand.categories)
