"""JSON forms of the domain objects: ``parse_*`` for untrusted input, ``format_*`` back.

Each ``parse_*`` takes a decoded JSON value (use :func:`read_json` on raw bytes first: it
checks the size limit before decoding and refuses duplicate keys and non-finite numbers)
and returns a frozen, validated object, or raises :class:`~custodes.errors.InputError`
whose message starts with the path of the offending field. Unknown fields are errors too,
so a misspelt ``"nondisclousre"`` cannot silently drop a gag order. Each ``format_*`` is
the exact inverse: ``parse_x(format_x(x)) == x``.

>>> body = read_json(b'{"kind": "disclosure", "instrument": {"kind": "subpoena"},'
...                  b' "targets": [{"kind": "account", "id": "u-1"}],'
...                  b' "categories": ["subscriber_info"]}', limit=4096)
>>> from datetime import UTC, datetime
>>> d = parse_demand(body, id="d_1", authority_id="us-x", received_at=datetime(2024, 1, 1,
...                  tzinfo=UTC))
>>> format_demand(d)["targets"]
[{'kind': 'account', 'id': 'u-1'}]
>>> parse_demand({**body, "targets": [{"kind": "server", "id": "x"}]}, id="d_1",
...              authority_id=None, received_at=datetime(2024, 1, 1, tzinfo=UTC))
Traceback (most recent call last):
...
custodes.errors.InputError: targets[0].kind: 'server' is not one of account, meeting, ...
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from custodes.errors import InputError, TooLargeError

from .demand import (
    DataCategory,
    Demand,
    DemandKind,
    EvidenceRef,
    InstrumentKind,
    LegalInstrument,
    Nondisclosure,
    Offence,
    Restriction,
    RestrictionAction,
    Target,
    TargetKind,
    TimeRange,
)
from .parties import (
    Authority,
    AuthorityKind,
    Channel,
    ChannelKind,
    Staff,
    Standing,
    VerificationKey,
)
from .screening import (
    CallbackStatus,
    EvidenceStatus,
    Finding,
    Outcome,
    ScreeningContext,
    SignatureStatus,
    Subject,
)

__all__ = [
    "MAX_DEMAND_BYTES",
    "MAX_TARGETS",
    "format_authority",
    "format_channel",
    "format_context",
    "format_demand",
    "format_finding",
    "format_staff",
    "format_subject",
    "format_target",
    "format_time",
    "parse_authority",
    "parse_channel",
    "parse_context",
    "parse_demand",
    "parse_finding",
    "parse_staff",
    "parse_subject",
    "parse_target",
    "parse_time",
    "read_json",
]

MAX_DEMAND_BYTES = 4 * 1024 * 1024
"""Largest demand body accepted (a spreadsheet of ~23,000 identifiers fits easily)."""
MAX_TARGETS = 100_000
"""Most targets a demand may list; the policy cap (25 by default) is far lower, but a
demand over the cap must still be recorded and refused with a rule id."""

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


def read_json(raw: bytes, *, limit: int) -> Any:
    """Decode untrusted JSON: size checked first, duplicate keys and NaN/Infinity refused."""
    if len(raw) > limit:
        raise TooLargeError(f"body of {len(raw)} bytes is over the {limit}-byte limit")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise InputError(f"duplicate key {key!r}")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise InputError(f"{name} is not a JSON number")

    try:
        text = raw.decode("utf-8")
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"not valid JSON: {exc}") from None


@contextmanager
def _at(path: str) -> Iterator[None]:
    """Prefix any InputError raised inside with ``path``."""
    try:
        yield
    except InputError as exc:
        if exc.detail.startswith(path):
            raise
        raise type(exc)(f"{path}: {exc.detail}", **exc.evidence) from None


class _Fields:
    """A JSON object read field by field; every field must be consumed."""

    def __init__(self, value: Any, path: str, allowed: frozenset[str]) -> None:
        if not isinstance(value, dict):
            raise InputError(f"{path or 'body'}: expected an object")
        unknown = sorted(set(value) - allowed)
        if unknown:
            where = f"{path}." if path else ""
            raise InputError(f"{where}{unknown[0]}: unknown field")
        self.value: dict[str, Any] = value
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type[T], *, default: T | None = None) -> T:
        value = self.value.get(key)
        if value is None:
            if default is None:
                raise InputError(f"{self.at(key)}: required")
            return default
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise InputError(f"{self.at(key)}: expected {_TYPE_NAMES.get(kind, kind.__name__)}")
        return value  # type: ignore[no-any-return]

    def opt(self, key: str, kind: type[T]) -> T | None:
        if self.value.get(key) is None:
            return None
        return self.get(key, kind)

    def enum(self, key: str, kind: type[E], *, default: E | None = None) -> E:
        raw = self.value.get(key)
        if raw is None and default is not None:
            return default
        return _enum(self.get(key, str), kind, self.at(key))

    def items(self, key: str, parse: Callable[[Any, str], T]) -> tuple[T, ...]:
        values = self.get(key, list, default=[])
        return tuple(parse(v, f"{self.at(key)}[{i}]") for i, v in enumerate(values))


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list",
               dict: "an object"}  # fmt: skip


def _enum(raw: Any, kind: type[E], path: str) -> E:
    if not isinstance(raw, str):
        raise InputError(f"{path}: expected a string")
    try:
        return kind(raw)
    except ValueError:
        names = ", ".join(m.value for m in kind)
        raise InputError(f"{path}: {raw!r} is not one of {names}") from None


def _text(raw: Any, path: str) -> str:
    if not isinstance(raw, str):
        raise InputError(f"{path}: expected a string")
    return raw


def parse_time(raw: Any, path: str = "time") -> datetime:
    """An RFC 3339 timestamp with an offset (``Z`` or ``+hh:mm``), returned in UTC."""
    text = _text(raw, path)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{path}: {text!r} is not an RFC 3339 timestamp") from None
    if value.tzinfo is None or "T" not in text:
        raise InputError(f"{path}: {text!r} needs a date, a time and an offset")
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """UTC, ``Z`` suffix, microseconds only when present."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _date(raw: Any, path: str) -> date:
    text = _text(raw, path)
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{path}: {text!r} is not a date like 2024-06-04") from None


