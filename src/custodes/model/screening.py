"""What screening needs and what it says.

Screening judges a :class:`~custodes.model.demand.Demand` against the policy pack. It needs
what the platform knows about each target (a :class:`Subject`: where the person is, where
their data lives, which records exist) and facts gathered at intake (a
:class:`ScreeningContext`: signature, call-back, the authority's recent volume, evidence
checks). It answers with :class:`Finding` objects, each naming a rule, an outcome, the reason
in plain words and the remedy. :func:`summarize` folds findings into a :class:`Verdict`.

>>> from custodes.model.demand import Target, TargetKind
>>> t = Target(TargetKind.ACCOUNT, "u-1")
>>> f = Finding("jurisdiction.subject_outside", Outcome.REFUSE, "outside", "use MLAT", target=t)
>>> f.blocks, Finding("gag.none", Outcome.PASS, "no gag", "").blocks
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from custodes.errors import InputError

from .demand import DataCategory, Demand, Target, check_code, check_token

__all__ = [
    "CallbackStatus",
    "EvidenceStatus",
    "Finding",
    "Outcome",
    "ScreeningContext",
    "SignatureStatus",
    "Subject",
    "Verdict",
    "summarize",
]


class Outcome(StrEnum):
    REFUSE = "refuse"
    ESCALATE = "escalate"
    PASS = "pass"  # noqa: S105


class SignatureStatus(StrEnum):
    """Whether the request carried a valid RFC 9421 signature by a key of the authority."""

    VALID = "valid"
    INVALID = "invalid"
    MISSING = "missing"


class CallbackStatus(StrEnum):
    """Whether staff confirmed an emergency by calling back, and on which kind of channel."""

    NONE = "none"
    REGISTERED = "registered"
    UNREGISTERED = "unregistered"


class EvidenceStatus(StrEnum):
    """What the platform found when it looked up one piece of evidence."""

    VERIFIED = "verified"
    MISMATCH = "mismatch"
    NOT_HELD = "not_held"


@dataclass(frozen=True)
class Subject:
    """What the platform reports about one target.

    ``affected`` lists the jurisdictions of everyone an action on the target reaches (for a
    meeting: the host and the participants), ``records`` the categories of data that exist.
    """

    target: Target
    jurisdiction: str
    data_region: str
    account_type: str
    records: frozenset[DataCategory] = frozenset()
    affected: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        check_code(self.jurisdiction, "subject jurisdiction")
        check_code(self.data_region, "data region")
        check_token(self.account_type, "account type")
        for code in self.affected:
            check_code(code, "affected jurisdiction")


@dataclass(frozen=True)
class ScreeningContext:
    """Facts gathered at intake that policy needs besides the demand itself.

    ``volume`` counts the targets this authority named within the pack's rolling window,
    this demand included. ``evidence`` holds one status per ``Demand.evidence`` entry, in
    order; a missing entry counts as not held.
    """

    now: datetime
    signature: SignatureStatus
    callback: CallbackStatus = CallbackStatus.NONE
    volume: int = 0
    evidence: tuple[EvidenceStatus, ...] = ()

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise InputError("context.now must carry a time zone")
        if not isinstance(self.volume, int) or self.volume < 0:
            raise InputError("context.volume must be a non-negative integer")

    def evidence_status(self, index: int) -> EvidenceStatus:
        if index < len(self.evidence):
            return self.evidence[index]
        return EvidenceStatus.NOT_HELD


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on a demand, a target of it, or one item it seeks.

    ``target`` is set when the finding concerns one target, ``item`` when it concerns one
    data category or action; ``role`` names the specialist an escalation needs; ``route``
    the treaty route considered for a target (its id in the pack), if any.
    """

    rule_id: str
    outcome: Outcome
    reason: str
    remedy: str
    target: Target | None = None
    item: str | None = None
    role: str | None = None
    route: str | None = None

    @property
    def blocks(self) -> bool:
        """Whether the finding stops what it concerns until someone acts (refuse/escalate)."""
        return self.outcome is not Outcome.PASS


@dataclass(frozen=True)
class Verdict:
    """Findings folded into what happens next.

    ``outcome`` is ``refuse`` when a demand-level rule refuses or nothing is left after
    dropping refused targets and items; else ``escalate`` when any finding escalates; else
    ``pass``. ``narrowed`` says whether some targets or items were dropped.
    """

    outcome: Outcome
    refused_targets: tuple[Target, ...]
    refused_items: tuple[str, ...]
    roles: tuple[str, ...]
    rules: tuple[str, ...]

    @property
    def narrowed(self) -> bool:
        return self.outcome is not Outcome.REFUSE and bool(
            self.refused_targets or self.refused_items
        )


def summarize(demand: Demand, findings: Iterable[Finding]) -> Verdict:
    """Fold ``findings`` on ``demand`` into a :class:`Verdict`.

    >>> from datetime import UTC, datetime
    >>> from custodes.model.demand import (
    ...     DataCategory, DemandKind, InstrumentKind, LegalInstrument, TargetKind)
    >>> a, b = Target(TargetKind.ACCOUNT, "u-1"), Target(TargetKind.ACCOUNT, "u-2")
    >>> d = Demand("d_1", "x", DemandKind.DISCLOSURE, LegalInstrument(InstrumentKind.SUBPOENA),
    ...            (a, b), datetime(2024, 1, 1, tzinfo=UTC), (DataCategory.SUBSCRIBER_INFO,))
    >>> v = summarize(d, [Finding("jurisdiction.subject_outside", Outcome.REFUSE, "", "",
    ...                           target=b)])
    >>> v.outcome.value, v.narrowed, [str(t) for t in v.refused_targets]
    ('pass', True, ['account:u-2'])
    """
    refused_targets: dict[Target, None] = {}
    refused_items: dict[str, None] = {}
    roles: dict[str, None] = {}
    rules: dict[str, None] = {}
    whole = False
    escalate = False
    for f in findings:
        if f.outcome is Outcome.PASS:
            continue
        rules[f.rule_id] = None
        if f.outcome is Outcome.ESCALATE:
            escalate = True
            if f.role:
                roles[f.role] = None
        elif f.target is not None:
            refused_targets[f.target] = None
        elif f.item is not None:
            refused_items[f.item] = None
        else:
            whole = True
    left_targets = [t for t in demand.targets if t not in refused_targets]
    left_items = [i for i in demand.items if i not in refused_items]
    if whole or not left_targets or not left_items:
        outcome = Outcome.REFUSE
    else:
        outcome = Outcome.ESCALATE if escalate else Outcome.PASS
    return Verdict(
        outcome=outcome,
        refused_targets=tuple(t for t in demand.targets if t in refused_targets),
        refused_items=tuple(i for i in demand.items if i in refused_items),
        roles=tuple(sorted(roles)),
        rules=tuple(sorted(rules)),
    )
