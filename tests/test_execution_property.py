"""A property over random demands and random approvals, through the whole service: a
production never holds a subject, category, field or time outside what was approved."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyrage
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from custodes.events import Opening, parse_event
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
    SignatureStatus,
    Staff,
    TimeRange,
    new_demand_id,
)
from custodes.platform import FIXTURES, ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services, openings_of
from custodes.service.authorities import register_authority
from custodes.service.demands import receive_demand
from custodes.service.package import CATEGORY_FIELDS, open_package
from custodes.service.production import download, produce, register_recipient
from custodes.service.review import approve, decide, narrow, sign_off
from custodes.service.scope import approved_scope
from custodes.service.screening import screen_demand
from custodes.service.staff import register_staff
from custodes.store import open_store

POOL = (
    FIXTURES.us_content_user,
    FIXTURES.us_person,
    FIXTURES.emergency_subject,
    FIXTURES.spam_account,
    FIXTURES.tiananmen_hosts[0],
    FIXTURES.us_content_items[0],
    FIXTURES.tiananmen_meetings[1],
)
SPECIALISTS = {"human_rights_reviewer": "hr", "legal_counsel": "counsel", "trust_safety": "ts"}
EPOCH = datetime(2020, 6, 5, tzinfo=UTC)


@dataclass
class World:
    services: Services
    identity: pyrage.x25519.Identity


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    path = tmp_path / "platform.db"
    build_reference_platform(path, accounts=120, region_accounts=10)
    store = open_store(database_url)
    with ReferencePlatform(path) as platform:
        s = Services(store, Ledger(store), load_pack(), platform, clock=lambda: EPOCH)
        register_staff(s, Staff("admin", frozenset({"admin"}), "IE"), by=None)
        for ident, role in [("a1", "approver"), ("a2", "approver"), ("cust", "data_custodian")]:
            register_staff(s, Staff(ident, frozenset({role}), "IE"), by="admin")
        for role, ident in SPECIALISTS.items():
            register_staff(s, Staff(ident, frozenset({role}), "IE"), by="admin")
        fbi = Authority("us-fbi", "FBI San Francisco Field Office", AuthorityKind.POLICE, "US")
        register_authority(s, fbi, by="admin")
        identity = pyrage.x25519.Identity.generate()
        register_recipient(s, "us-fbi", str(identity.to_public()), by="admin")
        yield World(s, identity)
    store.close()


@st.composite
def demands(draw: st.DrawFn) -> Demand:
    """A US search warrant for some US subjects, categories and period; its document is
    attached at intake (the test keeps the same bytes)."""
    targets = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True))
    categories = draw(st.lists(st.sampled_from(list(DataCategory)), min_size=1, unique=True))
    start = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=draw(st.integers(0, 150)))
    period = TimeRange(start, start + timedelta(days=draw(st.integers(1, 90))))
    demand_id = new_demand_id()
    return Demand(
        id=demand_id,
        authority_id="us-fbi",
        kind=DemandKind.DISCLOSURE,
        instrument=LegalInstrument(
            InstrumentKind.SEARCH_WARRANT,
            reference="2:20-mj-1",
            document_sha256=hashlib.sha256(_document(demand_id)).hexdigest(),
        ),
        targets=tuple(targets),
        received_at=EPOCH,
        categories=tuple(categories),
        time_range=period,
        offence=Offence("fraud"),
    )


def _document(demand_id: str) -> bytes:
    return b"%PDF-1.7 warrant " + demand_id.encode()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(demand=demands(), data=st.data())
def test_a_production_never_holds_anything_the_approval_left_out(
    world: World, demand: Demand, data: st.DataObject
) -> None:
    s = world.services
    # what review will drop, drawn before anything depends on the database's state
    drop_target = data.draw(st.lists(st.booleans(), min_size=4, max_size=4))
    drop_category = data.draw(st.lists(st.booleans(), min_size=6, max_size=6))
    shorten = data.draw(st.booleans())
    receive_demand(s, demand, signature=SignatureStatus.VALID, document=_document(demand.id))
    screened = screen_demand(s, demand.id)
    assume(screened.state is DemandState.IN_REVIEW)
    for role in screened.roles_required:
        sign_off(s, demand.id, by=SPECIALISTS[role], role=role, reason="reviewed")
    approve(s, demand.id, by="a1", reason="in order")
    approve(s, demand.id, by="a2", reason="in order")
    under_review = screened.scope
    assert under_review is not None
    drop_targets = [t for t, drop in zip(under_review.targets, drop_target, strict=False) if drop]
    drop_categories = [
        c for c, drop in zip(under_review.categories, drop_category, strict=False) if drop
    ]
    period = under_review.time_range
    assert period is not None
    shorter = None
    if shorten and period.end - period.start > timedelta(days=2):
        shorter = TimeRange(period.start + timedelta(days=1), period.end - timedelta(days=1))
    keeps = len(drop_targets) < len(under_review.targets) and len(drop_categories) < len(
        under_review.categories
    )
    narrowed = keeps and bool(drop_targets or drop_categories or shorter)
    event("approved in part" if narrowed else "approved whole")
    if narrowed:
        narrow(
            s,
            demand.id,
            by="a1",
            reason="narrower",
            drop_targets=drop_targets,
            drop_categories=drop_categories,
            time_range=shorter,
        )
    else:
        decide(s, demand.id, by="a1", reason="approved")
    scope = approved_scope(s, demand.id)
    made = produce(s, demand.id, by="cust")
    package = open_package(download(s, made.id, authority_id="us-fbi"), str(world.identity))
    event("records produced" if package.record_count else "nothing to produce")
    assert scope.time_range is not None
    for record in package.records():
        assert record.subject in scope.targets and record.subject in demand.targets
        assert record.category in scope.categories and record.category in demand.categories
        schema = CATEGORY_FIELDS[record.category]
        assert set(record.fields) == set(schema.fields)
        if schema.time_field is not None:
            at = datetime.fromisoformat(str(record.fields[schema.time_field]))
            assert scope.time_range.start <= at < scope.time_range.end
    assert package.manifest["scope"]["subjects"] == [str(t) for t in scope.targets]
    logged = openings_of(s, made.event)["production_sha256"]
    assert isinstance(logged, Opening) and logged.value == package.manifest_sha256
    delivered = parse_event(s.ledger.entry(made.event))
    assert delivered.facts["record_count"] == package.record_count
