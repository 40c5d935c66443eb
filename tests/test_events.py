"""Event leaves: canonical encoding, strict parsing, commitments, and no personal data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import EntryTooLargeError, InputError, TooLargeError
from custodes.events import (
    DEMAND_RECEIVED,
    DEMAND_SCREENED,
    FACTS,
    KINDS,
    MAX_LEAF_BYTES,
    STAFF_ACCESS_GRANTED,
    Event,
    ListOpening,
    Opening,
    check_opening,
    encode_event,
    format_event,
    format_openings,
    list_opening,
    open_commitment,
    parse_event,
    parse_openings,
)
from custodes.events.canonical import canonical

T0 = datetime(2024, 6, 4, 12, 0, tzinfo=UTC)
PACK = "5e" * 32

SAMPLE: Mapping[str, Any] = {
    "approvals": 2,
    "authority_jurisdiction": "CN",
    "authority_kind": "intelligence",
    "callback": "registered",
    "categories": ["ip_session_logs", "subscriber_info"],
    "channel_kind": "phone",
    "clock": "emergency_follow_up",
    "demand_kind": "disclosure",
    "dropped_targets": 3,
    "due_at": "2024-06-06T12:00:00Z",
    "duration_days": 30,
    "error_code": "bad_signature",
    "findings": [
        {"rule": "jurisdiction.subject_outside", "outcome": "refuse", "target": 0},
        {"rule": "instrument.insufficient", "outcome": "refuse", "item": "content"},
    ],
    "gag_until": "2025-01-31",
    "instrument_kind": "administrative_request",
    "justification": "demand",
    "nondisclosure": "undated",
    "outcome": "refuse",
    "pack": PACK,
    "record_count": 12,
    "restriction_action": "end_meeting",
    "role": "approver",
    "roles": ["human_rights_reviewer"],
    "route": "us_uk_cloud_act",
    "rules": ["scope.selector", "scope.target_cap"],
    "signature": "valid",
    "state_involved": True,
    "subject_jurisdictions": ["CN", "HK", "US"],
    "target_count": 23000,
    "territories": ["CN"],
    "volume": 41,
}


def _full(kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = KINDS[kind]
    facts = {k: SAMPLE[k] for k in spec.required | spec.optional}
    private: dict[str, Any] = {k: f"private {k} value" for k in spec.private}
    private |= {k: [f"{k} element {i}" for i in range(3)] for k in spec.private_lists}
    return facts, private


def _demand(kind: str) -> str | None:
    return "d_0123456789abcdef" if KINDS[kind].about_demand else None


def test_sample_covers_every_fact() -> None:
    assert set(SAMPLE) == set(FACTS)


def test_kind_names_are_dotted_lowercase_and_cover_the_lifecycle() -> None:
    for name in KINDS:
        assert name == name.lower() and name.count(".") == 1, name
    needed = {
        "demand.received",
        "demand.screened",
        "demand.refused",
        "demand.clarification_requested",
        "approval.given",
        "demand.approved",
        "demand.narrowed",
        "demand.challenged",
        "demand.withdrawn",
        "demand.executed",
        "demand.notified",
        "demand.closed",
        "production.delivered",
        "restriction.applied",
        "notice.sent",
        "emergency.callback_recorded",
        "tos_action.linked",
        "request.refused",
        "staff_access.granted",
        "staff_access.read",
    }
    assert needed <= set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_round_trips(kind: str) -> None:
    facts, private = _full(kind)
    leaf, openings = encode_event(kind, time=T0, demand=_demand(kind), facts=facts, private=private)
    event = parse_event(leaf)
    assert (event.kind, event.time, event.demand) == (kind, T0, _demand(kind))
    assert format_event(event) == leaf
    assert leaf == rfc8785.dumps(json.loads(leaf))
    for name, opening in openings.items():
        if isinstance(opening, tuple):
            for i in range(len(opening)):
                check_opening(event, name, list_opening(name, opening, i))
        else:
            check_opening(event, name, opening)
        assert b"private" not in leaf and b"element" not in leaf


def test_leaf_layout_is_exact() -> None:
    salt = bytes(range(32))
    leaf, _ = encode_event(
        DEMAND_SCREENED,
        time=datetime(2024, 6, 4, 14, 0, 0, 999, tzinfo=UTC),
        demand="d_1",
        facts={"pack": PACK, "outcome": "pass", "findings": []},
        salt=lambda n: salt[:n],
    )
    assert leaf == (
        b'{"commit":{},"demand":"d_1","facts":{"findings":[],"outcome":"pass","pack":"'
        + PACK.encode()
        + b'"},"kind":"demand.screened","time":"2024-06-04T14:00:00Z","v":1}'
    )


def test_commitment_known_answer() -> None:
    salt = bytes(range(32))
    expected = hashlib.sha256(
        b"custodes/commit/v1\n" + salt + b'["staff","alice@example.com"]'
    ).hexdigest()
    assert open_commitment("staff", Opening(salt, "alice@example.com")) == expected
    element = hashlib.sha256(b"custodes/commit/v1\n" + salt + b'["targets",1,"u-9"]').hexdigest()
    assert open_commitment("targets", Opening(salt, "u-9"), 1) == element


def test_list_root_is_over_element_commitments() -> None:
    salts = iter(bytes([i]) * 32 for i in range(10))
    leaf, _ = encode_event(
        DEMAND_RECEIVED,
        time=T0,
        demand="d_1",
        facts={
            "demand_kind": "disclosure",
            "instrument_kind": "subpoena",
            "target_count": 2,
            "signature": "valid",
        },
        private={"targets": ["u-1", "u-2"]},
        salt=lambda n: next(salts),
    )
    elems = [
        hashlib.sha256(
            b"custodes/commit/v1\n" + bytes([i]) * 32 + rfc8785.dumps(["targets", i, f"u-{i + 1}"])
        ).digest()
        for i in range(2)
    ]
    root = hashlib.sha256(b"custodes/commit-list/v1\n" + b"".join(elems)).hexdigest()
    assert parse_event(leaf).commitments["targets"] == root


_personal = st.one_of(
    st.emails(),
    st.ip_addresses().map(str),
    st.from_regex(r"[A-Z][a-z]{3,10} [A-Z][a-z]{3,12}", fullmatch=True),
    st.from_regex(r"\+[1-9][0-9]{9,12}", fullmatch=True),
    st.from_regex(r"u-[0-9a-f]{10}", fullmatch=True),
).filter(lambda s: len(s) >= 8)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(KINDS)), st.data())
def test_no_personal_value_ever_appears_in_a_leaf(kind: str, data: st.DataObject) -> None:
    spec = KINDS[kind]
    facts, _ = _full(kind)
    private: dict[str, Any] = {k: data.draw(_personal) for k in spec.private}
    private |= {k: data.draw(st.lists(_personal, max_size=5)) for k in spec.private_lists}
    leaf, _ = encode_event(kind, time=T0, demand=_demand(kind), facts=facts, private=private)
    for value in private.values():
        for v in [value] if isinstance(value, str) else value:
            assert v.encode() not in leaf
            assert json.dumps(v).encode() not in leaf


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("demand_kind", "Alice Smith"),
        ("authority_jurisdiction", "Beijing"),
        ("rules", ["alice@example.com"]),
        ("categories", ["zeta", "alpha"]),
        ("subject_jurisdictions", ["US", "US"]),
        ("target_count", -1),
        ("target_count", True),
        ("target_count", "3"),
        ("pack", "not a hash"),
        ("findings", [{"rule": "scope.selector", "outcome": "refuse", "note": "Alice"}]),
        ("state_involved", 1),
    ],
)
def test_free_text_cannot_pass_as_a_fact(name: str, value: Any) -> None:
    with pytest.raises(InputError):
        FACTS[name](value)


def test_encode_refuses_what_the_kind_does_not_carry() -> None:
    facts, _ = _full(DEMAND_SCREENED)
    with pytest.raises(InputError, match="not allowed"):
        encode_event(DEMAND_SCREENED, time=T0, demand="d_1", facts={**facts, "role": "approver"})
    with pytest.raises(InputError, match="missing"):
        encode_event(DEMAND_SCREENED, time=T0, demand="d_1", facts={"pack": PACK})
    with pytest.raises(InputError, match="no private field"):
        encode_event(DEMAND_SCREENED, time=T0, demand="d_1", facts=facts, private={"note": "x"})
    with pytest.raises(InputError, match="needs a demand id"):
        encode_event(DEMAND_SCREENED, time=T0, facts=facts)
    with pytest.raises(InputError, match="takes no demand id"):
        encode_event(
            STAFF_ACCESS_GRANTED,
            time=T0,
            demand="d_1",
            facts={"justification": "demand", "pack": PACK},
        )
    with pytest.raises(InputError, match="unknown event kind"):
        encode_event("demand.teleported", time=T0, demand="d_1")
    with pytest.raises(InputError, match="is a list"):
        facts, _ = _full(DEMAND_RECEIVED)
        encode_event(DEMAND_RECEIVED, time=T0, demand="d_1", facts=facts, private={"targets": "u"})


def test_encode_refuses_an_oversized_leaf() -> None:
    facts, _ = _full(DEMAND_SCREENED)
    rule = "jurisdiction.subject_outside"
    many = [{"rule": rule, "outcome": "refuse", "target": i} for i in range(1000)]
    with pytest.raises(EntryTooLargeError):
        encode_event(DEMAND_SCREENED, time=T0, demand="d_1", facts={**facts, "findings": many})


def _good_leaf() -> bytes:
    facts, private = _full(DEMAND_SCREENED)
    return encode_event(DEMAND_SCREENED, time=T0, demand="d_1", facts=facts, private=private)[0]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b + b"\n",
        lambda b: b" " + b,
        lambda b: b.replace(b'"v":1', b'"v":1.0'),
        lambda b: b.replace(b'"v":1', b'"v":2'),
        lambda b: b.replace(b'"v":1', b'"v":true'),
        lambda b: b.replace(b"demand.screened", b"demand.screamed"),
        lambda b: b.replace(b"12:00:00Z", b"12:00:00+00:00"),
        lambda b: b.replace(b"2024-06-04", b"2024-13-04"),
        lambda b: b.replace(b'"kind":"demand.screened"', b'"kind":"x","kind":"demand.screened"'),
        lambda b: b.replace(b'{"commit"', b'{"zzz":1,"commit"'),
        lambda b: b.replace(b'"demand":"d_1",', b""),
        lambda b: b.replace(b'"demand":"d_1"', b'"demand":"d 1"'),
        lambda b: json.dumps(json.loads(b), sort_keys=False, indent=1).encode(),
        lambda b: b"[]",
        lambda b: b"\xff",
    ],
)
def test_parse_event_rejects_what_format_never_makes(mutate: Any) -> None:
    with pytest.raises(InputError):
        parse_event(mutate(_good_leaf()))


def test_parse_event_checks_size_before_decoding() -> None:
    with pytest.raises(TooLargeError):
        parse_event(b"\xff" * (MAX_LEAF_BYTES + 1))


def test_openings_that_do_not_match_are_refused() -> None:
    facts, _ = _full(DEMAND_RECEIVED)
    leaf, openings = encode_event(
        DEMAND_RECEIVED,
        time=T0,
        demand="d_1",
        facts=facts,
        private={"staff": "s-17", "targets": ["u-1", "u-2", "u-3"]},
    )
    event = parse_event(leaf)
    staff = openings["staff"]
    targets = openings["targets"]
    assert isinstance(staff, Opening) and isinstance(targets, tuple)
    with pytest.raises(InputError, match="does not match"):
        check_opening(event, "staff", Opening(staff.salt, "s-18"))
    with pytest.raises(InputError, match="does not match"):
        check_opening(event, "staff", Opening(bytes(32), "s-17"))
    with pytest.raises(InputError, match="commits to no field"):
        check_opening(event, "authority", staff)
    good = list_opening("targets", targets, 1)
    with pytest.raises(InputError, match="does not match"):
        check_opening(event, "targets", ListOpening(2, good.opening, good.elements))
    with pytest.raises(InputError, match="does not match"):
        check_opening(event, "targets", Opening(targets[0].salt, "u-1"))
    with pytest.raises(InputError, match="not a list field"):
        check_opening(event, "staff", good)
    swapped = (good.elements[1], good.elements[0], good.elements[2])
    with pytest.raises(InputError, match="does not match"):
        check_opening(event, "targets", ListOpening(0, targets[1], swapped))


def test_openings_storage_round_trip() -> None:
    facts, private = _full(DEMAND_RECEIVED)
    _, openings = encode_event(DEMAND_RECEIVED, time=T0, demand="d_1", facts=facts, private=private)
    assert parse_openings(format_openings(openings)) == openings
    with pytest.raises(InputError):
        parse_openings(b'{"staff": {"salt": 1}}')


def test_event_objects_are_normalized_by_format() -> None:
    event = Event(
        DEMAND_SCREENED,
        datetime(2024, 6, 4, 14, 0, 0, 5, tzinfo=UTC),
        "d_1",
        {"pack": PACK, "outcome": "pass", "findings": ()},
    )
    assert parse_event(format_event(event)).time == datetime(2024, 6, 4, 14, tzinfo=UTC)


def test_every_kind_and_fact_is_documented() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "concepts.md"
    text = docs.read_text(encoding="utf-8")
    missing = [k for k in KINDS if f"`{k}`" not in text]
    missing += [f for f in FACTS if f"`{f}`" not in text]
    assert missing == []


# -- canonical JSON: the standard library's encoder where it writes what RFC 8785 does ----


def _jcs_or_error(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        return type(exc)


def _canonical_or_error(value: Any) -> bytes | type[Exception]:
    try:
        return canonical(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        return type(exc)


def test_canonical_writes_every_code_point_as_rfc8785_does() -> None:
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(points), 4096):
        text = "".join(points[start : start + 4096])
        doc = {"value": text, "list": [text[:7], text[-7:]]}
        assert canonical(doc) == rfc8785.dumps(doc)


def test_canonical_orders_keys_as_rfc8785_does() -> None:
    keys = ["", "a", "B", "é", "\u20ac", "\ufb33", "\U0001f600", "\U0001f600a", "\uffff", "\x7f"]
    doc = {k: i for i, k in enumerate(keys)}
    assert canonical(doc) == rfc8785.dumps(doc)
    for k in keys:
        assert canonical({k: {k: [k]}, "x": 1}) == rfc8785.dumps({k: {k: [k]}, "x": 1})


@pytest.mark.parametrize(
    "value",
    [2**53 - 1, -(2**53) + 1, 2**53, -(2**53), 10**30, 0.5, 1e21, -0.0, float("nan"), "\ud800",
     {"k\udfff": 1}, {1: "x"}, True, None, [], {}, (), ("a", 1), [[[]]], {"a": {"b": {}}}],
)  # fmt: skip
def test_canonical_agrees_with_rfc8785_at_the_edges(value: Any) -> None:
    assert _canonical_or_error(value) == _jcs_or_error(value)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_canonical_agrees_with_rfc8785_on_any_document(value: Any) -> None:
    assert _canonical_or_error(value) == _jcs_or_error(value)
