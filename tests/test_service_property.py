"""No sequence of service calls executes a demand without the approvals policy required.

Hypothesis throws random sequences of review calls (approvals by anyone, sign-offs in any
role, decisions, narrowing, refusals, challenges, withdrawals, execution) at four demands in
review: a US warrant (two approvers), an EPOC typed in by an intake employee who is also an
approver and reaching a subscriber in France (dual control, a human-rights sign-off, no
approver located in Germany), an emergency (one approver after the call-back) and a subpoena
with an undated gag (a legal-counsel sign-off). Most calls are refused; whatever got through,
every demand that is approved or executed must hold the approvals policy required, and the
log must pass the auditor's approval, self-approval and jurisdiction checks.

Runs on SQLite: each example starts from a copy of one prepared database.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from custodes.audit.checks import Replay, default_checks
from custodes.cli.demo import SFPD_LINE, STAFF, register_world
from custodes.errors import CustodesError
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
)
from custodes.platform import EPOCH, FIXTURES, ReferencePlatform, build_reference_platform
from custodes.policy import Approval, PolicyPack, authorize, load_pack
from custodes.service import Services, openings_of
from custodes.service.authorities import get_authority
from custodes.service.demands import (
    close_demand,
    get_demand,
    receive_demand,
    record_callback,
    withdraw_demand,
)
from custodes.service.review import (
    APPROVER,
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
from custodes.service.scope import mark_executed
from custodes.service.screening import screen_demand
from custodes.service.staff import get_staff
from custodes.store import open_store

STAFF_IDS = [s.id for s in STAFF]
ROLES = ["human_rights_reviewer", "legal_counsel", "trust_safety", APPROVER]
DEMANDS = ["d_prop_warrant", "d_prop_epoc", "d_prop_emergency", "d_prop_gag"]
SUSPECT = frozenset(
    {
        "unscreened_effect",
        "effect_after_refusal",
        "unapproved_effect",
        "missing_approvals",
        "missing_role",
        "emergency_without_callback",
        "pack_mismatch",
        "self_approval",
        "duplicate_approver",
        "foreign_effect",
    }
)


def _demands(fr: Target) -> list[tuple[Demand, str | None]]:
    month = TimeRange(EPOCH - timedelta(days=30), EPOCH)
    subscriber = (DataCategory.SUBSCRIBER_INFO,)
    doc = "ab" * 32
    return [
        (Demand(DEMANDS[0], "us-ndcal", DemandKind.DISCLOSURE,
                LegalInstrument(InstrumentKind.SEARCH_WARRANT, document_sha256=doc),
                (FIXTURES.us_content_user,), EPOCH, (DataCategory.CONTENT,),
                time_range=month, offence=Offence("fraud")), None),
        (Demand(DEMANDS[1], "de-sta-berlin", DemandKind.DISCLOSURE,
                LegalInstrument(InstrumentKind.EPOC, document_sha256=doc), (fr,), EPOCH,
                subscriber, offence=Offence("journalism")), "s-ana"),
        (Demand(DEMANDS[2], "us-ca-sfpd", DemandKind.EMERGENCY_DISCLOSURE,
                LegalInstrument(InstrumentKind.EMERGENCY_REQUEST, document_sha256=doc),
                (FIXTURES.emergency_subject,), EPOCH, subscriber,
                offence=Offence("threat_to_life")), None),
        (Demand(DEMANDS[3], "us-ndcal", DemandKind.DISCLOSURE,
                LegalInstrument(InstrumentKind.SUBPOENA, document_sha256=doc),
                (FIXTURES.us_person,), EPOCH, subscriber, offence=Offence("fraud"),
                nondisclosure=Nondisclosure(None)), None),
    ]  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    platform_db: Path
    template: Path
    pack: PolicyPack


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    """A database with the demo world and the four demands in review."""
    root = tmp_path_factory.mktemp("property")
    platform_db = root / "platform.db"
    build_reference_platform(platform_db, accounts=300, region_accounts=100)
    with sqlite3.connect(platform_db) as db:
        fr = db.execute(
            "SELECT id FROM accounts WHERE jurisdiction = 'FR' AND data_region = 'IE' "
            "ORDER BY id LIMIT 1"
        ).fetchone()[0]
    pack = load_pack()
    template = root / "template.db"
    store = open_store(f"sqlite:///{template}")
    with ReferencePlatform(platform_db) as platform:
        s = Services(store, Ledger(store), pack, platform, clock=lambda: EPOCH)
        register_world(s)
        for demand, intake in _demands(Target(TargetKind.ACCOUNT, fr)):
            signature = SignatureStatus.VALID
            receive_demand(s, demand, signature=signature, intake=intake)
            if demand.kind is DemandKind.EMERGENCY_DISCLOSURE:
                record_callback(s, demand.id, SFPD_LINE, by="s-intake-dub")
            assert screen_demand(s, demand.id).state is DemandState.IN_REVIEW
    store.close()
    yield Prepared(platform_db, template, pack)


Call = Callable[[Services, str, str, str], object]


def _execute(s: Services, demand_id: str, by: str, _role: str) -> None:
    def work(conn: Connection) -> None:
        mark_executed(conn, s, demand_id, by=by)

    s.write(work)


def _narrow(s: Services, demand_id: str, by: str, _role: str) -> object:
    record = get_demand(s, demand_id)
    period = record.demand.time_range
    if period is None:
        return narrow(s, demand_id, by=by, reason="narrower", drop_targets=record.demand.targets)
    half = TimeRange(period.start + (period.end - period.start) / 2, period.end)
    return narrow(s, demand_id, by=by, reason="narrower", time_range=half)


CALLS: dict[str, Call] = {
    "approve": lambda s, d, by, _: approve(s, d, by=by, reason="approve"),
    "sign_off": lambda s, d, by, role: sign_off(s, d, by=by, role=role, reason="sign off"),
    "decide": lambda s, d, by, _: decide(s, d, by=by, reason="decide"),
    "narrow": _narrow,
    "refuse": lambda s, d, by, _: refuse(s, d, by=by, reason="refuse"),
    "clarify": lambda s, d, by, _: request_clarification(s, d, by=by, reason="clarify"),
    "challenge": lambda s, d, by, _: challenge(s, d, by=by, grounds="challenge"),
    "resume": lambda s, d, by, _: resume_review(s, d, by=by, reason="resume"),
    "withdraw": lambda s, d, by, _: withdraw_demand(s, d, by=by, reason="withdrawn"),
    "close": lambda s, d, by, _: close_demand(s, d, by=by, reason="close"),
    "execute": _execute,
}
# Approvals, decisions and the staff who can give them come up more often, so that sequences
# get somewhere; everyone else still tries everything.
WEIGHTED_CALLS = [
    *["approve"] * 20,
    *["decide"] * 16,
    *["execute"] * 12,
    *["sign_off"] * 8,
    *["narrow"] * 2,
    *CALLS,
]
WEIGHTED_STAFF = [*["s-appr-dub", "s-appr-sjc", "s-appr-ber", "s-ana"] * 6,
                  *["s-hr-gva", "s-counsel-dub", "s-cust-dub"] * 2, *STAFF_IDS]  # fmt: skip
Step = tuple[str, str, str, str]
EXECUTORS = ["s-cust-dub"] * 3 + STAFF_IDS
SPECIALISTS = {"s-hr-gva": "human_rights_reviewer", "s-counsel-dub": "legal_counsel"}


# Approvals that policy allows, per demand: a script may start with some of them, in any
# order, so that the random calls after them reach decisions and executions more often.
ALLOWED: dict[str, list[tuple[str, str, str]]] = {
    DEMANDS[0]: [("approve", "s-appr-dub", ""), ("approve", "s-appr-sjc", "")],
    DEMANDS[1]: [
        ("sign_off", "s-hr-gva", "human_rights_reviewer"),
        ("approve", "s-appr-dub", ""),
        ("approve", "s-appr-sjc", ""),
    ],
    DEMANDS[2]: [("approve", "s-appr-sjc", "")],
    DEMANDS[3]: [
        ("sign_off", "s-counsel-dub", "legal_counsel"),
        ("approve", "s-appr-dub", ""),
        ("approve", "s-appr-ber", ""),
    ],
}


@st.composite
def scripts(draw: st.DrawFn) -> list[Step]:
    """Calls mostly about one demand (so that one gets far), some about the others; perhaps
    after some of the approvals policy allows for it."""
    focus = draw(st.sampled_from(DEMANDS))
    demands = [*[focus] * 6, *DEMANDS]
    allowed = [
        (call, focus, who, role) for call, who, role in draw(st.permutations(ALLOWED[focus]))
    ]
    steps = allowed[: draw(st.sampled_from([len(allowed), len(allowed) - 1, 0]))]
    for _ in range(draw(st.integers(min_value=1, max_value=30))):
        call, demand = draw(st.sampled_from(WEIGHTED_CALLS)), draw(st.sampled_from(demands))
        staff = draw(st.sampled_from(EXECUTORS if call == "execute" else WEIGHTED_STAFF))
        role = SPECIALISTS.get(staff) or draw(st.sampled_from(ROLES))  # others try any role
        steps.append((call, demand, staff, role))
    return steps


class Clock:
    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def _check_dual_control(s: Services, demand_id: str) -> None:
    """An approved or executed demand holds every approval policy required, from people
    the pack's approver rules allow."""
    record = get_demand(s, demand_id)
    review = review_status(s, demand_id)
    assert len(set(review.approvers)) >= record.approvals_needed
    assert review.missing_roles == ()
    assert record.intake_principal not in review.everyone
    for role, who in review.sign_offs.items():
        assert role in get_staff(s, who).roles
    assert record.screening is not None and record.scope is not None
    authority = get_authority(s, record.demand.authority_id or "")
    reach: set[str] = set()
    for target in record.scope.targets:
        subject = record.screening.subjects[target]
        reach |= {subject.jurisdiction, *subject.affected}
    for who in review.approvers:
        others = frozenset(review.everyone - {who})
        approval = Approval(
            authority.jurisdiction, frozenset(reach), record.intake_principal, others
        )
        assert authorize(s.pack, get_staff(s, who), "demand.approve", approval=approval).allowed


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=scripts())
def test_no_sequence_of_calls_executes_without_the_required_approvals(
    prepared: Prepared, steps: list[Step]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "custodes.db"
        shutil.copyfile(prepared.template, db)
        store = open_store(f"sqlite:///{db}", migrate_schema=False)
        try:
            with ReferencePlatform(prepared.platform_db) as platform:
                s = Services(store, Ledger(store), prepared.pack, platform, clock=Clock())
                _run(s, steps)
        finally:
            store.close()


def _run(s: Services, steps: list[Step]) -> None:
    for name, demand_id, by, role in steps:
        with suppress(CustodesError):  # refused: the point is what got through
            CALLS[name](s, demand_id, by, role)
    for demand_id in DEMANDS:
        record = get_demand(s, demand_id)
        executed, state = record.executed_at is not None, record.state
        event(f"{demand_id.removeprefix('d_prop_')} ended {state.value}")
        if executed or state in (DemandState.APPROVED, DemandState.PARTLY_APPROVED):
            _check_dual_control(s, demand_id)
    size = s.ledger.size()
    replay = Replay(default_checks({i: openings_of(s, i) for i in range(size)}))
    for i, entry in enumerate(s.ledger.entries(0, size)):
        replay.feed(i, entry)
    findings = [f for f in replay.finish(EPOCH + timedelta(hours=1)) if f.code in SUSPECT]
    assert findings == []
