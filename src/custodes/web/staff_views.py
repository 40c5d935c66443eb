"""What the staff API answers about demands: the shapes, and how they are built from records.

Staff see everything the service keeps about a demand: the body as received, the screening
findings, where review stands, the history with who acted and why, and the productions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from custodes.model import format_demand, format_target
from custodes.service import Services
from custodes.service.lifecycle import DemandRecord, history
from custodes.service.production import productions_of
from custodes.service.review import review_status

from .schemas import FindingOut, ProductionOut, TargetBody

__all__ = [
    "HistoryOut",
    "StaffDemandOut",
    "StaffDemandPage",
    "StaffDemandSummary",
    "demand_summary",
    "demand_view",
]


class StaffDemandSummary(BaseModel):
    id: str
    version: int
    state: str
    kind: str
    authority_id: str | None
    received_at: datetime
    target_count: int
    signature: str


class StaffDemandPage(BaseModel):
    items: list[StaffDemandSummary]
    next_cursor: str | None


class HistoryOut(BaseModel):
    index: int = Field(description="the event's index in the log")
    kind: str
    at: datetime
    staff: str | None
    note: str | None


class StaffDemandOut(StaffDemandSummary):
    intake_staff: str | None
    callback: str
    demand: dict[str, Any] = Field(description="the demand's body, as received (this version)")
    findings: list[FindingOut]
    roles_required: list[str]
    approvals_needed: int
    approvers: list[str]
    sign_offs: dict[str, str]
    scope_targets: list[TargetBody] | None = Field(
        None, description="what review would let through (after screening and narrowing)"
    )
    history: list[HistoryOut]
    productions: list[ProductionOut]


def demand_summary(record: DemandRecord) -> StaffDemandSummary:
    return StaffDemandSummary(
        id=record.id,
        version=record.version,
        state=record.state.value,
        kind=record.demand.kind.value,
        authority_id=record.demand.authority_id,
        received_at=record.demand.received_at,
        target_count=len(record.demand.targets),
        signature=record.signature.value,
    )


def _finding(f: Any) -> FindingOut:
    target = None if f.target is None else TargetBody(**format_target(f.target))
    return FindingOut(
        rule=f.rule_id,
        outcome=f.outcome.value,
        reason=f.reason,
        remedy=f.remedy,
        target=target,
        item=f.item,
        role=f.role,
    )


def demand_view(services: Services, record: DemandRecord) -> StaffDemandOut:
    """Everything about ``record`` a member of staff who may read demands sees."""
    review = review_status(services, record.id)
    findings = [] if record.screening is None else [_finding(f) for f in record.screening.findings]
    scope = None
    if record.scope is not None:
        scope = [TargetBody(**format_target(t)) for t in record.scope.targets]
    productions = [
        ProductionOut(
            id=p.id,
            created_at=p.created_at,
            package_sha256=p.package_sha256,
            record_count=p.record_count,
            categories=list(p.categories),
            href=f"/v1/productions/{p.id}",
        )
        for p in productions_of(services, record.id)
    ]
    events = [
        HistoryOut(index=h.index, kind=h.kind, at=h.at, staff=h.staff, note=h.note)
        for h in history(services, record.id)
    ]
    return StaffDemandOut(
        **demand_summary(record).model_dump(),
        intake_staff=record.intake_staff,
        callback=record.callback.value,
        demand=format_demand(record.demand),
        findings=findings,
        roles_required=list(record.roles_required),
        approvals_needed=record.approvals_needed,
        approvers=list(review.approvers),
        sign_offs=dict(review.sign_offs),
        scope_targets=scope,
        history=events,
        productions=productions,
    )
