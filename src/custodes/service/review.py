"""Review and dual control: approvals, specialist sign-offs, and the decision (F5).

A demand in review needs, before anyone may decide to approve it:

* two approvals by distinct staff holding the ``approver`` role (one for an emergency
  disclosure, whose call-back screening already required), none of them the person who
  recorded the demand, and none located in the requesting state when the approved scope
  reaches a subject outside it: the pack's Cedar rules ``api.approve_own_intake``,
  ``api.approve_twice`` and ``api.approver_in_requesting_state`` decide, through
  :func:`custodes.policy.authorize`;
* a sign-off by each specialist role an escalated finding named (``human_rights_reviewer``
  for protected expression, ``legal_counsel`` for an undated gag or unusual volume,
  ``trust_safety`` for evidence the platform does not hold). Sign-offs come on top of the
  approvals, never instead of them; one person gives at most one approval or sign-off per
  demand version.

Every call is one transaction and one event, and needs a written reason:

==============================  ====================================  ========================
use-case                        moves                                 event
==============================  ====================================  ========================
:func:`approve`                 (stays in review)                     ``approval.given``
:func:`sign_off`                (stays in review)                     ``approval.given``
:func:`decide`                  in_review → approved                  ``demand.approved``
                                (partly_approved if screening         (``demand.narrowed``)
                                dropped anything)
:func:`narrow`                  in_review → partly_approved           ``demand.narrowed``
:func:`refuse`                  in_review/challenged/... → refused    ``demand.refused``
:func:`request_clarification`   screened/in_review →                  ``demand.clarification_``
                                clarification_requested               ``requested``
:func:`challenge`               in_review/approved/... → challenged   ``demand.challenged``
:func:`resume_review`           challenged → in_review                ``demand.review_opened``
==============================  ====================================  ========================

:func:`decide` and :func:`narrow` refuse (``ForbiddenError``) until the approvals are
complete, and the person deciding must themselves pass the approver rules (not the intake
person, not located in the requesting state for an effect outside it). Narrowing only ever
takes away: targets, data categories, or part of the period.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import ConflictError, ForbiddenError, InputError
from custodes.events import (
    APPROVAL_GIVEN,
    DEMAND_APPROVED,
    DEMAND_CHALLENGED,
    DEMAND_CLARIFICATION_REQUESTED,
    DEMAND_NARROWED,
    DEMAND_REFUSED,
    DEMAND_REVIEW_OPENED,
)
from custodes.model import (
    DataCategory,
    DemandState,
    Outcome,
    Target,
    TimeRange,
)
from custodes.policy import Approval, authorize
from custodes.store.demand_tables import approvals

from . import Services
from .authorities import find_authority
from .judgements import Scope, format_scope
from .lifecycle import (
    DemandRecord,
    check_reason,
    db_time,
    load_demand,
    log_event,
    move,
)
from .staff import load_staff, permit

__all__ = [
    "APPROVER",
    "Review",
    "approve",
    "challenge",
    "decide",
    "load_review",
    "narrow",
    "refuse",
    "request_clarification",
    "resume_review",
    "review_status",
    "sign_off",
]

APPROVER = "approver"
"""The role dual control counts."""


@dataclass(frozen=True)
class Review:
    """Where a demand's approvals stand (its current version)."""

    demand_id: str
    state: DemandState
    approvers: tuple[str, ...]
    sign_offs: Mapping[str, str]
    approvals_needed: int
    roles_required: tuple[str, ...]

    @property
    def missing_approvals(self) -> int:
        return max(0, self.approvals_needed - len(self.approvers))

    @property
    def missing_roles(self) -> tuple[str, ...]:
        return tuple(r for r in self.roles_required if r not in self.sign_offs)

    @property
    def complete(self) -> bool:
        """Whether policy's approvals are all given (a decision may now be recorded)."""
        return not self.missing_approvals and not self.missing_roles

    @property
    def given(self) -> int:
        """Approvals given in all, sign-offs included (``approvals`` in the decision)."""
        return len(self.approvers) + len(self.sign_offs)

    @property
    def everyone(self) -> frozenset[str]:
        return frozenset(self.approvers) | frozenset(self.sign_offs.values())


