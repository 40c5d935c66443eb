"""Loading a policy pack: its files, its hash, its Cedar policies and its rules.

A pack is a directory::

    pack.toml  jurisdictions.toml  routes.toml  ladders.toml  offences.toml  roles.toml
    schema.cedarschema  *.cedar  [README.md, *.md]  tests/*.json

Every Cedar policy carries ``@id`` (the rule id, unique), ``@outcome`` (``pass`` on a permit;
``refuse`` or ``escalate`` on a forbid), ``@reason`` and ``@remedy`` in plain words, and on an
escalation ``@role``: the specialist who must sign off. Reasons and remedies may use the
placeholders in :data:`PLACEHOLDERS`. Every policy names its action(s) explicitly.

:func:`load_pack` refuses, with a :class:`~custodes.errors.ConfigError`, a pack with a missing
or unexpected file, bad TOML, an unknown jurisdiction, instrument kind, data category or role,
a policy that does not validate against the schema, or a rule without its annotations.

The pack hash is the SHA-256 of the manifest: one line ``<sha256 of file>  <path>\\n`` per
file, sorted by path (POSIX, relative to the pack), as ``sha256sum`` prints it. So
``find . -type f | sort | xargs sha256sum | sha256sum`` run in the pack directory (in the C
locale, without hidden files) gives the same value.

>>> pack = load_pack()
>>> pack.hash == pack_hash(DEFAULT_PACK), pack.rules["scope.target_cap"].outcome.value
(True, 'refuse')
>>> pack.tables.limits.target_cap
25
"""

from __future__ import annotations

import hashlib
import json
import logging
import string
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import cedarpy

from custodes.errors import ConfigError
from custodes.model import Outcome

from .tables import Route, Tables, read_tables

__all__ = [
    "DEFAULT_PACK",
    "PLACEHOLDERS",
    "PolicyPack",
    "Rule",
    "StaticEntities",
    "load_pack",
    "pack_hash",
]

log = logging.getLogger(__name__)

DEFAULT_PACK = Path(str(resources.files("custodes.policy") / "pack"))
"""The pack that ships with custodes."""

PLACEHOLDERS = frozenset(
    {
        "action",
        "affected",
        "cap",
        "count",
        "country",
        "data_region",
        "demand_kind",
        "instrument",
        "item",
        "jurisdiction",
        "ladder",
        "max_gag_days",
        "max_range_days",
        "offence",
        "route",
        "subject_jurisdiction",
        "target_kind",
        "territories",
        "volume",
        "volume_threshold",
    }
)
"""Names a rule's ``@reason`` and ``@remedy`` may use in braces."""

_DATA_FILES = ("pack.toml", "jurisdictions.toml", "routes.toml", "ladders.toml",
               "offences.toml", "roles.toml")  # fmt: skip
_SCHEMA = "schema.cedarschema"
_EMPTY = cedarpy.PolicySet.from_str("")
_MAX_LAYERS = 1024
"""Entity layers a pack remembers (:meth:`StaticEntities.layer`); each holds a few dozen
entities."""


@dataclass(frozen=True)
class Rule:
    """One Cedar policy of the pack, as custodes reports it."""

    id: str
    actions: tuple[str, ...]
    outcome: Outcome
    reason: str
    remedy: str
    role: str | None
    file: str


