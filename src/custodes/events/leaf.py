"""Leaves: building, formatting and parsing events, and opening their commitments."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from custodes.errors import EntryTooLargeError, InputError, TooLargeError

from .canonical import canonical, canonical_plain
from .kinds import DEMAND_ID, FACTS, FIELD_NAME, HEX64, KINDS, TIME, EventSpec, Fact
from .salts import new_salt

__all__ = [
    "MAX_LEAF_BYTES",
    "SALT_BYTES",
    "VERSION",
    "Event",
    "ListOpening",
    "Opening",
    "Openings",
    "check_opening",
    "encode_event",
    "format_event",
    "format_openings",
    "list_opening",
    "open_commitment",
    "parse_event",
    "parse_openings",
]

VERSION = 1
MAX_LEAF_BYTES = 64 * 1024
SALT_BYTES = 32
_COMMIT = b"custodes/commit/v1\n"
_COMMIT_LIST = b"custodes/commit-list/v1\n"

# -- commitments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """The private half of one commitment: the salt and the value."""

    salt: bytes
    value: str


@dataclass(frozen=True)
class ListOpening:
    """One element of a list commitment, with every element's commitment (not value)."""

    index: int
    opening: Opening
    elements: tuple[str, ...]


def open_commitment(name: str, opening: Opening, index: int | None = None) -> str:
    """The commitment (hex) that ``opening`` opens, for field ``name`` (element ``index``)."""
    if len(opening.salt) != SALT_BYTES:
        raise InputError(f"a salt is {SALT_BYTES} bytes")
    # Two strings, or two strings about an index: plain as canonical_plain needs.
    if index is None:
        bound = canonical_plain([name, opening.value])
    elif 0 <= index <= _MAX_INDEX:
        bound = canonical_plain([name, index, opening.value])
    else:
        raise InputError(f"no element {index}")
    return hashlib.sha256(_COMMIT + opening.salt + bound).hexdigest()


_MAX_INDEX = 2**53 - 1


def _list_root(elements: Sequence[str]) -> str:
    h = hashlib.sha256(_COMMIT_LIST)
    for c in elements:
        h.update(bytes.fromhex(c))
    return h.hexdigest()


def list_opening(name: str, openings: Sequence[Opening], index: int) -> ListOpening:
    """Open element ``index`` of list field ``name`` from its stored openings."""
    if not 0 <= index < len(openings):
        raise InputError(f"{name} has no element {index}")
    elements = tuple(open_commitment(name, o, i) for i, o in enumerate(openings))
    return ListOpening(index, openings[index], elements)


def check_opening(event: Event, name: str, opening: Opening | ListOpening) -> None:
    """Return if ``opening`` opens field ``name`` of ``event``; else raise ``InputError``."""
    published = event.commitments.get(name)
    if published is None:
        raise InputError(f"the event commits to no field {name!r}")
    if isinstance(opening, ListOpening):
        if name not in KINDS[event.kind].private_lists:
            raise InputError(f"{name} is not a list field of {event.kind}")
        ok = (
            0 <= opening.index < len(opening.elements)
            and opening.elements[opening.index]
            == open_commitment(name, opening.opening, opening.index)
            and _list_root(opening.elements) == published
        )
    else:
        ok = (
            name not in KINDS[event.kind].private_lists
            and open_commitment(name, opening) == published
        )
    if not ok:
        raise InputError(f"the opening does not match the commitment to {name}", field=name)


Openings = dict[str, Opening | tuple[Opening, ...]]


def format_openings(openings: Mapping[str, Opening | tuple[Opening, ...]]) -> bytes:
    """Openings as canonical JSON for private storage (salts in base64url)."""

    def one(o: Opening) -> dict[str, str]:
        return {"salt": base64.urlsafe_b64encode(o.salt).decode(), "value": o.value}

    doc = {k: [one(o) for o in v] if isinstance(v, tuple) else one(v) for k, v in openings.items()}
    # Strings only, under ASCII names (every private field's name is): no walk to check it.
    return canonical_plain(doc) if all(k.isascii() for k in doc) else canonical(doc)


