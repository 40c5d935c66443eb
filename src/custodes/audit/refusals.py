"""What screening refused is never acted on.

Screening may refuse some targets of a demand (a selector, an unknown account, a subject out
of reach) or some of what it seeks (a data category the instrument does not reach) and let
the rest go on: review then starts from the demand narrowed to what is left, and the
decision (``demand.narrowed``) drops the refused targets. :class:`RefusedScopeCheck` holds
every effect of such a demand to that:

``refused_target_effect``
    an effect on a demand whose screening refused some targets (by any rule but the
    jurisdiction and territory rules, whose refusals are ``foreign_effect``:
    :mod:`custodes.audit.jurisdiction`) or items, when the decision dropped fewer targets
    than were refused, kept or reached more than screening left, or the decision or the
    effect names a refused data category or action.

It needs no policy pack: the findings a screening logged say what it refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from custodes.audit.approvals import EFFECTS
from custodes.audit.checks import Check
from custodes.audit.findings import Finding
from custodes.audit.jurisdiction import RULE_PREFIXES
from custodes.events import (
    DEMAND_AMENDED,
    DEMAND_APPROVED,
    DEMAND_NARROWED,
    DEMAND_RECEIVED,
    DEMAND_SCREENED,
    RESTRICTION_APPLIED,
    Event,
)

__all__ = ["RefusedScopeCheck"]


@dataclass(slots=True)
class _Scope:
    """What screening and the decision left of a demand's current version."""

    received: int
    targets: int
    screened: int | None = None
    refused: bool = False
    refused_targets: frozenset[int] = frozenset()
    reach_refused: frozenset[int] = frozenset()
    refused_items: frozenset[str] = frozenset()
    decision: int | None = None
    dropped: int = 0
    kept: int | None = None
    categories: tuple[str, ...] = ()
    reported: bool = False


class RefusedScopeCheck(Check):
    """Targets and items screening refused are dropped before anything is done."""

    name = "refused-scope"
    methods: ClassVar[Mapping[str, str]] = {
        DEMAND_RECEIVED: "_received",
        DEMAND_AMENDED: "_received",
        DEMAND_SCREENED: "_screened",
        DEMAND_APPROVED: "_decided",
        DEMAND_NARROWED: "_decided",
        **dict.fromkeys(EFFECTS, "_effect"),
    }

    def __init__(self) -> None:
        self._demands: dict[str | None, _Scope] = {}  # never None: a look-up key only

    def _received(self, index: int, event: Event) -> Iterable[Finding]:
        if event.demand is not None:
            self._demands[event.demand] = _Scope(index, int(event.facts["target_count"]))  # type: ignore[arg-type]
        return ()

    # Below, a demand never received is passed by: the approvals check reports it.

    def _screened(self, index: int, event: Event) -> Iterable[Finding]:
        scope = self._demands.get(event.demand)
        if scope is None:
            return ()
        facts = event.facts
        found = facts.get("findings", ())
        refusals = [
            f
            for f in (found if isinstance(found, tuple) else ())
            if (type(f) is dict or isinstance(f, Mapping)) and f["outcome"] == "refuse"
        ]
        targets: set[int] = set()
        reach: set[int] = set()
        items: set[str] = set()
        for f in refusals:
            if "target" in f:
                targets.add(int(f["target"]))
                if str(f["rule"]).startswith(RULE_PREFIXES):
                    reach.add(int(f["target"]))
            elif "item" in f:
                items.add(str(f["item"]))
        self._demands[event.demand] = _Scope(
            scope.received, scope.targets, index, facts["outcome"] == "refuse",
            frozenset(targets), frozenset(reach), frozenset(items),
        )  # fmt: skip
        return ()

    def _decided(self, index: int, event: Event) -> Iterable[Finding]:
        scope = self._demands.get(event.demand)
        if scope is None:
            return ()
        facts = event.facts
        scope.decision = index
        dropped, kept = facts.get("dropped_targets", 0), facts.get("target_count")
        scope.dropped = dropped if isinstance(dropped, int) else 0
        scope.kept = kept if isinstance(kept, int) else None
        scope.categories = tuple(map(str, facts.get("categories", ())))  # type: ignore[arg-type]
        return ()

    def _effect(self, index: int, event: Event) -> Iterable[Finding]:
        scope = self._demands.get(event.demand)
        return () if scope is None else self._judge(index, event, scope)

    def _judge(self, index: int, event: Event, s: _Scope) -> list[Finding]:
        if s.reported or s.screened is None or s.refused or s.decision is None:
            return []  # the approvals check reports effects without a screening or decision
        if not s.refused_targets and not s.refused_items:
            return []
        problems = []
        left = s.targets - len(s.refused_targets)
        if s.dropped >= len(s.reach_refused):  # else foreign_effect reports it
            if s.dropped < len(s.refused_targets):
                problems.append(
                    f"screening refused {len(s.refused_targets)} target(s), the decision "
                    f"dropped {s.dropped}"
                )
            if s.kept is not None and s.kept > left:
                problems.append(f"the decision keeps {s.kept} target(s), screening left {left}")
            reaches = event.facts.get("target_count")
            if isinstance(reaches, int) and reaches > left:
                problems.append(f"{event.kind} reaches {reaches} target(s), screening left {left}")
        named = set(s.categories) | {str(c) for c in event.facts.get("categories", ())}  # type: ignore[union-attr]
        if event.kind == RESTRICTION_APPLIED:
            named.add(str(event.facts["restriction_action"]))
        refused = sorted(named & s.refused_items)
        if refused:
            problems.append(f"screening refused {', '.join(refused)}, which the demand still got")
        if not problems:
            return []
        s.reported = True
        entries = (s.screened, s.decision, index)
        detail = f"{event.kind} of demand {event.demand}: " + "; ".join(problems)
        return [Finding("refused_target_effect", detail, entries, event.demand)]
