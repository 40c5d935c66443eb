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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Dialect

from custodes.errors import ConflictError, CustodesError
from custodes.events import (
    DEMAND_CLARIFICATION_REQUESTED,
    DEMAND_REFUSED,
    DEMAND_REVIEW_OPENED,
    DEMAND_SCREENED,
)
from custodes.model import (
    Authority,
    CallbackStatus,
    Demand,
    DemandState,
    EvidenceStatus,
    Finding,
    Outcome,
    ScreeningContext,
    SignatureStatus,
    Subject,
    Target,
    Verdict,
    check_transition,
)
from custodes.platform import PlatformAdapter
from custodes.policy import evaluate
from custodes.store.demand_tables import demands
from custodes.store.fast import execute, stored

from . import Services
from .authorities import find_authority
from .demands import (
    Arrival,
    arrival,
    check_sender,
    receive_demand,
    store_arrival_as,
    store_arrivals_as,
    with_document,
)
from .judgements import Scope, Screening, format_scope, format_screening, initial_scope
from .lifecycle import (
    DemandEvent,
    DemandRecord,
    db_time,
    demand_event,
    get_demand,
    load_demand,
    log_events,
    move,
)
from .staff import load_staff, permit

__all__ = [
    "CURABLE",
    "judge",
    "receive_and_screen",
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
        return self._answer(target)

    def get(self, target: Target, default: Any = None) -> Any:
        return self._answer(target) if target in self._targets else default

    def _answer(self, target: Target) -> Subject | None:
        if self._answers is None:
            self._answers = self._platform.subjects(self._named) if self._named else {}
        found = self.seen[target] = self._answers.get(target)
        return found

    def __iter__(self) -> Iterator[Target]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)


def volume(services: Services, conn: Connection, demand: Demand) -> int:
    """Targets the demand's authority named in the pack's rolling window up to now, this
    demand included."""
    if demand.authority_id is None:
        return len(demand.targets)
    query, params = volume_query(services, conn.dialect, demand)
    row = execute(conn, "SELECT " + query, params)
    assert row is not None
    return int(row[0])


def volume_query(services: Services, dialect: Dialect, demand: Demand) -> tuple[str, list[Any]]:
    """What :func:`volume` reads, as a scalar expression (``{mark}`` for the driver's marker)
    and its parameters: a caller that reads something else for the same request asks both
    in one statement, and gives :func:`receive_and_screen` the value. For a demand of an
    authority (``authority_id`` set)."""
    now = services.clock()
    since = now - timedelta(days=services.pack.tables.limits.volume_window_days)
    at = demands.c.received_at
    params = [demand.authority_id, stored(dialect, at, db_time(since)),
              stored(dialect, at, db_time(now)), demand.id, len(demand.targets)]  # fmt: skip
    return _VOLUME, params


_VOLUME = (
    "((SELECT coalesce(sum(target_count), 0) FROM demands WHERE authority_id = {mark} "
    "AND received_at >= {mark} AND received_at <= {mark} AND id != {mark}) + {mark})"
)
"""The targets an authority named in a window: other demands than one, plus that one's
(straight to the driver: every submission asks it, most with the document it cites)."""


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
    named = volume(services, conn, demand)
    return _judge(
        services, demand, authority, signature=current.signature, callback=current.callback,
        named=named,
    )  # fmt: skip