def parse_openings(raw: bytes) -> Openings:
    """The inverse of :func:`format_openings`."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("openings are not valid JSON") from None

    def one(o: Any) -> Opening:
        try:
            return Opening(base64.urlsafe_b64decode(o["salt"]), str(o["value"]))
        except (KeyError, TypeError, binascii.Error):
            raise InputError("an opening is {salt, value}") from None

    if not isinstance(doc, dict):
        raise InputError("openings are a JSON object")
    return {k: tuple(one(o) for o in v) if isinstance(v, list) else one(v) for k, v in doc.items()}


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A parsed log leaf."""

    kind: str
    time: datetime
    demand: str | None
    facts: Mapping[str, Fact] = field(default_factory=dict)
    commitments: Mapping[str, str] = field(default_factory=dict)
    version: int = VERSION


_SPECS: dict[str, tuple[EventSpec, frozenset[str], frozenset[str]]] = {
    kind: (spec, spec.required | spec.optional, spec.private | spec.private_lists)
    for kind, spec in KINDS.items()
}
"""Each kind's spec, the facts it allows and the private fields it allows, looked up once."""


def _normalize(event: Event) -> Event:
    """``event`` with every fact checked against its shape and the kind's spec enforced."""
    found = _SPECS.get(event.kind)
    if found is None:
        raise InputError(f"unknown event kind {event.kind!r}")
    spec, allowed_facts, allowed_private = found
    if event.version != VERSION:
        raise InputError(f"unknown leaf version {event.version}")
    if (event.demand is not None) != spec.about_demand:
        need = "needs a" if spec.about_demand else "takes no"
        raise InputError(f"{event.kind} {need} demand id")
    if event.demand is not None and not DEMAND_ID.fullmatch(event.demand):
        raise InputError("a demand id is 1-64 characters of [A-Za-z0-9_-]")
    names = event.facts.keys()
    if not spec.required <= names <= allowed_facts:
        missing = sorted(spec.required - set(names))
        extra = sorted(set(names) - allowed_facts)
        raise InputError(f"{event.kind}: facts missing {missing}, not allowed {extra}")
    facts: dict[str, Fact] = {}
    for name, value in event.facts.items():
        try:
            facts[name] = FACTS[name](value)
        except InputError as exc:
            raise InputError(f"{event.kind}: fact {name}: {exc.detail}") from None
    if not event.commitments.keys() <= allowed_private:
        stray = sorted(set(event.commitments) - allowed_private)
        raise InputError(f"{event.kind}: no private field {stray[0]!r}")
    for value in event.commitments.values():
        if not isinstance(value, str) or not HEX64.fullmatch(value):
            raise InputError("a commitment is a SHA-256 in hex")
    time = event.time
    if time.tzinfo is None:
        raise InputError("event time must carry a time zone")
    if time.tzinfo is not UTC or time.microsecond:
        time = time.astimezone(UTC).replace(microsecond=0)
    return Event(event.kind, time, event.demand, facts, dict(event.commitments), event.version)


def format_event(event: Event) -> bytes:
    """The canonical leaf for ``event`` (validated against its kind first)."""
    event = _normalize(event)
    doc: dict[str, Any] = {
        "commit": dict(event.commitments),
        "facts": {k: _jsonable(v) for k, v in event.facts.items()},
        "kind": event.kind,
        "time": event.time.strftime(TIME_FORMAT_),
        "v": event.version,
    }
    if event.demand is not None:
        doc["demand"] = event.demand
    # _normalize let through only what canonical_plain takes: ASCII names, strings, integers
    # within ±(2^53 - 1), booleans and lists of them (the facts' shapes, kinds.FACTS).
    leaf = canonical_plain(doc)
    if len(leaf) > MAX_LEAF_BYTES:
        raise EntryTooLargeError(f"{event.kind} leaf of {len(leaf)} bytes is over the limit")
    return leaf


TIME_FORMAT_ = "%Y-%m-%dT%H:%M:%SZ"


def _jsonable(value: Fact) -> Any:
    if isinstance(value, tuple):
        return [dict(v) if isinstance(v, Mapping) else v for v in value]
    return value


