"""Notices: told by default, after the gag ends, exactly once, across restarts."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyrage
import pytest

from custodes.audit.checks import Replay, default_checks
from custodes.errors import ConflictError, InputError
from custodes.events import DEMAND_NOTIFIED, NOTICE_DEFERRED, NOTICE_SENT, parse_event
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
    Nondisclosure,
    Offence,
    SignatureStatus,
    Staff,
    Target,
    TargetKind,
    TimeRange,
    new_demand_id,
)
from custodes.platform import FIXTURES, ReferencePlatform, build_reference_platform
from custodes.policy import PolicyPack, load_pack
from custodes.service import Services
from custodes.service.authorities import register_authority
from custodes.service.demands import receive_demand
from custodes.service.execution import run_due
from custodes.service.lifecycle import get_demand
from custodes.service.notices import (
    CLAIM_LEASE,
    REDRESS,
    NoticeContent,
    claim_due,
    format_notice_payload,
    in_doubt,
    notice_text,
    parse_notice_payload,
    pending,
)
from custodes.service.production import produce, register_recipient
from custodes.service.review import approve, decide, sign_off
from custodes.service.screening import screen_demand
from custodes.service.staff import register_staff
from custodes.store import open_store
from support import Clock

NOW = datetime(2020, 6, 5, 12, tzinfo=UTC)
GAG_END = date(2020, 9, 1)
TARGETS = (FIXTURES.us_content_user, FIXTURES.emergency_subject)


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack()


@pytest.fixture(scope="module")
def platform_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("platform") / "platform.db"
    build_reference_platform(path, accounts=120, region_accounts=10)
    return path


class Deployment:
    """A process of custodes: opened, used, and closed (a restart is a new one)."""

    def __init__(self, url: str, platform: Path, pack: PolicyPack, clock: Clock) -> None:
        store = open_store(url)
        self.services = Services(store, Ledger(store), pack, ReferencePlatform(platform), clock)

    def close(self) -> None:
        assert isinstance(self.services.platform, ReferencePlatform)
        self.services.platform.close()
        self.services.store.close()


@pytest.fixture
def setup(
    database_url: str, platform_file: Path, pack: PolicyPack, tmp_path: Path
) -> Iterator[tuple[str, Path, Clock]]:
    path = tmp_path / "platform.db"
    shutil.copy(platform_file, path)
    clock = Clock(NOW)
    dep = Deployment(database_url, path, pack, clock)
    s = dep.services
    register_staff(s, Staff("admin", frozenset({"admin"}), "IE"), by=None)
    for member in (
        Staff("a1", frozenset({"approver"}), "IE"),
        Staff("a2", frozenset({"approver"}), "DE"),
        Staff("cust", frozenset({"data_custodian"}), "IE"),
        Staff("counsel", frozenset({"legal_counsel"}), "IE"),
    ):
        register_staff(s, member, by="admin")
    fbi = Authority("us-fbi", "FBI San Francisco Field Office", AuthorityKind.POLICE, "US")
    register_authority(s, fbi, by="admin")
    identity = pyrage.x25519.Identity.generate()
    register_recipient(s, "us-fbi", str(identity.to_public()), by="admin")
    dep.close()
    yield database_url, path, clock


def produced(dep: Deployment, gag: Nondisclosure | None) -> str:
    s = dep.services
    doc = b"%PDF-1.7 warrant " + new_demand_id().encode()
    demand = Demand(
        id=new_demand_id(),
        authority_id="us-fbi",
        kind=DemandKind.DISCLOSURE,
        instrument=LegalInstrument(
            InstrumentKind.SEARCH_WARRANT,
            reference="2:20-mj-7",
            document_sha256=hashlib.sha256(doc).hexdigest(),
        ),
        targets=TARGETS,
        received_at=s.clock(),
        categories=(DataCategory.SUBSCRIBER_INFO, DataCategory.IP_SESSION_LOGS),
        time_range=TimeRange(datetime(2020, 3, 1, tzinfo=UTC), datetime(2020, 6, 1, tzinfo=UTC)),
        offence=Offence("fraud"),
        nondisclosure=gag,
    )
    receive_demand(s, demand, signature=SignatureStatus.VALID, document=doc)
    for role in screen_demand(s, demand.id).roles_required:
        sign_off(s, demand.id, by="counsel", role=role, reason="reviewed")
    approve(s, demand.id, by="a1", reason="in order")
    approve(s, demand.id, by="a2", reason="in order")
    decide(s, demand.id, by="a1", reason="approved")
    produce(s, demand.id, by="cust")
    return demand.id


def notices_on_platform(path: Path, demand_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT account_id, body FROM notices WHERE reference = ? ORDER BY id",
            (f"{demand_id}/notice",),
        ).fetchall()
    db.close()
    return [(r[0], r[1]) for r in rows]


def events(s: Services, kind: str) -> list[int]:
    entries = s.ledger.entries(0, s.ledger.size())
    return [i for i, e in enumerate(entries) if parse_event(e).kind == kind]


def test_a_gagged_notice_goes_out_exactly_once_after_the_gag_across_restarts(
    setup: tuple[str, Path, Clock], pack: PolicyPack
) -> None:
    url, path, clock = setup
    dep = Deployment(url, path, pack, clock)
    demand_id = produced(dep, Nondisclosure(GAG_END))
    [deferred] = events(dep.services, NOTICE_DEFERRED)
    assert parse_event(dep.services.ledger.entry(deferred)).facts["gag_until"] == "2020-09-01"
    clock.now = datetime(2020, 8, 31, 23, 59, 59, tzinfo=UTC)
    assert run_due(dep.services).done == ()
    dep.close()  # the process stops; the schedule is only a table
    dep = Deployment(url, path, pack, clock)
    assert run_due(dep.services).done == ()
    assert notices_on_platform(path, demand_id) == []
    clock.now = datetime(2020, 9, 1, 0, 0, 0, tzinfo=UTC)
    report = run_due(dep.services)
    assert [(k, d) for k, d, _ in report.done] == [("notice", demand_id)]
    assert len(notices_on_platform(path, demand_id)) == len(TARGETS)
    assert run_due(dep.services).done == ()
    dep.close()
    clock.now = datetime(2020, 12, 1, tzinfo=UTC)
    dep = Deployment(url, path, pack, clock)
    assert run_due(dep.services).done == ()
    s = dep.services
    [sent] = events(s, NOTICE_SENT)
    assert parse_event(s.ledger.entry(sent)).facts["record_count"] == len(TARGETS)
    assert len(events(s, DEMAND_NOTIFIED)) == 1
    assert get_demand(s, demand_id).state is DemandState.NOTIFIED
    assert len(notices_on_platform(path, demand_id)) == len(TARGETS)
    replay = Replay(default_checks())
    for i, entry in enumerate(s.ledger.entries(0, s.ledger.size())):
        replay.feed(i, entry)
    assert list(replay.finish(clock.now)) == []
    dep.close()


def test_without_a_gag_users_are_told_what_was_asked_by_whom_and_what_was_done(
    setup: tuple[str, Path, Clock], pack: PolicyPack
) -> None:
    url, path, clock = setup
    dep = Deployment(url, path, pack, clock)
    demand_id = produced(dep, None)
    assert events(dep.services, NOTICE_DEFERRED) == []
    run_due(dep.services)
    told = notices_on_platform(path, demand_id)
    assert [account for account, _ in told] == [t.id for t in TARGETS]
    body = told[0][1]
    assert "FBI San Francisco Field Office (US)" in body
    assert "disclosure of ip session logs, subscriber info, 2020-03-01 to 2020-06-01" in body
    assert "records (ip session logs, subscriber info) were disclosed" in body
    assert "search warrant" in body and REDRESS in body and demand_id in body
    dep.close()


def test_two_processes_running_the_schedule_send_each_notice_once(
    setup: tuple[str, Path, Clock], pack: PolicyPack
) -> None:
    url, path, clock = setup
    first, second = Deployment(url, path, pack, clock), Deployment(url, path, pack, clock)
    demand_id = produced(first, Nondisclosure(GAG_END))
    clock.now = datetime(2020, 9, 2, tzinfo=UTC)
    barrier = threading.Barrier(2)

    def run(dep: Deployment) -> None:
        barrier.wait()
        run_due(dep.services)

    threads = [threading.Thread(target=run, args=(d,)) for d in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(notices_on_platform(path, demand_id)) == len(TARGETS)
    assert len(events(first.services, NOTICE_SENT)) == 1
    first.close()
    second.close()


def test_a_notice_claimed_by_a_process_that_died_is_never_sent_again(
    setup: tuple[str, Path, Clock], pack: PolicyPack
) -> None:
    url, path, clock = setup
    dep = Deployment(url, path, pack, clock)
    demand_id = produced(dep, Nondisclosure(GAG_END))
    clock.now = datetime(2020, 9, 1, 6, tzinfo=UTC)
    [claimed] = claim_due(dep.services, clock.now)  # ... and the process dies here
    assert claimed.demand_id == demand_id
    dep.close()
    dep = Deployment(url, path, pack, clock)
    assert run_due(dep.services).done == ()
    clock.now += CLAIM_LEASE
    report = run_due(dep.services)
    assert (report.done, report.in_doubt) == ((), (demand_id,))
    assert [a.demand_id for a in in_doubt(dep.services, clock.now)] == [demand_id]
    assert notices_on_platform(path, demand_id) == []
    assert [a.kind.value for a in pending(dep.services, demand_id)] == ["notice"]
    dep.close()


def test_an_undated_gag_stops_the_production(
    setup: tuple[str, Path, Clock], pack: PolicyPack
) -> None:
    url, path, clock = setup
    dep = Deployment(url, path, pack, clock)
    with pytest.raises(ConflictError, match="no end date"):
        produced(dep, Nondisclosure(None))
    assert events(dep.services, NOTICE_SENT) == []
    dep.close()


def test_notice_payload_round_trip_and_refusals() -> None:
    content = NoticeContent(
        "d_1",
        "Staatsanwaltschaft Berlin",
        "DE",
        "epoc",
        "disclosure of subscriber info",
        "1 records were disclosed",
        (Target(TargetKind.ACCOUNT, "u-1"), Target(TargetKind.MEETING, "m-1")),
    )
    assert parse_notice_payload(format_notice_payload(content)) == content
    assert "Legal basis: epoc." in notice_text(content)
    good = format_notice_payload(content)
    for bad in (
        "{",
        "[]",
        good.replace('"asked"', '"asks"'),
        good.replace('"meeting:m-1"', "7"),
        good.replace("meeting:m-1", "m-1"),
        "x" * 300_000,
    ):
        with pytest.raises(InputError):
            parse_notice_payload(bad)


def test_the_schedule_is_empty_after_everything_is_done(
    setup: tuple[str, Path, Clock], pack: PolicyPack
) -> None:
    url, path, clock = setup
    dep = Deployment(url, path, pack, clock)
    demand_id = produced(dep, None)
    assert [a.kind.value for a in pending(dep.services)] == ["notice"]
    run_due(dep.services)
    assert pending(dep.services) == []
    assert pending(dep.services, demand_id) == []
    clock.now += timedelta(days=1)
    assert run_due(dep.services).done == ()
    dep.close()