@dataclass(frozen=True, eq=False)
class PolicyPack:
    """A loaded, validated policy pack. Compare packs by :attr:`hash`."""

    path: Path
    hash: str
    tables: Tables
    rules: Mapping[str, Rule]
    policy_text: str
    tests: tuple[Path, ...]
    entities: StaticEntities = field(repr=False)
    policy_sets: Mapping[str, Any] = field(repr=False)
    """For each Cedar action, the policies that name it (Cedar evaluates fewer that way)."""
    schema: Any = field(repr=False)

    decisions: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)
    """Answers to questions that hold nothing but what the pack judges them on, by the
    question (see :func:`custodes.policy.access.authorize`)."""
    names: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)
    """For each Cedar action, every name its policies spell (see :func:`_names`): an
    attribute none of them spells is one they cannot read."""
    verdicts: dict[Hashable, tuple[str, ...]] = field(default_factory=dict, repr=False)
    """Screening answers by everything they were judged on
    (:func:`custodes.policy.screening.evaluate`)."""

    def policies_for(self, action: str) -> Any:
        """The policies that name ``action`` (none: an empty set, so default deny).

        Cedar reads every policy of the set for each request, so asking with only the
        policies that can apply is faster.
        """
        return self.policy_sets.get(action, _EMPTY)

    @property
    def name(self) -> str:
        return self.tables.name

    @property
    def version(self) -> str:
        return self.tables.version

    def check_jurisdiction(self, code: str) -> str:
        """``code`` if the pack knows the jurisdiction, else ``ConfigError``."""
        return self.tables.jurisdictions.require(code, "policy pack")

    def check_role(self, role: str) -> str:
        """``role`` if the pack defines it, else ``ConfigError``."""
        if role not in self.tables.roles:
            raise ConfigError(f"policy pack: unknown role {role!r}", role=role)
        return role


def _files(directory: Path) -> list[str]:
    out = []
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.is_file():
            out.append(rel.as_posix())
    return sorted(out, key=lambda p: p.encode())


def pack_hash(directory: Path) -> str:
    """The SHA-256 of the pack's manifest (see the module docstring)."""
    return hashlib.sha256(_manifest(directory, _files(directory))).hexdigest()


def _manifest(directory: Path, files: list[str]) -> bytes:
    lines = [f"{hashlib.sha256((directory / f).read_bytes()).hexdigest()}  {f}\n" for f in files]
    return "".join(lines).encode()


def _check_layout(files: list[str]) -> None:
    for name in (*_DATA_FILES, _SCHEMA):
        if name not in files:
            raise ConfigError(f"policy pack: {name} is missing")
    if not any(f.endswith(".cedar") and "/" not in f for f in files):
        raise ConfigError("policy pack: no .cedar policy files")
    for f in files:
        top = "/" not in f
        ok = (top and (f in _DATA_FILES or f == _SCHEMA or f.endswith((".cedar", ".md")))) or (
            f.startswith("tests/") and f.endswith(".json") and f.count("/") == 1
        )
        if not ok:
            raise ConfigError(f"policy pack: unexpected file {f}")


def load_pack(path: Path | str | None = None) -> PolicyPack:
    """Load and validate the pack in ``path`` (default: the pack shipped with custodes)."""
    directory = Path(path) if path is not None else DEFAULT_PACK
    if not directory.is_dir():
        raise ConfigError(f"policy pack: {directory} is not a directory")
    files = _files(directory)
    _check_layout(files)
    digest = hashlib.sha256(_manifest(directory, files)).hexdigest()
    tables = read_tables(directory)
    cedar_files = [f for f in files if f.endswith(".cedar") and "/" not in f]
    text, owners = _policy_text(directory, cedar_files)
    schema_text = (directory / _SCHEMA).read_text(encoding="utf-8")
    try:
        schema = cedarpy.Schema.from_str(schema_text)
    except ValueError as exc:
        raise ConfigError(f"policy pack: {_SCHEMA}: {exc}") from None
    doc = json.loads(cedarpy.policies_to_json_str(text))
    rules = _rules(doc, owners, tables)
    _validate(text, schema, rules)
    by_action = _by_action(doc, rules)
    entities = _static_entities(tables, schema)
    tests = tuple(directory / f for f in files if f.startswith("tests/"))
    log.info("loaded policy pack", extra={"pack": digest, "rules": len(rules)})
    return PolicyPack(
        directory, digest, tables, rules, text, tests, entities, _policy_sets(by_action),
        schema, names=_action_names(by_action),
    )  # fmt: skip


def _policy_text(directory: Path, names: list[str]) -> tuple[str, list[str]]:
    """All policies in file order, and for each policy the file it came from."""
    text, owners = "", []
    for name in names:
        body = (directory / name).read_text(encoding="utf-8")
        try:
            count = len(json.loads(cedarpy.policies_to_json_str(body))["staticPolicies"])
        except ValueError as exc:
            raise ConfigError(f"policy pack: {name}: {exc}") from None
        text += f"// --- {name}\n{body}\n"
        owners += [name] * count
    return text, owners