def encode_event(
    kind: str,
    *,
    time: datetime,
    demand: str | None = None,
    facts: Mapping[str, Any] | None = None,
    private: Mapping[str, str | Sequence[str]] | None = None,
    salt: Callable[[int], bytes] = new_salt,
) -> tuple[bytes, Openings]:
    """Build the leaf for one event and the openings of its commitments.

    ``private`` maps each private field to a string, or (for a list field) a sequence of
    strings; each gets a fresh salt from ``salt``. Returns ``(leaf, openings)``.
    """
    spec = KINDS.get(kind)
    if spec is None:
        raise InputError(f"unknown event kind {kind!r}")
    commitments: dict[str, str] = {}
    openings: Openings = {}
    for name, value in (private or {}).items():
        if not FIELD_NAME.fullmatch(name):
            raise InputError(f"bad private field name {name!r}")
        if name in spec.private_lists:
            if isinstance(value, str):
                raise InputError(f"{kind}: private field {name} is a list")
            elems = tuple(Opening(salt(SALT_BYTES), str(v)) for v in value)
            commitments[name] = _list_root(
                [open_commitment(name, o, i) for i, o in enumerate(elems)]
            )
            openings[name] = elems
        elif name in spec.private:
            if not isinstance(value, str):
                raise InputError(f"{kind}: private field {name} is a string")
            one = Opening(salt(SALT_BYTES), value)
            commitments[name] = open_commitment(name, one)
            openings[name] = one
        else:
            raise InputError(f"{kind}: no private field {name!r}")
    event = Event(kind, time.replace(microsecond=0), demand, dict(facts or {}), commitments)
    return format_event(event), openings


def _no_floats(text: str) -> Any:
    raise InputError(f"a leaf holds no fractional numbers ({text})")


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise InputError("a leaf repeats a member name")
    return out


_MEMBERS = frozenset({"commit", "demand", "facts", "kind", "time", "v"})
_REQUIRED = _MEMBERS - {"demand"}
# Built once (json.loads with keyword arguments builds a decoder on every call). The strict
# decoder refuses a repeated member name; the fast one, which folds it, is the one used
# first, and the strict one decides every leaf the fast path refuses (see parse_event).
_strict_decode = json.JSONDecoder(
    object_pairs_hook=_no_repeats, parse_float=_no_floats, parse_constant=_no_floats
).decode
_fast_decode = json.JSONDecoder(parse_float=_no_floats, parse_constant=_no_floats).decode
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_BOM = "\ufeff"


def _strict_json(text: str) -> Any:
    """``text`` as JSON, refused exactly as ``json.loads`` with :func:`_no_repeats` refuses it."""
    try:
        if text.startswith(_BOM):  # what json.loads says; the decoder itself does not check
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _strict_decode(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"leaf is not JSON: {exc}") from None


def _read_json(leaf: bytes) -> tuple[str, Any]:
    """The leaf's text and its JSON value (a repeated member name folded into one)."""
    try:
        text = leaf.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"leaf is not JSON: {exc}") from None
    try:
        if text.startswith(_BOM):
            raise json.JSONDecodeError("", text, 0)
        return text, _fast_decode(text)
    except (json.JSONDecodeError, RecursionError, InputError):
        return text, _strict_json(text)  # raises what the strict decoder meets first


def _read_time(time: Any) -> datetime:
    if not isinstance(time, str) or not TIME.fullmatch(time):
        raise InputError("leaf time must look like 2024-06-04T12:00:00Z")
    try:
        if not time.isascii():  # full-width digits match TIME; strptime decides, as before
            return datetime.strptime(time, TIME_FORMAT_).replace(tzinfo=UTC)
        return _utc_time(time)
    except ValueError:
        raise InputError(f"leaf time {time!r} is not a real time") from None


_from_iso = datetime.fromisoformat


def _utc_time(time: str) -> datetime:
    """The UTC time ``time`` names, ASCII digits in :data:`TIME`'s shape; ValueError if it
    names none (what ``datetime()`` refuses, whatever ``fromisoformat`` accepts)."""
    if time[11:13] > "23":
        raise ValueError(f"hour {time[11:13]} is past 23")
    return _from_iso(time)


def _is_canonical(text: str, doc: dict[str, Any], event: Event) -> bool:
    """Whether ``text`` is the leaf :func:`format_event` makes of ``event`` (normalized from
    ``doc``), without running the RFC 8785 encoder.

    For what :func:`_normalize` lets through, ``json.dumps`` with sorted keys, no spaces and
    non-ASCII kept *is* RFC 8785: every member name is ASCII (so code-point order is UTF-16
    order), every number an integer below 2**53, and Python escapes strings as RFC 8785 does.
    The facts it normalized are the facts it read. What remains is what the leaf may spell
    differently from ``format_event``: the time (ASCII digits, and a year below 1000 as
    ``strftime`` writes it) and a ``"demand": null``, which the formatter leaves out. A
    repeated member name, which the fast decoder folds into one, makes the text longer than
    its encoding, so it is refused here too.
    """
    time = doc["time"]
    if not time.isascii() or (time[0] == "0" and event.time.strftime(TIME_FORMAT_) != time):
        return False
    if "demand" in doc and doc["demand"] is None:
        return False
    return bool(_encode(doc) == text)


