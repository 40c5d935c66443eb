"""A demand as its page shows it, and the review actions its forms perform.

:func:`demand_view` gathers, through the service layer, everything a reviewer needs: the
instrument, each target with its subject's jurisdiction as the platform reports it and the
findings about it, every other finding (rule id, outcome, reason, remedy), where dual control
stands, the clocks, and the demand's history with the log index of each event. :func:`perform`
runs one review form through the same use-case the API calls; the service decides whether the
staff member may, and a refusal comes back as the error it raised (naming the rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from custodes.errors import CustodesError, ForbiddenError
from custodes.model import (
    Authority,
    Clock,
    DemandState,
    Finding,
    Outcome,
    Staff,
    Subject,
    Target,
)
from custodes.policy import authorize
from custodes.service import Services
from custodes.service.authorities import get_authority
from custodes.service.clocks import clocks_of
from custodes.service.demands import DemandRecord, HistoryEntry, get_demand, history
from custodes.service.review import (
    APPROVER,
    Review,
    approve,
    challenge,
    decide,
    narrow,
    refuse,
    request_clarification,
    resume_review,
    review_status,
    sign_off,
)
from custodes.service.screening import screen_demand

from .forms import Action, ReviewForm

__all__ = ["DONE", "DemandView", "TargetRow", "available_actions", "demand_view", "perform"]

DONE: dict[Action, str] = {
    Action.SCREEN: "The demand was screened.",
    Action.APPROVE: "Your approval is recorded.",
    Action.SIGN_OFF: "Your sign-off is recorded.",
    Action.DECIDE: "The decision is recorded: approved.",
    Action.NARROW: "The decision is recorded: approved in part.",
    Action.REFUSE: "The demand is refused.",
    Action.CLARIFY: "The authority is asked to clarify.",
    Action.CHALLENGE: "The demand is challenged.",
    Action.RESUME: "Review resumes.",
}
"""What the page says after each action succeeded."""

_OUTCOME_ORDER = {Outcome.REFUSE: 0, Outcome.ESCALATE: 1, Outcome.PASS: 2}


@dataclass(frozen=True)
class TargetRow:
    """One target: what the platform reports about its subject, whether it is still in the
    scope under review, and the findings about it."""

    target: Target
    subject: Subject | None
    status: str
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class DemandView:
    """Everything the demand page shows."""

    record: DemandRecord
    authority: Authority | None
    review: Review
    targets: tuple[TargetRow, ...]
    findings: tuple[Finding, ...]
    """Findings about the demand as a whole (or one item it seeks), refusals first."""
    clocks: tuple[tuple[Clock, datetime | None], ...]
    history: tuple[HistoryEntry, ...]
    actions: frozenset[Action]

    @property
    def state(self) -> DemandState:
        return self.record.state


def _status(record: DemandRecord, target: Target) -> str:
    scope = record.scope
    if scope is None:
        return "not under review" if record.screening else "not screened yet"
    if target in scope.targets:
        return "in scope"
    refused = record.screening is not None and any(
        f.target == target and f.outcome is Outcome.REFUSE for f in record.screening.findings
    )
    return "refused by screening" if refused else "dropped in review"


def _targets(record: DemandRecord) -> tuple[TargetRow, ...]:
    screening = record.screening
    findings = screening.findings if screening else ()
    return tuple(
        TargetRow(
            target,
            screening.subjects.get(target) if screening else None,
            _status(record, target),
            tuple(
                sorted(
                    (f for f in findings if f.target == target),
                    key=lambda f: _OUTCOME_ORDER[f.outcome],
                )
            ),
        )
        for target in record.demand.targets
    )


def _may(services: Services, staff: Staff, action: str) -> bool:
    try:
        authorize(services.pack, staff, action).check()
    except ForbiddenError:
        return False
    return True


def available_actions(
    services: Services, staff: Staff, record: DemandRecord, review: Review
) -> frozenset[Action]:
    """The forms worth showing ``staff`` for ``record`` in its state (the service still
    decides when one is sent)."""
    state, approver = record.state, APPROVER in staff.roles
    offered: set[Action] = set()
    if state is DemandState.RECEIVED and _may(services, staff, "demand.screen"):
        offered.add(Action.SCREEN)
    if state is DemandState.IN_REVIEW:
        if approver and review.missing_approvals:
            offered.add(Action.APPROVE)
        if set(review.missing_roles) & staff.roles:
            offered.add(Action.SIGN_OFF)
        if approver and review.complete:
            offered |= {Action.DECIDE, Action.NARROW}
    checks = (
        (Action.REFUSE, "demand.refuse",
         {DemandState.SCREENED, DemandState.IN_REVIEW, DemandState.CHALLENGED}),
        (Action.CLARIFY, "demand.request_clarification",
         {DemandState.SCREENED, DemandState.IN_REVIEW}),
        (Action.CHALLENGE, "demand.challenge",
         {DemandState.IN_REVIEW, DemandState.APPROVED, DemandState.PARTLY_APPROVED}),
        (Action.RESUME, "demand.open_review", {DemandState.CHALLENGED}),
    )  # fmt: skip
    for action, permission, states in checks:
        if state in states and _may(services, staff, permission):
            offered.add(action)
    if Action.RESUME in offered and record.scope is None:
        offered.discard(Action.RESUME)
    return frozenset(offered)


def demand_view(services: Services, demand_id: str, staff: Staff) -> DemandView:
    """The page of ``demand_id`` for ``staff`` (``NotFoundError`` if there is no such demand)."""
    record = get_demand(services, demand_id)
    authority = None
    if record.demand.authority_id is not None:
        try:
            authority = get_authority(services, record.demand.authority_id)
        except CustodesError:
            authority = None
    review = review_status(services, demand_id)
    findings = record.screening.findings if record.screening else ()
    general = sorted((f for f in findings if f.target is None),
                     key=lambda f: _OUTCOME_ORDER[f.outcome])  # fmt: skip
    return DemandView(
        record=record,
        authority=authority,
        review=review,
        targets=_targets(record),
        findings=tuple(general),
        clocks=tuple(clocks_of(services, demand_id)),
        history=tuple(history(services, demand_id)),
        actions=available_actions(services, staff, record, review),
    )


def perform(services: Services, demand_id: str, staff: Staff, form: ReviewForm) -> None:
    """Run ``form`` as ``staff`` through its use-case (raises what the service raises)."""
    by, reason = staff.id, form.reason
    steps: dict[Action, Callable[[], object]] = {
        Action.SCREEN: lambda: screen_demand(services, demand_id, by=by),
        Action.APPROVE: lambda: approve(services, demand_id, by=by, reason=reason),
        Action.SIGN_OFF: lambda: sign_off(
            services, demand_id, by=by, role=form.role or "", reason=reason
        ),
        Action.DECIDE: lambda: decide(services, demand_id, by=by, reason=reason),
        Action.NARROW: lambda: narrow(
            services,
            demand_id,
            by=by,
            reason=reason,
            drop_targets=form.drop_targets,
            drop_categories=form.drop_categories,
            time_range=form.period,
        ),
        Action.REFUSE: lambda: refuse(services, demand_id, by=by, reason=reason),
        Action.CLARIFY: lambda: request_clarification(services, demand_id, by=by, reason=reason),
        Action.CHALLENGE: lambda: challenge(services, demand_id, by=by, grounds=reason),
        Action.RESUME: lambda: resume_review(services, demand_id, by=by, reason=reason),
    }
    steps[form.action]()
