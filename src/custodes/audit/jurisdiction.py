"""No effect outside the authority's jurisdiction without a treaty route (failure mode F3).

From the public facts of a demand's current version (see :mod:`custodes.audit.approvals`):
the authority's jurisdiction (``demand.received``), the instrument kind, the jurisdictions of
the subjects screening found (``demand.screened``), the targets jurisdiction and territory
rules refused, the targets a ``demand.narrowed`` dropped, and the territories of a
restriction. A jurisdiction is *domestic* when its country (the first two letters of the ISO
3166 code) is the authority's. An instrument of a treaty route (``mlat_request``,
``cloud_act_order``, ``epoc``, ``epoc_pr``), or a ``route`` fact on any event of the version,
counts as a route.

An effect is ``foreign_effect`` when screening refused the whole demand on jurisdiction or
territory grounds, or refused some targets on those grounds and the demand was not narrowed by
at least as many targets (a route never undoes a refusal); and, without a route, when the
demand has foreign subjects that no jurisdiction rule refused, or a restriction is applied in
a foreign territory. A route is a treaty instrument, a ``route`` fact, or a passing
``jurisdiction.treaty_route`` finding. Effects of a demand whose authority's jurisdiction was
not logged are judged on the refusals only, and counted in a note.

>>> is_domestic("US-CA", "US"), is_domestic("FR", "DE")
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from custodes.audit.approvals import EFFECTS
from custodes.audit.checks import Check
from custodes.audit.findings import Finding
from custodes.events import (
    DEMAND_AMENDED,
    DEMAND_NARROWED,
    DEMAND_RECEIVED,
    DEMAND_SCREENED,
    KINDS,
    RESTRICTION_APPLIED,
    Event,
)

__all__ = [
    "RULE_PREFIXES",
    "TREATY_INSTRUMENTS",
    "TREATY_ROUTE_RULE",
    "JurisdictionCheck",
    "is_domestic",
]

TREATY_INSTRUMENTS = frozenset({"mlat_request", "cloud_act_order", "epoc", "epoc_pr"})
"""Instrument kinds that only exist under a treaty or cross-border agreement."""
RULE_PREFIXES = ("jurisdiction.", "territory.")
"""Screening rules whose refusals are about reach."""
TREATY_ROUTE_RULE = "jurisdiction.treaty_route"
"""The screening rule whose passing finding says a treaty route covers a target."""


def is_domestic(code: str, authority: str) -> bool:
    """Whether the jurisdiction ``code`` lies in the country of ``authority``."""
    return code[:2] == authority[:2]


def _codes(value: object) -> tuple[str, ...]:
    return tuple(map(str, value)) if isinstance(value, tuple) else ()


@dataclass(slots=True)
class _Reach:
    received: int
    authority: str | None
    route: bool
    territories: tuple[str, ...]
    screened: int | None = None
    subjects: tuple[str, ...] = ()
    refused_targets: set[int] = field(default_factory=set)
    refused_whole: bool = False
    dropped: int = 0
    reported: bool = False


class JurisdictionCheck(Check):
    """Effects stay inside the authority's jurisdiction unless a treaty route applies."""

    name = "jurisdiction"
    tallies = ("_unchecked",)
    methods: ClassVar[Mapping[str, str]] = {
        # the kinds that may carry a route; below, those judged in a method of their own
        **{k: "_other" for k, spec in KINDS.items() if "route" in spec.required | spec.optional},
        DEMAND_RECEIVED: "_received",
        DEMAND_AMENDED: "_received",
        DEMAND_SCREENED: "_on_screened",
        DEMAND_NARROWED: "_narrowed",
        **dict.fromkeys(EFFECTS, "_effect"),
    }

    def __init__(self) -> None:
        self._demands: dict[str | None, _Reach] = {}  # never None: a look-up key only
        self._unchecked = 0

    def _received(self, index: int, event: Event) -> Iterable[Finding]:
        if event.demand is not None:
            facts = event.facts
            authority = facts.get("authority_jurisdiction")
            self._demands[event.demand] = _Reach(
                index,
                authority if isinstance(authority, str) else None,
                facts.get("instrument_kind") in TREATY_INSTRUMENTS,
                _codes(facts.get("territories")),
            )
        return ()

    # Below, a demand never received is passed by: the approvals check reports it.

    def _other(self, index: int, event: Event) -> Iterable[Finding]:
        reach = self._demands.get(event.demand)
        if reach is not None and "route" in event.facts:
            reach.route = True
        return ()

    def _on_screened(self, index: int, event: Event) -> Iterable[Finding]:
        reach = self._demands.get(event.demand)
        if reach is not None:
            if "route" in event.facts:
                reach.route = True
            self._screened(index, event, reach)
        return ()

    def _narrowed(self, index: int, event: Event) -> Iterable[Finding]:
        reach = self._demands.get(event.demand)
        if reach is not None:
            facts = event.facts
            if "route" in facts:
                reach.route = True
            dropped = facts.get("dropped_targets")
            reach.dropped = dropped if isinstance(dropped, int) else 0
        return ()

    def _effect(self, index: int, event: Event) -> Iterable[Finding]:
        reach = self._demands.get(event.demand)
        if reach is None:
            return ()
        if "route" in event.facts:
            reach.route = True
        return () if reach.reported else self._judge(index, event, reach)

    @staticmethod
    def _screened(index: int, event: Event, reach: _Reach) -> None:
        reach.screened, reach.subjects = index, _codes(event.facts.get("subject_jurisdictions"))
        reach.refused_targets, reach.refused_whole = set(), False
        findings = event.facts.get("findings")
        for f in findings if isinstance(findings, tuple) else ():
            if type(f) is not dict and not isinstance(f, Mapping):
                continue
            outcome = f.get("outcome")
            if outcome == "refuse":
                if not str(f.get("rule", "")).startswith(RULE_PREFIXES):
                    continue
                target = f.get("target")
                if isinstance(target, int):
                    reach.refused_targets.add(target)
                else:
                    reach.refused_whole = True
            elif outcome == "pass" and str(f.get("rule", "")) == TREATY_ROUTE_RULE:
                reach.route = True

    def _judge(self, index: int, event: Event, reach: _Reach) -> list[Finding]:
        why = self._refusal_ignored(reach)
        if why is None and reach.authority is None:
            self._unchecked += 1
            return []
        if why is None and reach.authority is not None and not reach.route:
            why = self._reach_abroad(event, reach, reach.authority)
        if why is None:
            return []
        reach.reported = True
        screened = () if reach.screened is None else (reach.screened,)
        entries = tuple(sorted({reach.received, index, *screened}))
        by = f" by an authority in {reach.authority}" if reach.authority else ""
        detail = f"{event.kind} of demand {event.demand}{by}: {why}"
        return [Finding("foreign_effect", detail, entries, event.demand)]

    @staticmethod
    def _refusal_ignored(reach: _Reach) -> str | None:
        """Screening refused (part of) the demand on reach; a route does not undo that."""
        if reach.refused_whole:
            return "a jurisdiction rule refused the whole demand"
        if reach.dropped < len(reach.refused_targets):
            return (
                f"{len(reach.refused_targets)} target(s) refused on jurisdiction grounds, "
                f"{reach.dropped} dropped"
            )
        return None

    @staticmethod
    def _reach_abroad(event: Event, reach: _Reach, authority: str) -> str | None:
        territories = reach.territories
        if event.kind == RESTRICTION_APPLIED:
            territories = _codes(event.facts.get("territories")) or territories
        country = authority[:2]  # is_domestic, inline
        abroad = {c for c in territories if c[:2] != country}
        if abroad:
            return f"it restricts in {', '.join(sorted(abroad))} without a treaty route"
        if reach.refused_targets:
            return None
        foreign = {c for c in reach.subjects if c[:2] != country}
        if foreign:
            return (
                f"subjects in {', '.join(sorted(foreign))}, no treaty route, "
                "and no jurisdiction rule refused them"
            )
        return None

    def notes(self) -> Iterable[str]:
        if self._unchecked:
            yield (
                f"jurisdiction: {self._unchecked} effect(s) not checked "
                "(the authority's jurisdiction is not in the log)"
            )