def parse_target(raw: Any, path: str = "target") -> Target:
    f = _Fields(raw, path, frozenset({"kind", "id"}))
    with _at(path):
        return Target(f.enum("kind", TargetKind), f.get("id", str))


def format_target(target: Target) -> dict[str, Any]:
    return {"kind": target.kind.value, "id": target.id}


def _instrument(raw: Any, path: str) -> LegalInstrument:
    keys = {"kind", "reference", "issuer", "issued_on", "provisions", "document_sha256"}
    f = _Fields(raw, path, frozenset(keys))
    issued = f.opt("issued_on", str)
    with _at(path):
        return LegalInstrument(
            kind=f.enum("kind", InstrumentKind),
            reference=f.get("reference", str, default=""),
            issuer=f.get("issuer", str, default=""),
            issued_on=_date(issued, f.at("issued_on")) if issued is not None else None,
            provisions=f.items("provisions", _text),
            document_sha256=f.opt("document_sha256", str),
        )


def _format_instrument(i: LegalInstrument) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": i.kind.value}
    if i.reference:
        out["reference"] = i.reference
    if i.issuer:
        out["issuer"] = i.issuer
    if i.issued_on is not None:
        out["issued_on"] = i.issued_on.isoformat()
    if i.provisions:
        out["provisions"] = list(i.provisions)
    if i.document_sha256 is not None:
        out["document_sha256"] = i.document_sha256
    return out


def _time_range(raw: Any, path: str) -> TimeRange:
    f = _Fields(raw, path, frozenset({"start", "end"}))
    with _at(path):
        return TimeRange(
            parse_time(f.get("start", str), f.at("start")),
            parse_time(f.get("end", str), f.at("end")),
        )


def _offence(raw: Any, path: str) -> Offence:
    f = _Fields(raw, path, frozenset({"category", "description"}))
    with _at(path):
        return Offence(f.get("category", str), f.get("description", str, default=""))


def _restriction(raw: Any, path: str) -> Restriction:
    f = _Fields(raw, path, frozenset({"action", "territories", "duration_days"}))
    with _at(path):
        territories = f.items("territories", _text)
        return Restriction(
            f.enum("action", RestrictionAction),
            tuple(sorted(set(territories))),
            f.opt("duration_days", int),
        )


