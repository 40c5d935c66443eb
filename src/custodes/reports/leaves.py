"""Reading log leaves fast: the same answer as :func:`custodes.events.parse_event`, sooner.

A report reads every entry of the log, so the cost of parsing one leaf decides how long a
report over millions of events takes. ``parse_event`` proves a leaf canonical by rebuilding it
with the pure-Python RFC 8785 encoder and comparing bytes, and checks the kind's shape twice;
:func:`parse_leaf` gives the same :class:`~custodes.events.Event` for every leaf
``parse_event`` accepts, and refuses every leaf it refuses, at about a quarter of the cost:

1. size first (:data:`~custodes.events.MAX_LEAF_BYTES`), then UTF-8, then JSON with fractional
   numbers, ``NaN`` and ``Infinity`` refused as they are read;
2. the members, their types and every fact's shape (:data:`~custodes.events.FACTS`,
   :data:`~custodes.events.KINDS`), once;
3. canonical form: the text must equal ``json.dumps`` of what was read, keys sorted, no
   spaces, non-ASCII kept. For what step 2 lets through this is exactly RFC 8785: every key
   is ASCII (so code-point order is UTF-16 order), every number an integer below 2**53, and
   Python escapes strings as RFC 8785 does (``\\b \\t \\n \\f \\r``, ``\\u00XX`` for the other
   control characters, nothing else). A repeated member name, which ``json.loads`` folds
   into one, makes the text longer than its re-encoding, so it is refused too.

``tests/test_reports_leaves.py`` checks the equivalence on the golden log and on thousands of
mutated leaves.

>>> from datetime import UTC, datetime
>>> from custodes.events import DEMAND_RECEIVED, encode_event, parse_event
>>> leaf, _ = encode_event(DEMAND_RECEIVED, time=datetime(2026, 7, 1, tzinfo=UTC),
...     demand="d_1", facts={"demand_kind": "disclosure", "instrument_kind": "subpoena",
...     "target_count": 2, "signature": "valid"})
>>> parse_leaf(leaf) == parse_event(leaf)
True
>>> parse_leaf(leaf.replace(b'"v":1', b'"v": 1'))
Traceback (most recent call last):
...
custodes.reports.errors.LeafError: leaf is not in RFC 8785 canonical form
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from custodes.events import FACTS, KINDS, MAX_LEAF_BYTES, Event
from custodes.events.kinds import DEMAND_ID, HEX64, TIME
from custodes.events.leaf import VERSION
from custodes.reports.errors import LeafError

__all__ = ["parse_leaf"]

_MEMBERS = frozenset({"commit", "demand", "facts", "kind", "time", "v"})
_REQUIRED = _MEMBERS - {"demand"}


def _no_fractions(text: str) -> Any:
    raise LeafError(f"a leaf holds no fractional numbers ({text})")


_decode = json.JSONDecoder(parse_float=_no_fractions, parse_constant=_no_fractions).decode
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _time(value: object) -> datetime:
    if not isinstance(value, str) or not value.isascii() or not TIME.fullmatch(value):
        raise LeafError("leaf time must look like 2024-06-04T12:00:00Z")
    try:
        return datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            tzinfo=UTC,
        )
    except ValueError:
        raise LeafError(f"leaf time {value!r} is not a real time") from None


def _facts(kind: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    spec = KINDS[kind]
    names = set(facts)
    if not spec.required <= names or names - spec.required - spec.optional:
        raise LeafError(f"{kind}: facts do not match the kind")
    out: dict[str, Any] = {}
    for name, value in facts.items():
        try:
            out[name] = FACTS[name](value)
        except Exception:  # a fact check refuses with the events' own error
            raise LeafError(f"{kind}: fact {name} has the wrong shape") from None
    return out


def _commitments(kind: str, commit: Mapping[str, Any]) -> dict[str, str]:
    spec = KINDS[kind]
    for name, value in commit.items():
        if name not in spec.private and name not in spec.private_lists:
            raise LeafError(f"{kind}: no private field {name!r}")
        if not isinstance(value, str) or not HEX64.fullmatch(value):
            raise LeafError("a commitment is a SHA-256 in hex")
    return dict(commit)


def parse_leaf(leaf: bytes) -> Event:
    """Parse one leaf strictly; raise :class:`LeafError` wherever ``parse_event`` refuses."""
    if len(leaf) > MAX_LEAF_BYTES:
        raise LeafError(f"leaf of {len(leaf)} bytes is over {MAX_LEAF_BYTES}")
    try:
        text = leaf.decode("utf-8")
        doc = _decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LeafError(f"leaf is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not _REQUIRED <= doc.keys() <= _MEMBERS:
        raise LeafError("a leaf is an object with commit, [demand,] facts, kind, time and v")
    kind, version, facts, commit = doc["kind"], doc["v"], doc["facts"], doc["commit"]
    when = _time(doc["time"])
    if not isinstance(kind, str) or kind not in KINDS:
        raise LeafError(f"unknown event kind {kind!r}")
    if type(version) is not int or version != VERSION:
        raise LeafError(f"unknown leaf version {version!r}")
    if not isinstance(facts, dict) or not isinstance(commit, dict):
        raise LeafError("leaf facts and commit are objects")
    demand = doc.get("demand")
    if "demand" in doc and not (isinstance(demand, str) and DEMAND_ID.fullmatch(demand)):
        raise LeafError("a demand id is 1-64 characters of [A-Za-z0-9_-]")
    if (demand is not None) != KINDS[kind].about_demand:
        raise LeafError(f"{kind} {'needs a' if KINDS[kind].about_demand else 'takes no'} demand")
    event = Event(kind, when, demand, _facts(kind, facts), _commitments(kind, commit), version)
    try:
        canonical = _encode(doc) == text
    except (ValueError, RecursionError):
        canonical = False
    if not canonical:
        raise LeafError("leaf is not in RFC 8785 canonical form")
    return event