def load_review(conn: Connection, current: DemandRecord) -> Review:
    """The approvals given to ``current``'s version so far."""
    rows = conn.execute(
        sa.select(approvals.c.staff_id, approvals.c.role)
        .where(approvals.c.demand_id == current.id, approvals.c.version == current.version)
        .order_by(approvals.c.log_index)
    ).all()
    approvers = tuple(s for s, role in rows if role == APPROVER)
    sign_offs = {role: s for s, role in rows if role != APPROVER}
    return Review(
        current.id,
        current.state,
        approvers,
        sign_offs,
        current.approvals_needed,
        current.roles_required,
    )


def review_status(services: Services, demand_id: str) -> Review:
    """Where the approvals of ``demand_id`` stand."""
    with services.store.read() as conn:
        return load_review(conn, load_demand(conn, demand_id))


def _in_review(conn: Connection, demand_id: str) -> DemandRecord:
    current = load_demand(conn, demand_id, lock=True)
    if current.state is not DemandState.IN_REVIEW:
        raise ConflictError(
            f"demand {demand_id} is {current.state.value}, not in review",
            state=current.state.value,
        )
    return current


def _reach(current: DemandRecord) -> frozenset[str]:
    """Every jurisdiction the scope under review reaches: each target's subject and, for a
    meeting or content item, everyone an action on it reaches."""
    assert current.screening is not None and current.scope is not None
    places: set[str] = set()
    for target in current.scope.targets:
        subject = current.screening.subjects.get(target)
        if subject is not None:
            places |= {subject.jurisdiction, *subject.affected}
    return frozenset(places)


def _check_approver(
    services: Services, conn: Connection, current: DemandRecord, staff: str, already: Iterable[str]
) -> None:
    """The pack's dual-control rules for ``staff`` approving ``current``."""
    authority = find_authority(conn, current.demand.authority_id)
    if authority is None:
        raise ForbiddenError("a demand from an unregistered authority cannot be approved")
    approval = Approval(
        requesting=authority.jurisdiction,
        affected=_reach(current),
        intake_by=current.intake_principal,
        approved_by=frozenset(already),
    )
    authorize(services.pack, load_staff(conn, staff), "demand.approve", approval=approval).check()


def _give(
    conn: Connection, services: Services, current: DemandRecord, *, by: str, role: str,
    reason: str,
) -> Review:  # fmt: skip
    given = load_review(conn, current).given + 1
    index = log_event(conn, services, current.id, APPROVAL_GIVEN,
                      facts={"role": role, "approvals": given},
                      private={"staff": by, "note": reason}, staff=by, note=reason)  # fmt: skip
    conn.execute(
        approvals.insert().values(
            demand_id=current.id, version=current.version, staff_id=by, role=role,
            given_at=db_time(services.clock()), log_index=index,
        )
    )  # fmt: skip
    return load_review(conn, current)


def approve(services: Services, demand_id: str, *, by: str, reason: str) -> Review:
    """``by`` approves, as one of the approvers dual control needs; logs ``approval.given``
    (role ``approver``). The pack's approver rules decide whether ``by`` may."""
    check_reason(reason)

    def work(conn: Connection) -> Review:
        current = _in_review(conn, demand_id)
        review = load_review(conn, current)
        _check_approver(services, conn, current, by, review.everyone)
        if not review.missing_approvals:
            raise ConflictError("the approvals dual control needs are all given")
        return _give(conn, services, current, by=by, role=APPROVER, reason=reason)

    return services.write(work)


def sign_off(services: Services, demand_id: str, *, by: str, role: str, reason: str) -> Review:
    """``by`` signs off an escalation in the specialist ``role`` it named; logs
    ``approval.given`` with that role."""
    check_reason(reason)

    def work(conn: Connection) -> Review:
        current = _in_review(conn, demand_id)
        review = load_review(conn, current)
        if role not in current.roles_required:
            raise ConflictError(f"review of this demand needs no {role} sign-off", role=role)
        if role in review.sign_offs:
            raise ConflictError(f"the {role} sign-off is given already", role=role)
        if by == current.intake_principal:
            raise ForbiddenError("the person who recorded a demand may not sign it off")
        if by in review.everyone:
            raise ForbiddenError("one person gives one approval or sign-off per demand")
        authorize(services.pack, load_staff(conn, by), "demand.sign_off", role=role).check()
        return _give(conn, services, current, by=by, role=role, reason=reason)

    return services.write(work)


