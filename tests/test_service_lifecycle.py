"""The service's guarantees around the lifecycle: each use-case is atomic, screening replays,
clocks raise alerts, terms-of-service actions are linked, and the registries are guarded."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from custodes import migrations
from custodes.cli.demo import ADMIN, SFPD_LINE, register_world
from custodes.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InputError,
    LedgerError,
    NotFoundError,
)
from custodes.events import Opening, check_opening, parse_event
from custodes.ledger import Ledger
from custodes.model import (
    Authority,
    AuthorityKind,
    Channel,
    ChannelKind,
    ClockKind,
    DataCategory,
    Demand,
    DemandKind,
    DemandState,
    InstrumentKind,
    LegalInstrument,
    Offence,
    RestrictionAction,
    SignatureStatus,
    Staff,
    Target,
    TimeRange,
    VerificationKey,
    format_authority,
    new_demand_id,
)
from custodes.platform import EPOCH, FIXTURES, ReferencePlatform, build_reference_platform
from custodes.policy import DEFAULT_PACK, PolicyPack, load_pack
from custodes.service import Services, openings_of
from custodes.service import screening as screening_module
from custodes.service.authorities import (
    add_channel,
    add_key,
    get_authority,
    register_authority,
    reinstate_authority,
    remove_channel,
    revoke_key,
    suspend_authority,
)
from custodes.service.clocks import check_clocks, clocks_of, complete_follow_up
from custodes.service.demands import (
    DemandRecord,
    amend_demand,
    get_demand,
    history,
    receive_demand,
    record_callback,
    withdraw_demand,
)
from custodes.service.review import approve, decide, request_clarification, review_status
from custodes.service.scope import approved_scope, mark_executed
from custodes.service.screening import receive_and_screen, replay_screening, screen_demand
from custodes.service.staff import get_staff, grant_role, register_staff, revoke_role
from custodes.service.tos import record_tos_action, tos_counts
from custodes.store import create_store_engine, migrate, open_store
from custodes.store.demand_tables import approvals, authorities, demand_targets, demands
from custodes.store.tables import metadata
from support import Clock

DOC = b"%PDF-1.7 the instrument"


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


def _warrant(target: Target = FIXTURES.us_content_user) -> Demand:
    return Demand(
        new_demand_id(),
        "us-ndcal",
        DemandKind.DISCLOSURE,
        LegalInstrument(InstrumentKind.SEARCH_WARRANT, "3:20-mj-70412"),
        (target,),
        EPOCH,
        (DataCategory.CONTENT,),
        time_range=TimeRange(EPOCH - timedelta(days=90), EPOCH),
        offence=Offence("fraud"),
    )


def _emergency() -> Demand:
    return Demand(
        new_demand_id(),
        "us-ca-sfpd",
        DemandKind.EMERGENCY_DISCLOSURE,
        LegalInstrument(InstrumentKind.EMERGENCY_REQUEST, "SFPD-EDR-2020-88"),
        (FIXTURES.emergency_subject,),
        EPOCH,
        (DataCategory.SUBSCRIBER_INFO,),
        offence=Offence("threat_to_life"),
    )


def _submit(s: Services, demand: Demand) -> str:
    receive_demand(s, demand, signature=SignatureStatus.VALID, document=DOC)
    return demand.id


def _approved(s: Services, demand: Demand) -> str:
    _submit(s, demand)
    screen_demand(s, demand.id)
    approve(s, demand.id, by="s-appr-dub", reason="fine")
    approve(s, demand.id, by="s-appr-sjc", reason="fine")
    decide(s, demand.id, by="s-appr-dub", reason="done")
    return demand.id


# -- atomicity -----------------------------------------------------------------------------


class FailingLedger(Ledger):
    """A ledger that fails to append its ``fail_on``-th entry (counting from 1), and every
    entry appended with it, as a full disk would."""

    def __init__(self, ledger: Ledger, fail_on: int = 1) -> None:
        super().__init__(ledger.store)
        self.appended = 0
        self.fail_on = fail_on

    def append_in(
        self, conn: Connection, entries: Sequence[bytes], *, new: bool = False
    ) -> list[int]:
        first, self.appended = self.appended + 1, self.appended + len(entries)
        if first <= self.fail_on <= self.appended:
            raise LedgerError("the log refused the entry")
        return super().append_in(conn, entries, new=new)


def _failing(s: Services, fail_on: int = 1) -> Services:
    return replace(s, ledger=FailingLedger(s.ledger, fail_on))


def test_a_failed_intake_leaves_no_demand_and_no_event(world: World) -> None:
    s = world.services
    size = s.ledger.size()
    demand = _warrant()
    with pytest.raises(LedgerError):
        receive_demand(_failing(s), demand, signature=SignatureStatus.VALID, document=DOC)
    with pytest.raises(NotFoundError):
        get_demand(s, demand.id)
    with s.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(demand_targets)).scalar() == 0
    assert s.ledger.size() == size


@pytest.mark.parametrize("fail_on", [1, 2])
def test_screening_is_all_or_nothing_across_its_two_events(world: World, fail_on: int) -> None:
    s = world.services
    demand_id = _submit(s, _warrant())
    size = s.ledger.size()
    with pytest.raises(LedgerError):
        screen_demand(_failing(s, fail_on), demand_id)
    record = get_demand(s, demand_id)
    assert (record.state, record.screening) == (DemandState.RECEIVED, None)
    assert s.ledger.size() == size
    assert screen_demand(s, demand_id).state is DemandState.IN_REVIEW


@pytest.mark.parametrize(
    ("demand", "document", "state", "routed"),
    [
        (_warrant, DOC, DemandState.IN_REVIEW, "demand.review_opened"),
        (_warrant, None, DemandState.CLARIFICATION_REQUESTED, "demand.clarification_requested"),
        (_emergency, DOC, DemandState.REFUSED, "demand.refused"),
    ],
)
def test_receive_and_screen_stores_what_receiving_then_screening_would(  # noqa: PLR0917
    world: World,
    demand: Callable[[], Demand],
    document: bytes | None,
    state: DemandState,
    routed: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = world.services
    one, two = demand(), demand()
    size = s.ledger.size()

    def apart(*_: object) -> None:
        raise AssertionError("the one transaction failed: received and screened apart")

    with monkeypatch.context() as m:
        m.setattr(screening_module, "_receive_then_screen", apart)
        record = receive_and_screen(s, one, signature=SignatureStatus.VALID, document=document)
    assert record == get_demand(s, one.id)
    assert record.state is state
    [(clock, met)] = clocks_of(s, one.id)
    assert clock.kind is ClockKind.RESPONSE
    assert (met is not None) == (state is not DemandState.IN_REVIEW)
    kinds = ["demand.received", "demand.screened", routed]
    assert [h.kind for h in history(s, one.id)] == kinds
    assert [parse_event(e).kind for e in s.ledger.entries(size, s.ledger.size())] == kinds
    receive_demand(s, two, signature=SignatureStatus.VALID, document=document)
    separate = screen_demand(s, two.id)
    assert replace(record, demand=replace(record.demand, id=two.id)) == replace(
        separate, screening=record.screening
    )
    assert separate.screening is not None and record.screening is not None
    assert separate.screening.findings == record.screening.findings
    assert [met for _, met in clocks_of(s, two.id)] == [met for _, met in clocks_of(s, one.id)]


def test_receive_and_screen_sees_an_authority_suspended_as_it_was_judged(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Suspended after its demand was judged and before it is stored: the one transaction
    finds the authority changed, and receiving then screening refuse the demand."""
    s = world.services
    judge = screening_module._judge

    def judge_then_suspend(*args: Any, **kwargs: Any) -> Any:
        judged = judge(*args, **kwargs)
        if get_authority(s, "us-ndcal").is_active:
            suspend_authority(s, "us-ndcal", by=ADMIN, reason="under review")
        return judged

    monkeypatch.setattr(screening_module, "_judge", judge_then_suspend)
    demand = _warrant()
    record = receive_and_screen(s, demand, signature=SignatureStatus.VALID, document=DOC)
    assert record.state is DemandState.REFUSED
    assert record.screening is not None
    assert "requester.suspended" in record.screening.verdict(record.demand).rules
    assert [h.kind for h in history(s, demand.id)] == [
        "demand.received", "demand.screened", "demand.refused"
    ]  # fmt: skip