def _event_of(text: str, doc: Any) -> Event:
    if not isinstance(doc, dict) or not _REQUIRED <= doc.keys() <= _MEMBERS:
        raise InputError("a leaf is an object with commit, [demand,] facts, kind, time and v")
    kind, commit, facts, version = doc["kind"], doc["commit"], doc["facts"], doc["v"]
    when = _read_time(doc["time"])
    if not isinstance(kind, str) or not isinstance(commit, dict) or not isinstance(facts, dict):
        raise InputError("leaf kind is a string; commit and facts are objects")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError("leaf version is an integer")
    demand = doc.get("demand")
    if demand is not None and not isinstance(demand, str):
        raise InputError("leaf demand id is a string")
    event = _normalize(Event(kind, when, demand, facts, commit, version))
    if not _is_canonical(text, doc, event):
        raise InputError("leaf is not in RFC 8785 canonical form")
    return event


# -- the fast path: a leaf already in canonical form ---------------------------------------

_NAME, _HEX = r'"[a-z][a-z0-9_]{0,31}"', r'"[0-9a-f]{64}"'
_CANONICAL = re.compile(
    rf'\{{"commit":\{{((?:{_NAME}:{_HEX}(?:,{_NAME}:{_HEX})*)?)\}}'
    r'(?:,"demand":"([A-Za-z0-9_-]{1,64})")?'
    r',"facts":(\{.*\}),"kind":"([a-z_.]{1,64})"'
    r',"time":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)","v":1\}'
)
"""The only shape a canonical leaf has: its members in order, no spaces, ASCII where it
matters. The facts are whatever object stands between ``"facts":`` and ``,"kind":``."""
_MEMBER = re.compile(r'"([a-z][a-z0-9_]{0,31})":("[^"\\]*"|-?[0-9]+|true|false|null|\[[^\[\]]*\])')
"""One member of a facts object as custodes writes them: a string without escapes, an
integer, a constant, or a list without a list in it. This only cuts the facts into members;
whether a value is canonical JSON, and of its fact's shape, :func:`_canonical_fact` decides.
A value cut short (a ``]`` in a string of a list, say) is no JSON value and takes the
general path, like anything else unusual."""
_SEEN_FACT: dict[tuple[str, str], Any] = {}
"""Fact values judged before, by (fact, value text): the normalized value, or None."""
_SEEN_MAX = 8192
_SEEN_FACTS_MAX = 1024
_FAST = {
    kind: (spec.about_demand, spec, facts, private, dict[str, dict[str, Fact]]())
    for kind, (spec, facts, private) in _SPECS.items()
}
"""Each kind as the fast path needs it: whether it is about a demand, its spec, the facts and
private fields it allows, and the facts objects judged good before (by text, at most
``_SEEN_FACTS_MAX``, none with findings)."""


_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(seen: dict[_K, _V], key: _K, value: _V, most: int = _SEEN_MAX) -> None:
    """``seen[key] = value``, the table emptied first when it holds ``most`` entries."""
    if len(seen) >= most:
        seen.clear()
    seen[key] = value


def _fresh(value: Fact) -> Fact:
    """``value``, with the findings in it copied: a remembered value is never handed out."""
    if type(value) is tuple and value and type(value[0]) is dict:
        return tuple(map(dict, value))
    return value


def _canonical_fact(name: str, text: str) -> tuple[bool, Any]:
    """(True, the normalized value) if ``text`` is the canonical JSON of a value of fact
    ``name``'s shape, else (False, None). Answers are remembered by name and text."""
    seen = _SEEN_FACT.get((name, text), _SEEN_FACT)
    if seen is not _SEEN_FACT:
        return seen is not None, seen
    check = FACTS.get(name)
    value: Any = None
    if check is not None:
        try:
            decoded = _fast_decode(text)
            if _encode(decoded) == text:
                value = check(decoded)
        except (ValueError, RecursionError, InputError):
            value = None
    _remember(_SEEN_FACT, (name, text), value)
    return value is not None, value


