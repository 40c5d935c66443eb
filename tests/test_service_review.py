"""Review and dual control through the service: who may approve, what a decision needs, and
what narrowing, challenges, clarifications and withdrawals do to a demand."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from custodes.cli.demo import register_world
from custodes.errors import ConflictError, ForbiddenError, InputError, TransitionError
from custodes.events import parse_event
from custodes.ledger import Ledger
from custodes.model import (
    DataCategory,
    Demand,
    DemandKind,
    DemandState,
    InstrumentKind,
    LegalInstrument,
    Nondisclosure,
    Offence,
    SignatureStatus,
    Target,
    TargetKind,
    TimeRange,
    new_demand_id,
)
from custodes.platform import EPOCH, FIXTURES, ReferencePlatform, build_reference_platform
from custodes.policy import PolicyPack, load_pack
from custodes.service import Services
from custodes.service.demands import (
    amend_demand,
    close_demand,
    get_demand,
    history,
    receive_demand,
    withdraw_demand,
)
from custodes.service.review import (
    approve,
    challenge,
    decide,
    narrow,
    refuse,
    request_clarification,
    resume_review,
    review_status,
    sign_off,
)
from custodes.service.scope import approved_scope
from custodes.service.screening import screen_demand
from custodes.store import open_store
from support import Clock

DOC = b"%PDF-1.7 the instrument"
WARRANT = LegalInstrument(InstrumentKind.SEARCH_WARRANT, "3:20-mj-70412", "N.D. Cal.")
EPOC = LegalInstrument(InstrumentKind.EPOC, "EPOC-2020-BER-17")


@dataclass
class World:
    services: Services
    platform_db: Path


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
    with ReferencePlatform(platform_db) as platform:
        services = Services(store, Ledger(store), pack, platform, clock=Clock(EPOCH))
        register_world(services)
        yield World(services, platform_db)
    store.close()


def _warrant(*targets: Target, **fields: object) -> Demand:
    base: dict[str, object] = {
        "categories": (DataCategory.CONTENT,),
        "time_range": TimeRange(EPOCH - timedelta(days=90), EPOCH),
        "offence": Offence("fraud"),
    }
    return Demand(
        new_demand_id(),
        "us-ndcal",
        DemandKind.DISCLOSURE,
        WARRANT,
        targets or (FIXTURES.us_content_user,),
        EPOCH,
        **(base | fields),  # type: ignore[arg-type]
    )


def _epoc(target: Target, **fields: object) -> Demand:
    base: dict[str, object] = {"categories": (DataCategory.SUBSCRIBER_INFO,)}
    base |= {"offence": Offence("fraud")} | fields
    return Demand(
        new_demand_id(),
        "de-sta-berlin",
        DemandKind.DISCLOSURE,
        EPOC,
        (target,),
        EPOCH,
        **base,  # type: ignore[arg-type]
    )


def _in_review(s: Services, demand: Demand, intake: str | None = None) -> str:
    receive_demand(s, demand, signature=SignatureStatus.VALID, intake=intake, document=DOC)
    assert screen_demand(s, demand.id).state is DemandState.IN_REVIEW
    return demand.id


def _rules(exc: pytest.ExceptionInfo[ForbiddenError]) -> list[str]:
    rules: list[str] = exc.value.evidence.get("rules", [])
    return rules


# -- dual control refusals -----------------------------------------------------------------


def test_the_same_approver_twice_is_not_dual_control(world: World) -> None:
    s = world.services
    demand_id = _in_review(s, _warrant())
    approve(s, demand_id, by="s-appr-dub", reason="fine")
    with pytest.raises(ForbiddenError) as exc:
        approve(s, demand_id, by="s-appr-dub", reason="fine again")
    assert _rules(exc) == ["api.approve_twice"]
    with pytest.raises(ForbiddenError, match="not complete"):
        decide(s, demand_id, by="s-appr-dub", reason="two approvals, surely")
    assert review_status(s, demand_id).missing_approvals == 1
    assert get_demand(s, demand_id).state is DemandState.IN_REVIEW


def test_the_intake_person_may_not_approve_nor_sign_off(world: World) -> None:
    s = world.services
    demand_id = _in_review(s, _epoc(FIXTURES.de_subscriber), intake="s-ana")
    with pytest.raises(ForbiddenError) as exc:
        approve(s, demand_id, by="s-ana", reason="I typed it in, it is fine")
    assert _rules(exc) == ["api.approve_own_intake"]
    approve(s, demand_id, by="s-appr-dub", reason="fine")
    approve(s, demand_id, by="s-appr-sjc", reason="fine")
    with pytest.raises(ForbiddenError) as exc:
        decide(s, demand_id, by="s-ana", reason="recording the decision")
    assert _rules(exc) == ["api.approve_own_intake"]
    assert decide(s, demand_id, by="s-appr-dub", reason="done").state is DemandState.APPROVED


def _french_subscriber(platform_db: Path) -> Target:
    with sqlite3.connect(platform_db) as db:
        row = db.execute(
            "SELECT id FROM accounts WHERE jurisdiction = 'FR' AND data_region = 'IE' "
            "ORDER BY id LIMIT 1"
        ).fetchone()
    return Target(TargetKind.ACCOUNT, row[0])


def test_an_approver_in_the_requesting_state_may_not_approve_a_foreign_effect(
    world: World,
) -> None:
    """A German EPOC reaches a subscriber in France; an approver in Germany may not approve."""
    s = world.services
    demand_id = _in_review(s, _epoc(_french_subscriber(world.platform_db)))
    with pytest.raises(ForbiddenError) as exc:
        approve(s, demand_id, by="s-appr-ber", reason="lawful EPOC")
    assert _rules(exc) == ["api.approver_in_requesting_state"]
    # The same approver may approve an EPOC for a subscriber in Germany itself.
    domestic = _in_review(s, _epoc(FIXTURES.de_subscriber))
    assert approve(s, domestic, by="s-appr-ber", reason="domestic").approvers == ("s-appr-ber",)


def test_an_escalation_needs_the_human_rights_sign_off_on_top_of_dual_control(
    world: World,
) -> None:
    s = world.services
    demand_id = _in_review(s, _epoc(FIXTURES.de_subscriber, offence=Offence("journalism")))
    assert get_demand(s, demand_id).roles_required == ("human_rights_reviewer",)
    approve(s, demand_id, by="s-appr-dub", reason="fine")
    sign_off(s, demand_id, by="s-hr-gva", role="human_rights_reviewer", reason="no concern")
    with pytest.raises(ForbiddenError, match="missing 1 approval"):
        decide(s, demand_id, by="s-appr-dub", reason="a sign-off is not an approval")
    approve(s, demand_id, by="s-appr-sjc", reason="fine")
    assert decide(s, demand_id, by="s-appr-dub", reason="done").state is DemandState.APPROVED
    approved = [parse_event(s.ledger.entry(h.index)) for h in history(s, demand_id)][-1]
    assert approved.facts["approvals"] == 3


def test_a_decision_without_the_human_rights_review_is_refused(world: World) -> None:
    s = world.services
    demand_id = _in_review(s, _epoc(FIXTURES.de_subscriber, offence=Offence("religion")))
    approve(s, demand_id, by="s-appr-dub", reason="fine")
    approve(s, demand_id, by="s-appr-sjc", reason="fine")
    with pytest.raises(ForbiddenError) as exc:
        decide(s, demand_id, by="s-appr-dub", reason="approvals are in")
    assert exc.value.evidence["missing_roles"] == ["human_rights_reviewer"]
    with pytest.raises(ForbiddenError) as signed:
        sign_off(s, demand_id, by="s-counsel-dub", role="human_rights_reviewer", reason="ok")
    assert _rules(signed) == ["demand.sign_off.default_deny"]
    with pytest.raises(ForbiddenError, match="one approval or sign-off"):
        sign_off(s, demand_id, by="s-appr-dub", role="human_rights_reviewer", reason="ok")
    assert get_demand(s, demand_id).state is DemandState.IN_REVIEW


def test_only_registered_approvers_approve(world: World) -> None:
    s = world.services
    demand_id = _in_review(s, _warrant())
    with pytest.raises(ForbiddenError) as exc:
        approve(s, demand_id, by="s-rev-ams", reason="reviewers review")
    assert _rules(exc) == ["demand.approve.default_deny"]
    with pytest.raises(ForbiddenError, match="not registered"):
        approve(s, demand_id, by="s-nobody", reason="trust me")
    assert review_status(s, demand_id).approvers == ()


# -- narrowing, challenge, clarification, withdrawal ---------------------------------------


def _approvals(s: Services, demand_id: str) -> None:
    approve(s, demand_id, by="s-appr-dub", reason="fine")
    approve(s, demand_id, by="s-appr-sjc", reason="fine")


def test_narrowing_the_period_approves_in_part(world: World) -> None:
    s = world.services
    demand_id = _in_review(s, _warrant())
    month = TimeRange(EPOCH - timedelta(days=30), EPOCH)
    with pytest.raises(ForbiddenError):
        narrow(s, demand_id, by="s-appr-dub", reason="a month is enough", time_range=month)
    _approvals(s, demand_id)
    longer = TimeRange(EPOCH - timedelta(days=120), EPOCH)
    with pytest.raises(InputError, match="within"):
        narrow(s, demand_id, by="s-appr-dub", reason="wider", time_range=longer)
    record = narrow(s, demand_id, by="s-appr-dub", reason="a month is enough", time_range=month)
    assert record.state is DemandState.PARTLY_APPROVED
    assert approved_scope(s, demand_id).time_range == month
    event = parse_event(s.ledger.entry(history(s, demand_id)[-1].index))
    assert event.kind == "demand.narrowed" and event.facts["dropped_targets"] == 0


def test_narrowing_drops_targets_and_never_everything(world: World) -> None:
    s = world.services
    other = FIXTURES.us_person
    demand_id = _in_review(s, _warrant(FIXTURES.us_content_user, other))
    _approvals(s, demand_id)
    with pytest.raises(InputError, match="refuse the demand instead"):
        narrow(
            s,
            demand_id,
            by="s-appr-dub",
            reason="none",
            drop_targets=(FIXTURES.us_content_user, other),
        )
    narrow(s, demand_id, by="s-appr-dub", reason="not shown", drop_targets=(other,))
    assert approved_scope(s, demand_id).targets == (FIXTURES.us_content_user,)


def test_an_undated_gag_is_challenged_then_reviewed_again(world: World) -> None:
    s = world.services
    demand_id = _in_review(s, _warrant(nondisclosure=Nondisclosure(None)))
    assert get_demand(s, demand_id).roles_required == ("legal_counsel",)
    with pytest.raises(ForbiddenError):
        challenge(s, demand_id, by="s-rev-ams", grounds="reviewers do not challenge")
    challenge(s, demand_id, by="s-counsel-dub", grounds="the gag names no end date")
    with pytest.raises(TransitionError):
        close_demand(s, demand_id, by="s-rev-ams", reason="challenged, not finished")
    resume_review(s, demand_id, by="s-rev-ams", reason="the court set an end date")
    sign_off(s, demand_id, by="s-counsel-dub", role="legal_counsel", reason="now dated")
    _approvals(s, demand_id)
    assert decide(s, demand_id, by="s-appr-dub", reason="done").state is DemandState.APPROVED


def test_a_refusal_for_a_missing_period_asks_for_clarification_and_the_answer_is_screened(
    world: World,
) -> None:
    s = world.services
    demand = _warrant(categories=(DataCategory.IP_SESSION_LOGS,), time_range=None)
    receive_demand(s, demand, signature=SignatureStatus.VALID, document=DOC)
    record = screen_demand(s, demand.id)
    assert record.state is DemandState.CLARIFICATION_REQUESTED
    assert record.screening is not None
    assert record.screening.verdict(record.demand).rules == ("scope.time_range",)
    period = TimeRange(EPOCH - timedelta(days=30), EPOCH)
    answer = Demand(
        demand.id,
        demand.authority_id,
        demand.kind,
        record.demand.instrument,  # as stored: with the document's hash
        demand.targets,
        EPOCH + timedelta(days=1),
        demand.categories,
        time_range=period,
        offence=demand.offence,
    )
    amended = amend_demand(s, answer, signature=SignatureStatus.VALID)
    assert (amended.state, amended.version) == (DemandState.RECEIVED, 2)
    assert screen_demand(s, demand.id).state is DemandState.IN_REVIEW
    kinds = [h.kind for h in history(s, demand.id)]
    assert kinds[-3:] == ["demand.amended", "demand.screened", "demand.review_opened"]


def test_staff_refuse_or_ask_for_clarification_with_a_written_reason(world: World) -> None:
    s = world.services
    demand_id = _in_review(s, _warrant())
    with pytest.raises(InputError, match="reason"):
        refuse(s, demand_id, by="s-rev-ams", reason=" ")
    request_clarification(s, demand_id, by="s-rev-ams", reason="which account exactly?")
    assert get_demand(s, demand_id).state is DemandState.CLARIFICATION_REQUESTED
    other = _in_review(s, _warrant())
    refuse(s, other, by="s-appr-dub", reason="the warrant has expired")
    last = history(s, other)[-1]
    assert (last.kind, last.staff, last.note) == (
        "demand.refused",
        "s-appr-dub",
        "the warrant has expired",
    )
    with pytest.raises(TransitionError):
        refuse(s, other, by="s-rev-ams", reason="refused twice")


def test_withdrawal_by_the_authority_and_closing(world: World) -> None:
    s = world.services
    demand_id = _in_review(s, _warrant())
    with pytest.raises(ForbiddenError):
        withdraw_demand(s, demand_id, authority="de-sta-berlin", reason="not ours")
    withdraw_demand(s, demand_id, authority="us-ndcal", reason="the case settled")
    with pytest.raises(ConflictError):
        approved_scope(s, demand_id)
    assert close_demand(s, demand_id, by="s-rev-ams", reason="withdrawn").state is (
        DemandState.CLOSED
    )
    with pytest.raises(TransitionError):
        withdraw_demand(s, demand_id, by="s-intake-dub", reason="again")


def test_illegal_moves_raise_transition_errors(world: World) -> None:
    s = world.services
    demand_id = _in_review(s, _warrant())
    _approvals(s, demand_id)
    decide(s, demand_id, by="s-appr-dub", reason="done")
    with pytest.raises(TransitionError) as exc:
        refuse(s, demand_id, by="s-rev-ams", reason="changed my mind")
    assert exc.value.evidence["current"] == "approved"
    with pytest.raises(TransitionError):
        close_demand(s, demand_id, by="s-rev-ams", reason="never executed")
    with pytest.raises(ConflictError):
        screen_demand(s, demand_id)
    with pytest.raises(ConflictError):
        approve(s, demand_id, by="s-appr-ber", reason="late")
    assert get_demand(s, demand_id).state is DemandState.APPROVED