def _complete(services: Services, conn: Connection, current: DemandRecord, by: str) -> Review:
    review = load_review(conn, current)
    if not review.complete:
        missing = [f"{review.missing_approvals} approval(s)"] if review.missing_approvals else []
        missing += [f"the {r} sign-off" for r in review.missing_roles]
        raise ForbiddenError(
            "dual control is not complete: missing " + ", ".join(missing),
            missing_approvals=review.missing_approvals,
            missing_roles=list(review.missing_roles),
        )
    _check_approver(services, conn, current, by, ())
    return review


def _record_decision(
    conn: Connection, services: Services, current: DemandRecord, *, scope: Scope,
    review: Review, by: str, reason: str,
) -> DemandRecord:  # fmt: skip
    assert current.screening is not None
    facts: dict[str, Any] = {
        "pack": current.screening.pack,
        "approvals": review.given,
        "target_count": len(scope.targets),
    }
    if scope.categories:
        facts["categories"] = [c.value for c in scope.categories]
    state = DemandState.PARTLY_APPROVED if scope.narrowed else DemandState.APPROVED
    move(conn, services, current, state, decided_at=db_time(services.clock()),
         scope=json.dumps(format_scope(scope), sort_keys=True))  # fmt: skip
    if scope.narrowed:
        facts["dropped_targets"] = len(scope.dropped_targets)
        log_event(conn, services, current.id, DEMAND_NARROWED, facts=facts,
                  private={"targets": [str(t) for t in scope.targets]}, staff=by,
                  note=reason)  # fmt: skip
    else:
        log_event(conn, services, current.id, DEMAND_APPROVED, facts=facts, staff=by,
                  note=reason)  # fmt: skip
    return load_demand(conn, current.id)


def decide(services: Services, demand_id: str, *, by: str, reason: str) -> DemandRecord:
    """Record the decision once the approvals are complete: ``approved`` (logs
    ``demand.approved``), or ``partly_approved`` when screening dropped targets or
    categories (logs ``demand.narrowed``)."""
    check_reason(reason)

    def work(conn: Connection) -> DemandRecord:
        current = _in_review(conn, demand_id)
        review = _complete(services, conn, current, by)
        assert current.scope is not None
        return _record_decision(
            conn, services, current, scope=current.scope, review=review, by=by, reason=reason
        )

    return services.write(work)


def _narrowed(
    scope: Scope,
    targets: tuple[Target, ...],
    categories: tuple[DataCategory, ...],
    period: TimeRange | None,
) -> Scope:
    unknown = [str(t) for t in targets if t not in scope.targets]
    if unknown:
        raise InputError(f"{unknown[0]} is not in the scope under review")
    stray = [c.value for c in categories if c not in scope.categories]
    if stray:
        raise InputError(f"{stray[0]} is not in the scope under review")
    if period is not None and scope.time_range is not None:
        inside = scope.time_range.start <= period.start and period.end <= scope.time_range.end
        if not inside or period == scope.time_range:
            raise InputError("a narrower period lies within the one under review, and is shorter")
    if not (targets or categories or period):
        raise InputError("narrowing drops targets or categories, or shortens the period")
    kept = tuple(t for t in scope.targets if t not in targets)
    kept_categories = tuple(c for c in scope.categories if c not in categories)
    if not kept or (scope.categories and not kept_categories):
        raise InputError("nothing would be left: refuse the demand instead")
    return replace(
        scope,
        targets=kept,
        categories=kept_categories,
        time_range=period or scope.time_range,
        dropped_targets=scope.dropped_targets + targets,
        dropped_categories=scope.dropped_categories + categories,
        period_narrowed=scope.period_narrowed or period is not None,
    )


def narrow(
    services: Services,
    demand_id: str,
    *,
    by: str,
    reason: str,
    drop_targets: Iterable[Target] = (),
    drop_categories: Iterable[DataCategory] = (),
    time_range: TimeRange | None = None,
) -> DemandRecord:
    """Approve in part: the decision, once the approvals are complete, to let through only
    the scope under review less ``drop_targets`` and ``drop_categories``, over ``time_range``
    (within the period asked for); logs ``demand.narrowed``."""
    check_reason(reason)
    targets, categories = tuple(dict.fromkeys(drop_targets)), tuple(dict.fromkeys(drop_categories))

    def work(conn: Connection) -> DemandRecord:
        current = _in_review(conn, demand_id)
        assert current.scope is not None
        scope = _narrowed(current.scope, targets, categories, time_range)
        review = _complete(services, conn, current, by)
        return _record_decision(
            conn, services, current, scope=scope, review=review, by=by, reason=reason
        )

    return services.write(work)


