"""Screening a demand: the facts go into Cedar, findings come out.

:func:`evaluate` asks the pack's Cedar policies one question per *check* (a Cedar action):

========================  =========================  ==============================
asked once per demand     per item sought            per target
========================  =========================  ==============================
requester, scope,         ladder (the instrument     reach (jurisdiction, treaty
period¹, instrument²,     ladder entry for each      routes, selectors, unknown
expression, evidence,     category, preservation     targets, global restrictions
territory³, gag,          or restriction)²           reaching abroad)²
emergency⁴
========================  =========================  ==============================

¹ disclosures only; ² only when the authority is registered and its jurisdiction known;
³ restrictions only; ⁴ emergency disclosures only. Targets are examined one by one only when
the scope check does not refuse the demand as a whole (23,000 rows are refused as one); a
demand within the pack's target cap is asked against one entity store, a larger one against
two (targets only once the scope check has passed). Cedar gets each check's questions in a
batch of their own, with only the policies that name that check.

The entities that stay the same from one demand to the next (the authority, the places, one
``Target`` entity per class of targets) are parsed once per pack and remembered
(:meth:`~custodes.policy.pack.StaticEntities.layer`); only the demand's own entity is parsed
for each screening. Cedar's answers are remembered too, each by everything it was judged on
(:class:`_Judged`): a question asked before, about a demand that differs only in attributes
the check's policies never name (an authority's volume, for every check but scope), is not
asked again. ``check_schema`` builds every entity afresh, validates it and asks Cedar every
question: the tests hold both ways to the same findings.

Each answer becomes findings: an Allow yields the permits that matched (outcome ``pass``); a
Deny yields the forbids that matched (``refuse`` or ``escalate``) or, when none did, a
``<check>.default_deny`` refusal: nothing in the pack allowed it. A Cedar evaluation error
is a ``pack.error`` refusal: screening fails closed. Python only gathers facts and resolves
lookups (which ladder entry, which treaty route could apply); every judgement is a Cedar
policy. The same pack and the same input give the same findings in the same order.

>>> from datetime import UTC, datetime
>>> from custodes.model import (Authority, AuthorityKind, DataCategory, Demand, DemandKind,
...     InstrumentKind, LegalInstrument, Offence, ScreeningContext, SignatureStatus, Subject,
...     Target, TargetKind)
>>> from custodes.policy import load_pack
>>> now = datetime(2020, 6, 4, tzinfo=UTC)
>>> prc = Authority("cn-mps", "Ministry of Public Security", AuthorityKind.POLICE, "CN")
>>> meeting = Target(TargetKind.MEETING, "m-1")
>>> demand = Demand("d_1", prc.id, DemandKind.DISCLOSURE,
...     LegalInstrument(InstrumentKind.COURT_ORDER, document_sha256="9f" * 32), (meeting,), now,
...     (DataCategory.SUBSCRIBER_INFO,), offence=Offence("fraud"))
>>> subjects = {meeting: Subject(meeting, "US-NY", "US", "business")}
>>> findings = evaluate(load_pack(), demand, prc, subjects,
...                     ScreeningContext(now, SignatureStatus.VALID))
>>> [(f.rule_id, f.outcome.value) for f in findings if f.target == meeting]
[('jurisdiction.data_outside', 'refuse'), ('jurisdiction.subject_outside', 'refuse')]
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cedarpy

from custodes.model import (
    Authority,
    CallbackStatus,
    Demand,
    DemandKind,
    EvidenceStatus,
    Finding,
    Outcome,
    ScreeningContext,
    Subject,
    Target,
)

from .pack import PolicyPack, Rule, remember
from .tables import Route

__all__ = ["DEMAND_CHECKS", "evaluate"]

log = logging.getLogger(__name__)

DEMAND_CHECKS = (
    "requester",
    "scope",
    "period",
    "instrument",
    "expression",
    "evidence",
    "territory",
    "gag",
    "emergency",
)
"""The checks asked once per demand, in the order their findings are listed."""

_NEEDS_AUTHORITY = frozenset({"instrument", "territory", "emergency"})
_APPLIES: Mapping[str, frozenset[DemandKind]] = {
    "period": frozenset({DemandKind.DISCLOSURE, DemandKind.EMERGENCY_DISCLOSURE}),
    "territory": frozenset({DemandKind.RESTRICTION}),
    "emergency": frozenset({DemandKind.EMERGENCY_DISCLOSURE}),
}
_REQUESTER = {"type": "Authority", "id": "requester"}
_DEMAND = {"type": "Demand", "id": "demand"}


def _ref(kind: str, ident: str) -> dict[str, dict[str, str]]:
    return {"__entity": {"type": kind, "id": ident}}


@lru_cache(maxsize=1024)
def _authority_json(
    kind: str, standing: str, jurisdiction: str, country: str, recognised: bool
) -> str:
    """An authority's entity as Cedar JSON, made once for each authority as it stands
    (every screening asks it, and the few authorities hardly change)."""
    authority = {
        "uid": _REQUESTER,
        "attrs": {
            "kind": kind,
            "standing": standing,
            "jurisdiction": _code(jurisdiction),
            "country": _code(country),
            "recognised": recognised,
        },
        "parents": [],
    }
    return json.dumps(authority)


def _code(code: str) -> dict[str, dict[str, str]]:
    return _ref("Jurisdiction", code)


def _words(value: str) -> str:
    return value.replace("_", " ")


@dataclass(frozen=True)
class _Ask:
    """One question to Cedar, and what its findings concern.

    Asks with the same ``key`` are the same question (targets the platform describes
    identically share a ``Target`` entity); Cedar answers each question once.
    """

    check: str
    resource: Mapping[str, str]
    context: Mapping[str, Any]
    facts: Mapping[str, str]
    target: Target | None = None
    item: str | None = None
    route: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.check, self.resource["id"], self.item)

    def request(self) -> dict[str, Any]:
        """The Cedar request (an empty context is left out: Cedar's default)."""
        request: dict[str, Any] = {
            "principal": _REQUESTER,
            "action": {"type": "Action", "id": self.check},
            "resource": self.resource,
        }
        if self.context:  # as text, which cedarpy passes on as it is
            request["context"] = json.dumps(self.context)
        return request


@dataclass(eq=False)
class _Class:
    """Targets the platform describes identically: one ``Target`` entity, one question.

    ``key`` holds everything the entity is made of (kind, selector, the subject's place and
    data region, the route that could apply, and for a restriction the places it reaches);
    ``uid`` is set once the demand's classes are ordered by it.
    """

    key: tuple[Any, ...]
    known: bool
    facts: Mapping[str, str]
    route: str | None
    uid: str = ""


class _Screening:
    """The facts of one screening, shaped as Cedar entities and requests."""

    def __init__(
        self,
        pack: PolicyPack,
        demand: Demand,
        authority: Authority | None,
        subjects: Mapping[Target, Subject | None],
        context: ScreeningContext,
    ) -> None:
        self.pack, self.demand, self.authority = pack, demand, authority
        self.subjects, self.context = subjects, context
        known = authority is not None and authority.jurisdiction in pack.tables.jurisdictions
        self.judgeable = known
        self.facts = self._facts()

    def _facts(self) -> dict[str, str]:
        d, lim = self.demand, self.pack.tables.limits
        return {
            "jurisdiction": self.authority.jurisdiction if self.authority else "unknown",
            "country": self.authority.country if self.authority else "unknown",
            "count": str(len(d.targets)),
            "cap": str(lim.target_cap),
            "max_range_days": str(lim.max_range_days),
            "max_gag_days": str(lim.max_gag_days),
            "volume": str(self.context.volume),
            "volume_threshold": str(lim.volume_threshold),
            "instrument": _words(d.instrument.kind.value),
            "demand_kind": _words(d.kind.value),
            "offence": _words(d.offence.category) if d.offence else "none",
            "action": _words(d.restriction.action.value) if d.restriction else "none",
            "territories": ", ".join(d.restriction.territories) if d.restriction else "",
        }

    def authority_entity(self) -> str:
        """The authority (``Authority::"requester"``), as Cedar JSON."""
        a = self.authority
        if a is None:
            return _authority_json("other", "unregistered", "ZZ", "ZZ", self.judgeable)
        return _authority_json(
            a.kind.value, a.standing.value, a.jurisdiction, a.country, self.judgeable
        )

    def demand_entities(self, attrs: dict[str, Any] | None = None) -> list[str]:
        """The territories of a restriction and the demand (with ``attrs``, default
        :meth:`demand_attrs`): what differs from one demand to the next, even from the same
        authority about the same kinds of targets."""
        territories = self.demand.restriction.territories if self.demand.restriction else ()
        attrs = self.demand_attrs() if attrs is None else attrs
        demand = {"uid": _DEMAND, "attrs": attrs, "parents": []}
        return [self.pack.entities.area("territories", territories), json.dumps(demand)]

    def demand_attrs(self) -> dict[str, Any]:
        d, c = self.demand, self.context
        statuses = [c.evidence_status(i) for i in range(len(d.evidence))]
        attrs: dict[str, Any] = {
            "kind": d.kind.value,
            "instrument": d.instrument.kind.value,
            "has_document": d.instrument.document_sha256 is not None,
            "signature": c.signature.value,
            "target_count": len(d.targets),
            "categories": [x.value for x in d.categories],
            "nondisclosure": "none",
            "territories": _ref("Area", "territories"),
            "territory_count": len(d.restriction.territories) if d.restriction else 0,
            "claims_tos": d.claims_tos_violation,
            "evidence_total": len(statuses),
            "evidence_verified": statuses.count(EvidenceStatus.VERIFIED),
            "evidence_mismatch": statuses.count(EvidenceStatus.MISMATCH),
            "evidence_not_held": statuses.count(EvidenceStatus.NOT_HELD),
            "volume": c.volume,
            "callback": c.callback.value if d.kind is DemandKind.EMERGENCY_DISCLOSURE else
            CallbackStatus.NONE.value,
        }  # fmt: skip
        if d.time_range is not None:
            attrs["range_days"] = d.time_range.days
        if d.offence is not None:
            attrs["offence"] = d.offence.category
        if d.restriction is not None:
            attrs["restriction"] = d.restriction.action.value
        if d.nondisclosure is not None:
            until = d.nondisclosure.until
            attrs["nondisclosure"] = "undated" if until is None else "dated"
            if until is not None:
                attrs["gag_days"] = (until - c.now.date()).days
        return attrs

    def demand_asks(self) -> list[_Ask]:
        asks = []
        for check in DEMAND_CHECKS:
            if check in _APPLIES and self.demand.kind not in _APPLIES[check]:
                continue
            if check in _NEEDS_AUTHORITY and not self.judgeable:
                continue
            asks.append(_Ask(check, _DEMAND, {}, self.facts))
        if self.judgeable and self.authority is not None:
            t = self.pack.tables
            lineage = t.jurisdictions.lineage(self.authority.jurisdiction, t.ladders.order)
            for item in self.demand.items:
                ladder, _ = t.ladders.lookup(lineage, item)
                named = ", ".join(_words(i) for i in sorted(ladder)) or "none"
                facts = {**self.facts, "item": _words(item), "ladder": named}
                context = {"item": item, "ladder": sorted(ladder)}
                asks.append(_Ask("ladder", _DEMAND, context, facts, item=item))
        return asks

    def target_classes(self) -> tuple[list[_Class], list[_Ask]]:
        """The classes of targets, in the order of their :attr:`_Class.key`, and one ask per
        target.

        Targets the platform describes identically (same kind, place, data region and, for
        a restriction, reach) are the same question to Cedar, so they share a ``Target``
        entity, ``t<n>`` by its class's place in that order; each target still gets its own
        findings. Only a restriction needs to know whom an action reaches beyond the
        subject (``affected``).
        """
        if not self.judgeable or self.authority is None:
            return [], []
        seen: dict[tuple[Any, ...], _Class] = {}  # by what the platform said (quick to tell)
        classes: dict[tuple[Any, ...], _Class] = {}  # by :attr:`_Class.key`
        of_target: list[_Class] = []
        restriction = self.demand.restriction is not None
        for target in self.demand.targets:
            subject = None if target.is_selector else self.subjects.get(target)
            reach = subject.affected if restriction and subject else None
            said = (target.kind, target.is_selector, subject and subject.jurisdiction,
                    subject and subject.data_region, reach)  # fmt: skip
            one = seen.get(said)
            if one is None:
                one = self._class(target, subject)
                one = seen[said] = classes.setdefault(one.key, one)
            of_target.append(one)
        ordered = sorted(classes.values(), key=lambda c: c.key)
        for n, one in enumerate(ordered):
            one.uid = f"t{n}"
        asks = []
        for target, one in zip(self.demand.targets, of_target, strict=True):
            resource = {"type": "Target", "id": one.uid}
            asks.append(_Ask("reach", resource, {}, one.facts, target=target, route=one.route))
        return ordered, asks

    def _class(self, target: Target, subject: Subject | None) -> _Class:
        route = None if subject is None else self._route(subject)
        places = None
        if self.demand.restriction is not None:
            places = tuple(sorted(subject.affected | {subject.jurisdiction})) if subject else ()
        key = (
            target.kind.value,
            target.is_selector,
            subject.jurisdiction if subject else "",
            subject.data_region if subject else "",
            route.id if route else "",
            places,
        )
        facts = self._target_facts(target, subject, route)
        return _Class(key, subject is not None, facts, route.id if route else None)

    def layer_key(self, classes: list[_Class]) -> tuple[Any, ...]:
        """What :meth:`layer_entities` is made of, whole: the same key, the same entities
        (a class's key says whether it reaches places, so the demand's kind is not needed)."""
        return (self.authority_entity(), *(c.key for c in classes))

    def layer_entities(self, classes: list[_Class]) -> list[str]:
        """The jurisdictions of the authority and of the subjects, the authority, and the
        ``Target`` entity (and for a restriction, the ``Area`` it reaches) of each class."""
        a = self.authority
        mine = self.pack.entities.pick([a.jurisdiction, a.country] if a else [])
        return [*mine, self.authority_entity(), *self.later_entities(classes)]

    def later_entities(self, classes: list[_Class]) -> list[str]:
        """The part of :meth:`layer_entities` that is about ``classes``: the subjects' other
        jurisdictions and the classes' entities (a demand over the cap gets them only once
        the scope check has passed)."""
        codes = {code for c in classes if c.known for code in c.key[2:4]}
        if self.authority is not None:
            codes -= {self.authority.jurisdiction, self.authority.country}
        return self.pack.entities.pick(codes) + [e for c in classes for e in self._target_entity(c)]

    def _target_entity(self, c: _Class) -> list[str]:
        """The ``Target`` entity (and the ``Area`` it reaches) for one class of targets."""
        kind, selector, jurisdiction, data_region, route, places = c.key
        attrs: dict[str, Any] = {
            "kind": kind,
            "selector": selector,
            "known": c.known,
            "demand": _ref("Demand", "demand"),
        }
        out = []
        if c.known:
            attrs["jurisdiction"] = _code(jurisdiction)
            attrs["data_region"] = _code(data_region)
            if route:
                attrs["route"] = _ref("Route", route)
        if places is not None:
            attrs["affected"] = _ref("Area", c.uid)
            out.append(self.pack.entities.area(c.uid, places))
        entity = {"uid": {"type": "Target", "id": c.uid}, "attrs": attrs, "parents": []}
        return [*out, json.dumps(entity)]

    def _route(self, subject: Subject) -> Route | None:
        assert self.authority is not None
        instrument = self.demand.instrument.kind.value
        return self.pack.tables.routes.candidate(
            self.authority.jurisdiction, instrument, subject.data_region
        )

    def _target_facts(
        self, target: Target, subject: Subject | None, route: Route | None
    ) -> dict[str, str]:
        facts = {**self.facts, "target_kind": _words(target.kind.value)}
        if subject is not None:
            names = self.pack.tables.jurisdictions.names
            if route is not None:
                facts["route"] = route.name
                facts["route_id"] = route.id
            facts["subject_jurisdiction"] = names.get(subject.jurisdiction, subject.jurisdiction)
            facts["data_region"] = names.get(subject.data_region, subject.data_region)
            facts["affected"] = ", ".join(sorted(subject.affected | {subject.jurisdiction}))
        return facts


def evaluate(
    pack: PolicyPack,
    demand: Demand,
    authority: Authority | None,
    subjects: Mapping[Target, Subject | None],
    context: ScreeningContext,
    *,
    check_schema: bool = False,
) -> list[Finding]:
    """Screen ``demand`` from ``authority`` (None: unregistered) under ``pack``.

    ``subjects`` maps each target to what the platform reports about it (None or absent:
    no such thing); ``context`` carries what intake established (signature, call-back,
    volume, evidence checks). Returns every finding, demand-level first, then per item,
    then per target in the demand's order.

    The policies and the pack's data are validated against the schema when the pack loads;
    ``check_schema`` also validates the entities and requests built for this demand, and
    builds every entity afresh instead of taking the pack's remembered layers (slower:
    ``custodes policy check`` and the tests use it).
    """
    s = _Screening(pack, demand, authority, subjects, context)
    asks = s.demand_asks()
    at_once = len(demand.targets) <= pack.tables.limits.target_cap
    classes: list[_Class] = []
    if at_once:  # within the cap: one store for every question (same findings, less work)
        classes, target_asks = s.target_classes()
        asks += target_asks
    if check_schema:
        entities = s.layer_entities(classes) + s.demand_entities()
        validated = pack.entities.store(entities, schema=pack.schema)
        store = _Once(lambda: validated)
        answers = _decide(pack, store, asks, pack.schema)
    else:
        layer_key = s.layer_key(classes)
        attrs = s.demand_attrs()
        mine = s.demand_entities(attrs)

        def build() -> Any:
            layer = pack.entities.layer(layer_key, lambda: s.layer_entities(classes))
            return pack.entities.store(mine, layer)

        store = _Once(build)  # on first use: a screening answered from memory makes none
        answers = _decide(pack, store, asks, None, _Judged(pack, layer_key, mine[0], attrs))
    schema = pack.schema if check_schema else None
    findings = [f for ask, fs in answers if ask.target is None for f in fs]
    scope_refused = any(
        f.outcome is Outcome.REFUSE for ask, fs in answers if ask.check == "scope" for f in fs
    )
    if scope_refused:
        return findings
    if at_once:
        return findings + [f for ask, fs in answers if ask.target is not None for f in fs]
    classes, target_asks = s.target_classes()
    if target_asks:
        more = _Once(lambda: pack.entities.store(s.later_entities(classes), store(), schema=schema))
        findings += [f for _, fs in _decide(pack, more, target_asks, schema) for f in fs]
    return findings


class _Once:
    """``make()``, made on the first call and kept (``functools.cache`` builds a whole
    cache for each screening, which cost more than the rest of this)."""

    __slots__ = ("_made", "_make", "_value")

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._made = False
        self._value: Any = None

    def __call__(self) -> Any:
        if not self._made:
            self._value = self._make()
            self._made = True
        return self._value


_MAX_VERDICTS = 4096
"""Screening answers a pack remembers (:class:`_Judged`); the oldest goes first."""


class _Judged:
    """Cedar's answers to the questions of one screening, remembered by everything they
    were judged on.

    Cedar answers a question from the request (check, resource, context), the entities and
    the policies, and nothing else. For one pack, the entities are the remembered layer
    (named whole by its key), the territories' ``Area`` (its JSON) and the demand's own
    entity. Of the demand, only attributes whose names the check's policies spell can
    reach the answer (:attr:`~custodes.policy.pack.PolicyPack.names`: a policy names every
    attribute it reads as a literal), so the key holds those alone: a check that never
    reads the authority's volume is answered again for each new volume of an authority
    without asking Cedar. The demand's entity has no parents, so ``in`` learns nothing
    more of it. An answer with an error is never remembered.
    """

    __slots__ = ("_area", "_attrs", "_layer", "_pack", "_read")

    def __init__(
        self, pack: PolicyPack, layer: Hashable, area: str, attrs: Mapping[str, Any]
    ) -> None:
        self._pack, self._layer, self._area, self._attrs = pack, layer, area, attrs
        self._read: dict[str, str] = {}

    def key(self, ask: _Ask) -> Hashable:
        # repr: the attributes' values are strings, integers, booleans, lists and entity
        # references (dicts) of those, whose repr tells any two apart (True from 1 too).
        read = self._read.get(ask.check)
        if read is None:
            names = self._pack.names.get(ask.check)
            if names is None:  # not known what the check's policies read: all of it
                read = repr(list(self._attrs.items()))
            else:
                read = repr([(k, v) for k, v in self._attrs.items() if k in names])
            self._read[ask.check] = read
        context = repr(ask.context) if ask.context else ""
        return (ask.check, ask.resource["id"], context, self._layer, self._area, read)

    def get(self, key: Hashable) -> tuple[str, ...] | None:
        return self._pack.verdicts.get(key)

    def keep(self, key: Hashable, verdict: tuple[str, ...]) -> None:
        remember(self._pack.verdicts, key, verdict, _MAX_VERDICTS)


def _decide(
    pack: PolicyPack,
    store: Callable[[], Any],
    asks: list[_Ask],
    schema: Any = None,
    judged: _Judged | None = None,
) -> list[tuple[_Ask, list[Finding]]]:
    """Ask Cedar each distinct question once (none that ``judged`` remembers); keep the
    asks' order.

    The questions of each check go in one batch with only that check's policies: Cedar reads
    every policy of a batch's set for each request, and a policy names the checks it applies
    to, so no other policy could match (about half the time of one batch for all checks).
    """
    first: dict[tuple[str, str, str | None], _Ask] = {}
    by_check: dict[str, list[_Ask]] = {}
    keys = [ask.key for ask in asks]
    answers: dict[tuple[str, str, str | None], list[Finding]] = {}
    remembered: dict[tuple[str, str, str | None], Hashable] = {}
    for ask, key in zip(asks, keys, strict=True):
        if key in first:
            continue
        first[key] = ask
        if judged is not None:
            known = remembered[key] = judged.key(ask)
            verdict = judged.get(known)
            if verdict is not None:
                answers[key] = _findings(pack, ask, verdict)
                continue
        by_check.setdefault(ask.check, []).append(ask)
    for check, questions in by_check.items():
        policies = pack.policies_for(check)
        requests = [q.request() for q in questions]
        results = cedarpy.is_authorized_batch(requests, policies, store(), schema)
        for q, r in zip(questions, results, strict=True):
            verdict = _verdict(q, r)
            answers[q.key] = _findings(pack, q, verdict)
            if judged is not None and verdict is not None:
                judged.keep(remembered[q.key], verdict)
    out = []
    for ask, key in zip(asks, keys, strict=True):
        found = answers[key]
        if ask is not first[key]:
            found = [_retarget(f, ask.target) for f in found]
        out.append((ask, found))
    return out


def _retarget(f: Finding, target: Target | None) -> Finding:
    """The same finding about another target (``dataclasses.replace`` is slower)."""
    return Finding(f.rule_id, f.outcome, f.reason, f.remedy, target, f.item, f.role, f.route)


def _verdict(ask: _Ask, result: Any) -> tuple[str, ...] | None:
    """The ids of the rules that decided ``result``, sorted (none: nothing allowed it); None
    when Cedar could not decide (logged)."""
    errors = result.diagnostics.errors
    if errors or result.decision is cedarpy.Decision.NoDecision:
        log.error("policy evaluation failed", extra={"check": ask.check, "errors": errors})
        return None
    return tuple(sorted(set(result.diagnostics.id_annotations_by_reason.values())))


def _findings(pack: PolicyPack, ask: _Ask, ids: tuple[str, ...] | None) -> list[Finding]:
    if ids is None:
        return [
            Finding(
                "pack.error",
                Outcome.REFUSE,
                f"the policy pack could not decide the {ask.check} check",
                "the legal team fixes the pack (custodes policy check shows the error)",
                ask.target,
                ask.item,
            )
        ]
    if not ids:
        return [
            Finding(
                f"{ask.check}.default_deny",
                Outcome.REFUSE,
                f"no rule of the policy pack allows this ({ask.check} check)",
                "the legal team reviews the pack; until it allows this, it is refused",
                ask.target,
                ask.item,
            )
        ]
    return [_finding(pack.rules[i], ask) for i in ids]


class _Facts(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "unknown"


def _finding(rule: Rule, ask: _Ask) -> Finding:
    facts = _Facts(ask.facts)
    return Finding(
        rule.id,
        rule.outcome,
        rule.reason.format_map(facts),
        rule.remedy.format_map(facts),
        ask.target,
        ask.item,
        rule.role,
        ask.route,
    )
