"""``parse_event`` proves canonical form without the RFC 8785 encoder, and still accepts and
refuses exactly what it did: the same event for every leaf it accepts, the same error (class
and words) for every leaf it refuses.

The reference below is the parser as it was before (verbatim, with the ``_normalize`` and
``format_event`` it called), so that the comparison does not lean on anything it checks.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.audit.logcheck import dir_fetcher
from custodes.errors import EntryTooLargeError, InputError, TooLargeError
from custodes.events import KINDS, Event, encode_event, parse_event
from custodes.events.kinds import DEMAND_ID, FACTS, HEX64, TIME, Fact
from custodes.events.leaf import (
    MAX_LEAF_BYTES,
    TIME_FORMAT_,
    VERSION,
    _jsonable,
    _parse_canonical,
    _read_time,
)
from custodes.tlog import TILE_WIDTH, bundle_tile, format_tile_path, parse_bundle

GOLDEN = Path(__file__).parent / "testdata" / "golden" / "log"

# -- the reference: parse_event as it was --------------------------------------------------


def _old_normalize(event: Event) -> Event:
    spec = KINDS.get(event.kind)
    if spec is None:
        raise InputError(f"unknown event kind {event.kind!r}")
    if event.version != VERSION:
        raise InputError(f"unknown leaf version {event.version}")
    if (event.demand is not None) != spec.about_demand:
        need = "needs a" if spec.about_demand else "takes no"
        raise InputError(f"{event.kind} {need} demand id")
    if event.demand is not None and not DEMAND_ID.fullmatch(event.demand):
        raise InputError("a demand id is 1-64 characters of [A-Za-z0-9_-]")
    missing = sorted(spec.required - set(event.facts))
    extra = sorted(set(event.facts) - spec.required - spec.optional)
    if missing or extra:
        raise InputError(f"{event.kind}: facts missing {missing}, not allowed {extra}")
    facts: dict[str, Fact] = {}
    for name, value in event.facts.items():
        try:
            facts[name] = FACTS[name](value)
        except InputError as exc:
            raise InputError(f"{event.kind}: fact {name}: {exc.detail}") from None
    stray = sorted(set(event.commitments) - spec.private - spec.private_lists)
    if stray:
        raise InputError(f"{event.kind}: no private field {stray[0]!r}")
    for value in event.commitments.values():
        if not isinstance(value, str) or not HEX64.fullmatch(value):
            raise InputError("a commitment is a SHA-256 in hex")
    if event.time.tzinfo is None:
        raise InputError("event time must carry a time zone")
    time = event.time.astimezone(UTC).replace(microsecond=0)
    return Event(event.kind, time, event.demand, facts, dict(event.commitments), event.version)


def _old_format_event(event: Event) -> bytes:
    event = _old_normalize(event)
    doc: dict[str, Any] = {
        "commit": dict(event.commitments),
        "facts": {k: _jsonable(v) for k, v in event.facts.items()},
        "kind": event.kind,
        "time": event.time.strftime(TIME_FORMAT_),
        "v": event.version,
    }
    if event.demand is not None:
        doc["demand"] = event.demand
    leaf: bytes = rfc8785.dumps(doc)
    if len(leaf) > MAX_LEAF_BYTES:
        raise EntryTooLargeError(f"{event.kind} leaf of {len(leaf)} bytes is over the limit")
    return leaf


def _no_floats(text: str) -> Any:
    raise InputError(f"a leaf holds no fractional numbers ({text})")


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise InputError("a leaf repeats a member name")
    return out


_MEMBERS = frozenset({"commit", "demand", "facts", "kind", "time", "v"})


def old_parse_event(leaf: bytes) -> Event:
    if len(leaf) > MAX_LEAF_BYTES:
        raise TooLargeError(f"leaf of {len(leaf)} bytes is over {MAX_LEAF_BYTES}")
    try:
        doc = json.loads(
            leaf.decode("utf-8"),
            object_pairs_hook=_no_repeats,
            parse_float=_no_floats,
            parse_constant=_no_floats,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"leaf is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not _MEMBERS - {"demand"} <= set(doc) <= _MEMBERS:
        raise InputError("a leaf is an object with commit, [demand,] facts, kind, time and v")
    time, kind, commit, facts, version = (doc[k] for k in ("time", "kind", "commit", "facts", "v"))
    if not isinstance(time, str) or not TIME.fullmatch(time):
        raise InputError("leaf time must look like 2024-06-04T12:00:00Z")
    try:
        when = datetime.strptime(time, TIME_FORMAT_).replace(tzinfo=UTC)
    except ValueError:
        raise InputError(f"leaf time {time!r} is not a real time") from None
    if not isinstance(kind, str) or not isinstance(commit, dict) or not isinstance(facts, dict):
        raise InputError("leaf kind is a string; commit and facts are objects")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError("leaf version is an integer")
    demand = doc.get("demand")
    if demand is not None and not isinstance(demand, str):
        raise InputError("leaf demand id is a string")
    event = Event(kind, when, demand, facts, commit, version)
    if _old_format_event(event) != leaf:
        raise InputError("leaf is not in RFC 8785 canonical form")
    return _old_normalize(event)


# -- comparing the two ---------------------------------------------------------------------


def answer(parse: Any, leaf: bytes) -> tuple[str, str]:
    """What a parser makes of ``leaf``: the event (its repr shows every type) or the error."""
    try:
        event = parse(leaf)
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "event", repr(event)


FAST_PATH_TAKEN = [0]


def same(leaf: bytes) -> bool:
    """Both parsers give the same answer; and the fast path, when it answers, agrees."""
    old, new = answer(old_parse_event, leaf), answer(parse_event, leaf)
    assert new == old, leaf
    if len(leaf) <= MAX_LEAF_BYTES:
        fast = _parse_canonical(leaf)
        if fast is not None:
            assert ("event", repr(fast)) == old, leaf
            FAST_PATH_TAKEN[0] += 1
    return old[0] == "event"


def golden_leaves() -> list[bytes]:
    fetch = dir_fetcher(GOLDEN)
    leaves: list[bytes] = []
    for start in range(0, 300, TILE_WIDTH):
        width = min(TILE_WIDTH, 300 - start)
        leaves += parse_bundle(
            fetch(format_tile_path(bundle_tile(start // TILE_WIDTH, width))), width
        )
    return leaves


LEAVES = golden_leaves()


def test_every_golden_leaf_parses_to_the_same_event() -> None:
    assert len(LEAVES) == 300
    for leaf in LEAVES:
        assert same(leaf)
        assert parse_event(leaf) == old_parse_event(leaf)
        assert _parse_canonical(leaf) == old_parse_event(leaf)  # every one on the fast path


def _targeted(leaf: bytes) -> list[bytes]:
    """Edits that probe each difference between the two ways of proving canonical form."""
    text = leaf.decode()
    time = re.search(r'"time":"([^"]*)"', text)
    assert time is not None
    t = time.group(1)

    def with_time(value: str) -> bytes:
        return text.replace(f'"time":"{t}"', f'"time":"{value}"').encode()

    out = [
        with_time("0999" + t[4:]),  # strftime writes year 999 with three digits
        with_time("0001" + t[4:]),
        with_time("0000" + t[4:]),
        with_time("1000" + t[4:]),
        with_time("\uff12" + t[1:]),  # full-width digits: TIME matches, strptime reads them
        with_time(t[:9] + "\uff11" + t[10:]),
        with_time(t[:18] + "\u0662" + t[19:]),  # an Arabic-Indic digit in the seconds
        with_time(t[:17] + "60Z"),
        with_time(t[:5] + "02-30" + t[10:]),
        with_time(t[:11] + "24" + t[13:]),
        with_time(t[:-1] + "z"),
        text.replace('"v":1', '"v":1.0').encode(),
        text.replace('"v":1', '"v":true').encode(),
        text.replace('"v":1', '"v":-0').encode(),
        text.replace('"v":1', '"v":01').encode(),
        text.replace('"v":1', '"v":2').encode(),
        text.replace('"v":1', '"v":1e0').encode(),
        text.replace('"v":1', '"v":NaN').encode(),
        text.replace('"v":1', '"v":9007199254740993').encode(),
        text.replace('"kind"', '"kind":"x","kind"', 1).encode(),
        text.replace('{"commit"', '{"v":1,"commit"', 1).encode(),
        text.replace('{"commit"', '{"v":1.5,"commit"', 1).encode(),  # a repeat, then a float
        text.replace('"v":1}', '"v":1,"v":1.5}', 1).encode(),
        text.replace('"facts":{', '"facts":{"target_count":2,', 1).encode(),
        text.replace('"facts":{', '"facts":{"x":1,"x":2,', 1).encode(),
        text.replace('"demand":"', '"demand":"\\u0064', 1).encode(),
        text.replace('"demand":"d_', '"demand":null,"x":"', 1).encode(),
        text.replace('"demand":"', '"demand":null,"y":"', 1).encode(),
        text.replace(',"facts"', ',"demand":null,"facts"', 1).encode(),
        text.replace('"kind":"', '"kind":"\\u0064', 1).encode(),
        text.replace(":", ": ", 1).encode(),
        text.replace("}", "} ", 1).encode(),
        ("\ufeff" + text).encode(),
        leaf + b"\n",
        leaf + b" {}",
        leaf[:-1],
        b"[" + leaf + b"]",
        leaf.replace(b'"commit":{', b'"commit":{"zz":"' + b"0" * 64 + b'",', 1),
        *_facts_edits(text),
    ]
    return out


def _facts_edits(text: str) -> list[bytes]:
    """Edits of the facts object, member by member: what the fast path splits on."""
    facts = re.search(r'"facts":(\{.*\}),"kind"', text)
    assert facts is not None
    body = facts.group(1)

    def with_facts(value: str) -> bytes:
        return text.replace(f'"facts":{body}', f'"facts":{value}', 1).encode()

    members = re.findall(r'"[a-z_]+":', body)
    out = [
        with_facts("{}"),
        with_facts(body[:-1] + ",}"),
        with_facts("{," + body[1:]),
        with_facts(body.replace(",", ",,", 1)),
        with_facts(body.replace(":", ":-0", 1)),
        with_facts(body.replace(":", ":0", 1)),
        with_facts(body.replace(":", ':{"a":1}', 1)),
        with_facts(body.replace(":", ":[[1]]", 1)),
        with_facts(body.replace(":", ':"]",', 1)),
        with_facts(body.replace(':"', ':"x\\u0041', 1)),
        with_facts(body.replace(":", ":1.5,", 1)),
        with_facts(body[:-1] + ',"zz":1}' if body != "{}" else '{"zz":1}'),
        with_facts(body.replace("[", '[{"rule":"a.b","outcome":"pass","rule":"a.c"},', 1)),
        with_facts(body.replace('"outcome":"pass"', '"outcome":"pass","target":true', 1)),
        with_facts(body.replace('"target":0', '"target":00', 1)),
        with_facts(body.replace('"rule":', '"Rule":', 1)),
        with_facts(body.replace("{", "{ ", 1)),
    ]
    if len(members) >= 2:  # two members swapped: no longer sorted
        a, b = members[0], members[1]
        out.append(with_facts(body.replace(a, "\0", 1).replace(b, a, 1).replace("\0", b, 1)))
        out.append(with_facts(body.replace(b, a, 1)))  # a member repeated
    return out


def test_targeted_edits_of_every_golden_leaf_get_the_same_answer() -> None:
    accepted = refused = 0
    fast = FAST_PATH_TAKEN[0]
    for leaf in LEAVES:
        for edited in _targeted(leaf):
            if same(edited):
                accepted += 1
            else:
                refused += 1
    print(f"{accepted + refused} edited leaves: {accepted} accepted by both, {refused} refused")
    assert refused > 0 and accepted > 0
    assert FAST_PATH_TAKEN[0] > fast  # edits the fast path took, each as the reference did


def _mutate(leaf: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(leaf))
    op = rng.randrange(4)
    if op == 0:
        return leaf[:i] + bytes([leaf[i] ^ (1 << rng.randrange(8))]) + leaf[i + 1 :]
    if op == 1:
        return leaf[:i] + leaf[i + 1 :]
    if op == 2:
        extra = rng.choice([b" ", b"\n", b"0", b'"', b",", b"1", b"}", b"{", b"\\", b"-", b"9"])
        return leaf[:i] + extra + leaf[i:]
    j = rng.randrange(len(leaf))
    return leaf[: min(i, j)] + leaf[max(i, j) :] + leaf[min(i, j) : max(i, j)]


def test_thousands_of_randomly_mutated_leaves_get_the_same_answer() -> None:
    rng = random.Random(20260701)
    total = accepted = 0
    fast = FAST_PATH_TAKEN[0]
    for leaf in LEAVES * 10:
        mutated = leaf
        for _ in range(rng.randrange(1, 3)):
            mutated = _mutate(mutated, rng)
        accepted += same(mutated)
        total += 1
    print(f"{total} randomly mutated leaves, {accepted} accepted by both parsers")
    assert total == 3000 and FAST_PATH_TAKEN[0] > fast


def test_read_time_reads_what_strptime_read() -> None:
    fields = (
        ("0000", "0001", "0999", "1000", "2024", "9999"),
        ("00", "01", "02", "12", "13"),
        ("00", "01", "28", "29", "30", "31", "32"),
        ("00", "23", "24"),
        ("00", "59", "60"),
        ("00", "59", "60", "61"),
    )
    for y, mo, d, h, mi, s in itertools.product(*fields):
        text = f"{y}-{mo}-{d}T{h}:{mi}:{s}Z"
        try:
            old: datetime | None = datetime.strptime(text, TIME_FORMAT_).replace(tzinfo=UTC)
        except ValueError:
            old = None
        try:
            new: datetime | None = _read_time(text)
        except InputError:
            new = None
        assert new == old, text


# -- fuzzing -------------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    ["pass", "refuse", "US", "DE-BY", "court_order", "approver", "d_1", "a" * 64, "0" * 64,
     "jurisdiction.subject_outside", "2026-01-01", "2026-01-01T00:00:00Z", "", "é", "\u2028",
     "tab\t", 'q"', "b\\", "\x00"]
)  # fmt: skip
_NAMES = st.sampled_from(
    sorted({*FACTS, "staff", "targets", "note", "x", "rule", "outcome", "target", "item", "é"})
)
_SCALARS = st.one_of(
    _TOKENS,
    st.integers(min_value=-3, max_value=2**53 + 2),
    st.booleans(),
    st.none(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_NAMES, inner, max_size=4)
    ),
    max_leaves=8,
)


_VALID: Mapping[str, list[Any]] = {
    "authority_jurisdiction": ["US", "DE-BY"],
    "categories": [["content", "subscriber_info"], []],
    "due_at": ["2026-07-01T12:00:00Z", "\uff12026-07-01T12:00:00Z"],
    "findings": [
        [{"outcome": "pass", "rule": "scope.within_limits"},
         {"outcome": "refuse", "rule": "jurisdiction.subject_outside", "target": 0}],
        [{"item": "content", "outcome": "escalate", "rule": "gag.no_end_date"}],
        [],
    ],
    "gag_until": ["2026-07-01", "\uff12026-07-01"],
    "outcome": ["pass", "refuse"],
    "pack": ["ab" * 32],
    "roles": [["approver", "legal_counsel"], []],
    "rules": [["a.b", "scope.target_cap"]],
    "state_involved": [True, False],
    "subject_jurisdictions": [["DE", "US"]],
    "territories": [["US"]],
}  # fmt: skip
"""Values of each fact's shape (the rest take a count or a token, below)."""


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """A JSON object near the shape of a leaf (mostly well-formed), canonical or not."""
    rng = draw(st.randoms(use_true_random=False))

    def mostly(valid: Any, *other: Any) -> Any:
        return valid if rng.random() < 0.9 or not other else rng.choice(other)

    kind = mostly(rng.choice(sorted(KINDS)), "demand.unknown")
    spec = KINDS.get(kind)
    names = sorted(spec.required) if spec else []
    names += [n for n in sorted(spec.optional) if rng.random() < 0.5] if spec else []
    if names and rng.random() < 0.1:
        names.remove(rng.choice(names))  # a required fact missing, or an optional one
    facts = {n: mostly(rng.choice(_valid_facts(n)), draw(_VALUES)) for n in names}
    if rng.random() < 0.1:
        facts[draw(_NAMES)] = draw(_VALUES)
    private = sorted((spec.private | spec.private_lists) if spec else ())
    commit = {
        name: mostly(f"{rng.getrandbits(256):064x}", "f" * 63, "A" * 64, 1)
        for name in private
        if rng.random() < 0.5
    }
    doc: dict[str, Any] = {
        "commit": commit,
        "facts": facts,
        "kind": kind,
        "time": mostly(
            "2026-07-01T12:00:00Z",
            "0999-07-01T12:00:00Z",
            "2026-02-30T00:00:00Z",
            "\uff12026-07-01T12:00:00Z",
        ),
        "v": mostly(1, 2, True, 0, 1.0),
    }
    if mostly(spec.about_demand if spec else True, True, False):
        doc["demand"] = mostly("d_1", None, "bad id", 7)
    if rng.random() < 0.6:
        try:
            return bytes(rfc8785.dumps(doc))
        except (rfc8785.IntegerDomainError, rfc8785.FloatDomainError):
            return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    items = list(doc.items())
    rng.shuffle(items)
    text = json.dumps(
        dict(items),
        ensure_ascii=rng.random() < 0.5,
        separators=rng.choice([(",", ":"), (", ", ": ")]),
    )
    return text.encode()


