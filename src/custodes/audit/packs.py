"""Published policy packs: what an auditor needs to judge a screening again.

The platform publishes every policy pack it judges demands under: the directory custodes
loads (``pack.toml``, the ``*.cedar`` policies, the schema, the data files, the tests). Each
``demand.screened`` event names the hash of its pack. An auditor who has the directory
(``custodes audit --pack DIR``) reads from it, with nothing of custodes but this module:

- its **hash**: the SHA-256 of its manifest, one line ``<sha256 of file>  <path>\\n`` per
  file, sorted by path (POSIX, relative to the pack; hidden files and ``__pycache__``
  skipped), as ``find . -type f | sort | xargs sha256sum | sha256sum`` prints it;
- its **rules**: every Cedar policy's ``@id``, ``@outcome``, ``@role`` and the actions (the
  screening checks) it names;
- its **limits** (``pack.toml`` ``[limits]`` and ``offences.toml``), as the ``Limits::"pack"``
  entity the policies read;
- for each check, what its policies **read**: the attributes of the principal (the
  authority), the resource (the demand) and the context, found by walking the policies'
  JSON form. A check whose policies use the entity hierarchy (``in``), read an attribute of
  anything but those three and the limits, or constrain the principal or resource in their
  scope, is *opaque*: it is never re-run.

:meth:`PublishedPack.decide` asks Cedar one check, with the attributes the caller could
rebuild from the log, exactly as the platform asked it (the same request, the same
``Limits`` entity, the same policies), and answers with the findings the platform would have
logged: ``(rule, outcome)`` pairs, ``<check>.default_deny`` when nothing allowed and nothing
refused, ``pack.error`` when Cedar could not decide. It answers None when a policy of the
check reads an attribute the caller does not know: then Cedar's answer could depend on it.
The pack is not validated as custodes validates it when it loads one (the platform did that
before it screened anything; the hash shows these are the files it used), but a directory
that cannot be read as a pack is refused with :class:`~custodes.audit.errors.PackError`.

Answers are remembered. An integer attribute that the check's policies only ever compare
with constants (``resource.volume > Limits::"pack".volume_threshold``) is remembered by which
side of each constant it falls on, so a log of a million screenings asks Cedar a handful of
questions, not millions.

>>> from custodes.policy import DEFAULT_PACK, pack_hash
>>> published = load_published_pack(DEFAULT_PACK)
>>> published.hash == pack_hash(DEFAULT_PACK), published.rules["scope.target_cap"].outcome
(True, 'refuse')
>>> sorted(published.decide("scope", {}, {"target_count": 23000, "volume": 23010}) or ())
[('scope.target_cap', 'refuse'), ('scope.volume', 'escalate')]
>>> published.decide("period", {}, {"categories": ["content"]}) is None  # range_days unknown
True
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cedarpy

from custodes.audit.errors import PackError

__all__ = [
    "MAX_PACK_BYTES",
    "MAX_PACK_FILES",
    "PublishedPack",
    "PublishedRule",
    "load_published_pack",
    "published_pack_hash",
]

log = logging.getLogger(__name__)

#: Most files, and most bytes in all, a pack directory may hold; checked before reading.
MAX_PACK_FILES = 512
MAX_PACK_BYTES = 16 * 1024 * 1024

Found = frozenset[tuple[str, str]]
"""What one check found: (rule id, outcome) pairs."""

_VARS = frozenset({"principal", "resource", "context"})
_LIMITS = {"__entity": {"type": "Limits", "id": "pack"}}
_COMPARE = frozenset({"<", "<=", ">", ">=", "==", "!="})
_BINARY = frozenset({"&&", "||", "+", "-", "*", "contains", "containsAll", "containsAny"})
_REQUESTER = {"type": "Authority", "id": "requester"}
_DEMAND = {"type": "Demand", "id": "demand"}


@dataclass(frozen=True)
class PublishedRule:
    """One Cedar policy of a pack: its id, the checks it answers, its outcome and role."""

    id: str
    actions: tuple[str, ...]
    outcome: str
    role: str | None


class _Opaque(Exception):
    """A policy does something an auditor cannot re-run from the log's facts."""