def _canonical_facts(
    text: str, spec: EventSpec, allowed: frozenset[str], seen: dict[str, dict[str, Fact]]
) -> Any:
    """The facts ``text`` (an object, ``{...}``) holds, normalized, if it is the canonical
    JSON of facts of ``spec``'s kind, each of its shape; None otherwise. Each member is
    judged on its own and remembered, so facts that differ only in a count cost a look-up
    per member; facts without findings are remembered whole in ``seen`` (the caller looks
    there first)."""
    facts: dict[str, Fact] = {}
    pos, end, last = 1, len(text) - 1, ""
    while pos < end:
        match = _MEMBER.match(text, pos, end)
        if match is None:
            return None
        name, value_text = match.groups()
        if name <= last:  # members sorted, none repeated
            return None
        ok, value = _canonical_fact(name, value_text)
        if not ok:
            return None
        facts[name], last, pos = _fresh(value), name, match.end()
        if pos < end:
            if text[pos] != "," or pos + 1 == end:
                return None
            pos += 1
    if not spec.required <= facts.keys() <= allowed:
        return None
    if "findings" not in facts:  # then every value is immutable, and can be shared
        _remember(seen, text, facts, _SEEN_FACTS_MAX)
        return dict(facts)
    return facts


def _parse_canonical(leaf: bytes) -> Event | None:
    """The event ``leaf`` holds if it is canonical and well-formed, read without a JSON
    parser for anything but the facts; None when anything about it is unusual, and the
    general path then decides (and names the problem).

    Sound because every part it accepts is canonical JSON on its own (members in order,
    commitment names sorted and distinct, the facts re-encoded to the same text), so the
    leaf is the canonical form of exactly the object the general path would read, and that
    object passes every check the general path makes (:func:`_normalize`)."""
    try:
        text = leaf.decode("utf-8")
    except UnicodeDecodeError:
        return None
    match = _CANONICAL.fullmatch(text)
    if match is None:
        return None
    commit_text, demand, facts_text, kind, time = match.groups()
    found = _FAST.get(kind)
    if found is None or (demand is not None) != found[0] or time[0] == "0":
        return None  # a year below 1000 is written with three digits by format_event
    _, spec, allowed_facts, allowed_private, seen = found
    if commit_text:
        # The pattern has checked every pair ("name":"hex", no quote inside either), so
        # the text splits into name, hex, name, hex, ... at the quotes between them.
        flat = commit_text[1:-1].replace('":"', '","').split('","')
        pairs = iter(flat)
        commit = dict(zip(pairs, pairs, strict=True))
        if len(flat) > 2:  # more than one: sorted, none repeated
            names = flat[::2]
            if len(commit) != len(names) or names != sorted(names):
                return None
        if not commit.keys() <= allowed_private:
            return None
    else:
        commit = {}
    facts = seen.get(facts_text)  # facts seen before cost a look-up and a copy
    if facts is not None:
        facts = dict(facts)
    else:
        facts = _canonical_facts(facts_text, spec, allowed_facts, seen)
        if facts is None:
            return None
    try:
        when = _utc_time(time)
    except ValueError:
        return None
    # Event(kind, when, demand, facts, commit) at a third of the cost: the frozen dataclass's
    # __init__ sets each field through object.__setattr__, this the instance's dict at once.
    event: Event = _new(Event)
    _set(event, "__dict__", {"kind": kind, "time": when, "demand": demand, "facts": facts,
                             "commitments": commit, "version": VERSION})  # fmt: skip
    return event


_new = object.__new__
_set = object.__setattr__


def parse_event(leaf: bytes) -> Event:
    """Parse a leaf strictly: size first, then JSON (no repeated member names, no fractional
    numbers), then the members and the kind's shape, then canonical form. The auditor calls
    this on every entry.

    A leaf already in canonical form, as every leaf custodes wrote is, is read on a fast
    path (:func:`_parse_canonical`); anything else takes the general path, which gives the
    same event for the leaves the fast path accepts and names what is wrong with the rest.
    A leaf is canonical when it is exactly the bytes :func:`format_event` makes of the event
    it holds; :func:`_is_canonical` proves that without re-encoding through RFC 8785. The JSON
    is first read without looking for repeated member names; a leaf that repeats one is never
    canonical, so it is refused anyway, and every refusal asks the strict reading first, so
    that such a leaf is refused for its repeated name, as it always was.
    """
    if len(leaf) > MAX_LEAF_BYTES:
        raise TooLargeError(f"leaf of {len(leaf)} bytes is over {MAX_LEAF_BYTES}")
    event = _parse_canonical(leaf)
    if event is not None:
        return event
    text, doc = _read_json(leaf)
    try:
        return _event_of(text, doc)
    except Exception:
        _strict_json(text)  # a repeated member name is the first thing wrong with the leaf
        raise
