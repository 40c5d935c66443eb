"""The staff API of demands: read them, record them, screen, review, decide, execute.

Every route authenticates the caller (:func:`custodes.web.auth.current_caller`) and asks the
Cedar pack (:func:`custodes.web.auth.permitted`) for its action before anything is read or
changed; the service asks again, with the context only it knows: approving, signing off and
deciding ask ``demand.approve`` and ``demand.sign_off`` with who recorded and who approved the
demand, and from where (dual control), and executing asks ``staff.access`` for every subject.

========================================  ==========================  ============================
route                                     service                     action
========================================  ==========================  ============================
``GET /v1/staff/demands``                 (a page of demands)         demand.read
``GET /v1/staff/demands/{id}``            ``get_demand``              demand.read
``POST /v1/staff/documents``              (stage a document)          demand.intake
``POST /v1/staff/demands``                ``receive_demand``          demand.intake
``POST .../{id}/callback``                ``record_callback``         emergency.record_callback
``POST .../{id}/screening``               ``screen_demand``           demand.screen
``POST .../{id}/approvals``               ``approve``                 demand.approve
``POST .../{id}/sign-offs``               ``sign_off``                demand.sign_off
``POST .../{id}/decision``                ``decide``                  demand.approve
``POST .../{id}/narrowing``               ``narrow``                  demand.approve
``POST .../{id}/refusal``                 ``refuse``                  demand.refuse
``POST .../{id}/clarification-request``   ``request_clarification``   demand.request_clarification
``POST .../{id}/challenge``               ``challenge``               demand.challenge
``POST .../{id}/review``                  ``resume_review``           demand.open_review
``POST .../{id}/withdrawal``              ``withdraw_demand``         demand.intake
``POST .../{id}/closure``                 ``close_demand``            demand.close
``POST .../{id}/production``              ``produce``                 demand.execute
``POST .../{id}/restriction``             ``restrict``                demand.execute
``POST .../{id}/preservation``            ``preserve``                demand.execute
========================================  ==========================  ============================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from custodes.model import (
    Channel,
    DataCategory,
    DemandState,
    SignatureStatus,
    Staff,
    new_demand_id,
    parse_demand,
    parse_target,
    parse_time,
)
from custodes.model.demand import TimeRange
from custodes.service import Services
from custodes.service.demands import (
    close_demand,
    receive_demand,
    record_callback,
    withdraw_demand,
)
from custodes.service.execution import preserve, restrict
from custodes.service.lifecycle import DemandRecord, get_demand
from custodes.service.production import produce
from custodes.service.review import (
    approve,
    challenge,
    decide,
    narrow,
    refuse,
    request_clarification,
    resume_review,
    sign_off,
)
from custodes.service.screening import screen_demand

from .auth import StaffDep, permitted
from .authority_api import stage_document, staged_document
from .context import services_of
from .idempotency import IdempotentCall, StaffOnce
from .listing import DEFAULT_LIMIT, MAX_LIMIT, demand_page
from .schemas import (
    ChannelBody,
    DemandBody,
    DocumentReceipt,
    Reason,
    TargetBody,
    TimeRangeBody,
    problems,
)
from .staff_views import StaffDemandOut, StaffDemandPage, demand_summary, demand_view

__all__ = ["ROUTES", "staff_demands_router"]


Reader = Annotated[Staff, Depends(permitted("demand.read"))]
Intake = Annotated[Staff, Depends(permitted("demand.intake"))]
Screener = Annotated[Staff, Depends(permitted("demand.screen"))]
CallbackTaker = Annotated[Staff, Depends(permitted("emergency.record_callback"))]
Refuser = Annotated[Staff, Depends(permitted("demand.refuse"))]
Questioner = Annotated[Staff, Depends(permitted("demand.request_clarification"))]
Challenger = Annotated[Staff, Depends(permitted("demand.challenge"))]
Reopener = Annotated[Staff, Depends(permitted("demand.open_review"))]
Closer = Annotated[Staff, Depends(permitted("demand.close"))]
Executor = Annotated[Staff, Depends(permitted("demand.execute"))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonBody(_Body):
    reason: Reason


class GroundsBody(_Body):
    grounds: Reason


class SignOffBody(_Body):
    role: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    reason: Reason


class NarrowBody(_Body):
    reason: Reason
    drop_targets: list[TargetBody] = []
    drop_categories: list[DataCategory] = []
    time_range: TimeRangeBody | None = None


class CallbackBody(_Body):
    channel: ChannelBody


class IntakeBody(_Body):
    authority_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    signature: SignatureStatus = Field(
        SignatureStatus.MISSING, description="what intake could establish about a signature"
    )
    demand: DemandBody


class ProduceBody(_Body):
    preserved: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="an earlier preservation demand whose holds this production ends"
    )


def _view(services: Services, record: DemandRecord, status: int = 200) -> Response:
    out = demand_view(services, record)
    return JSONResponse(out.model_dump(mode="json"), status_code=status)


def _after(
    services: Services, once: IdempotentCall, change: Callable[[], object], demand_id: str
) -> Response:
    """Run ``change`` once under the POST's Idempotency-Key; answer the demand as it is now."""

    def operation() -> Response:
        change()
        return _view(services, get_demand(services, demand_id))

    return once.run(operation)


