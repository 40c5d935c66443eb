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
from typing import ClassVar

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
    KINDS,
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


@dataclass(slots=True)
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
    reported: set[str] | None = None  # finding codes reported (None: none yet)


def _demand_kind(event: Event) -> str | None:
    value = event.facts.get("demand_kind")
    return value if isinstance(value, str) else None


class ApprovalCheck(Check):
    """Every effect follows the screening and the approvals its policy required."""

    name = "approvals"
    methods: ClassVar[Mapping[str, str]] = {
        # every kind about a demand (the others never name one): an unknown demand is reported
        **{kind: "_other" for kind, spec in KINDS.items() if spec.about_demand},
        **dict.fromkeys(_NEW_VERSION, "_new_version"),
        **dict.fromkeys(EFFECTS, "_effect"),
        DEMAND_SCREENED: "_screened",
        DEMAND_REVIEW_OPENED: "_review_opened",
        APPROVAL_GIVEN: "_approval",
        DEMAND_APPROVED: "_decided",
        DEMAND_NARROWED: "_decided",
        DEMAND_REFUSED: "_refused",
        EMERGENCY_CALLBACK_RECORDED: "_callback",
        DEMAND_CLOSED: "_ended",
        DEMAND_WITHDRAWN: "_ended",
    }

    def __init__(self) -> None:
        self._demands: dict[str | None, _Version] = {}  # never None: a look-up key only
        self._unknown: set[str] = set()

    # Every method below first finds the demand's current version; an event that names no
    # demand, or one never received, returns what _not_received says.

    def _not_received(self, index: int, demand: str | None) -> Iterable[Finding]:
        if demand is None or demand in self._unknown:
            return ()
        return self._unknown_demand(index, demand)

    def _new_version(self, index: int, event: Event) -> Iterable[Finding]:
        demand = event.demand
        if demand is None or demand in self._unknown:
            return ()
        if event.kind == DEMAND_AMENDED and demand not in self._demands:
            return self._unknown_demand(index, demand)
        self._demands[demand] = _Version(index, _demand_kind(event))
        return ()

    def _other(self, index: int, event: Event) -> Iterable[Finding]:
        if event.demand not in self._demands:
            return self._not_received(index, event.demand)
        return ()

    def _screened(self, index: int, event: Event) -> Iterable[Finding]:
        v = self._demands.get(event.demand)
        if v is None:
            return self._not_received(index, event.demand)
        facts = event.facts
        v.screened = (index, str(facts["outcome"]), str(facts["pack"]))
        v.approvals, v.decision = [], None
        return ()

    def _review_opened(self, index: int, event: Event) -> Iterable[Finding]:
        v = self._demands.get(event.demand)
        if v is None:
            return self._not_received(index, event.demand)
        roles = event.facts.get("roles", ())
        if isinstance(roles, tuple):
            v.roles = frozenset(str(r) for r in roles) if roles else frozenset()
        return ()

    def _approval(self, index: int, event: Event) -> Iterable[Finding]:
        v = self._demands.get(event.demand)
        if v is None:
            return self._not_received(index, event.demand)
        v.approvals.append((index, str(event.facts["role"])))
        return ()

    def _decided(self, index: int, event: Event) -> Iterable[Finding]:
        v = self._demands.get(event.demand)
        if v is None:
            return self._not_received(index, event.demand)
        facts = event.facts
        claimed = facts["approvals"]
        v.decision = (index, str(facts["pack"]), claimed if isinstance(claimed, int) else 0)
        v.refused = None
        return ()

    def _refused(self, index: int, event: Event) -> Iterable[Finding]:
        v = self._demands.get(event.demand)
        if v is None:
            return self._not_received(index, event.demand)
        v.refused = index
        return ()

    def _callback(self, index: int, event: Event) -> Iterable[Finding]:
        v = self._demands.get(event.demand)
        if v is None:
            return self._not_received(index, event.demand)
        v.callback = (index, str(event.facts["callback"]))
        return ()

    def _ended(self, index: int, event: Event) -> Iterable[Finding]:
        v = self._demands.get(event.demand)
        if v is None:
            return self._not_received(index, event.demand)
        v.ended = index
        return ()

    def _effect(self, index: int, event: Event) -> Iterable[Finding]:
        v = self._demands.get(event.demand)
        if v is None:
            return self._not_received(index, event.demand)
        problems = self._problems(event, v)
        return self._report(index, event, v, problems) if problems else ()

    def _unknown_demand(self, index: int, demand: str) -> list[Finding]:
        self._unknown.add(demand)
        detail = f"entry {index} is about demand {demand}, which was never received"
        return [Finding("unknown_demand", detail, entries=(index,), demand=demand)]

    @staticmethod
    def _report(index: int, event: Event, v: _Version, problems: list[_Problem]) -> list[Finding]:
        findings = []
        reported = v.reported
        if reported is None:
            reported = v.reported = set()
        for code, what, others in problems:
            if code not in reported:  # one finding per code and version of a demand
                reported.add(code)
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
        approvals, roles = v.approvals, v.roles
        # approvals are logged in order: all of them come before the decision, or a prefix
        given = approvals if not approvals or approvals[-1][0] < d_index else [
            (i, role) for i, role in approvals if i < d_index
        ]  # fmt: skip
        emergency = v.kind == EMERGENCY or _demand_kind(event) == EMERGENCY
        needed = 1 if emergency else DUAL_CONTROL
        control = len(given) if not roles else sum(1 for _, role in given if role not in roles)
        if control < needed or claimed > len(given):  # specialists come on top
            detail = (
                f"{control} approval(s) besides specialist sign-offs before the decision, "
                f"which claims {claimed} in all; {needed} needed"
            )
            problems.append(("missing_approvals", detail, (d_index, *(i for i, _ in given))))
        if roles:
            missing = sorted(roles - {role for _, role in given})
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
        pack = event.facts.get("pack", d_pack)
        if d_pack != screened[2] or (pack != d_pack and str(pack) != d_pack):
            packs = {d_pack, screened[2], str(pack)}
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
    tallies = ("_checked", "_unchecked")
    kinds = frozenset({*_NEW_VERSION, APPROVAL_GIVEN})

    def __init__(self, disclosed: Disclosed) -> None:
        self._disclosed = disclosed
        self._demands: dict[str, _Staffing] = {}
        self._checked = 0
        self._unchecked = 0

    def observe(self, index: int, event: Event) -> Iterable[Finding]:
        demand = event.demand
        if demand is None or event.kind not in self.kinds:
            return ()
        if index not in self._disclosed:  # nothing disclosed: no staff to compare
            if event.kind == APPROVAL_GIVEN:
                self._unchecked += 1
            else:  # a new version starts with nobody known (as absent does)
                self._demands.pop(demand, None)
            return ()
        staff, bad = opened(self._disclosed, index, event, "staff")
        if bad:
            detail = f"the disclosed opening of staff in entry {index} does not open its commitment"
            return [Finding("opening_mismatch", detail, (index,), demand)]
        if event.kind in _NEW_VERSION:
            self._demands[demand] = _Staffing(None if staff is None else (index, staff))
            return ()
        staffing = self._demands.setdefault(demand, _Staffing(None))
        if staff is None:
            self._unchecked += 1
            return ()
        self._checked += 1
        findings = []
        if staffing.intake is not None and staffing.intake[1] == staff:
            detail = f"demand {demand} was approved by the person who took it in"
            entries = (staffing.intake[0], index)
            findings.append(Finding("self_approval", detail, entries, demand))
        if staff in staffing.approvers:
            detail = f"one person gave two approvals of demand {demand}"
            entries = (staffing.approvers[staff], index)
            findings.append(Finding("duplicate_approver", detail, entries, demand))
        staffing.approvers.setdefault(staff, index)
        return findings

    def notes(self) -> Iterable[str]:
        if self._unchecked:
            yield (
                f"self-approval: {self._unchecked} of {self._checked + self._unchecked} "
                "approvals not checked (their staff openings were not disclosed)"
            )
