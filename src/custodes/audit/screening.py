"""Screenings judged again: from the log's facts and the policy pack each screening names.

``demand.screened`` publishes the hash of the policy pack, the verdict (``outcome``, the
``rules`` that refused or escalated) and every finding: rule id, outcome, and the target's
position or the item it concerns. Who the subjects are, what the evidence showed, the
instrument's dates stay private, so an auditor cannot re-run every check. It checks what
the log and the published packs (``custodes audit --pack DIR``) do decide:

:class:`ScreeningCheck` (only with published packs)
    ``screening_inconsistent``
        the verdict does not follow from the findings as custodes folds them: ``refuse`` when
        a finding refuses the demand as a whole or every target or every item it seeks is
        refused, else ``escalate`` when a finding escalates, else ``pass``; ``rules`` lists
        the rules that refused or escalated; a finding names a target the demand does not
        have or an item it does not seek; or review opened after a refusing screening;
    ``pack_unpublished``
        the screening names a pack none of the published packs has (reported once per pack);
    ``screening_mismatch``
        the pack disagrees: a finding's rule is not in the pack, does not answer the check
        the finding belongs to, or has another outcome; ``demand.review_opened`` names other
        specialist roles than the escalating rules do; or Cedar, run by the auditor over
        the pack's own policies with the demand's public facts, finds something else for a
        check asked once per demand. A check is re-run when every attribute its policies
        read is public (:mod:`custodes.audit.packs` works that out from the policies): the
        demand's kind, instrument, signature, target count, categories, nondisclosure kind,
        restriction and territory count, whether an instrument document was attached (a
        commitment to it is published), the volume screening logged, the call-back status,
        the authority's kind (and, for an unregistered one, all of it), and the offence,
        when the demand names none or its opening was disclosed (``--disclosure``).

Whatever the packs, :class:`~custodes.audit.refusals.RefusedScopeCheck` checks that what
screening refused was not acted on.

>>> from custodes.policy import DEFAULT_PACK
>>> from custodes.audit.packs import load_published_pack
>>> check = ScreeningCheck([load_published_pack(DEFAULT_PACK)])
>>> check.name
'screening'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from custodes.audit.approvals import Disclosed, opened
from custodes.audit.checks import Check
from custodes.audit.findings import MAX_NAMED, Finding
from custodes.audit.packs import PublishedPack, packs_by_hash
from custodes.events import (
    DEMAND_AMENDED,
    DEMAND_RECEIVED,
    DEMAND_REVIEW_OPENED,
    DEMAND_SCREENED,
    EMERGENCY_CALLBACK_RECORDED,
    Event,
)

__all__ = [
    "DEMAND_CHECKS",
    "ITEM_CHECK",
    "TARGET_CHECK",
    "ScreeningCheck",
    "fold_verdict",
    "logged_findings",
]

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
"""The checks screening asks once per demand (Cedar actions)."""
ITEM_CHECK = "ladder"
"""The check asked once per item a demand seeks."""
TARGET_CHECK = "reach"
"""The check asked once per target."""
_ONLY_FOR = {
    "period": frozenset({"disclosure", "emergency_disclosure"}),
    "territory": frozenset({"restriction"}),
    "emergency": frozenset({"emergency_disclosure"}),
}
_NEEDS_AUTHORITY = frozenset({"instrument", "territory", "emergency"})
_EMERGENCY = "emergency_disclosure"
_UNKNOWN = object()


def _jurisdiction(code: str) -> dict[str, dict[str, str]]:
    return {"__entity": {"type": "Jurisdiction", "id": code}}


@dataclass
class _Version:
    """The public facts of a demand's current version, as screening saw them."""

    received: int
    facts: Mapping[str, Any]
    commit: frozenset[str]
    offence: object  # the offence, None (the demand names none) or _UNKNOWN
    callback: str = "none"
    screened: int | None = None
    outcome: str = ""
    roles: tuple[str, ...] | None = None  # what review must ask for (None: not known)

    def __post_init__(self) -> None:
        f = self.facts
        self.kind = str(f["demand_kind"])
        self.registered = "authority_jurisdiction" in f
        self.items: tuple[str, ...] = (
            ("preservation",)
            if self.kind == "preservation"
            else (str(f["restriction_action"]),)
            if "restriction_action" in f
            else tuple(f.get("categories", ()))
        )

    def principal(self) -> dict[str, Any]:
        """The authority's attributes an auditor knows."""
        if not self.registered:
            nowhere = _jurisdiction("ZZ")
            return {"kind": "other", "standing": "unregistered", "recognised": False,
                    "jurisdiction": nowhere, "country": nowhere}  # fmt: skip
        known: dict[str, Any] = {
            "jurisdiction": _jurisdiction(str(self.facts["authority_jurisdiction"]))
        }
        if "authority_kind" in self.facts:
            known["kind"] = self.facts["authority_kind"]
        return known

    def resource(self, volume: object) -> dict[str, Any]:
        """The demand's attributes an auditor knows (None: known to be absent)."""
        f = self.facts
        nondisclosure = f.get("nondisclosure", "none")
        known: dict[str, Any] = {
            "kind": self.kind,
            "instrument": f["instrument_kind"],
            "has_document": "document_sha256" in self.commit,
            "signature": f["signature"],
            "target_count": f["target_count"],
            "categories": list(f.get("categories", ())),
            "nondisclosure": nondisclosure,
            "territories": {"__entity": {"type": "Area", "id": "territories"}},
            "territory_count": len(f.get("territories", ())),
            "callback": self.callback if self.kind == _EMERGENCY else "none",
            "restriction": f.get("restriction_action"),
        }
        if nondisclosure != "dated":
            known["gag_days"] = None
        if isinstance(volume, int):
            known["volume"] = volume
        if self.offence is not _UNKNOWN:
            known["offence"] = self.offence
        return known