def list_demands(
    staff: Reader,
    request: Request,
    *,
    state: DemandState | None = None,
    authority: Annotated[str | None, Query(max_length=128)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> StaffDemandPage:
    """Demands newest first, in one state or any, from one authority or any."""
    page = demand_page(
        services_of(request), authority_id=authority, state=state, cursor=cursor, limit=limit
    )
    return StaffDemandPage(
        items=[demand_summary(r) for r in page.items], next_cursor=page.next_cursor
    )


def one_demand(demand_id: str, staff: Reader, request: Request) -> StaffDemandOut:
    """One demand, with its findings, review, history and productions."""
    services = services_of(request)
    return demand_view(services, get_demand(services, demand_id))


async def upload_document(staff: Intake, once: StaffOnce, request: Request) -> Response:
    """Upload an instrument document that came by other means, before recording its demand."""
    services = services_of(request)
    data = await request.body()

    def operation() -> Response:
        receipt = stage_document(services, "staff:" + staff.id, data)
        return JSONResponse(receipt.model_dump(), status_code=201)

    return await run_in_threadpool(once.run, operation)


def record_demand(body: IntakeBody, staff: Intake, once: StaffOnce, request: Request) -> Response:
    """Record a demand that came by post, e-mail or chat (screening will judge its signature)."""
    services = services_of(request)

    def operation() -> Response:
        raw = body.demand.model_dump(mode="json", exclude_none=True)
        demand = parse_demand(
            raw, id=new_demand_id(), authority_id=body.authority_id, received_at=services.clock()
        )
        document = staged_document(services, "staff:" + staff.id, demand.instrument.document_sha256)
        record = receive_demand(
            services, demand, signature=body.signature, intake=staff.id, document=document
        )
        return _view(services, record, 201)

    return once.run(operation)


def callback(
    demand_id: str, body: CallbackBody, staff: CallbackTaker, once: StaffOnce, request: Request
) -> Response:
    """Record the call-back that confirmed an emergency (before screening)."""
    services = services_of(request)
    channel = Channel(body.channel.kind, body.channel.address)
    return _after(
        services, once, lambda: record_callback(services, demand_id, channel, by=staff.id),
        demand_id,
    )  # fmt: skip


def screening(demand_id: str, staff: Screener, once: StaffOnce, request: Request) -> Response:
    """Screen a received demand under the policy pack."""
    services = services_of(request)
    return _after(
        services, once, lambda: screen_demand(services, demand_id, by=staff.id), demand_id
    )


def approval(
    demand_id: str, body: ReasonBody, staff: StaffDep, once: StaffOnce, request: Request
) -> Response:
    """Approve, as one of the two people dual control needs."""
    services = services_of(request)
    return _after(
        services, once, lambda: approve(services, demand_id, by=staff.id, reason=body.reason),
        demand_id,
    )  # fmt: skip


def specialist_sign_off(
    demand_id: str, body: SignOffBody, staff: StaffDep, once: StaffOnce, request: Request
) -> Response:
    """Sign off an escalation in the specialist role it named."""
    services = services_of(request)

    def change() -> object:
        return sign_off(services, demand_id, by=staff.id, role=body.role, reason=body.reason)

    return _after(services, once, change, demand_id)


def decision(
    demand_id: str, body: ReasonBody, staff: StaffDep, once: StaffOnce, request: Request
) -> Response:
    """Record the decision once the approvals are complete."""
    services = services_of(request)
    return _after(
        services, once, lambda: decide(services, demand_id, by=staff.id, reason=body.reason),
        demand_id,
    )  # fmt: skip


def narrowing(
    demand_id: str, body: NarrowBody, staff: StaffDep, once: StaffOnce, request: Request
) -> Response:
    """Approve in part: drop targets or categories, or shorten the period."""
    services = services_of(request)
    targets = [parse_target(t.model_dump(mode="json"), "drop_targets[]") for t in body.drop_targets]
    period = None
    if body.time_range is not None:
        raw = body.time_range.model_dump(mode="json")
        period = TimeRange(parse_time(raw["start"], "start"), parse_time(raw["end"], "end"))

    def change() -> object:
        return narrow(
            services, demand_id, by=staff.id, reason=body.reason, drop_targets=targets,
            drop_categories=body.drop_categories, time_range=period,
        )  # fmt: skip

    return _after(services, once, change, demand_id)


def refusal(
    demand_id: str, body: ReasonBody, staff: Refuser, once: StaffOnce, request: Request
) -> Response:
    """Refuse the demand, with a written reason."""
    services = services_of(request)
    return _after(
        services, once, lambda: refuse(services, demand_id, by=staff.id, reason=body.reason),
        demand_id,
    )  # fmt: skip


def clarification(
    demand_id: str, body: ReasonBody, staff: Questioner, once: StaffOnce, request: Request
) -> Response:
    """Ask the authority to clarify or narrow its demand."""
    services = services_of(request)

    def change() -> object:
        return request_clarification(services, demand_id, by=staff.id, reason=body.reason)

    return _after(services, once, change, demand_id)


def contest(
    demand_id: str, body: GroundsBody, staff: Challenger, once: StaffOnce, request: Request
) -> Response:
    """Challenge the demand (an undated gag, an overbroad order)."""
    services = services_of(request)
    return _after(
        services, once, lambda: challenge(services, demand_id, by=staff.id, grounds=body.grounds),
        demand_id,
    )  # fmt: skip


def reopen(
    demand_id: str, body: ReasonBody, staff: Reopener, once: StaffOnce, request: Request
) -> Response:
    """Resume review once a challenge is resolved."""
    services = services_of(request)

    def change() -> object:
        return resume_review(services, demand_id, by=staff.id, reason=body.reason)

    return _after(services, once, change, demand_id)


def staff_withdrawal(
    demand_id: str, body: ReasonBody, staff: Intake, once: StaffOnce, request: Request
) -> Response:
    """Record that the authority withdrew its demand by other means."""
    services = services_of(request)

    def change() -> object:
        return withdraw_demand(services, demand_id, reason=body.reason, by=staff.id)

    return _after(services, once, change, demand_id)


def closure(
    demand_id: str, body: ReasonBody, staff: Closer, once: StaffOnce, request: Request
) -> Response:
    """Close a demand that has run its course."""
    services = services_of(request)

    def change() -> object:
        return close_demand(services, demand_id, by=staff.id, reason=body.reason)

    return _after(services, once, change, demand_id)


def production(
    demand_id: str, body: ProduceBody, staff: Executor, once: StaffOnce, request: Request
) -> Response:
    """Produce the approved data, sealed to the authority's registered age recipient."""
    services = services_of(request)

    def change() -> object:
        return produce(services, demand_id, by=staff.id, preserved=body.preserved)

    return _after(services, once, change, demand_id)


def restriction(demand_id: str, staff: Executor, once: StaffOnce, request: Request) -> Response:
    """Apply the approved restriction."""
    services = services_of(request)
    return _after(services, once, lambda: restrict(services, demand_id, by=staff.id), demand_id)


def preservation(demand_id: str, staff: Executor, once: StaffOnce, request: Request) -> Response:
    """Place the approved preservation holds."""
    services = services_of(request)
    return _after(services, once, lambda: preserve(services, demand_id, by=staff.id), demand_id)


_READ = problems(400, 401, 403, 422, 429)
_POST = problems(400, 401, 403, 404, 409, 413, 422, 429)
_ONE = {"response_model": StaffDemandOut, "responses": _POST}
_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
ROUTES: list[tuple[str, str, Callable[..., Any], dict[str, Any]]] = [
    ("GET", "/demands", list_demands, {"response_model": StaffDemandPage, "responses": _READ}),
    ("GET", "/demands/{demand_id}", one_demand, {
        "response_model": StaffDemandOut, "responses": problems(401, 403, 404, 429)}),
    ("POST", "/documents", upload_document, {
        "status_code": 201, "response_model": DocumentReceipt, "responses": _POST,
        "openapi_extra": {"requestBody": {"required": True, "content": _BINARY}}}),
    ("POST", "/demands", record_demand, {"status_code": 201, **_ONE}),
    ("POST", "/demands/{demand_id}/callback", callback, _ONE),
    ("POST", "/demands/{demand_id}/screening", screening, _ONE),
    ("POST", "/demands/{demand_id}/approvals", approval, _ONE),
    ("POST", "/demands/{demand_id}/sign-offs", specialist_sign_off, _ONE),
    ("POST", "/demands/{demand_id}/decision", decision, _ONE),
    ("POST", "/demands/{demand_id}/narrowing", narrowing, _ONE),
    ("POST", "/demands/{demand_id}/refusal", refusal, _ONE),
    ("POST", "/demands/{demand_id}/clarification-request", clarification, _ONE),
    ("POST", "/demands/{demand_id}/challenge", contest, _ONE),
    ("POST", "/demands/{demand_id}/review", reopen, _ONE),
    ("POST", "/demands/{demand_id}/withdrawal", staff_withdrawal, _ONE),
    ("POST", "/demands/{demand_id}/closure", closure, _ONE),
    ("POST", "/demands/{demand_id}/production", production, _ONE),
    ("POST", "/demands/{demand_id}/restriction", restriction, _ONE),
    ("POST", "/demands/{demand_id}/preservation", preservation, _ONE),
]  # fmt: skip
"""Every route of the staff demand API: method, path under /v1/staff, endpoint, options."""


def staff_demands_router() -> APIRouter:
    router = APIRouter(prefix="/v1/staff", tags=["staff: demands"])
    for method, path, endpoint, options in ROUTES:
        router.add_api_route(path, endpoint, methods=[method], **options)
    return router