def _evidence(raw: Any, path: str) -> EvidenceRef:
    f = _Fields(raw, path, frozenset({"sha256", "description", "platform_ref"}))
    with _at(path):
        return EvidenceRef(
            f.get("sha256", str),
            f.get("description", str, default=""),
            f.opt("platform_ref", str),
        )


def _nondisclosure(raw: Any, path: str) -> Nondisclosure:
    f = _Fields(raw, path, frozenset({"until"}))
    until = f.opt("until", str)
    return Nondisclosure(_date(until, f.at("until")) if until is not None else None)


_DEMAND_KEYS = frozenset(
    {
        "kind",
        "instrument",
        "targets",
        "categories",
        "time_range",
        "offence",
        "restriction",
        "deadline",
        "nondisclosure",
        "evidence",
        "claims_tos_violation",
    }
)


def parse_demand(raw: Any, *, id: str, authority_id: str | None, received_at: datetime) -> Demand:
    """A demand from its JSON body; ``id``, ``authority_id`` and ``received_at`` come from
    intake, never from the body."""
    f = _Fields(raw, "", _DEMAND_KEYS)
    targets = f.value.get("targets")
    if isinstance(targets, list) and len(targets) > MAX_TARGETS:
        raise TooLargeError(f"targets: more than {MAX_TARGETS} targets")

    def optional(key: str, parse: Callable[[Any, str], T]) -> T | None:
        value = f.value.get(key)
        return None if value is None else parse(value, key)

    categories = f.items("categories", lambda v, p: _enum(v, DataCategory, p))
    deadline = f.opt("deadline", str)
    return Demand(
        id=id,
        authority_id=authority_id,
        kind=f.enum("kind", DemandKind),
        instrument=_instrument(f.get("instrument", dict), "instrument"),
        targets=f.items("targets", parse_target),
        received_at=received_at,
        categories=tuple(sorted(set(categories))),
        time_range=optional("time_range", _time_range),
        offence=optional("offence", _offence),
        restriction=optional("restriction", _restriction),
        deadline=parse_time(deadline, "deadline") if deadline is not None else None,
        nondisclosure=optional("nondisclosure", _nondisclosure),
        evidence=f.items("evidence", _evidence),
        claims_tos_violation=f.get("claims_tos_violation", bool, default=False),
    )


def format_demand(d: Demand) -> dict[str, Any]:
    """The JSON body of ``d`` (without ``id``, ``authority_id`` and ``received_at``)."""
    out: dict[str, Any] = {
        "kind": d.kind.value,
        "instrument": _format_instrument(d.instrument),
        "targets": [format_target(t) for t in d.targets],
    }
    if d.categories:
        out["categories"] = [c.value for c in d.categories]
    if d.time_range is not None:
        out["time_range"] = {
            "start": format_time(d.time_range.start),
            "end": format_time(d.time_range.end),
        }
    if d.offence is not None:
        out["offence"] = {"category": d.offence.category}
        if d.offence.description:
            out["offence"]["description"] = d.offence.description
    if d.restriction is not None:
        r: dict[str, Any] = {"action": d.restriction.action.value}
        if d.restriction.territories:
            r["territories"] = list(d.restriction.territories)
        if d.restriction.duration_days is not None:
            r["duration_days"] = d.restriction.duration_days
        out["restriction"] = r
    if d.deadline is not None:
        out["deadline"] = format_time(d.deadline)
    if d.nondisclosure is not None:
        until = d.nondisclosure.until
        out["nondisclosure"] = {"until": until.isoformat() if until else None}
    if d.evidence:
        out["evidence"] = [_format_evidence(e) for e in d.evidence]
    if d.claims_tos_violation:
        out["claims_tos_violation"] = True
    return out


def _format_evidence(e: EvidenceRef) -> dict[str, Any]:
    out: dict[str, Any] = {"sha256": e.sha256}
    if e.description:
        out["description"] = e.description
    if e.platform_ref is not None:
        out["platform_ref"] = e.platform_ref
    return out


def _key(raw: Any, path: str) -> VerificationKey:
    f = _Fields(raw, path, frozenset({"id", "ed25519"}))
    encoded = f.get("ed25519", str)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{f.at('ed25519')}: not base64") from None
    with _at(path):
        return VerificationKey(f.get("id", str), key)


def parse_channel(raw: Any, path: str = "channel") -> Channel:
    f = _Fields(raw, path, frozenset({"kind", "address"}))
    with _at(path):
        return Channel(f.enum("kind", ChannelKind), f.get("address", str))