def _judge(
    services: Services,
    demand: Demand,
    authority: Authority | None,
    *,
    signature: SignatureStatus,
    callback: CallbackStatus,
    named: int,
) -> Screening:
    """:func:`judge`, once what the store holds is read (``named``: the :func:`volume`)."""
    context = ScreeningContext(
        now=services.clock(),
        signature=signature,
        callback=callback,
        volume=named,
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


@dataclass(frozen=True)
class _Outcome:
    """Where a screening sends a demand, ready to store: the columns set on each of its two
    moves and the event of each, encoded before the transaction."""

    screening: Screening
    verdict: Verdict
    screened: dict[str, Any]
    """Columns set on entering ``screened``."""
    state: DemandState
    """Where the screened demand goes next."""
    values: dict[str, Any]
    """Columns set on entering :attr:`state`."""
    scope: Scope | None
    events: tuple[DemandEvent, DemandEvent]


def _outcome(services: Services, demand: Demand, screening: Screening, by: str | None) -> _Outcome:
    """What the screening does to ``demand``, and the events that say so."""
    verdict = screening.verdict(demand)
    screened = {
        "screening": json.dumps(format_screening(screening), sort_keys=True),
        "pack": screening.pack,
    }
    first = demand_event(services, demand.id, DEMAND_SCREENED,
                         facts=screened_facts(demand, screening, verdict), staff=by)  # fmt: skip
    staff: dict[str, str] = {} if by is None else {"staff": by}
    refusing = _refusing(screening.findings)
    if verdict.outcome is Outcome.REFUSE:
        note = "screening: " + ", ".join(refusing)
        facts: dict[str, Any] = {"rules": refusing} if refusing else {}
        if refusing and set(refusing) <= CURABLE:
            state, kind = DemandState.CLARIFICATION_REQUESTED, DEMAND_CLARIFICATION_REQUESTED
        else:
            state, kind = DemandState.REFUSED, DEMAND_REFUSED
            facts |= {"pack": screening.pack}
        second = demand_event(services, demand.id, kind, facts=facts,
                              private=staff | {"note": note}, staff=by, note=note)  # fmt: skip
        return _Outcome(screening, verdict, screened, state, {}, None, (first, second))
    scope = initial_scope(demand, verdict)
    values = {
        "roles_required": json.dumps(list(verdict.roles)),
        "scope": json.dumps(format_scope(scope), sort_keys=True),
    }
    roles = {"roles": list(verdict.roles)}
    second = demand_event(services, demand.id, DEMAND_REVIEW_OPENED, facts=roles,
                          private=staff, staff=by)  # fmt: skip
    return _Outcome(screening, verdict, screened, DemandState.IN_REVIEW, values, scope,
                    (first, second))  # fmt: skip


def _move(conn: Connection, services: Services, current: DemandRecord, outcome: _Outcome) -> None:
    """The screening's two moves: received → screened → where the outcome says. Their events
    are for the caller to log, last."""
    move(conn, services, current, DemandState.SCREENED, **outcome.screened)
    screened = replace(current, state=DemandState.SCREENED)
    move(conn, services, screened, outcome.state, **outcome.values)


def screen_demand(services: Services, demand_id: str, *, by: str | None = None) -> DemandRecord:
    """Screen a received demand and move it to refused, clarification requested or review.

    ``by`` is the staff member who asked (None: custodes itself, right after intake). The
    facts are gathered and judged before the transaction (the platform adapter may be a
    remote service, and the store's writer is shared); the transaction then checks that the
    demand did not change meanwhile (``ConflictError`` if it did: screen it again)."""
    with services.store.read() as conn:
        if by is not None:
            permit(services, load_staff(conn, by), "demand.screen")
        judged = _received(conn, demand_id)
        screening = judge(services, conn, judged)
    outcome = _outcome(services, judged.demand, screening, by)

    def work(conn: Connection) -> DemandRecord:
        current = _received(conn, demand_id, lock=True)
        if (current.version, current.callback) != (judged.version, judged.callback):
            raise ConflictError("the demand changed while it was screened; screen it again")
        _move(conn, services, current, outcome)
        log_events(conn, services, outcome.events)
        return load_demand(conn, demand_id)

    return services.write(work)


class Together(Protocol):
    """Work a caller of :func:`receive_and_screen` adds to the demand's transaction. The
    demands of one group commit share a transaction, and the work they bring of one kind
    runs once for all of them (the API keeps all their answers in one statement)."""

    @staticmethod
    def together(conn: Connection, many: Sequence[Any]) -> None:
        """Do the work of each of ``many`` (all of this kind) inside ``conn``'s transaction."""


def receive_and_screen(
    services: Services,
    demand: Demand,
    *,
    signature: SignatureStatus,
    document: bytes | None = None,
    body: bytes | None = None,
    sender: Authority | None = None,
    answer: Callable[[DemandRecord], Together] | None = None,
    named: int | None = None,
    fall_back: bool = True,
) -> DemandRecord:
    """Receive a demand sent through the signed API and screen it at once, as the API does
    with every demand: :func:`~custodes.service.demands.receive_demand` and
    :func:`screen_demand` in one transaction, which stores the demand, makes all three moves
    and logs ``demand.received``, ``demand.screened`` and the event of where the demand went.

    The demand is judged before the transaction, as :func:`screen_demand` judges it, against
    its authority as ``sender`` says (the caller looked it up a moment ago; None: it is
    looked up here): the transaction stores the demand only while the authority is still
    registered exactly so. ``named`` is the authority's :func:`volume`, when the caller read
    it with its own reads (:func:`volume_query`). ``answer``, if given, is told the record
    the transaction will store before it begins, and returns more work for that transaction
    (:class:`Together`: the API keeps its answer to the request with the demand). If
    anything fails (``CustodesError``), nothing was stored, and the two use-cases run one
    after the other instead, without ``answer``: a demand that cannot be received is refused
    with their error; one that was received but cannot be screened stays ``received``, for
    staff to screen. Without ``fall_back``, the failure is raised instead (whatever
    ``answer``'s work raised too), and the caller goes another way."""
    try:
        checked = with_document(demand, document)
        authority = sender if sender is not None and sender.id == checked.authority_id else None
        if authority is None or named is None:
            with services.store.read() as conn:
                if authority is None:
                    authority = find_authority(conn, checked.authority_id)
                if named is None:
                    named = volume(services, conn, checked)
        screening = _judge(services, checked, authority, signature=signature,
                           callback=CallbackStatus.NONE, named=named)  # fmt: skip
        outcome = _outcome(services, checked, screening, None)
        new = arrival(services, checked, authority, signature=signature, intake=None,
                      document=document, body=body)  # fmt: skip
        check_sender(services, authority, signature)
        check_transition(DemandState.RECEIVED, DemandState.SCREENED)
        check_transition(DemandState.SCREENED, outcome.state)
        values = {**outcome.screened, **outcome.values}
        record = _arrived(new, outcome)
        more = None if answer is None else answer(record)
        ready = _Ready(services, new, outcome.state, values, (new.event, *outcome.events), more)
        services.store.writer.submit_merged("service.receive_and_screen", [ready], _store_all)
    except CustodesError:
        if not fall_back:
            raise
        return _receive_then_screen(services, demand, signature, document, body)
    return record


@dataclass(frozen=True)
class _Ready:
    """A demand received and screened, ready for its transaction."""

    services: Services
    new: Arrival
    state: DemandState
    values: dict[str, Any]
    events: tuple[DemandEvent, ...]
    more: Together | None


def _store_all(conn: Connection, ready: list[_Ready]) -> list[None]:
    """The transaction of :func:`receive_and_screen`, for every demand ready in one group
    commit: their rows, their answers, then all their events in one append. If any of them
    fails, the writer rolls back and stores each alone, which raises that one's own error
    to it."""
    services = ready[0].services
    if len(ready) == 1:
        [one] = ready
        store_arrival_as(services, conn, one.new, one.state, one.values)
    elif any(r.services is not services for r in ready):
        raise ConflictError("demands ready under different services are stored alone")
    else:
        store_arrivals_as(services, conn, [(r.new, r.state, r.values) for r in ready])
    _more(conn, [r.more for r in ready if r.more is not None])
    log_events(conn, services, [e for r in ready for e in r.events])
    return [None] * len(ready)


def _more(conn: Connection, work: list[Together]) -> None:
    """Run the demands' further work in their transaction: once for each kind of work, for
    all the demands that brought work of that kind."""
    kinds: dict[type, list[Together]] = {}
    for one in work:
        kinds.setdefault(type(one), []).append(one)
    for many in kinds.values():
        many[0].together(conn, many)


def _arrived(new: Arrival, outcome: _Outcome | None) -> DemandRecord:
    """The record :func:`receive_and_screen` stores: received (``outcome`` None) or moved
    where the outcome says, as :func:`load_demand` reads it back (a test holds them together)."""
    in_review = outcome is not None and outcome.state is DemandState.IN_REVIEW
    return DemandRecord(
        demand=new.demand,
        version=1,
        state=DemandState.RECEIVED if outcome is None else outcome.state,
        intake_staff=None,
        signature=new.signature,
        callback=CallbackStatus.NONE,
        screening=None if outcome is None else outcome.screening,
        roles_required=outcome.verdict.roles if outcome is not None and in_review else (),
        approvals_needed=new.values["approvals_needed"],
        scope=None if outcome is None else outcome.scope,
        decided_at=None,
        executed_at=None,
    )


def _receive_then_screen(
    services: Services,
    demand: Demand,
    signature: SignatureStatus,
    document: bytes | None,
    body: bytes | None,
) -> DemandRecord:
    record = receive_demand(services, demand, signature=signature, document=document, body=body)
    try:
        return screen_demand(services, record.id)
    except CustodesError:  # recorded as received; staff screen it again
        return get_demand(services, record.id)


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
