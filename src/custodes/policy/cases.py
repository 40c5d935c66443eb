"""The pack's own test cases: ``tests/*.json`` in the pack, run by ``custodes policy check``.

Each file holds ``{"cases": [...]}``; each case has a ``name``, one of ``screen``,
``staff_access`` or ``api``, and ``expect``::

    {"name": "a US warrant for a US user's content passes",
     "screen": {"authority": {...}, "demand": {...}, "subjects": [{...}], "context": {...}},
     "expect": {"outcome": "pass",
                "findings": [{"rule": "jurisdiction.domestic", "target": 0}],
                "absent": ["instrument.insufficient"]}}

    {"name": "...", "staff_access": {"staff": {...}, "subject_jurisdiction": "US",
                                     "justification": "demand", "demand_approved": true,
                                     "requesting": "CN"},
     "expect": {"allowed": false, "findings": [{"rule": "staff.requesting_state"}]}}

    {"name": "...", "api": {"staff": {...}, "action": "demand.approve",
                            "approval": {"requesting": "US", "affected": ["US"],
                                         "intake_by": "s-1", "approved_by": []}},
     "expect": {"allowed": true}}

``authority``, ``demand``, ``subjects`` and ``context`` use the JSON forms of
:mod:`custodes.model.codec` (``authority`` may be null: unregistered). ``expect.outcome`` is
the verdict (:func:`custodes.model.summarize`); ``expect.allowed`` the decision; each entry
of ``expect.findings`` must match some finding (``rule``, and optionally ``outcome``, the
``target`` index, ``item``); no finding may carry a rule listed in ``expect.absent``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from custodes.errors import CustodesError
from custodes.model import (
    Authority,
    Demand,
    Finding,
    ScreeningContext,
    Subject,
    Target,
    parse_authority,
    parse_context,
    parse_demand,
    parse_staff,
    parse_subject,
    summarize,
)

from .access import Approval, authorize, authorize_staff_access
from .pack import PolicyPack
from .screening import evaluate

__all__ = ["CaseResult", "run_pack_tests"]

_KINDS = ("screen", "staff_access", "api")


@dataclass(frozen=True)
class CaseResult:
    """One case: where it is, what it tests, whether it passed, what went wrong, and what
    the pack said (the outcome and the rules that refused or escalated)."""

    file: str
    name: str
    kind: str
    passed: bool
    problems: tuple[str, ...]
    got: str


def run_pack_tests(pack: PolicyPack) -> list[CaseResult]:
    """Run every case in the pack's ``tests/`` directory, in file and case order."""
    results = []
    for path in pack.tests:
        try:
            doc = json.loads(path.read_bytes())
            cases = doc["cases"]
            if not isinstance(cases, list):
                raise TypeError("cases must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            results.append(CaseResult(path.name, "(file)", "?", False, (f"bad file: {exc}",), ""))
            continue
        for n, case in enumerate(cases):
            results.append(_run(pack, path.name, n, case))
    return results


def _run(pack: PolicyPack, file: str, n: int, case: Any) -> CaseResult:
    name = case.get("name", f"case {n}") if isinstance(case, dict) else f"case {n}"
    kinds = [k for k in _KINDS if isinstance(case, dict) and k in case]
    if len(kinds) != 1 or not isinstance(case.get("expect"), dict):
        problem = "a case has a name, exactly one of screen/staff_access/api, and expect"
        return CaseResult(file, name, "?", False, (problem,), "")
    kind = kinds[0]
    expect = case["expect"]
    try:
        if kind == "screen":
            demand, findings = _screen(pack, case["screen"])
            outcome = summarize(demand, findings).outcome.value
            problems = _expect_findings(expect, findings, demand)
            if "outcome" in expect and expect["outcome"] != outcome:
                problems.insert(0, f"outcome {outcome}, expected {expect['outcome']}")
        else:
            run = _staff if kind == "staff_access" else _api
            decision = run(pack, case[kind])
            findings = list(decision.findings)
            outcome = "allowed" if decision.allowed else "refused"
            problems = _expect_findings(expect, findings, None)
            want = expect.get("allowed")
            if want is not None and want != decision.allowed:
                problems.insert(0, f"{outcome}, expected {'allowed' if want else 'refused'}")
    except (CustodesError, KeyError, TypeError, AttributeError) as exc:
        return CaseResult(file, name, kind, False, (f"bad case: {exc!s}",), "")
    rules = sorted({f.rule_id for f in findings if f.blocks})
    got = f"{outcome}: {', '.join(rules)}" if rules else outcome
    return CaseResult(file, name, kind, not problems, tuple(problems), got)


def screen_inputs(
    spec: Mapping[str, Any],
) -> tuple[Demand, Authority | None, dict[Target, Subject], ScreeningContext]:
    """A screen case's demand, authority, subjects by target and context: what ``evaluate``
    is asked with."""
    context = parse_context(spec["context"])
    authority = None if spec.get("authority") is None else parse_authority(spec["authority"])
    demand = parse_demand(
        spec["demand"],
        id="d_case",
        authority_id=authority.id if authority else None,
        received_at=context.now,
    )
    subjects = [parse_subject(s, f"subjects[{i}]") for i, s in enumerate(spec.get("subjects", []))]
    return demand, authority, {s.target: s for s in subjects}, context


def _screen(pack: PolicyPack, spec: Mapping[str, Any]) -> tuple[Demand, list[Finding]]:
    demand, authority, subjects, context = screen_inputs(spec)
    found = evaluate(pack, demand, authority, subjects, context, check_schema=True)
    return demand, found


def _staff(pack: PolicyPack, spec: Mapping[str, Any]) -> Any:
    return authorize_staff_access(
        pack,
        parse_staff(spec["staff"]),
        spec["subject_jurisdiction"],
        justification=spec["justification"],
        demand_approved=bool(spec.get("demand_approved", False)),
        requesting=spec.get("requesting"),
    )


def _api(pack: PolicyPack, spec: Mapping[str, Any]) -> Any:
    if "staff" in spec:
        principal: Any = parse_staff(spec["staff"])
    else:
        principal = parse_authority(spec["authority"])
    approval = None
    if "approval" in spec:
        a = spec["approval"]
        approval = Approval(
            a["requesting"],
            frozenset(a["affected"]),
            a["intake_by"],
            frozenset(a.get("approved_by", [])),
        )
    return authorize(pack, principal, spec["action"], approval=approval, role=spec.get("role"))


def _expect_findings(
    expect: Mapping[str, Any], findings: list[Finding], demand: Demand | None
) -> list[str]:
    problems = []
    for want in expect.get("findings", []):
        if not any(_matches(want, f, demand) for f in findings):
            problems.append(f"no finding {_show(want)}")
    absent = set(expect.get("absent", []))
    problems += [f"unexpected finding {f.rule_id}" for f in findings if f.rule_id in absent]
    return problems


def _matches(want: Mapping[str, Any], f: Finding, demand: Demand | None) -> bool:
    if want.get("rule") != f.rule_id:
        return False
    if "outcome" in want and want["outcome"] != f.outcome.value:
        return False
    if "item" in want and want["item"] != f.item:
        return False
    if "target" in want:
        if demand is None or f.target is None:
            return False
        return bool(demand.target_index(f.target) == want["target"])
    return True


def _show(want: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in want.items())
