"""No effect without authority: approvals, dual control and self-approval, from the log alone.

An *effect* is an event that acts on the world: ``demand.executed``, ``production.delivered``,
``restriction.applied``, ``preservation.placed`` and ``preservation.extended``. A demand's
*current version* starts at its latest ``demand.received`` or ``demand.amended``; everything
below is judged within it. :class:`ApprovalCheck` requires, for every effect:

============================  ================================================================
code                          violated when
============================  ================================================================
``unknown_demand``            an event names a demand that was never received (reported once)
``unscreened_effect``         the current version was never screened
``effect_after_refusal``      its screening's outcome was ``refuse``, or a ``demand.refused``
                              came after the last decision
``unapproved_effect``         no ``demand.approved``/``demand.narrowed`` in the current
                              version after the screening, or the demand was closed/withdrawn
``missing_approvals``         fewer ``approval.given`` before the decision than dual control
                              requires (two; one for an emergency disclosure), not counting
                              the specialist sign-offs review asked for, which come in
                              addition; or the decision claims more approvals than were logged
``missing_role``              a specialist role ``demand.review_opened`` asked for never
                              approved
``emergency_without_callback``an emergency disclosure decided without a ``registered`` call-back
``pack_mismatch``             the execution, the decision and the screening name different
                              policy packs
============================  ================================================================

Staff identities are salted commitments, so *who* approved cannot be read from the log.
:class:`SelfApprovalCheck` uses openings the platform discloses to the auditor (entry index
to salts and values, the format of :func:`custodes.events.format_openings`): an approver who
took in the demand is ``self_approval``, one person approving twice is ``duplicate_approver``,
and a disclosed opening that does not open its commitment is ``opening_mismatch``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from custodes.audit.checks import Check
from custodes.audit.findings import Finding
from custodes.events import (
    APPROVAL_GIVEN,
    DEMAND_AMENDED,
    DEMAND_APPROVED,
    DEMAND_CLOSED,
    DEMAND_EXECUTED,
    DEMAND_NARROWED,
    DEMAND_RECEIVED,
    DEMAND_REFUSED,
    DEMAND_REVIEW_OPENED,
    DEMAND_SCREENED,
    DEMAND_WITHDRAWN,
    EMERGENCY_CALLBACK_RECORDED,
    PRESERVATION_EXTENDED,
    PRESERVATION_PLACED,
    PRODUCTION_DELIVERED,
    RESTRICTION_APPLIED,
    Event,
    Opening,
    open_commitment,
)
from custodes.events.leaf import SALT_BYTES

__all__ = [
    "DUAL_CONTROL",
    "EFFECTS",
    "EMERGENCY",
    "ApprovalCheck",
    "Disclosed",
    "SelfApprovalCheck",
    "opened",
]

EFFECTS = frozenset(
    {
        DEMAND_EXECUTED,
        PRODUCTION_DELIVERED,
        RESTRICTION_APPLIED,
        PRESERVATION_PLACED,
        PRESERVATION_EXTENDED,
    }
)
"""Event kinds that act on users or their data."""
EMERGENCY = "emergency_disclosure"
#: Distinct approvals every effect needs, except an emergency disclosure (one).
DUAL_CONTROL = 2
_NEW_VERSION = frozenset({DEMAND_RECEIVED, DEMAND_AMENDED})

Disclosed = Mapping[int, Mapping[str, Opening | tuple[Opening, ...]]]
"""Openings disclosed to the auditor, by entry index."""
_Problem = tuple[str, str, tuple[int, ...]]


@dataclass
class _Version:
    """One version of a demand, from its receipt or amendment on."""

    received: int
    kind: str | None
    screened: tuple[int, str, str] | None = None  # index, outcome, pack
    roles: frozenset[str] = frozenset()
    approvals: list[tuple[int, str]] = field(default_factory=list)  # index, role
    decision: tuple[int, str, int] | None = None  # index, pack, approvals claimed
    refused: int | None = None
    callback: tuple[int, str] | None = None  # index, status
    ended: int | None = None
    reported: set[str] = field(default_factory=set)


def _demand_kind(event: Event) -> str | None:
    value = event.facts.get("demand_kind")
    return value if isinstance(value, str) else None


class ApprovalCheck(Check):
    """Every effect follows the screening and the approvals its policy required."""

    name = "approvals"

    def __init__(self) -> None:
        self._demands: dict[str, _Version] = {}
        self._unknown: set[str] = set()

    def observe(self, index: int, event: Event) -> Iterable[Finding]:
        demand = event.demand
        if demand is None or demand in self._unknown:
            return ()
        if event.kind in _NEW_VERSION:
            if event.kind == DEMAND_AMENDED and demand not in self._demands:
                return self._unknown_demand(index, demand)
            self._demands[demand] = _Version(index, _demand_kind(event))
            return ()
        version = self._demands.get(demand)
        if version is None:
            return self._unknown_demand(index, demand)
        self._track(index, event, version)
        if event.kind in EFFECTS:
            return list(self._judge(index, event, version))
        return ()

    def _unknown_demand(self, index: int, demand: str) -> list[Finding]:
        self._unknown.add(demand)
        detail = f"entry {index} is about demand {demand}, which was never received"
        return [Finding("unknown_demand", detail, entries=(index,), demand=demand)]

    def _track(self, index: int, event: Event, v: _Version) -> None:
        facts, kind = event.facts, event.kind
        if kind == DEMAND_SCREENED:
            v.screened = (index, str(facts["outcome"]), str(facts["pack"]))
            v.approvals, v.decision = [], None
        elif kind == DEMAND_REVIEW_OPENED:
            roles = facts.get("roles", ())
            v.roles = frozenset(str(r) for r in roles) if isinstance(roles, tuple) else v.roles
        elif kind == APPROVAL_GIVEN:
            v.approvals.append((index, str(facts["role"])))
        elif kind in (DEMAND_APPROVED, DEMAND_NARROWED):
            claimed = facts["approvals"]
            v.decision = (index, str(facts["pack"]), claimed if isinstance(claimed, int) else 0)
            v.refused = None
        elif kind == DEMAND_REFUSED:
            v.refused = index
        elif kind == EMERGENCY_CALLBACK_RECORDED:
            v.callback = (index, str(facts["callback"]))
        elif kind in (DEMAND_CLOSED, DEMAND_WITHDRAWN):
            v.ended = index

    def _judge(self, index: int, event: Event, v: _Version) -> list[Finding]:
        findings = []
        for code, what, others in self._problems(event, v):
            if code not in v.reported:  # one finding per code and version of a demand
                v.reported.add(code)
                entries = tuple(sorted({index, *others}))
                detail = f"{event.kind} of demand {event.demand}: {what}"
                findings.append(Finding(code, detail, entries, event.demand))
        return findings

    def _problems(self, event: Event, v: _Version) -> list[_Problem]:
        if v.ended is not None:
            return [("unapproved_effect", "after it was closed or withdrawn", (v.ended,))]
        if v.screened is None:
            return [("unscreened_effect", "its current version was never screened", ())]
        s_index, outcome, _ = v.screened
        if outcome == "refuse" or v.refused is not None:
            refusal = v.refused if v.refused is not None else s_index
            return [("effect_after_refusal", "the demand was refused", (refusal,))]
        if v.decision is None:
            return [("unapproved_effect", "no approval decision was logged", (s_index,))]
        return self._decision_problems(event, v, v.screened, v.decision)

    @staticmethod
    def _decision_problems(
        event: Event, v: _Version, screened: tuple[int, str, str], decision: tuple[int, str, int]
    ) -> list[_Problem]:
        problems: list[_Problem] = []
        d_index, d_pack, claimed = decision
        given = [(i, role) for i, role in v.approvals if i < d_index]
        emergency = EMERGENCY in (v.kind, _demand_kind(event))
        needed = 1 if emergency else DUAL_CONTROL
        control = [i for i, role in given if role not in v.roles]  # specialists come on top
        if len(control) < needed or claimed > len(given):
            detail = (
                f"{len(control)} approval(s) besides specialist sign-offs before the decision, "
                f"which claims {claimed} in all; {needed} needed"
            )
            problems.append(("missing_approvals", detail, (d_index, *(i for i, _ in given))))
        missing = sorted(v.roles - {role for _, role in given})
        if missing:
            detail = f"no approval in role {', '.join(missing)}"
            problems.append(("missing_role", detail, (d_index,)))
        callback = v.callback
        if emergency and (callback is None or callback[1] != "registered" or callback[0] > d_index):
            detail = "decided without a call-back on a registered channel"
            problems.append(
                (
                    "emergency_without_callback",
                    detail,
                    (d_index, *(callback[:1] if callback else ())),
                )
            )
        packs = {d_pack, screened[2], str(event.facts.get("pack", d_pack))}
        if len(packs) > 1:
            detail = f"judged under policy packs {', '.join(sorted(packs))}"
            problems.append(("pack_mismatch", detail, (d_index, screened[0])))
        return problems


def opened(disclosed: Disclosed, index: int, event: Event, name: str) -> tuple[str | None, bool]:
    """The disclosed value of scalar field ``name`` of the event at ``index``, and whether a
    disclosed opening failed to open the published commitment."""
    opening = disclosed.get(index, {}).get(name)
    published = event.commitments.get(name)
    if not isinstance(opening, Opening) or published is None:
        return None, False
    if len(opening.salt) != SALT_BYTES or open_commitment(name, opening) != published:
        return None, True
    return opening.value, False


@dataclass
class _Staffing:
    intake: tuple[int, str] | None
    approvers: dict[str, int] = field(default_factory=dict)


class SelfApprovalCheck(Check):
    """Nobody approves a demand they took in, and the approvals come from distinct people."""

    name = "self-approval"
    kinds = frozenset({*_NEW_VERSION, APPROVAL_GIVEN})

    def __init__(self, disclosed: Disclosed) -> None:
        self._disclosed = disclosed
        self._demands: dict[str, _Staffing] = {}
        self._checked = 0
        self._unchecked = 0

    def observe(self, index: int, event: Event) -> Iterable[Finding]:
        if event.demand is None or event.kind not in (*_NEW_VERSION, APPROVAL_GIVEN):
            return ()
        staff, bad = opened(self._disclosed, index, event, "staff")
        if bad:
            detail = f"the disclosed opening of staff in entry {index} does not open its commitment"
            return [Finding("opening_mismatch", detail, (index,), event.demand)]
        if event.kind in _NEW_VERSION:
            self._demands[event.demand] = _Staffing(None if staff is None else (index, staff))
            return ()
        staffing = self._demands.setdefault(event.demand, _Staffing(None))
        if staff is None:
            self._unchecked += 1
            return ()
        self._checked += 1
        findings = []
        if staffing.intake is not None and staffing.intake[1] == staff:
            detail = f"demand {event.demand} was approved by the person who took it in"
            entries = (staffing.intake[0], index)
            findings.append(Finding("self_approval", detail, entries, event.demand))
        if staff in staffing.approvers:
            detail = f"one person gave two approvals of demand {event.demand}"
            entries = (staffing.approvers[staff], index)
            findings.append(Finding("duplicate_approver", detail, entries, event.demand))
        staffing.approvers.setdefault(staff, index)
        return findings

    def notes(self) -> Iterable[str]:
        if self._unchecked:
            yield (
                f"self-approval: {self._unchecked} of {self._checked + self._unchecked} "
                "approvals not checked (their staff openings were not disclosed)"
            )