@dataclass(frozen=True)
class _Reads:
    """What the policies of one check read, and the constants each compared-only integer
    attribute is compared with."""

    attrs: frozenset[str]
    thresholds: Mapping[str, tuple[int, ...]]

    @property
    def plan(self) -> tuple[tuple[str, str, tuple[int, ...] | None], ...]:
        """(variable, attribute, thresholds) for each attribute read, in a fixed order."""
        return tuple(
            (*attr.split(".", 1), self.thresholds.get(attr))  # type: ignore[misc]
            for attr in sorted(self.attrs)
        )


class _Walk:
    """Collects the attributes a policy reads (``resource.volume``), or raises _Opaque."""

    def __init__(self, limits: Mapping[str, Any]) -> None:
        self.limits = limits
        self.attrs: set[str] = set()
        self.compared: dict[str, set[int]] = {}
        self.other: set[str] = set()

    def policy(self, policy: Mapping[str, Any]) -> None:
        if policy.get("principal") != {"op": "All"} or policy.get("resource") != {"op": "All"}:
            raise _Opaque("the policy constrains its principal or resource")
        for condition in policy.get("conditions", ()):
            self.expr(condition["body"])

    def _attr(self, node: Any) -> str | None:
        """``var.attr`` if ``node`` reads an attribute of the principal, resource or context."""
        read = node.get(".") if isinstance(node, dict) else None
        if isinstance(read, dict) and read.get("left", {}).get("Var") in _VARS:
            return f"{read['left']['Var']}.{read['attr']}"
        return None

    def _constant(self, node: Any) -> int | None:
        """The integer ``node`` stands for, if it is a literal or a limit."""
        if not isinstance(node, dict):
            return None
        if "Value" in node:
            value = node["Value"]
        else:
            read = node.get(".")
            if not isinstance(read, dict) or read.get("left") != {"Value": _LIMITS}:
                return None
            value = self.limits.get(read["attr"])
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def expr(self, node: Any) -> None:
        if not isinstance(node, dict) or len(node) != 1:
            raise _Opaque(f"not an expression: {str(node)[:60]}")
        ((op, arg),) = node.items()
        if op == "Value":
            return
        if op == "Var":
            if arg not in (*_VARS, "action"):
                raise _Opaque(f"variable {arg}")
            return
        if op in (".", "has"):
            self._read(op, arg)
        elif op in _COMPARE:
            self._compare(arg)
        elif op in _BINARY:
            self.expr(arg["left"])
            self.expr(arg["right"])
        elif op in ("!", "neg", "isEmpty"):
            self.expr(arg["arg"])
        elif op == "if-then-else":
            for part in ("if", "then", "else"):
                self.expr(arg[part])
        elif op == "like":
            self.expr(arg["left"])
        elif op == "Set" or (isinstance(arg, list) and op not in ("Record", "in", "is")):
            for item in arg:  # a set, or an extension function's arguments
                self.expr(item)
        elif op == "Record":
            for item in arg.values():
                self.expr(item)
        else:  # "in" (the entity hierarchy), "is", tags, slots, anything new
            raise _Opaque(f"operator {op}")

    def _read(self, op: str, arg: Mapping[str, Any]) -> None:
        left = arg["left"]
        if left == {"Value": _LIMITS}:
            return
        attr = self._attr({".": arg})
        if attr is None:
            raise _Opaque(f"an attribute of {str(left)[:60]}")
        self.attrs.add(attr)
        if op == ".":
            self.other.add(attr)  # read as a value; a comparison takes it back out below

    def _compare(self, arg: Mapping[str, Any]) -> None:
        left, right = arg["left"], arg["right"]
        for one, other in ((left, right), (right, left)):
            attr, constant = self._attr(one), self._constant(other)
            if attr is not None and constant is not None:
                self.attrs.add(attr)
                self.compared.setdefault(attr, set()).add(constant)
                self.expr(other)
                return
        self.expr(left)
        self.expr(right)

    def reads(self) -> _Reads:
        thresholds = {
            attr: tuple(sorted(values))
            for attr, values in self.compared.items()
            if attr not in self.other
        }
        return _Reads(frozenset(self.attrs), MappingProxyType(thresholds))