def test_demands_received_and_screened_together_each_get_their_own_answer(
    world: World,
) -> None:
    """Demands arriving at once share the writer's transactions; one of them arrives twice
    with the same id: it is stored once and the other copy is refused, and every other
    demand is stored, screened and logged as if it had come alone."""
    s = world.services
    demands = [_warrant() if i % 3 else _emergency() for i in range(9)]
    demands.append(demands[4])
    barrier = threading.Barrier(len(demands))
    outcomes: list[tuple[str, object]] = []

    def send(demand: Demand) -> None:
        barrier.wait()
        try:
            got = receive_and_screen(s, demand, signature=SignatureStatus.VALID, document=DOC)
            outcomes.append((demand.id, got))
        except ConflictError as exc:
            outcomes.append((demand.id, exc))

    for rounds in range(6):
        outcomes.clear()
        if rounds:
            demands = [replace(d, id=new_demand_id()) for d in demands[:9]]
            if rounds % 2 == 0:
                demands.append(demands[4])
        barrier = threading.Barrier(len(demands))
        threads = [threading.Thread(target=send, args=(d,)) for d in demands]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refused = [i for i, got in outcomes if isinstance(got, ConflictError)]
        assert refused == ([] if rounds % 2 else [demands[4].id])
        for demand_id, got in outcomes:
            if isinstance(got, DemandRecord):
                assert got == get_demand(s, demand_id)
                routed = {
                    DemandState.IN_REVIEW: "demand.review_opened",
                    DemandState.REFUSED: "demand.refused",
                }[got.state]
                kinds = ["demand.received", "demand.screened", routed]
                assert [h.kind for h in history(s, demand_id)] == kinds