def _blocking_rules(current: DemandRecord, outcome: Outcome | None = None) -> list[str]:
    if current.screening is None:
        return []
    return sorted(
        {
            f.rule_id
            for f in current.screening.findings
            if f.blocks and (outcome is None or f.outcome is outcome)
        }
    )


def refuse(services: Services, demand_id: str, *, by: str, reason: str) -> DemandRecord:
    """Refuse the demand, with a written reason; logs ``demand.refused``."""
    check_reason(reason)

    def work(conn: Connection) -> DemandRecord:
        permit(services, load_staff(conn, by), "demand.refuse")
        current = load_demand(conn, demand_id, lock=True)
        move(conn, services, current, DemandState.REFUSED, decided_at=db_time(services.clock()))
        facts: dict[str, Any] = {}
        rules = _blocking_rules(current, Outcome.REFUSE)
        if rules:
            facts["rules"] = rules
        if current.screening is not None:
            facts["pack"] = current.screening.pack
        log_event(conn, services, demand_id, DEMAND_REFUSED, facts=facts,
                  private={"staff": by, "note": reason}, staff=by, note=reason)  # fmt: skip
        return load_demand(conn, demand_id)

    return services.write(work)


def request_clarification(
    services: Services, demand_id: str, *, by: str, reason: str
) -> DemandRecord:
    """Ask the authority to clarify or narrow its demand; logs
    ``demand.clarification_requested``. Its answer (:func:`~custodes.service.demands.amend_demand`)
    is screened afresh."""
    check_reason(reason)

    def work(conn: Connection) -> DemandRecord:
        permit(services, load_staff(conn, by), "demand.request_clarification")
        current = load_demand(conn, demand_id, lock=True)
        move(conn, services, current, DemandState.CLARIFICATION_REQUESTED)
        rules = _blocking_rules(current)
        log_event(conn, services, demand_id, DEMAND_CLARIFICATION_REQUESTED,
                  facts={"rules": rules} if rules else {},
                  private={"staff": by, "note": reason}, staff=by, note=reason)  # fmt: skip
        return load_demand(conn, demand_id)

    return services.write(work)


def challenge(services: Services, demand_id: str, *, by: str, grounds: str) -> DemandRecord:
    """The platform contests the demand (an undated gag, an overbroad order); logs
    ``demand.challenged``. Execution waits until review resumes and decides again."""
    check_reason(grounds)

    def work(conn: Connection) -> DemandRecord:
        permit(services, load_staff(conn, by), "demand.challenge")
        current = load_demand(conn, demand_id, lock=True)
        move(conn, services, current, DemandState.CHALLENGED, decided_at=None)
        rules = _blocking_rules(current)
        log_event(conn, services, demand_id, DEMAND_CHALLENGED,
                  facts={"rules": rules} if rules else {},
                  private={"staff": by, "grounds": grounds}, staff=by, note=grounds)  # fmt: skip
        return load_demand(conn, demand_id)

    return services.write(work)


def resume_review(services: Services, demand_id: str, *, by: str, reason: str) -> DemandRecord:
    """A challenge is resolved and review resumes (approvals already given still count; a
    decision must be recorded again); logs ``demand.review_opened``."""
    check_reason(reason)

    def work(conn: Connection) -> DemandRecord:
        permit(services, load_staff(conn, by), "demand.open_review")
        current = load_demand(conn, demand_id, lock=True)
        if current.state is not DemandState.CHALLENGED:
            raise ConflictError("review resumes only after a challenge")
        if current.scope is None:
            raise ConflictError(
                "screening refused this demand; only an amended demand is reviewed again"
            )
        move(conn, services, current, DemandState.IN_REVIEW)
        log_event(conn, services, demand_id, DEMAND_REVIEW_OPENED,
                  facts={"roles": list(current.roles_required)}, private={"staff": by},
                  staff=by, note=reason)  # fmt: skip
        return load_demand(conn, demand_id)

    return services.write(work)