def format_channel(c: Channel) -> dict[str, Any]:
    return {"kind": c.kind.value, "address": c.address}


def parse_authority(raw: Any, path: str = "authority") -> Authority:
    keys = {"id", "name", "kind", "jurisdiction", "standing", "keys", "channels"}
    f = _Fields(raw, path, frozenset(keys))
    with _at(path):
        return Authority(
            id=f.get("id", str),
            name=f.get("name", str),
            kind=f.enum("kind", AuthorityKind),
            jurisdiction=f.get("jurisdiction", str),
            standing=f.enum("standing", Standing, default=Standing.ACTIVE),
            keys=f.items("keys", _key),
            channels=f.items("channels", parse_channel),
        )


def format_authority(a: Authority) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "kind": a.kind.value,
        "jurisdiction": a.jurisdiction,
        "standing": a.standing.value,
        "keys": [{"id": k.id, "ed25519": base64.b64encode(k.ed25519).decode()} for k in a.keys],
        "channels": [format_channel(c) for c in a.channels],
    }


def parse_staff(raw: Any, path: str = "staff") -> Staff:
    f = _Fields(raw, path, frozenset({"id", "roles", "location"}))
    with _at(path):
        return Staff(f.get("id", str), frozenset(f.items("roles", _text)), f.get("location", str))


def format_staff(s: Staff) -> dict[str, Any]:
    return {"id": s.id, "roles": sorted(s.roles), "location": s.location}


def parse_subject(raw: Any, path: str = "subject") -> Subject:
    keys = {"target", "jurisdiction", "data_region", "account_type", "records", "affected"}
    f = _Fields(raw, path, frozenset(keys))
    with _at(path):
        return Subject(
            target=parse_target(f.get("target", dict), f.at("target")),
            jurisdiction=f.get("jurisdiction", str),
            data_region=f.get("data_region", str),
            account_type=f.get("account_type", str),
            records=frozenset(f.items("records", lambda v, p: _enum(v, DataCategory, p))),
            affected=frozenset(f.items("affected", _text)),
        )


def format_subject(s: Subject) -> dict[str, Any]:
    return {
        "target": format_target(s.target),
        "jurisdiction": s.jurisdiction,
        "data_region": s.data_region,
        "account_type": s.account_type,
        "records": sorted(c.value for c in s.records),
        "affected": sorted(s.affected),
    }


def parse_context(raw: Any, path: str = "context") -> ScreeningContext:
    f = _Fields(raw, path, frozenset({"now", "signature", "callback", "volume", "evidence"}))
    with _at(path):
        return ScreeningContext(
            now=parse_time(f.get("now", str), f.at("now")),
            signature=f.enum("signature", SignatureStatus),
            callback=f.enum("callback", CallbackStatus, default=CallbackStatus.NONE),
            volume=f.get("volume", int, default=0),
            evidence=f.items("evidence", lambda v, p: _enum(v, EvidenceStatus, p)),
        )


def format_context(c: ScreeningContext) -> dict[str, Any]:
    return {
        "now": format_time(c.now),
        "signature": c.signature.value,
        "callback": c.callback.value,
        "volume": c.volume,
        "evidence": [e.value for e in c.evidence],
    }


def parse_finding(raw: Any, path: str = "finding") -> Finding:
    keys = {"rule", "outcome", "reason", "remedy", "target", "item", "role", "route"}
    f = _Fields(raw, path, frozenset(keys))
    target = f.opt("target", dict)
    return Finding(
        rule_id=f.get("rule", str),
        outcome=f.enum("outcome", Outcome),
        reason=f.get("reason", str, default=""),
        remedy=f.get("remedy", str, default=""),
        target=parse_target(target, f.at("target")) if target is not None else None,
        item=f.opt("item", str),
        role=f.opt("role", str),
        route=f.opt("route", str),
    )


def format_finding(x: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule": x.rule_id,
        "outcome": x.outcome.value,
        "reason": x.reason,
        "remedy": x.remedy,
    }
    if x.target is not None:
        out["target"] = format_target(x.target)
    if x.item is not None:
        out["item"] = x.item
    if x.role is not None:
        out["role"] = x.role
    if x.route is not None:
        out["route"] = x.route
    return out