T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
_REMEMBERING = threading.Lock()


def remember(memory: dict[K, T], key: K, value: T, most: int) -> None:
    """Keep ``value`` under ``key`` in ``memory``, which holds at most ``most`` entries: the
    oldest kept goes first (readers look up, and may drop an entry, without the lock)."""
    with _REMEMBERING:
        if len(memory) >= most:
            memory.pop(next(iter(memory)), None)
        memory[key] = value


def _by_action(doc: Mapping[str, Any], rules: Mapping[str, Rule]) -> dict[str, dict[str, Any]]:
    """For each Cedar action, the policies (by id, in the JSON form) that name it."""
    by_action: dict[str, dict[str, Any]] = {}
    for pid, policy in doc["staticPolicies"].items():
        for action in rules[policy["annotations"]["id"]].actions:
            by_action.setdefault(action, {})[pid] = policy
    return by_action


def _policy_sets(by_action: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    """One Cedar policy set per action, holding the policies that name the action."""
    return MappingProxyType(
        {
            action: cedarpy.PolicySet.from_json_str(json.dumps(_set_json(policies)))
            for action, policies in by_action.items()
        }
    )


def _action_names(by_action: Mapping[str, Mapping[str, Any]]) -> Mapping[str, frozenset[str]]:
    """For each action, :func:`_names` of the policies that name it."""
    return MappingProxyType(
        {
            action: frozenset(n for policy in policies.values() for n in _names(policy))
            for action, policies in by_action.items()
        }
    )


def _names(node: Any) -> set[str]:
    """Every string in a policy's JSON form, keys and values alike: its annotations, its
    entity types and ids, its literals and every attribute it reads or tests (Cedar names an
    attribute only by a literal: ``resource.volume``, ``resource["volume"]`` and
    ``resource has volume`` all spell it). A superset of what the policy can read, on purpose."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            found.update(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _set_json(policies: Mapping[str, Any]) -> dict[str, Any]:
    return {"staticPolicies": dict(policies), "templates": {}, "templateLinks": []}


def _rules(doc: Mapping[str, Any], owners: list[str], tables: Tables) -> Mapping[str, Rule]:
    if doc.get("templates"):
        raise ConfigError("policy pack: templates are not supported; write static policies")
    rules: dict[str, Rule] = {}
    for n in range(len(owners)):
        policy = doc["staticPolicies"][f"policy{n}"]
        rule = _rule(policy, owners[n])
        if rule.id in rules:
            raise ConfigError(f"policy pack: {owners[n]}: rule id {rule.id} is used twice")
        if rule.role is not None:
            _known_role(rule.role, tables, f"{owners[n]}: {rule.id}")
        for kind, ident in _entity_refs(policy):
            if kind == "Role":
                _known_role(ident, tables, f"{owners[n]}: {rule.id}")
            elif kind == "Jurisdiction":
                tables.jurisdictions.require(ident, f"policy pack: {owners[n]}: {rule.id}")
        rules[rule.id] = rule
    return MappingProxyType(rules)


def _known_role(role: str, tables: Tables, where: str) -> None:
    if role not in tables.roles:
        raise ConfigError(f"policy pack: {where}: unknown role {role!r}")


def _rule(policy: Mapping[str, Any], file: str) -> Rule:
    notes: dict[str, str] = policy.get("annotations", {})
    where = f"policy pack: {file}: rule {notes.get('id', '(no @id)')}"
    missing = sorted({"id", "outcome", "reason", "remedy"} - set(notes))
    if missing:
        raise ConfigError(f"{where}: missing @{', @'.join(missing)}")
    extra = sorted(set(notes) - {"id", "outcome", "reason", "remedy", "role"})
    if extra:
        raise ConfigError(f"{where}: unknown annotation @{extra[0]}")
    try:
        outcome = Outcome(notes["outcome"])
    except ValueError:
        raise ConfigError(f"{where}: @outcome must be pass, refuse or escalate") from None
    if (outcome is Outcome.PASS) != (policy["effect"] == "permit"):
        raise ConfigError(f"{where}: a permit passes; a forbid refuses or escalates")
    if (outcome is Outcome.ESCALATE) != ("role" in notes):
        raise ConfigError(f"{where}: an escalation, and only an escalation, names a @role")
    for key in ("reason", "remedy"):
        for _, name, _, _ in string.Formatter().parse(notes[key]):
            if name is not None and name not in PLACEHOLDERS:
                raise ConfigError(f"{where}: @{key} uses unknown placeholder {{{name}}}")
    scope = policy["action"]
    if scope.get("op") == "==":
        actions: tuple[str, ...] = (scope["entity"]["id"],)
    elif scope.get("op") == "in":
        refs = scope["entities"] if "entities" in scope else [scope["entity"]]
        actions = tuple(e["id"] for e in refs)
    else:
        raise ConfigError(f"{where}: name the action(s) the rule applies to")
    return Rule(
        notes["id"], actions, outcome, notes["reason"], notes["remedy"], notes.get("role"), file
    )


def _entity_refs(node: Any) -> Iterator[tuple[str, str]]:
    """Every entity literal in a policy's JSON form."""
    if isinstance(node, dict):
        for key in ("__entity", "entity"):
            ref = node.get(key)
            if isinstance(ref, dict) and {"type", "id"} <= set(ref):
                yield ref["type"], ref["id"]
        for key, value in node.items():
            if key not in ("__entity", "entity"):
                yield from _entity_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _entity_refs(value)


def _validate(text: str, schema: Any, rules: Mapping[str, Rule]) -> None:
    result = cedarpy.validate_policies(text, schema)
    if result.validation_passed:
        return
    ids = result.id_annotations_by_policy_id
    problems = [f"{ids.get(e.policy_id, e.policy_id)}: {e.error}" for e in result.errors]
    raise ConfigError(
        "policy pack: policies do not validate against the schema: " + "; ".join(problems),
        errors=problems,
        rules=sorted(rules),
    )


def _ref(kind: str, ident: str) -> dict[str, dict[str, str]]:
    return {"__entity": {"type": kind, "id": ident}}


@dataclass(frozen=True)
class StaticEntities:
    """The pack's data as Cedar entities, ready to be picked for one evaluation.

    Each jurisdiction lists *all* its ancestors as parents: its country, its groups, and the
    sides of every treaty route that covers it (a route's ``requesting``, ``subjects``,
    ``excluded_subjects`` and ``data_regions`` are groups named ``<route>.<side>``). So an
    evaluation includes only the jurisdictions it mentions, and Cedar's ``in`` still sees
    every group. (A side listing one code stands for that code itself.) Entities are kept as
    Cedar JSON text, ready to be joined into a list.
    """

    ancestors: Mapping[str, frozenset[str]]
    jurisdictions: Mapping[str, str]
    base: Any = field(repr=False)
    """The limits and the routes, parsed once: every evaluation adds to a copy of it."""
    layers: dict[Hashable, Any] = field(default_factory=dict, repr=False, compare=False)
    """:meth:`layer`'s handles, oldest first."""

    def pick(self, codes: Iterable[str]) -> list[str]:
        """The known jurisdictions among ``codes``."""
        return [self.jurisdictions[c] for c in sorted(set(codes)) if c in self.jurisdictions]

    def store(self, entities: Iterable[str], base: Any = None, *, schema: Any = None) -> Any:
        """A Cedar entity store: ``base`` (default: the pack's) plus ``entities`` (JSON),
        validated against ``schema`` when one is given."""
        added = "[" + ",".join(entities) + "]"
        return (base or self.base).with_added_json_str(added, schema)

    def layer(self, key: Hashable, entities: Callable[[], Iterable[str]]) -> Any:
        """The pack's base plus ``entities()`` (JSON), parsed once for each ``key`` and
        remembered: the key must stand for exactly those entities.

        Cedar parses an entity anew each time it is added (about 5 µs for each reference to
        another entity); a layer built once is copied instead. The latest
        :data:`_MAX_LAYERS` layers built are kept; the oldest goes first.
        """
        layer = self.layers.get(key)
        if layer is None:
            layer = self.store(entities())
            remember(self.layers, key, layer, _MAX_LAYERS)
        return layer

    def area(self, ident: str, codes: Iterable[str]) -> str:
        """An ``Area`` entity for ``codes``: inside exactly what holds all of them.

        Its parents are the ancestors-or-self common to every code (none for no codes; an
        unknown code has only itself), so ``area in J`` holds iff every code is in ``J``.
        """
        common: set[str] | None = None
        for code in codes:
            mine = {code} | self.ancestors.get(code, frozenset())
            common = mine if common is None else common & mine
        parents = [{"type": "Jurisdiction", "id": p} for p in sorted(common or ())]
        return json.dumps({"uid": {"type": "Area", "id": ident}, "attrs": {}, "parents": parents})


def _side(route: Route, side: str) -> str:
    """The jurisdiction a route side stands for: its one code, or a group made for it."""
    codes: tuple[str, ...] = getattr(route, side)
    return codes[0] if len(codes) == 1 else f"{route.id}.{side}"


def _route_sides(t: Tables) -> dict[str, set[str]]:
    """For each jurisdiction code, the groups made for route sides that hold it."""
    j = t.jurisdictions
    sides: dict[str, set[str]] = {c: set() for c in j.names}
    for r in t.routes.all:
        for side in _SIDES:
            group = _side(r, side)
            if group not in j.names:
                for code in j.expand(getattr(r, side)):
                    sides[code].add(group)
    return sides


_SIDES = ("requesting", "subjects", "excluded_subjects", "data_regions")


def _static_entities(t: Tables, schema: Any) -> StaticEntities:
    j = t.jurisdictions
    ancestors: dict[str, set[str]] = _route_sides(t)
    for outer in j.names:
        for inner in j.covers[outer]:
            if inner != outer:
                ancestors[inner].add(outer)
    jurisdictions = {
        code: {
            "uid": {"type": "Jurisdiction", "id": code},
            "attrs": {},
            "parents": [{"type": "Jurisdiction", "id": p} for p in sorted(ancestors[code])],
        }
        for code in sorted(j.names)
    }
    routes: dict[str, dict[str, Any]] = {}
    for r in t.routes.all:
        attrs: dict[str, Any] = {"kind": r.kind, "name": r.name, "instruments": list(r.instruments)}
        for side in _SIDES:
            attrs[side] = _ref("Jurisdiction", _side(r, side))
        routes[r.id] = {"uid": {"type": "Route", "id": r.id}, "attrs": attrs, "parents": []}
    lim = t.limits
    offences = t.offences.values()
    limits = {
        "uid": {"type": "Limits", "id": "pack"},
        "attrs": {
            "target_cap": lim.target_cap,
            "max_range_days": lim.max_range_days,
            "time_bound": sorted(lim.time_bound_categories),
            "volume_threshold": lim.volume_threshold,
            "max_gag_days": lim.max_gag_days,
            "offences": sorted(o.id for o in offences),
            "protected_offences": sorted(o.id for o in offences if o.protected),
            "emergency_offences": sorted(o.id for o in offences if o.emergency),
            "global_actions": sorted(lim.global_actions),
        },
        "parents": [],
    }
    every = [limits, *jurisdictions.values(), *routes.values()]
    try:
        cedarpy.Entities.from_json_str(json.dumps(every), schema)
        base = cedarpy.Entities.from_json_str(json.dumps([limits, *routes.values()]))
    except ValueError as exc:
        raise ConfigError(f"policy pack: data does not fit the schema: {exc}") from None
    return StaticEntities(
        MappingProxyType({c: frozenset(a) for c, a in ancestors.items()}),
        MappingProxyType({k: json.dumps(v) for k, v in jurisdictions.items()}),
        base,
    )