@dataclass(frozen=True, eq=False)
class PublishedPack:
    """A published policy pack, as an auditor reads it. Compare packs by :attr:`hash`."""

    path: Path
    hash: str
    rules: Mapping[str, PublishedRule]
    limits: Mapping[str, Any]
    checks: Mapping[str, tuple[Any, _Reads | None]] = field(repr=False)
    """For each check (Cedar action): its policies, and what they read (None: opaque)."""
    _answers: dict[tuple[Any, ...], Found] = field(default_factory=dict, repr=False)
    _plans: dict[str, Any] = field(default_factory=dict, repr=False)

    def rules_of(self, check: str) -> frozenset[str]:
        """The ids of the rules that answer ``check``."""
        return frozenset(r.id for r in self.rules.values() if check in r.actions)

    def decide(
        self, check: str, principal: Mapping[str, Any], resource: Mapping[str, Any]
    ) -> Found | None:
        """What the pack finds for ``check`` (see the module docstring), or None when a
        policy of it reads something not in ``principal`` or ``resource``, or is opaque.

        An attribute absent from ``principal`` or ``resource`` is unknown, unless the caller
        passes it as None: known to be absent (Cedar's ``has`` is then false)."""
        policies, reads = self.checks.get(check, (None, _Reads(frozenset(), {})))
        if reads is None:
            return None
        plan = self._plans.get(check)
        if plan is None:
            plan = self._plans[check] = reads.plan
        known = {"principal": principal, "resource": resource, "context": {}}
        key: list[Any] = [check]
        for var, name, thresholds in plan:
            values = known[var]
            if name not in values:
                return None
            key.append(_abstract(values[name], thresholds))
        cached = self._answers.get(tuple(key))
        if cached is None:
            cached = self._ask(check, policies, principal, resource)
            self._answers[tuple(key)] = cached
        return cached

    def _ask(
        self,
        check: str,
        policies: Any,
        principal: Mapping[str, Any],
        resource: Mapping[str, Any],
    ) -> Found:
        def entity(uid: Mapping[str, str], attrs: Mapping[str, Any]) -> dict[str, Any]:
            present = {k: v for k, v in attrs.items() if v is not None}
            return {"uid": dict(uid), "attrs": present, "parents": []}

        limits = {"uid": {"type": "Limits", "id": "pack"}, "attrs": dict(self.limits)}
        entities = [{**limits, "parents": []}, entity(_REQUESTER, principal)]
        entities.append(entity(_DEMAND, resource))
        request = {
            "principal": dict(_REQUESTER),
            "action": {"type": "Action", "id": check},
            "resource": dict(_DEMAND),
            "context": {},
        }
        if policies is None:
            return frozenset({(f"{check}.default_deny", "refuse")})
        result = cedarpy.is_authorized(request, policies, json.dumps(entities))
        if result.diagnostics.errors or result.decision is cedarpy.Decision.NoDecision:
            return frozenset({("pack.error", "refuse")})
        ids = set(result.diagnostics.id_annotations_by_reason.values())
        if not ids:
            return frozenset({(f"{check}.default_deny", "refuse")})
        return frozenset((i, self.rules[i].outcome) for i in ids if i in self.rules)


def _abstract(value: Any, thresholds: tuple[int, ...] | None) -> Any:
    """What of ``value`` the check's answer can depend on, as a hashable key."""
    kind = type(value)
    if kind is int:
        if thresholds is None:
            return value
        return tuple((value > t) - (value < t) for t in thresholds)
    if kind is str or value is None:
        return value
    if kind is bool:
        return ("bool", value)
    if kind is list or kind is tuple:
        return ("list", *value)
    return ("repr", repr(value))


def _files(directory: Path) -> list[str]:
    out = []
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.is_file():
            out.append(rel.as_posix())
            if len(out) > MAX_PACK_FILES:
                raise PackError(f"{directory} holds more than {MAX_PACK_FILES} files")
    return sorted(out, key=lambda p: p.encode())


def _read_all(directory: Path, files: list[str]) -> dict[str, bytes]:
    total = sum((directory / f).stat().st_size for f in files)
    if total > MAX_PACK_BYTES:
        raise PackError(f"{directory} holds {total} bytes, over {MAX_PACK_BYTES}")
    return {f: (directory / f).read_bytes() for f in files}


def _manifest_hash(contents: Mapping[str, bytes]) -> str:
    lines = (f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in contents.items())
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def published_pack_hash(directory: Path) -> str:
    """The hash of the pack in ``directory`` (see the module docstring)."""
    return _manifest_hash(_read_all(directory, _files(directory)))