def _asked(check: str, version: _Version) -> bool | None:
    """Whether screening asked ``check`` of this demand (None: it depends on whether the pack
    knows the authority's jurisdiction, which the log does not say)."""
    if check in _ONLY_FOR and version.kind not in _ONLY_FOR[check]:
        return False
    if check in _NEEDS_AUTHORITY:
        return None if version.registered else False
    return True


def logged_findings(event: Event) -> list[Mapping[str, Any]]:
    found = event.facts.get("findings", ())
    if not isinstance(found, tuple):
        return []
    return [f for f in found if type(f) is dict or isinstance(f, Mapping)]


def fold_verdict(version: _Version, findings: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """The verdict custodes folds ``findings`` into: the outcome and the rules it names."""
    rules: set[str] = set()
    targets: set[int] = set()
    items: set[str] = set()
    whole = escalate = False
    for f in findings:
        if f["outcome"] == "pass":
            continue
        rules.add(str(f["rule"]))
        if f["outcome"] == "escalate":
            escalate = True
        elif "target" in f:
            targets.add(int(f["target"]))
        elif "item" in f:
            items.add(str(f["item"]))
        else:
            whole = True
    left_targets = int(version.facts["target_count"]) - len(targets)
    left_items = set(version.items) - items
    if whole or left_targets <= 0 or not left_items:
        return "refuse", sorted(rules)
    return ("escalate" if escalate else "pass"), sorted(rules)


class ScreeningCheck(Check):
    """Each screening's verdict follows from its findings, and its findings from its pack."""

    name = "screening"
    tallies = ("_unpublished", "_judged", "_rerun", "_not_rerun")
    kinds = frozenset(
        {DEMAND_RECEIVED, DEMAND_AMENDED, EMERGENCY_CALLBACK_RECORDED, DEMAND_SCREENED,
         DEMAND_REVIEW_OPENED}
    )  # fmt: skip

    def __init__(self, packs: Iterable[PublishedPack], disclosed: Disclosed | None = None) -> None:
        self._packs = packs_by_hash(packs)
        self._disclosed: Disclosed = disclosed or {}
        self._demands: dict[str, _Version] = {}
        self._unpublished: dict[str, list[int]] = {}
        self._judged = 0
        self._rerun = 0
        self._not_rerun: dict[str, int] = {}

    def observe(self, index: int, event: Event) -> Iterable[Finding]:
        demand = event.demand
        if demand is None:
            return ()
        if event.kind in (DEMAND_RECEIVED, DEMAND_AMENDED):
            return self._received(index, event, demand)
        version = self._demands.get(demand)
        if version is None:
            return ()  # the approvals check reports demands never received
        if event.kind == EMERGENCY_CALLBACK_RECORDED:
            version.callback = str(event.facts["callback"])
        elif event.kind == DEMAND_SCREENED:
            return self._judge(index, event, version)
        elif event.kind == DEMAND_REVIEW_OPENED:
            return self._review(index, event, version)
        return ()

    def _received(self, index: int, event: Event, demand: str) -> list[Finding]:
        offence: object = None
        found: list[Finding] = []
        if "offence" in event.commitments:
            value, bad = opened(self._disclosed, index, event, "offence")
            offence = _UNKNOWN if value is None else value
            if bad:
                detail = f"the disclosed opening of offence in entry {index} does not open it"
                found.append(Finding("opening_mismatch", detail, (index,), demand))
        self._demands[demand] = _Version(index, event.facts, frozenset(event.commitments), offence)
        return found

    def _review(self, index: int, event: Event, v: _Version) -> list[Finding]:
        if v.screened is None:
            return []
        entries = (v.screened, index)
        if v.outcome == "refuse":
            detail = f"review of demand {event.demand} opened after screening refused it"
            return [Finding("screening_inconsistent", detail, entries, event.demand)]
        roles = tuple(sorted(str(r) for r in event.facts.get("roles", ())))  # type: ignore[union-attr]
        if v.roles is not None and roles != v.roles:
            detail = (
                f"review of demand {event.demand} asks for roles {list(roles)}; the escalating "
                f"rules of its screening need {list(v.roles)}"
            )
            return [Finding("screening_mismatch", detail, entries, event.demand)]
        return []

    def _judge(self, index: int, event: Event, v: _Version) -> list[Finding]:
        self._judged += 1
        findings = logged_findings(event)
        v.screened, v.outcome, v.roles = index, str(event.facts["outcome"]), None
        out: list[Finding] = []
        entries = (v.received, index)
        inconsistent = _inconsistencies(v, event, findings)
        if inconsistent:
            detail = f"screening of demand {event.demand}: " + "; ".join(inconsistent[:3])
            problems = {"problems": inconsistent}
            out.append(Finding("screening_inconsistent", detail, entries, event.demand, problems))
        pack = self._packs.get(str(event.facts["pack"]))
        if pack is None:
            self._unpublished.setdefault(str(event.facts["pack"]), []).append(index)
            return out
        v.roles = _roles(pack, findings)
        mismatches = _rule_mismatches(pack, findings) + self._rerun_checks(pack, event, v, findings)
        if mismatches:
            detail = f"screening of demand {event.demand}: " + "; ".join(mismatches[:3])
            evidence: dict[str, Any] = {"problems": mismatches, "pack": pack.hash}
            out.append(Finding("screening_mismatch", detail, entries, event.demand, evidence))
        return out

    def _rerun_checks(
        self, pack: PublishedPack, event: Event, v: _Version, findings: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Cedar's findings for each re-runnable check, against the logged ones."""
        if any(f["rule"] == "pack.error" for f in findings):
            return []  # the platform's Cedar failed; which check failed is not logged
        logged: dict[str, set[tuple[str, str]]] = {}
        for f in findings:
            if "target" in f or "item" in f:
                continue
            rule = str(f["rule"])
            for check in _checks_of(pack, rule):
                logged.setdefault(check, set()).add((rule, str(f["outcome"])))
        principal, resource = v.principal(), v.resource(event.facts.get("volume"))
        problems = []
        for check in DEMAND_CHECKS:
            asked, found = _asked(check, v), logged.get(check, set())
            if asked is False:
                if found:
                    problems.append(f"findings of the {check} check, which is not asked here")
                continue
            if asked is None and not found:
                continue
            expected = pack.decide(check, principal, resource)
            if expected is None:
                self._not_rerun[check] = self._not_rerun.get(check, 0) + 1
                continue
            self._rerun += 1
            if expected != found:
                problems.append(
                    f"the {check} check finds {_pairs(expected)} from the log's facts, "
                    f"not {_pairs(found)}"
                )
        return problems

    def finish(self, as_of: datetime) -> Iterable[Finding]:
        for pack, indexes in self._unpublished.items():
            detail = (
                f"{len(indexes)} screening(s) name policy pack {pack}, which is not among "
                "the published packs given"
            )
            yield Finding(
                "pack_unpublished",
                detail,
                tuple(indexes[:MAX_NAMED]),
                evidence={"pack": pack, "count": len(indexes)},
            )

    def notes(self) -> Iterable[str]:
        if self._not_rerun:
            counts = ", ".join(f"{c} {n}" for c, n in sorted(self._not_rerun.items()))
            yield (
                f"screening: {self._judged} screening(s) judged, {self._rerun} check(s) re-run "
                f"with Cedar; not re-run (they read facts the log keeps private): {counts}"
            )


def _pairs(found: Iterable[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{r} {o}" for r, o in sorted(found)) + "]" if found else "nothing"


def _checks_of(pack: PublishedPack, rule: str) -> tuple[str, ...]:
    if rule in pack.rules:
        return pack.rules[rule].actions
    return (rule.removesuffix(".default_deny"),) if rule.endswith(".default_deny") else ()


def _inconsistencies(v: _Version, event: Event, findings: Sequence[Mapping[str, Any]]) -> list[str]:
    problems = []
    outcome, rules = fold_verdict(v, findings)
    if outcome != event.facts["outcome"]:
        problems.append(
            f"its findings make it {outcome}, the screening says {event.facts['outcome']}"
        )
    logged_rules = [str(r) for r in event.facts.get("rules", ())]  # type: ignore[union-attr]
    if logged_rules != rules:
        problems.append(f"its findings refuse or escalate by {rules}, it names {logged_rules}")
    count, items = int(v.facts["target_count"]), set(v.items)
    for f in findings:
        if "target" in f and not 0 <= int(f["target"]) < count:
            problems.append(f"{f['rule']} names target {f['target']} of {count}")
        if "item" in f and f["item"] not in items:
            problems.append(f"{f['rule']} names {f['item']}, which the demand does not seek")
    return problems


def _rule_mismatches(pack: PublishedPack, findings: Sequence[Mapping[str, Any]]) -> list[str]:
    problems = []
    for f in findings:
        rule, outcome = str(f["rule"]), str(f["outcome"])
        check = TARGET_CHECK if "target" in f else ITEM_CHECK if "item" in f else None
        if rule == "pack.error" or (rule.endswith(".default_deny") and outcome == "refuse"):
            continue
        known = pack.rules.get(rule)
        if known is None:
            problems.append(f"rule {rule} is not in the pack")
        elif known.outcome != outcome:
            problems.append(
                f"rule {rule} {known.outcome}s in the pack, the screening says {outcome}"
            )
        elif check is not None and check not in known.actions:
            problems.append(f"rule {rule} does not answer the {check} check")
        elif check is None and not set(known.actions) & set(DEMAND_CHECKS):
            problems.append(f"rule {rule} answers no screening check")
    return problems


def _roles(pack: PublishedPack, findings: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    roles = set()
    for f in findings:
        rule = pack.rules.get(str(f["rule"]))
        if f["outcome"] == "escalate" and rule is not None and rule.role:
            roles.add(rule.role)
    return tuple(sorted(roles))