def test_receive_and_screen_is_all_or_nothing(world: World) -> None:
    s = world.services
    size = s.ledger.size()

    class Broken(FailingLedger):
        def append_in(
            self, conn: Connection, entries: Sequence[bytes], *, new: bool = False
        ) -> list[int]:
            raise LedgerError("the log refused the entry")

    demand = _warrant()
    with pytest.raises(LedgerError):
        receive_and_screen(replace(s, ledger=Broken(s.ledger)), demand,
                           signature=SignatureStatus.VALID, document=DOC)  # fmt: skip
    with pytest.raises(NotFoundError):
        get_demand(s, demand.id)
    assert s.ledger.size() == size
    # The one transaction fails on its second entry: receiving and screening one after the
    # other still do it, once each.
    record = receive_and_screen(_failing(s, 2), demand, signature=SignatureStatus.VALID,
                                document=DOC)  # fmt: skip
    assert record.state is DemandState.IN_REVIEW == get_demand(s, demand.id).state
    kinds = ["demand.received", "demand.screened", "demand.review_opened"]
    assert [h.kind for h in history(s, demand.id)] == kinds
    assert s.ledger.size() == size + 3


def test_a_failed_approval_or_decision_changes_nothing(world: World) -> None:
    s = world.services
    demand_id = _submit(s, _warrant())
    screen_demand(s, demand_id)
    size = s.ledger.size()
    with pytest.raises(LedgerError):
        approve(_failing(s), demand_id, by="s-appr-dub", reason="fine")
    with s.store.read() as conn:
        assert conn.execute(sa.select(approvals)).all() == []
    approve(s, demand_id, by="s-appr-dub", reason="fine")
    approve(s, demand_id, by="s-appr-sjc", reason="fine")
    with pytest.raises(LedgerError):
        decide(_failing(s), demand_id, by="s-appr-dub", reason="done")
    assert get_demand(s, demand_id).state is DemandState.IN_REVIEW
    assert s.ledger.size() == size + 2
    with pytest.raises(ConflictError):
        approved_scope(s, demand_id)


def test_execution_that_fails_after_marking_leaves_the_demand_approved(world: World) -> None:
    s = world.services
    demand_id = _approved(s, _warrant())

    def work(conn: Connection) -> None:
        mark_executed(conn, s, demand_id, by="s-cust-dub")
        raise RuntimeError("the production could not be encrypted")

    with pytest.raises(RuntimeError):
        s.write(work)
    assert get_demand(s, demand_id).state is DemandState.APPROVED
    assert history(s, demand_id)[-1].kind == "demand.approved"