def _toml(contents: Mapping[str, bytes], name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(contents[name].decode("utf-8"))
    except KeyError:
        raise PackError(f"the pack has no {name}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PackError(f"{name}: {exc}") from None


def _limits(contents: Mapping[str, bytes]) -> dict[str, Any]:
    """The ``Limits::"pack"`` entity's attributes, as custodes builds them."""
    raw = _toml(contents, "pack.toml").get("limits", {})
    offences = _toml(contents, "offences.toml")
    try:
        return {
            "target_cap": int(raw["target_cap"]),
            "max_range_days": int(raw["max_range_days"]),
            "time_bound": sorted(str(c) for c in raw["time_bound_categories"]),
            "volume_threshold": int(raw["volume_threshold"]),
            "max_gag_days": int(raw["max_gag_days"]),
            "offences": sorted(offences),
            "protected_offences": sorted(o for o, t in offences.items() if t.get("protected")),
            "emergency_offences": sorted(o for o, t in offences.items() if t.get("emergency")),
            "global_actions": sorted(str(a) for a in raw["global_actions"]),
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PackError(f"pack.toml [limits] or offences.toml: {exc!r}") from None


def _actions(policy: Mapping[str, Any]) -> tuple[str, ...]:
    scope = policy.get("action", {})
    if scope.get("op") == "==":
        return (str(scope["entity"]["id"]),)
    if scope.get("op") == "in":
        refs = scope["entities"] if "entities" in scope else [scope["entity"]]
        return tuple(str(e["id"]) for e in refs)
    return ()


def _policies(contents: Mapping[str, bytes]) -> dict[str, Mapping[str, Any]]:
    """Every policy of the pack's top-level ``*.cedar`` files, by rule id."""
    out: dict[str, Mapping[str, Any]] = {}
    for name in (n for n in contents if n.endswith(".cedar") and "/" not in n):
        try:
            doc = json.loads(cedarpy.policies_to_json_str(contents[name].decode("utf-8")))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PackError(f"{name}: {exc}") from None
        for policy in doc["staticPolicies"].values():
            rule = policy.get("annotations", {}).get("id")
            if not isinstance(rule, str) or rule in out:
                raise PackError(f"{name}: a policy without a unique @id ({rule!r})")
            out[rule] = policy
    return out


def _checks(
    policies: Mapping[str, Mapping[str, Any]], rules: Mapping[str, PublishedRule], limits: Any
) -> dict[str, tuple[Any, _Reads | None]]:
    checks: dict[str, tuple[Any, _Reads | None]] = {}
    for action in sorted({a for r in rules.values() for a in r.actions}):
        mine = {rid: p for rid, p in policies.items() if action in rules[rid].actions}
        walk = _Walk(limits)
        reads: _Reads | None
        try:
            for policy in mine.values():
                walk.policy(policy)
            reads = walk.reads()
        except (_Opaque, KeyError, TypeError, AttributeError) as exc:
            log.debug("check=%s is opaque: %s", action, exc)
            reads = None
        doc = {"staticPolicies": mine, "templates": {}, "templateLinks": []}
        checks[action] = (cedarpy.PolicySet.from_json_str(json.dumps(doc)), reads)
    return checks


def load_published_pack(directory: Path | str) -> PublishedPack:
    """Read the published pack in ``directory``; raises :class:`PackError` if it cannot."""
    path = Path(directory)
    if not path.is_dir():
        raise PackError(f"{path} is not a directory")
    contents = _read_all(path, _files(path))
    limits = _limits(contents)
    policies = _policies(contents)
    rules = {
        rid: PublishedRule(
            rid,
            _actions(p),
            str(p["annotations"].get("outcome", "")),
            p["annotations"].get("role"),
        )
        for rid, p in policies.items()
    }
    try:
        checks = _checks(policies, rules, limits)
    except ValueError as exc:
        raise PackError(f"{path}: {exc}") from None
    digest = _manifest_hash(contents)
    log.info("published pack path=%s hash=%s rules=%d", path, digest, len(rules))
    return PublishedPack(
        path, digest, MappingProxyType(rules), MappingProxyType(limits), MappingProxyType(checks)
    )


def packs_by_hash(packs: Iterable[PublishedPack]) -> Mapping[str, PublishedPack]:
    """The packs, by hash (the same pack twice counts once)."""
    return MappingProxyType({p.hash: p for p in packs})
