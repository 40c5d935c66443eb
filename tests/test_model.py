"""The domain model: valid by construction, JSON round trips, lifecycle and clocks."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import InputError, NotFoundError, TooLargeError, TransitionError
from custodes.model import (
    TRANSITIONS,
    Authority,
    AuthorityKind,
    CallbackStatus,
    Channel,
    ChannelKind,
    ClockKind,
    DataCategory,
    Demand,
    DemandKind,
    DemandState,
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
    Staff,
    Standing,
    Subject,
    Target,
    TargetKind,
    TimeRange,
    VerificationKey,
    check_transition,
    follow_up_clock,
    format_authority,
    format_context,
    format_demand,
    format_finding,
    format_staff,
    format_subject,
    format_time,
    overdue,
    parse_authority,
    parse_context,
    parse_demand,
    parse_finding,
    parse_staff,
    parse_subject,
    parse_time,
    preservation_clock,
    read_json,
    response_clock,
    summarize,
)

T0 = datetime(2024, 6, 4, 12, 0, tzinfo=UTC)
HEX = "ab" * 32


def _demand(**over: object) -> Demand:
    fields: dict[str, object] = {
        "id": "d_test",
        "authority_id": "us-police",
        "kind": DemandKind.DISCLOSURE,
        "instrument": LegalInstrument(InstrumentKind.SEARCH_WARRANT, reference="W-1"),
        "targets": (Target(TargetKind.ACCOUNT, "u-1"),),
        "received_at": T0,
        "categories": (DataCategory.CONTENT,),
    }
    fields.update(over)
    return Demand(**fields)  # type: ignore[arg-type]


def _body(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "kind": "disclosure",
        "instrument": {"kind": "search_warrant"},
        "targets": [{"kind": "account", "id": "u-1"}],
        "categories": ["content"],
    }
    body.update(over)
    return body


def _parse(body: object) -> Demand:
    return parse_demand(body, id="d_test", authority_id="x", received_at=T0)


# -- construction -------------------------------------------------------------------------


def test_target_selector_is_representable_not_an_error() -> None:
    assert Target(TargetKind.SELECTOR, "every user from CN-GD").is_selector
    assert Target(TargetKind.ACCOUNT, "all free accounts").is_selector
    assert Target(TargetKind.ACCOUNT, "*").is_selector
    assert not Target(TargetKind.ACCOUNT, "alice@example.com").is_selector
    assert not Target(TargetKind.MEETING, "m-8213-4471").is_selector


def test_demand_rejects_repeated_target() -> None:
    t = Target(TargetKind.ACCOUNT, "u-1")
    with pytest.raises(InputError, match="named twice"):
        _demand(targets=(t, t))


def test_demand_shape_follows_kind() -> None:
    with pytest.raises(InputError, match="must say which restriction"):
        _demand(kind=DemandKind.RESTRICTION, categories=())
    with pytest.raises(InputError, match="takes no data categories"):
        _demand(
            kind=DemandKind.RESTRICTION,
            restriction=Restriction(RestrictionAction.END_MEETING),
        )
    with pytest.raises(InputError, match="must name data categories"):
        _demand(categories=())


def test_demand_items_name_what_is_sought() -> None:
    assert _demand().items == ("content",)
    assert _demand(kind=DemandKind.PRESERVATION).items == ("preservation",)
    r = _demand(
        kind=DemandKind.RESTRICTION,
        categories=(),
        restriction=Restriction(RestrictionAction.END_MEETING, ("CN",)),
    )
    assert r.items == ("end_meeting",)


def test_demand_target_index() -> None:
    a, b = Target(TargetKind.ACCOUNT, "a"), Target(TargetKind.MEETING, "b")
    d = _demand(targets=(a, b))
    assert d.target_index(b) == 1
    with pytest.raises(NotFoundError):
        d.target_index(Target(TargetKind.ACCOUNT, "zz"))


def test_time_range_days_round_up_and_order() -> None:
    assert TimeRange(T0, T0 + timedelta(days=2, seconds=1)).days == 3
    with pytest.raises(InputError, match="after"):
        TimeRange(T0, T0)
    with pytest.raises(InputError, match="time zone"):
        TimeRange(datetime(2024, 1, 1), datetime(2024, 1, 2))


def test_authority_validates_jurisdiction_and_key_length() -> None:
    with pytest.raises(InputError, match="ISO 3166"):
        Authority("a", "A", AuthorityKind.POLICE, "usa")
    with pytest.raises(InputError, match="32 bytes"):
        VerificationKey("k", b"short")
    a = Authority("a", "A", AuthorityKind.COURT, "US-CA", Standing.SUSPENDED)
    assert a.country == "US" and not a.is_active


# -- JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body(kind="seize"), "kind: 'seize' is not one of disclosure"),
        (_body(targets="u-1"), "targets: expected a list"),
        (_body(targets=[{"kind": "account", "id": 7}]), r"targets\[0\].id: expected a string"),
        (_body(targets=[{"kind": "server", "id": "x"}]), r"targets\[0\].kind: 'server'"),
        (_body(categories=["dna"]), r"categories\[0\]: 'dna' is not one of"),
        (_body(nondisclousre={}), "nondisclousre: unknown field"),
        (_body(instrument={"kind": "decree"}), "instrument.kind: 'decree'"),
        (_body(instrument={"kind": "subpoena", "document_sha256": "xyz"}), "SHA-256"),
        (_body(time_range={"start": "2024-01-01", "end": "x"}), "time_range.start"),
        (_body(claims_tos_violation="yes"), "claims_tos_violation: expected true or false"),
        (_body(offence={"category": "Fraud!"}), "offence.category 'Fraud!'"),
        ({"kind": "disclosure"}, "instrument: required"),
        ([1, 2], "body: expected an object"),
    ],
)
def test_parse_demand_errors_name_the_field(body: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _parse(body)


def test_read_json_checks_size_first_and_refuses_duplicates() -> None:
    with pytest.raises(TooLargeError):
        read_json(b" " * 11, limit=10)
    with pytest.raises(InputError, match="duplicate key 'kind'"):
        read_json(b'{"kind": 1, "kind": 2}', limit=100)
    with pytest.raises(InputError, match="NaN"):
        read_json(b'{"n": NaN}', limit=100)
    with pytest.raises(InputError, match="not valid JSON"):
        read_json(b"\xff", limit=100)


def test_parse_demand_accepts_a_spreadsheet_of_targets() -> None:
    targets = [{"kind": "account", "id": f"u-{i:05d}"} for i in range(23_000)]
    raw = json.dumps(_body(targets=targets, categories=["subscriber_info"])).encode()
    d = _parse(read_json(raw, limit=4 * 1024 * 1024))
    assert len(d.targets) == 23_000


def test_parse_time_is_strict_and_utc() -> None:
    assert parse_time("2024-06-04T14:00:00+02:00") == T0
    assert format_time(T0) == "2024-06-04T12:00:00Z"
    for bad in ("2024-06-04", "2024-06-04T12:00:00", "yesterday", 5):
        with pytest.raises(InputError):
            parse_time(bad)


_ids = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
_targets = st.builds(Target, st.sampled_from(TargetKind), _ids)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_sha = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
_text = st.text(max_size=20)


@st.composite
def _demands(draw: st.DrawFn) -> Demand:
    kind = draw(st.sampled_from(DemandKind))
    restriction = None
    categories: tuple[DataCategory, ...] = ()
    if kind is DemandKind.RESTRICTION:
        codes = draw(st.lists(st.sampled_from(["CN", "DE", "US", "US-CA"]), unique=True))
        restriction = Restriction(
            draw(st.sampled_from(RestrictionAction)),
            tuple(sorted(codes)),
            draw(st.none() | st.integers(1, 365)),
        )
    else:
        categories = tuple(sorted(draw(st.sets(st.sampled_from(DataCategory), min_size=1))))
    start = draw(_times)
    return Demand(
        id=draw(st.from_regex(r"d_[a-z0-9]{1,20}", fullmatch=True)),
        authority_id=draw(st.none() | _ids),
        kind=kind,
        instrument=LegalInstrument(
            draw(st.sampled_from(InstrumentKind)),
            draw(_text),
            draw(_text),
            draw(st.none() | st.dates()),
            tuple(draw(st.lists(_text, max_size=3))),
            draw(st.none() | _sha),
        ),
        targets=tuple(draw(st.lists(_targets, unique=True, max_size=5))),
        received_at=draw(_times),
        categories=categories,
        time_range=draw(st.none() | st.just(TimeRange(start, start + timedelta(days=3)))),
        offence=draw(st.none() | st.builds(Offence, st.sampled_from(["fraud", "assembly"]))),
        restriction=restriction,
        deadline=draw(st.none() | _times),
        nondisclosure=draw(st.none() | st.builds(Nondisclosure, st.none() | st.dates())),
        evidence=tuple(draw(st.lists(st.builds(EvidenceRef, _sha, _text), max_size=2))),
        claims_tos_violation=draw(st.booleans()),
    )


@settings(max_examples=60)
@given(_demands())
def test_demand_json_round_trip(d: Demand) -> None:
    raw = json.dumps(format_demand(d)).encode()
    back = parse_demand(
        read_json(raw, limit=1 << 20),
        id=d.id,
        authority_id=d.authority_id,
        received_at=d.received_at,
    )
    assert back == d


def test_authority_staff_subject_context_finding_round_trip() -> None:
    a = Authority(
        "gb-met",
        "Metropolitan Police Service",
        AuthorityKind.POLICE,
        "GB",
        Standing.ACTIVE,
        (VerificationKey("k1", bytes(range(32))),),
        (Channel(ChannelKind.PHONE, "+44 20 7946 0000"),),
    )
    assert parse_authority(format_authority(a)) == a
    s = Staff("s-1", frozenset({"approver", "reviewer"}), "IE")
    assert parse_staff(format_staff(s)) == s
    subj = Subject(
        Target(TargetKind.MEETING, "m-1"),
        "US-NY",
        "US",
        "business",
        frozenset({DataCategory.PARTICIPANT_LIST}),
        frozenset({"US", "HK"}),
    )
    assert parse_subject(format_subject(subj)) == subj
    c = ScreeningContext(
        T0, SignatureStatus.VALID, CallbackStatus.REGISTERED, 4, (EvidenceStatus.MISMATCH,)
    )
    assert parse_context(format_context(c)) == c
    f = Finding("gag.no_end_date", Outcome.ESCALATE, "r", "m", None, None, "legal_counsel")
    assert parse_finding(format_finding(f)) == f
    g = Finding("jurisdiction.treaty_route", Outcome.PASS, "r", "", subj.target, route="us_mlat")
    assert parse_finding(format_finding(g)) == g


def test_authority_key_must_be_base64() -> None:
    raw = format_authority(Authority("a", "A", AuthorityKind.POLICE, "US"))
    raw["keys"] = [{"id": "k", "ed25519": "not base64!"}]
    with pytest.raises(InputError, match=r"keys\[0\].ed25519: not base64"):
        parse_authority(raw)


# -- screening verdict --------------------------------------------------------------------


def test_summarize_refuses_when_nothing_is_left() -> None:
    a, b = Target(TargetKind.ACCOUNT, "a"), Target(TargetKind.ACCOUNT, "b")
    d = _demand(targets=(a, b))
    refuse = [
        Finding("jurisdiction.subject_outside", Outcome.REFUSE, "", "", target=t) for t in (a, b)
    ]
    assert summarize(d, refuse).outcome is Outcome.REFUSE
    item = Finding("instrument.insufficient", Outcome.REFUSE, "", "", item="content")
    assert summarize(d, [item]).outcome is Outcome.REFUSE
    whole = Finding("requester.unsigned", Outcome.REFUSE, "", "")
    assert summarize(d, [whole]).rules == ("requester.unsigned",)


def test_summarize_escalation_names_roles() -> None:
    d = _demand()
    v = summarize(
        d,
        [
            Finding("expression.protected", Outcome.ESCALATE, "", "", role="human_rights"),
            Finding("jurisdiction.domestic", Outcome.PASS, "", ""),
        ],
    )
    assert (v.outcome, v.roles, v.narrowed) == (Outcome.ESCALATE, ("human_rights",), False)


# -- lifecycle ----------------------------------------------------------------------------


def test_every_transition_outside_the_table_raises() -> None:
    for current in DemandState:
        for new in DemandState:
            if new in TRANSITIONS[current]:
                check_transition(current, new)
            else:
                with pytest.raises(TransitionError) as exc:
                    check_transition(current, new)
                assert exc.value.evidence["current"] == current.value


def test_lifecycle_reaches_closed_from_every_state() -> None:
    for start in DemandState:
        seen, todo = {start}, [start]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert DemandState.CLOSED in seen or start is DemandState.CLOSED


def test_no_execution_without_approval_state() -> None:
    before_execute = {s for s, nxt in TRANSITIONS.items() if DemandState.EXECUTED in nxt}
    assert before_execute == {DemandState.APPROVED, DemandState.PARTLY_APPROVED}


# -- clocks -------------------------------------------------------------------------------


def test_response_clock_per_instrument() -> None:
    epoc = _demand(instrument=LegalInstrument(InstrumentKind.EPOC))
    assert response_clock(epoc).due_at == T0 + timedelta(days=10)
    emergency = _demand(
        kind=DemandKind.EMERGENCY_DISCLOSURE,
        instrument=LegalInstrument(InstrumentKind.EPOC),
    )
    assert response_clock(emergency).due_at == T0 + timedelta(hours=8)
    rushed = _demand(deadline=T0 + timedelta(minutes=1))
    assert response_clock(rushed).due_at == T0 + timedelta(days=14)


def test_preservation_clock_and_extension() -> None:
    assert preservation_clock("d", T0).due_at == T0 + timedelta(days=60)
    assert preservation_clock("d", T0, extended=True).due_at == T0 + timedelta(days=90)


def test_overdue_detection() -> None:
    follow = follow_up_clock("d_a", T0)
    keep = preservation_clock("d_b", T0)
    late = T0 + timedelta(hours=49)
    assert overdue([keep, follow], late) == (follow,)
    assert overdue([follow], late, {follow: T0 + timedelta(hours=47)}) == ()
    assert overdue([follow], late, {follow: T0 + timedelta(hours=48, seconds=1)}) == (follow,)
    assert follow.kind is ClockKind.EMERGENCY_FOLLOW_UP


def test_nondisclosure_without_end_date_is_representable() -> None:
    d = _parse(_body(nondisclosure={"until": None}))
    assert d.nondisclosure == Nondisclosure(None)
    d = _parse(_body(nondisclosure={"until": "2025-01-31"}))
    assert d.nondisclosure == Nondisclosure(date(2025, 1, 31))


def test_every_state_is_documented() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "concepts.md"
    text = docs.read_text(encoding="utf-8")
    assert [s.value for s in DemandState if f"`{s.value}`" not in text] == []
