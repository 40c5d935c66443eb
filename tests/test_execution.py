"""Execution of approved demands: productions, restrictions, preservation, run_due."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pyrage
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from custodes.audit.checks import Replay, default_checks
from custodes.errors import ConflictError, ForbiddenError, InputError
from custodes.events import (
    DEMAND_EXECUTED,
    NOTICE_SENT,
    PRESERVATION_EXTENDED,
    PRESERVATION_PLACED,
    PRESERVATION_RELEASED,
    PRODUCTION_DELIVERED,
    PRODUCTION_DOWNLOADED,
    RESTRICTION_APPLIED,
    RESTRICTION_LIFTED,
    STAFF_ACCESS_DENIED,
    Opening,
    check_opening,
    parse_event,
)
from custodes.ledger import Ledger
from custodes.model import (
    Authority,
    AuthorityKind,
    DataCategory,
    Demand,
    DemandKind,
    DemandState,
    InstrumentKind,
    LegalInstrument,
    Offence,
    Restriction,
    RestrictionAction,
    SignatureStatus,
    Staff,
    Target,
    TimeRange,
    new_demand_id,
)
from custodes.platform import FIXTURES, ReferencePlatform, build_reference_platform
from custodes.policy import PolicyPack, load_pack
from custodes.service import Services, openings_of
from custodes.service.access import AccessRequest, Justification, JustificationKind, request_access
from custodes.service.authorities import register_authority
from custodes.service.demands import receive_demand, withdraw_demand
from custodes.service.execution import (
    extend_preservation,
    lift_restrictions,
    preserve,
    release_preservation,
    restrict,
    run_due,
)
from custodes.service.gateway import AccessGateway
from custodes.service.lifecycle import get_demand
from custodes.service.package import CATEGORY_FIELDS, open_package
from custodes.service.production import (
    download,
    get_production,
    produce,
    productions_of,
    register_recipient,
)
from custodes.service.review import approve, decide
from custodes.service.screening import screen_demand
from custodes.service.staff import register_staff
from custodes.store import open_store
from custodes.store.tables import metadata
from support import Clock

NOW = datetime(2020, 6, 5, 12, tzinfo=UTC)
PERIOD = TimeRange(datetime(2020, 3, 1, tzinfo=UTC), datetime(2020, 6, 1, tzinfo=UTC))
USER = FIXTURES.us_content_user
C = DataCategory


@dataclass
class World:
    services: Services
    clock: Clock
    identity: pyrage.x25519.Identity
    platform: ReferencePlatform
    path: Path


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack()


@pytest.fixture(scope="module")
def platform_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("platform") / "platform.db"
    build_reference_platform(path, accounts=120, region_accounts=10)
    return path


def open_world(url: str, platform_path: Path, pack: PolicyPack, clock: Clock) -> Services:
    store = open_store(url)
    return Services(store, Ledger(store), pack, ReferencePlatform(platform_path), clock=clock)


@pytest.fixture
def world(
    database_url: str, platform_file: Path, pack: PolicyPack, tmp_path: Path
) -> Iterator[World]:
    path = tmp_path / "platform.db"
    shutil.copy(platform_file, path)
    clock = Clock(NOW)
    services = open_world(database_url, path, pack, clock)
    register_staff(services, Staff("admin", frozenset({"admin"}), "IE"), by=None)
    for member in (
        Staff("intake", frozenset({"intake"}), "IE"),
        Staff("a1", frozenset({"approver"}), "IE"),
        Staff("a2", frozenset({"approver"}), "DE"),
        Staff("cust", frozenset({"data_custodian"}), "IE"),
        Staff("cust-cn", frozenset({"data_custodian"}), "CN"),
        Staff("support", frozenset({"support"}), "IE"),
    ):
        register_staff(services, member, by="admin")
    for authority in (
        Authority("us-fbi", "FBI San Francisco Field Office", AuthorityKind.POLICE, "US"),
        Authority("us-dea", "Drug Enforcement Administration", AuthorityKind.POLICE, "US"),
    ):
        register_authority(services, authority, by="admin")
    identity = pyrage.x25519.Identity.generate()
    register_recipient(services, "us-fbi", str(identity.to_public()), by="admin")
    assert isinstance(services.platform, ReferencePlatform)
    yield World(services, clock, identity, services.platform, path)
    services.platform.close()
    services.store.close()


def approved(world: World, kind: DemandKind, targets: tuple[Target, ...], **kw: Any) -> str:
    """Take a demand through intake, screening and dual control to approval."""
    instruments = {
        DemandKind.DISCLOSURE: InstrumentKind.SEARCH_WARRANT,
        DemandKind.PRESERVATION: InstrumentKind.PRESERVATION_REQUEST,
        DemandKind.RESTRICTION: InstrumentKind.COURT_ORDER,
    }
    doc = b"%PDF-1.7 signed court document " + new_demand_id().encode()
    instrument = LegalInstrument(
        instruments[kind], reference="2:20-mj-0042", document_sha256=hashlib.sha256(doc).hexdigest()
    )
    kw.setdefault("authority_id", "us-fbi")
    demand = Demand(
        id=new_demand_id(),
        kind=kind,
        instrument=instrument,
        targets=targets,
        received_at=world.clock(),
        offence=Offence("fraud"),
        **kw,
    )
    s = world.services
    receive_demand(s, demand, signature=SignatureStatus.VALID, document=doc)
    assert screen_demand(s, demand.id).state is DemandState.IN_REVIEW
    approve(s, demand.id, by="a1", reason="the warrant is in order")
    approve(s, demand.id, by="a2", reason="the warrant is in order")
    assert decide(s, demand.id, by="a1", reason="approved").state is DemandState.APPROVED
    return demand.id


def disclosure(world: World, **kw: Any) -> str:
    kw.setdefault("categories", (C.CONTENT, C.SUBSCRIBER_INFO, C.IP_SESSION_LOGS))
    kw.setdefault("time_range", PERIOD)
    return approved(world, DemandKind.DISCLOSURE, (USER,), **kw)


def kinds_since(services: Services, start: int) -> list[str]:
    entries = services.ledger.entries(start, services.ledger.size())
    return [parse_event(e).kind for e in entries]


def audit_findings(services: Services, as_of: datetime) -> list[tuple[str, str]]:
    replay = Replay(default_checks())
    for i, entry in enumerate(services.ledger.entries(0, services.ledger.size())):
        replay.feed(i, entry)
    return [(f.code, f.detail) for f in replay.finish(as_of)]


# -- productions ---------------------------------------------------------------------------


def test_production_holds_the_approved_data_sealed_to_the_authority(world: World) -> None:
    s = world.services
    demand_id = disclosure(world)
    start = s.ledger.size()
    made = produce(s, demand_id, by="cust")
    assert kinds_since(s, start) == [PRODUCTION_DELIVERED, DEMAND_EXECUTED]
    assert get_demand(s, demand_id).state is DemandState.EXECUTED
    event = parse_event(s.ledger.entry(made.event))
    assert event.facts["record_count"] == made.record_count > 5
    assert event.facts["categories"] == ("content", "ip_session_logs", "subscriber_info")
    before_download = s.ledger.size()
    sealed = download(s, made.id, authority_id="us-fbi")
    assert kinds_since(s, before_download) == [PRODUCTION_DOWNLOADED]  # the download is an event
    downloaded = parse_event(s.ledger.entry(before_download))
    assert downloaded.demand == demand_id
    check_opening(
        downloaded,
        "production_sha256",
        cast(Opening, openings_of(s, before_download)["production_sha256"]),
    )
    package = open_package(sealed, str(world.identity))
    # the manifest is the one the log commits to
    opening = openings_of(s, made.event)["production_sha256"]
    assert isinstance(opening, Opening)
    check_opening(event, "production_sha256", opening)
    assert opening.value == package.manifest_sha256 == made.manifest_sha256
    assert hashlib.sha256(sealed).hexdigest() == made.package_sha256
    for record in package.records():
        assert record.subject == USER
        at = record.fields.get(CATEGORY_FIELDS[record.category].time_field or "")
        if isinstance(at, str):
            assert PERIOD.start <= datetime.fromisoformat(at) < PERIOD.end
    assert {r.category for r in package.records()} <= {
        C.CONTENT,
        C.SUBSCRIBER_INFO,
        C.IP_SESSION_LOGS,
    }
    with pytest.raises(InputError):
        open_package(sealed, str(pyrage.x25519.Identity.generate()))
    with pytest.raises(ForbiddenError):
        download(s, made.id, authority_id="us-dea")
    assert productions_of(s, demand_id) == [get_production(s, made.id)]
    assert audit_findings(s, NOW) == []


def test_a_custodian_in_a_local_access_only_state_cannot_produce(world: World) -> None:
    s = world.services
    demand_id = disclosure(world)
    start = s.ledger.size()
    with pytest.raises(ForbiddenError) as err:
        produce(s, demand_id, by="cust-cn")
    assert "staff.local_access_only" in err.value.evidence["rules"]
    assert kinds_since(s, start) == [STAFF_ACCESS_DENIED]
    assert get_demand(s, demand_id).state is DemandState.APPROVED
    assert productions_of(s, demand_id) == []
    with pytest.raises(ForbiddenError):
        produce(s, demand_id, by="support")  # not a custodian at all


def test_a_production_needs_the_authority_registered_key_and_happens_once(
    world: World,
) -> None:
    s = world.services
    other = disclosure(world, authority_id="us-dea", categories=(C.SUBSCRIBER_INFO,))
    start = s.ledger.size()
    with pytest.raises(ConflictError, match="no registered age recipient"):
        produce(s, other, by="cust")
    assert s.ledger.size() == start
    demand_id = disclosure(world)
    produce(s, demand_id, by="cust")
    with pytest.raises(ConflictError):
        produce(s, demand_id, by="cust")
    with pytest.raises(ConflictError):
        restrict(s, demand_id, by="cust")  # a disclosure is not a restriction
    with pytest.raises(InputError):
        register_recipient(s, "us-fbi", "age1notakey", by="admin")
    with pytest.raises(ForbiddenError):
        register_recipient(s, "us-fbi", str(world.identity.to_public()), by="cust")


def test_a_production_the_demand_no_longer_allows_is_not_recorded(world: World) -> None:
    s = world.services
    demand_id = disclosure(world)

    class Withdrawing(ReferencePlatform):
        def read(self, *args: Any, **kw: Any) -> Any:
            withdraw_demand(s, demand_id, reason="the authority withdrew it", by="intake")
            return super().read(*args, **kw)

    racing = replace(s, platform=Withdrawing(world.path))
    with pytest.raises(ConflictError):
        produce(racing, demand_id, by="cust")
    assert productions_of(s, demand_id) == []
    assert get_demand(s, demand_id).state is DemandState.WITHDRAWN


# -- restrictions --------------------------------------------------------------------------


def _restricted_in(world: World, content_id: str) -> str:
    with sqlite3.connect(world.path) as db:
        row = db.execute("SELECT restricted_in FROM content WHERE id = ?", (content_id,)).fetchone()
    db.close()
    return str(row[0])


def test_a_geo_restriction_stays_in_its_territory_and_ends_on_time(world: World) -> None:
    s = world.services
    item = FIXTURES.us_content_items[0]
    restriction = Restriction(RestrictionAction.GEO_RESTRICT_CONTENT, ("US",), 30)
    demand_id = approved(world, DemandKind.RESTRICTION, (item,), restriction=restriction)
    start = s.ledger.size()
    [applied] = restrict(s, demand_id, by="cust")
    assert applied.territories == ("US",)
    assert applied.until == NOW + timedelta(days=30)
    assert _restricted_in(world, item.id) == "US"
    assert kinds_since(s, start) == [RESTRICTION_APPLIED, DEMAND_EXECUTED]
    event = parse_event(s.ledger.entry(start))
    assert event.facts["territories"] == ("US",) and event.facts["duration_days"] == 30
    world.clock.now = NOW + timedelta(days=29, hours=23)
    report = run_due(s)
    assert [k for k, _, _ in report.done] == ["notice"]  # the notice; the lift is not due
    assert _restricted_in(world, item.id) == "US"
    world.clock.now = NOW + timedelta(days=30)
    report = run_due(s)
    assert [(k, d) for k, d, _ in report.done] == [("restriction_lift", demand_id)]
    assert _restricted_in(world, item.id) == ""
    lifted = parse_event(s.ledger.entry(s.ledger.size() - 1))
    assert (lifted.kind, lifted.facts["restriction_action"]) == (
        RESTRICTION_LIFTED,
        "geo_restrict_content",
    )
    assert run_due(s).done == ()
    assert audit_findings(s, world.clock.now) == []


def test_an_indefinite_suspension_is_lifted_only_when_staff_lift_it(world: World) -> None:
    s = world.services
    account = FIXTURES.spam_account
    restriction = Restriction(RestrictionAction.SUSPEND_ACCOUNT, (), None)
    demand_id = approved(world, DemandKind.RESTRICTION, (account,), restriction=restriction)
    restrict(s, demand_id, by="cust")
    assert world.platform.status(account) == "suspended"
    world.clock.now = NOW + timedelta(days=400)
    assert [k for k, _, _ in run_due(s).done] == ["notice"]
    assert world.platform.status(account) == "suspended"
    with pytest.raises(ForbiddenError):
        lift_restrictions(s, demand_id, by="support", reason="set aside by the court")
    index = lift_restrictions(s, demand_id, by="cust", reason="set aside by the court")
    assert parse_event(s.ledger.entry(index)).kind == RESTRICTION_LIFTED
    assert world.platform.status(account) == "active"
    with pytest.raises(ConflictError):
        lift_restrictions(s, demand_id, by="cust", reason="again")


def test_a_restriction_whose_recording_fails_is_taken_back(world: World) -> None:
    s = world.services
    account = FIXTURES.spam_account
    restriction = Restriction(RestrictionAction.SUSPEND_ACCOUNT, (), 5)
    demand_id = approved(world, DemandKind.RESTRICTION, (account,), restriction=restriction)

    class Withdrawing(ReferencePlatform):
        def apply_restriction(self, *args: Any, **kw: Any) -> Any:
            applied = super().apply_restriction(*args, **kw)
            withdraw_demand(s, demand_id, reason="the authority withdrew it", by="intake")
            return applied

    racing = replace(s, platform=Withdrawing(world.path))
    with pytest.raises(ConflictError):
        restrict(racing, demand_id, by="cust")
    assert world.platform.status(account) == "active"
    assert RESTRICTION_APPLIED not in kinds_since(s, 0)


# -- preservation --------------------------------------------------------------------------


def _open_holds(world: World) -> int:
    with sqlite3.connect(world.path) as db:
        n = db.execute("SELECT count(*) FROM holds WHERE released_at IS NULL").fetchone()[0]
    db.close()
    return int(n)


def test_a_hold_lasts_sixty_days_extends_once_and_then_ends(world: World) -> None:
    s = world.services
    demand_id = approved(
        world, DemandKind.PRESERVATION, (USER,), categories=(C.CONTENT, C.IP_SESSION_LOGS)
    )
    start = s.ledger.size()
    [hold] = preserve(s, demand_id, by="cust")
    assert hold.until == NOW + timedelta(days=60)
    assert kinds_since(s, start) == [PRESERVATION_PLACED, DEMAND_EXECUTED]
    placed = parse_event(s.ledger.entry(start))
    assert placed.facts["due_at"] == "2020-08-04T12:00:00Z"
    world.clock.now = NOW + timedelta(days=50)
    extended = extend_preservation(s, demand_id, by="cust")
    assert parse_event(s.ledger.entry(extended)).facts["due_at"] == "2020-09-03T12:00:00Z"
    assert _open_holds(world) == 1
    with pytest.raises(ConflictError, match="once"):
        extend_preservation(s, demand_id, by="cust")
    world.clock.now = NOW + timedelta(days=61)
    assert run_due(s).done == ()
    assert _open_holds(world) == 1
    world.clock.now = NOW + timedelta(days=90)
    assert [(k, d) for k, d, _ in run_due(s).done] == [("hold_expiry", demand_id)]
    assert _open_holds(world) == 0
    kinds = kinds_since(s, start)
    assert kinds[-1] == PRESERVATION_RELEASED and PRESERVATION_EXTENDED in kinds
    assert audit_findings(s, world.clock.now) == []


def test_a_hold_is_released_early_or_turned_into_a_production(world: World) -> None:
    s = world.services
    kept = approved(world, DemandKind.PRESERVATION, (USER,), categories=(C.CONTENT,))
    preserve(s, kept, by="cust")
    with pytest.raises(ForbiddenError):
        release_preservation(s, kept, by="support", reason="no longer needed")
    # a later disclosure demand takes the held records
    demand_id = disclosure(world, categories=(C.CONTENT,))
    produce(s, demand_id, by="cust", preserved=kept)
    assert _open_holds(world) == 0
    released = parse_event(s.ledger.entry(s.ledger.size() - 1))
    assert (released.kind, released.demand) == (PRESERVATION_RELEASED, kept)
    with pytest.raises(ConflictError):
        release_preservation(s, kept, by="cust", reason="no longer needed")
    world.clock.now = NOW + timedelta(days=60)
    report = run_due(s)
    assert ("hold_expiry", kept) not in [(k, d) for k, d, _ in report.done]
    other = approved(
        world, DemandKind.PRESERVATION, (FIXTURES.us_person,), categories=(C.SUBSCRIBER_INFO,)
    )
    preserve(s, other, by="cust")
    assert _open_holds(world) == 1
    index = release_preservation(s, other, by="cust", reason="the authority no longer needs it")
    assert parse_event(s.ledger.entry(index)).kind == PRESERVATION_RELEASED
    assert _open_holds(world) == 0
    assert NOTICE_SENT in kinds_since(s, 0)


def test_a_demand_justifies_staff_access_only_within_its_approval_and_until_executed(
    world: World,
) -> None:
    s = world.services
    demand_id = disclosure(world, categories=(C.SUBSCRIBER_INFO,))
    j = Justification(JustificationKind.DEMAND, demand_id)
    cap = request_access(s, AccessRequest("cust", (USER,), (C.SUBSCRIBER_INFO,), j))
    AccessGateway(s).read(cap.token, staff_id="cust", subject=USER, categories=[C.SUBSCRIBER_INFO])
    for subjects, categories in (
        ((FIXTURES.us_person,), (C.SUBSCRIBER_INFO,)),
        ((USER,), (C.CONTENT,)),
    ):
        with pytest.raises(ForbiddenError) as err:
            request_access(s, AccessRequest("cust", subjects, categories, j))
        assert err.value.evidence["rules"] == ["staff.outside_demand"]
    with pytest.raises(ForbiddenError) as err:  # support may not use a demand as justification
        request_access(s, AccessRequest("support", (USER,), (C.SUBSCRIBER_INFO,), j))
    assert "staff.access.default_deny" in err.value.evidence["rules"]
    with pytest.raises(ForbiddenError) as err:  # nor may a custodian in a local-access state
        request_access(s, AccessRequest("cust-cn", (USER,), (C.SUBSCRIBER_INFO,), j))
    assert "staff.local_access_only" in err.value.evidence["rules"]
    produce(s, demand_id, by="cust")
    with pytest.raises(ForbiddenError) as err:
        request_access(s, AccessRequest("cust", (USER,), (C.SUBSCRIBER_INFO,), j))
    assert "staff.demand_not_approved" in err.value.evidence["rules"]


def test_the_migration_creates_exactly_the_tables_execution_uses(database_url: str) -> None:
    from custodes.store import access_tables

    store = open_store(database_url)
    try:
        with store.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        store.close()
    ours = {name for name in access_tables.__all__ if name != "utc"}
    assert ours == {t.name for t in metadata.sorted_tables if t.name in ours}
    assert [d for d in diffs if _table_of(d) in ours] == []


def _table_of(diff: Any) -> str | None:
    if isinstance(diff, list):
        return _table_of(diff[0])
    thing = diff[1] if diff[0] not in ("add_column", "remove_column") else None
    if diff[0].startswith("modify_") or thing is None:
        return str(diff[2])
    if isinstance(thing, sa.Table):
        return str(thing.name)
    table = getattr(thing, "table", None)
    return None if table is None else str(table.name)


def test_a_lift_that_fails_is_retried_at_the_next_run(world: World) -> None:
    s = world.services
    account = FIXTURES.spam_account
    restriction = Restriction(RestrictionAction.QUARANTINE_ACCOUNT, (), 7)
    demand_id = approved(world, DemandKind.RESTRICTION, (account,), restriction=restriction)
    restrict(s, demand_id, by="cust")
    run_due(s)  # the notice

    class Unreachable(ReferencePlatform):
        def lift_restriction(self, restriction_id: str, *, at: datetime) -> None:
            raise OSError("the platform's API timed out")

    world.clock.now = NOW + timedelta(days=7)
    down = replace(s, platform=Unreachable(world.path))
    report = run_due(down)
    assert (report.done, report.failed) == ((), (("restriction_lift", demand_id, "internal"),))
    assert world.platform.status(account) == "quarantined"
    assert [(k, d) for k, d, _ in run_due(s).done] == [("restriction_lift", demand_id)]
    assert world.platform.status(account) == "active"