def test_a_demand_withdrawn_while_it_is_judged_is_not_screened(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Screening judges outside the transaction; what changed meanwhile wins."""
    s = world.services
    demand_id = _submit(s, _warrant())
    judge = screening_module.judge

    def judge_then_withdraw(*args: object) -> object:
        judged = judge(*args)  # type: ignore[arg-type]
        withdraw_demand(s, demand_id, authority="us-ndcal", reason="withdrawn meanwhile")
        return judged

    monkeypatch.setattr(screening_module, "judge", judge_then_withdraw)
    with pytest.raises(ConflictError, match="withdrawn"):
        screen_demand(s, demand_id)
    record = get_demand(s, demand_id)
    assert (record.state, record.screening) == (DemandState.WITHDRAWN, None)
    assert "demand.screened" not in [h.kind for h in history(s, demand_id)]


# -- screening replays ---------------------------------------------------------------------


def test_replaying_a_screening_under_the_same_pack_gives_the_same_findings(
    world: World, tmp_path: Path
) -> None:
    s = world.services
    for demand in (_warrant(), _warrant(FIXTURES.us_person)):
        record = screen_demand(s, _submit(s, demand))
        assert record.screening is not None
        world.clock.advance(days=3)  # later, and after other demands: same inputs, same findings
        assert replay_screening(s, demand.id) == list(record.screening.findings)
    changed = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, changed)
    with (changed / "README.md").open("a", encoding="utf-8") as f:
        f.write("\nA local note.\n")
    with pytest.raises(ConflictError, match="another policy pack"):
        replay_screening(replace(s, pack=load_pack(changed)), demand.id)


def test_volume_counts_the_authoritys_recent_targets(world: World) -> None:
    s = world.services
    first = screen_demand(s, _submit(s, _warrant()))
    second = screen_demand(s, _submit(s, _warrant(FIXTURES.us_person)))
    assert first.screening is not None and second.screening is not None
    assert (first.screening.context.volume, second.screening.context.volume) == (1, 2)
    world.clock.advance(days=31)
    third = screen_demand(s, _submit(s, replace(_warrant(), received_at=world.clock())))
    assert third.screening is not None and third.screening.context.volume == 1


# -- clocks --------------------------------------------------------------------------------


def test_an_emergency_follow_up_falls_due_and_an_overdue_one_raises_one_alert(
    world: World,
) -> None:
    s = world.services
    demand = _emergency()
    _submit(s, demand)
    record_callback(s, demand.id, SFPD_LINE, by="s-intake-dub")
    screen_demand(s, demand.id)
    approve(s, demand.id, by="s-appr-sjc", reason="threat to life confirmed by call-back")
    decide(s, demand.id, by="s-appr-sjc", reason="one approver after the call-back")
    s.write(lambda conn: mark_executed(conn, s, demand.id, by="s-cust-dub"))
    world.clock.advance(hours=47)
    assert check_clocks(s) == []
    world.clock.advance(hours=2)
    [alert] = check_clocks(s)
    assert (alert.kind, alert.due_at) == (
        ClockKind.EMERGENCY_FOLLOW_UP,
        EPOCH + timedelta(hours=48),
    )
    assert check_clocks(s) == [], "alerted once"
    overdue = parse_event(s.ledger.entry(history(s, demand.id)[-1].index))
    assert (overdue.kind, overdue.facts["due_at"]) == ("clock.overdue", "2020-06-06T12:00:00Z")
    grant_role(s, "s-appr-sjc", "reviewer", by=ADMIN)  # may now follow up, but approved it
    with pytest.raises(ForbiddenError, match="other than the first approver"):
        complete_follow_up(s, demand.id, by="s-appr-sjc", document=b"warrant", reason="late")
    complete_follow_up(s, demand.id, by="s-rev-ams", document=b"warrant", reason="it arrived")
    follow_up = [c for c in clocks_of(s, demand.id) if c[0].kind is ClockKind.EMERGENCY_FOLLOW_UP]
    assert follow_up[0][1] == world.clock()


def test_a_response_clock_is_met_by_an_answer_and_alerts_when_it_is_not(world: World) -> None:
    s = world.services
    answered = _approved(s, _warrant())
    waiting = _submit(s, _warrant(FIXTURES.us_person))
    world.clock.advance(days=15)  # a warrant is answered within 14 days
    alerted = check_clocks(s)
    assert [(c.demand_id, c.kind) for c in alerted] == [(waiting, ClockKind.RESPONSE)]
    assert all(met is not None for _, met in clocks_of(s, answered))


def test_a_call_back_on_an_unregistered_channel_does_not_open_the_fast_path(
    world: World,
) -> None:
    s = world.services
    demand = _emergency()
    _submit(s, demand)
    stranger = Channel(ChannelKind.PHONE, "+1 202 555 0199")
    assert record_callback(s, demand.id, stranger, by="s-intake-dub").callback.value == (
        "unregistered"
    )
    record = screen_demand(s, demand.id)
    assert record.state is DemandState.REFUSED
    assert record.screening is not None
    assert "emergency.unregistered_channel" in record.screening.verdict(record.demand).rules
    with pytest.raises(ConflictError):
        record_callback(s, demand.id, SFPD_LINE, by="s-intake-dub")


SFPD_MAIL = Channel(ChannelKind.EMAIL, "duty-officer@sfgov.example")


def _call_back(s: Services, demand_id: str, channel: Channel) -> str:
    return record_callback(s, demand_id, channel, by="s-intake-dub").callback.value


def test_a_channel_added_after_the_emergency_arrived_does_not_count(world: World) -> None:
    s = world.services
    waiting = _emergency()
    _submit(s, waiting)
    world.clock.advance(minutes=5)
    add_channel(s, "us-ca-sfpd", SFPD_MAIL, by=ADMIN)
    assert _call_back(s, waiting.id, SFPD_MAIL) == "unregistered"
    record = screen_demand(s, waiting.id)
    assert record.state is DemandState.REFUSED
    assert record.screening is not None
    assert "emergency.unregistered_channel" in record.screening.verdict(record.demand).rules
    later = _emergency()  # arrives after the channel was added: it counts
    _submit(s, later)
    assert _call_back(s, later.id, SFPD_MAIL) == "registered"
    assert screen_demand(s, later.id).state is DemandState.IN_REVIEW


def test_a_channel_removed_before_the_emergency_arrived_does_not_count(world: World) -> None:
    s = world.services
    remove_channel(s, "us-ca-sfpd", SFPD_LINE, by=ADMIN)
    demand = _emergency()
    _submit(s, demand)
    assert _call_back(s, demand.id, SFPD_LINE) == "unregistered"
    assert screen_demand(s, demand.id).state is DemandState.REFUSED


def test_a_channel_removed_while_the_emergency_waits_counts_only_once_restored(
    world: World,
) -> None:
    """Registered when the emergency arrived but removed since (a number found compromised,
    say): a call-back on it counts only if the channel is registered again by then."""
    s = world.services
    demand = _emergency()
    _submit(s, demand)
    remove_channel(s, "us-ca-sfpd", SFPD_LINE, by=ADMIN)
    assert _call_back(s, demand.id, SFPD_LINE) == "unregistered"
    add_channel(s, "us-ca-sfpd", SFPD_LINE, by=ADMIN)
    assert _call_back(s, demand.id, SFPD_LINE) == "registered"


def test_an_amended_emergency_keeps_the_channels_of_its_first_arrival(world: World) -> None:
    s = world.services
    demand = _emergency()
    _submit(s, demand)
    assert _call_back(s, demand.id, SFPD_LINE) == "registered"
    screen_demand(s, demand.id)
    request_clarification(s, demand.id, by="s-rev-ams", reason="which account exactly?")
    add_channel(s, "us-ca-sfpd", SFPD_MAIL, by=ADMIN)
    stored = get_demand(s, demand.id).demand
    amend_demand(s, replace(stored, received_at=world.clock()), signature=SignatureStatus.VALID)
    assert _call_back(s, demand.id, SFPD_MAIL) == "unregistered"


def test_authority_channels_are_added_and_removed_by_an_administrator(world: World) -> None:
    s = world.services
    before = get_authority(s, "us-ca-sfpd")
    with pytest.raises(ForbiddenError):
        add_channel(s, "us-ca-sfpd", SFPD_MAIL, by="s-intake-dub")
    with pytest.raises(NotFoundError):
        add_channel(s, "xx-nobody", SFPD_MAIL, by=ADMIN)
    index = add_channel(s, "us-ca-sfpd", SFPD_MAIL, by=ADMIN)
    assert get_authority(s, "us-ca-sfpd").channels == (*before.channels, SFPD_MAIL)
    event = parse_event(s.ledger.entry(index))
    assert (event.kind, event.facts) == ("authority.channel_added", {"channel_kind": "email"})
    assert b"sfgov" not in s.ledger.entry(index), "the address is committed, not published"
    opened = openings_of(s, index)["channel"]
    assert isinstance(opened, Opening) and opened.value == SFPD_MAIL.address
    check_opening(event, "channel", opened)
    size, after = s.ledger.size(), get_authority(s, "us-ca-sfpd")
    with pytest.raises(ConflictError):
        add_channel(s, "us-ca-sfpd", SFPD_MAIL, by=ADMIN)
    with pytest.raises(NotFoundError):
        remove_channel(s, "us-ca-sfpd", Channel(ChannelKind.PHONE, "+1 202 555 0199"), by=ADMIN)
    with pytest.raises(ForbiddenError):
        remove_channel(s, "us-ca-sfpd", SFPD_MAIL, by="s-rev-ams")
    assert (s.ledger.size(), get_authority(s, "us-ca-sfpd")) == (size, after)
    index = remove_channel(s, "us-ca-sfpd", SFPD_LINE, by=ADMIN)
    assert get_authority(s, "us-ca-sfpd").channels == (SFPD_MAIL,)
    event = parse_event(s.ledger.entry(index))
    assert (event.kind, event.facts) == ("authority.channel_removed", {"channel_kind": "phone"})


# -- terms-of-service actions --------------------------------------------------------------


def test_a_tos_action_on_a_target_of_an_open_demand_is_linked(world: World) -> None:
    s = world.services
    demand_id = _submit(s, _warrant(FIXTURES.us_person))
    linked = record_tos_action(
        s, FIXTURES.us_person, RestrictionAction.SUSPEND_ACCOUNT, by="s-ts-sjc", reason="spam"
    )
    assert linked.linked == (demand_id,)
    ordinary = record_tos_action(
        s, FIXTURES.spam_account, RestrictionAction.SUSPEND_ACCOUNT, by="s-ts-sjc", reason="spam"
    )
    assert ordinary.linked == () and not ordinary.state_involved
    event = parse_event(s.ledger.entry(ordinary.indexes[0]))
    assert (event.kind, event.demand) == ("tos_action.recorded", None)
    assert tos_counts(s) == type(tos_counts(s))(total=2, state_involved=1)
    with pytest.raises(ForbiddenError):
        record_tos_action(
            s, FIXTURES.us_person, RestrictionAction.SUSPEND_ACCOUNT, by="s-rev-ams", reason="x"
        )


# -- intake and the registries ---------------------------------------------------------------


def test_intake_checks_who_sends_and_the_document(world: World) -> None:
    s = world.services
    with pytest.raises(AuthError):
        unknown = replace(_warrant(), authority_id="xx-unknown")
        receive_demand(s, unknown, signature=SignatureStatus.VALID)
    with pytest.raises(AuthError):
        receive_demand(s, _warrant(), signature=SignatureStatus.INVALID)
    with pytest.raises(ForbiddenError):
        receive_demand(s, _warrant(), signature=SignatureStatus.MISSING, intake="s-rev-ams")
    stated = replace(
        _warrant(),
        instrument=LegalInstrument(InstrumentKind.SEARCH_WARRANT, document_sha256="ab" * 32),
    )
    with pytest.raises(InputError, match="does not match"):
        receive_demand(s, stated, signature=SignatureStatus.VALID, document=DOC)
    demand = _warrant()
    record = receive_demand(s, demand, signature=SignatureStatus.VALID, document=DOC)
    assert record.demand.instrument.document_sha256 is not None
    with pytest.raises(ConflictError):
        receive_demand(s, demand, signature=SignatureStatus.VALID)
    with s.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(demands)).scalar() == 1


def test_a_suspended_authority_is_refused_at_screening_until_reinstated(world: World) -> None:
    s = world.services
    with pytest.raises(ForbiddenError):
        suspend_authority(s, "us-ndcal", by="s-rev-ams", reason="no")
    suspend_authority(s, "us-ndcal", by=ADMIN, reason="compromised key reported")
    record = screen_demand(s, _submit(s, _warrant()))
    assert record.state is DemandState.REFUSED
    assert record.screening is not None
    assert "requester.suspended" in record.screening.verdict(record.demand).rules
    reinstate_authority(s, "us-ndcal", by=ADMIN)
    assert screen_demand(s, _submit(s, _warrant())).state is DemandState.IN_REVIEW


def test_authority_keys_and_registration(world: World) -> None:
    s = world.services
    key = VerificationKey("ndcal-2021", bytes(range(32)))
    add_key(s, "us-ndcal", key, by=ADMIN)
    assert get_authority(s, "us-ndcal").key("ndcal-2021") == key
    with pytest.raises(ConflictError):
        add_key(s, "us-ndcal", key, by=ADMIN)
    revoke_key(s, "us-ndcal", "ndcal-2021", by=ADMIN)
    assert get_authority(s, "us-ndcal").key("ndcal-2021") is None
    fresh = Authority("fr-pnf", "Parquet national financier", AuthorityKind.PROSECUTOR, "FR")
    index = register_authority(s, fresh, by=ADMIN)
    event = parse_event(s.ledger.entry(index))
    assert event.facts == {"authority_jurisdiction": "FR", "authority_kind": "prosecutor"}
    assert b"financier" not in s.ledger.entry(index)
    with pytest.raises(ConflictError):
        register_authority(s, fresh, by=ADMIN)


def test_staff_registry_grants_and_revokes_roles_through_an_admin(world: World) -> None:
    s = world.services
    newcomer = Staff("s-new", frozenset({"reviewer"}), "IE")
    with pytest.raises(ForbiddenError, match="administrator"):
        register_staff(s, newcomer, by=None)
    with pytest.raises(ForbiddenError):
        register_staff(s, newcomer, by="s-rev-ams")
    with pytest.raises(InputError, match="no role"):
        register_staff(s, Staff("s-new", frozenset({"overlord"}), "IE"), by=ADMIN)
    register_staff(s, newcomer, by=ADMIN)
    index = grant_role(s, "s-new", "approver", by=ADMIN)
    assert parse_event(s.ledger.entry(index)).facts == {"role": "approver"}
    assert get_staff(s, "s-new").roles == {"reviewer", "approver"}
    revoke_role(s, "s-new", "approver", by=ADMIN)
    demand_id = _submit(s, _warrant())
    screen_demand(s, demand_id)
    with pytest.raises(ForbiddenError):
        approve(s, demand_id, by="s-new", reason="no longer an approver")
    assert review_status(s, demand_id).approvers == ()


def test_the_migration_creates_exactly_the_tables_the_service_uses(database_url: str) -> None:
    store = open_store(database_url)
    try:
        with store.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        store.close()
    ours = {
        "authorities",
        "staff",
        "demands",
        "demand_targets",
        "demand_documents",
        "approvals",
        "demand_clocks",
        "demand_events",
        "tos_actions",
    }
    assert [d for d in diffs if _table_of(d) in ours] == []


def test_the_migration_keeps_waiting_emergencies_judged_by_the_channels_they_had(
    database_url: str,
) -> None:
    """Emergencies stored before channels could change keep their authority's channels."""
    engine = create_store_engine(database_url)
    try:
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0005_api")
            conn.execute(authorities.insert().values(
                id="us-ca-sfpd", jurisdiction="US-CA", standing="active",
                record=json.dumps(format_authority(
                    Authority("us-ca-sfpd", "SFPD", AuthorityKind.POLICE, "US-CA",
                              channels=(SFPD_LINE,)))),
                registered_at=EPOCH, updated_at=EPOCH,
            ))  # fmt: skip
            for demand_id, kind in (("d_e", "emergency_disclosure"), ("d_w", "disclosure")):
                conn.execute(demands.insert().values(
                    id=demand_id, version=1, authority_id="us-ca-sfpd", state="received",
                    kind=kind, body="{}", received_at=EPOCH, target_count=1,
                    signature="valid", callback="none", roles_required="[]",
                    approvals_needed=1, updated_at=EPOCH,
                ))  # fmt: skip
        migrate(engine)
        with engine.connect() as conn:
            kept = dict(conn.execute(sa.select(demands.c.id, demands.c.arrival_channels)).all())
    finally:
        engine.dispose()
    assert kept["d_w"] is None
    assert json.loads(kept["d_e"]) == [{"kind": "phone", "address": SFPD_LINE.address}]


def _table_of(diff: object) -> str | None:
    """The table a difference reported by Alembic's ``compare_metadata`` is about."""
    if isinstance(diff, list):
        return _table_of(diff[0])
    assert isinstance(diff, tuple)
    kind = str(diff[0])
    if kind.startswith("modify_") or kind in ("add_column", "remove_column"):
        return str(diff[2])
    thing = diff[1]
    if isinstance(thing, sa.Table):
        return thing.name
    table = getattr(thing, "table", None)
    return None if table is None else str(table.name)