def _valid_facts(name: str) -> list[Any]:
    """Values of the fact's shape, so that fuzzed leaves get past the shape checks."""
    if name in _VALID:
        return list(_VALID[name])
    try:
        FACTS[name](3)
    except InputError:
        return ["approver", "court_order", "valid"]
    return [0, 3, 2**53 - 1]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_fuzzed_documents_get_the_same_answer(leaf: bytes) -> None:
    same(leaf)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(LEAVES),
    st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=3)), min_size=1, max_size=3),
)
def test_fuzzed_edits_of_golden_leaves_get_the_same_answer(
    leaf: bytes, edits: list[tuple[int, bytes]]
) -> None:
    for at, insert in edits:
        i = at % (len(leaf) + 1)
        leaf = leaf[:i] + insert + leaf[i + 1 :]
    same(leaf)


@pytest.mark.parametrize("extra", [b"", b" " * (MAX_LEAF_BYTES + 1)])
def test_size_and_encoding_errors_are_the_same(extra: bytes) -> None:
    for leaf in (b"{" + extra + b"}", b'{"kind":"\xff"}', b"[" * 100_000, b"\xef\xbb\xbf{}"):
        same(leaf)


def test_a_freshly_encoded_event_round_trips() -> None:
    leaf, _ = encode_event(
        "demand.screened",
        time=datetime(2026, 7, 1, 12, tzinfo=UTC),
        demand="d_1",
        facts={"pack": "ab" * 32, "outcome": "pass", "findings": [], "volume": 3},
    )
    assert same(leaf)


def test_edits_inside_the_lists_of_facts_get_the_same_answer() -> None:
    """The fast path cuts a list fact at its first ``]``: a bracket or quote inside one of its
    strings or objects must leave the leaf to the general path, or read it as the reference
    does."""
    inserts = [
        '"a]b",', '"a[b",', '"a\\"b",', '"\\u005d",', "[],", "[1],", '"]",', '"",',
        '{"outcome":"pass","rule":"a]b"},', '{"outcome":"pass","rule":"a.b","x":[1]},',
        '{"outcome":"pass","rule":"a.b"}],', '"zz"]', "",
    ]  # fmt: skip
    edited = 0
    fast = FAST_PATH_TAKEN[0]
    for leaf in LEAVES:
        text = leaf.decode()
        at = text.find("[", text.find('"facts":{'))
        if at < 0 or at > text.find(',"kind":'):
            continue
        for insert in inserts:
            same((text[: at + 1] + insert + text[at + 1 :]).encode())
            same((text[:at] + insert + text[at:]).encode())
            edited += 2
    assert edited > 1000 and FAST_PATH_TAKEN[0] > fast
