"""Screening: the policy pack judges a received demand, and the demand goes where it says.

:func:`screen_demand` gathers what policy needs (what the platform adapter says about each
target, the authority's rolling volume from the store, each evidence item checked against
the platform's own copy, the intake facts), asks :func:`custodes.policy.evaluate`, folds the
findings (:func:`custodes.model.summarize`) and moves the demand in one transaction, logging
one event per move:

===================================  =================================  ====================
verdict                              moves                              events
===================================  =================================  ====================
refuse                               received → screened → refused      ``demand.screened``,
                                                                        ``demand.refused``
refuse, only for reasons the         received → screened →              ``demand.screened``,
authority can fix (:data:`CURABLE`)  clarification_requested            ``demand.clarifi``
                                                                        ``cation_requested``
escalate or pass (perhaps narrowed)  received → screened → in_review    ``demand.screened``,
                                                                        ``demand.review_opened``
===================================  =================================  ====================

A target refused by jurisdiction while others pass is dropped: review starts from the demand
narrowed to what may go on (:func:`custodes.service.judgements.initial_scope`). Escalations
name the specialist roles review needs (``demand.review_opened`` lists them).

``demand.screened`` publishes the pack hash, the verdict, every finding (rule id, outcome, and
the target's position or the item it concerns), the subjects' jurisdictions and the volume.
Everything screening was judged on is stored with the demand, so :func:`replay_screening`
judges it again under the same pack and must get the same findings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import ConflictError
from custodes.events import (
    DEMAND_CLARIFICATION_REQUESTED,
    DEMAND_REFUSED,
    DEMAND_REVIEW_OPENED,
    DEMAND_SCREENED,
)
from custodes.model import (
    Demand,
    DemandState,
    EvidenceStatus,
    Finding,
    Outcome,
    ScreeningContext,
    Subject,
    Target,
    Verdict,
)
from custodes.platform import PlatformAdapter
from custodes.policy import evaluate
from custodes.store.demand_tables import demands

from . import Services
from .authorities import find_authority
from .judgements import Screening, format_scope, format_screening, initial_scope
from .lifecycle import DemandRecord, db_time, load_demand, log_event, move
from .staff import load_staff, permit

__all__ = [
    "CURABLE",
    "judge",
    "replay_screening",
    "screen_demand",
    "screened_facts",
    "volume",
]

CURABLE = frozenset(
    {"scope.time_range", "scope.unknown_target", "scope.no_targets", "requester.no_document"}
)
"""Refusing rules the authority can cure by amending its demand (state the period, correct
an identifier, attach the instrument). A demand refused only by these goes back to the
authority with a clarification request instead of being refused."""


class _Subjects(Mapping[Target, Subject | None]):
    """What the platform says about each target, asked only when policy looks at it.

    A demand over the target cap is refused as a whole without looking at a single target;
    23,000 rows then cost no look-ups at all. The first target policy looks at brings all
    the demand's named targets in one :meth:`~PlatformAdapter.subjects` call; ``seen`` holds
    only those policy looked at."""

    def __init__(self, platform: PlatformAdapter, targets: tuple[Target, ...]) -> None:
        self._platform = platform
        self._named = tuple(dict.fromkeys(t for t in targets if not t.is_selector))
        self._targets = frozenset(targets)
        self._answers: dict[Target, Subject | None] | None = None
        self.seen: dict[Target, Subject | None] = {}

    def __getitem__(self, target: Target) -> Subject | None:
        if target not in self._targets:
            raise KeyError(target)
        if target not in self.seen:
            if self._answers is None:
                self._answers = self._platform.subjects(self._named) if self._named else {}
            self.seen[target] = self._answers.get(target)
        return self.seen[target]

    def __iter__(self) -> Iterator[Target]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)


def volume(services: Services, conn: Connection, demand: Demand) -> int:
    """Targets the demand's authority named in the pack's rolling window up to now, this
    demand included."""
    if demand.authority_id is None:
        return len(demand.targets)
    now = services.clock()
    since = now - timedelta(days=services.pack.tables.limits.volume_window_days)
    named = conn.execute(
        _VOLUME,
        {"authority": demand.authority_id, "since": db_time(since), "now": db_time(now),
         "demand": demand.id},
    ).scalar_one()  # fmt: skip
    return int(named) + len(demand.targets)


_VOLUME = sa.select(sa.func.coalesce(sa.func.sum(demands.c.target_count), 0)).where(
    demands.c.authority_id == sa.bindparam("authority"),
    demands.c.received_at >= sa.bindparam("since"),
    demands.c.received_at <= sa.bindparam("now"),
    demands.c.id != sa.bindparam("demand"),
)
"""The targets an authority named in a window, other demands than one: built once."""


def _evidence(platform: PlatformAdapter, demand: Demand) -> tuple[EvidenceStatus, ...]:
    out = []
    for ref in demand.evidence:
        held = platform.evidence(ref.platform_ref) if ref.platform_ref is not None else None
        if held is None:
            out.append(EvidenceStatus.NOT_HELD)
        elif held.sha256 == ref.sha256:
            out.append(EvidenceStatus.VERIFIED)
        else:
            out.append(EvidenceStatus.MISMATCH)
    return tuple(out)


def judge(services: Services, conn: Connection, current: DemandRecord) -> Screening:
    """Screen ``current`` under ``services.pack`` without changing anything: gather the facts
    (subjects from the platform, volume from the store, evidence), evaluate, and return all
    of it with the findings."""
    demand = current.demand
    authority = find_authority(conn, demand.authority_id)
    context = ScreeningContext(
        now=services.clock(),
        signature=current.signature,
        callback=current.callback,
        volume=volume(services, conn, demand),
        evidence=_evidence(services.platform, demand),
    )
    subjects = _Subjects(services.platform, demand.targets)
    findings = evaluate(services.pack, demand, authority, subjects, context)
    found = {t: s for t, s in subjects.seen.items() if s is not None}
    return Screening(services.pack.hash, authority, found, context, tuple(findings))


def screened_facts(demand: Demand, screening: Screening, verdict: Verdict) -> dict[str, Any]:
    """The public facts of ``demand.screened``."""
    findings: list[dict[str, Any]] = []
    for f in screening.findings:
        one: dict[str, Any] = {"rule": f.rule_id, "outcome": f.outcome.value}
        if f.target is not None:
            one["target"] = demand.target_index(f.target)
        if f.item is not None:
            one["item"] = f.item
        findings.append(one)
    facts: dict[str, Any] = {
        "pack": screening.pack,
        "outcome": verdict.outcome.value,
        "findings": findings,
        "volume": screening.context.volume,
    }
    if verdict.rules:
        facts["rules"] = list(verdict.rules)
    places = sorted({s.jurisdiction for s in screening.subjects.values()})
    if places:
        facts["subject_jurisdictions"] = places
    routes = sorted({f.route for f in screening.findings if f.route and f.outcome is Outcome.PASS})
    if routes:
        facts["route"] = routes[0]
    return facts


def _refusing(findings: tuple[Finding, ...]) -> list[str]:
    return sorted({f.rule_id for f in findings if f.outcome is Outcome.REFUSE})


def _received(conn: Connection, demand_id: str, *, lock: bool = False) -> DemandRecord:
    current = load_demand(conn, demand_id, lock=lock)
    if current.state is not DemandState.RECEIVED:
        raise ConflictError(
            f"only a received demand is screened; this one is {current.state.value}",
            state=current.state.value,
        )
    return current


def screen_demand(services: Services, demand_id: str, *, by: str | None = None) -> DemandRecord:
    """Screen a received demand and move it to refused, clarification requested or review.

    ``by`` is the staff member who asked (None: custodes itself, right after intake). The
    facts are gathered and judged before the transaction (the platform adapter may be a
    remote service, and the store's writer is shared); the transaction then checks that the
    demand did not change meanwhile (``ConflictError`` if it did: screen again)."""
    with services.store.read() as conn:
        if by is not None:
            permit(services, load_staff(conn, by), "demand.screen")
        judged = _received(conn, demand_id)
        screening = judge(services, conn, judged)
    verdict = screening.verdict(judged.demand)

    def work(conn: Connection) -> DemandRecord:
        current = _received(conn, demand_id, lock=True)
        if (current.version, current.callback) != (judged.version, judged.callback):
            raise ConflictError("the demand changed while it was screened; screen it again")
        move(conn, services, current, DemandState.SCREENED,
             screening=json.dumps(format_screening(screening), sort_keys=True),
             pack=screening.pack)  # fmt: skip
        facts = screened_facts(current.demand, screening, verdict)
        log_event(conn, services, demand_id, DEMAND_SCREENED, facts=facts, staff=by)
        _route(conn, services, load_demand(conn, demand_id), verdict, by)
        return load_demand(conn, demand_id)

    return services.write(work)


def _route(
    conn: Connection, services: Services, current: DemandRecord, verdict: Verdict, by: str | None
) -> None:
    """Where a screened demand goes next, and the event that says so."""
    assert current.screening is not None
    staff: dict[str, str] = {} if by is None else {"staff": by}
    refusing = _refusing(current.screening.findings)
    if verdict.outcome is Outcome.REFUSE:
        note = "screening: " + ", ".join(refusing)
        facts: dict[str, Any] = {"rules": refusing} if refusing else {}
        if refusing and set(refusing) <= CURABLE:
            move(conn, services, current, DemandState.CLARIFICATION_REQUESTED)
            kind = DEMAND_CLARIFICATION_REQUESTED
        else:
            move(conn, services, current, DemandState.REFUSED)
            kind, facts = DEMAND_REFUSED, facts | {"pack": current.screening.pack}
        private = staff | {"note": note}
        log_event(conn, services, current.id, kind, facts=facts, private=private, staff=by,
                  note=note)  # fmt: skip
        return
    scope = initial_scope(current.demand, verdict)
    move(conn, services, current, DemandState.IN_REVIEW,
         roles_required=json.dumps(list(verdict.roles)),
         scope=json.dumps(format_scope(scope), sort_keys=True))  # fmt: skip
    log_event(conn, services, current.id, DEMAND_REVIEW_OPENED,
              facts={"roles": list(verdict.roles)}, private=staff, staff=by)  # fmt: skip


def replay_screening(services: Services, demand_id: str) -> list[Finding]:
    """Judge a screened demand again, from the inputs stored with it, under
    ``services.pack``; ``ConflictError`` if that is not the pack it was screened under.
    The same pack and inputs give the same findings, in the same order."""
    with services.store.read() as conn:
        current = load_demand(conn, demand_id)
    if current.screening is None:
        raise ConflictError(f"demand {demand_id} has not been screened")
    s = current.screening
    if s.pack != services.pack.hash:
        raise ConflictError(
            "the demand was screened under another policy pack",
            screened=s.pack,
            loaded=services.pack.hash,
        )
    subjects: dict[Target, Subject | None] = dict(s.subjects)
    return evaluate(services.pack, current.demand, s.authority, subjects, s.context)
