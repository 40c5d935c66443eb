"""The authority API: how a registered authority submits demands and follows them.

Every request is signed, and every route begins by passing its request through the gate
(:meth:`custodes.web.intake.Gate.admit`); every POST carries an Idempotency-Key.

==================================  =========================  ================================
route                               Cedar action               what it does
==================================  =========================  ================================
``POST /v1/documents``              ``demand.submit``          upload an instrument document
                                                               (any media type); answers its
                                                               SHA-256, to cite in the demand
``POST /v1/demands``                ``demand.submit``          submit a demand (JSON); it is
                                                               recorded and screened at once
``GET /v1/demands``                 ``demand.status``          the authority's demands, newest
                                                               first, a page at a time
``GET /v1/demands/{id}``            ``demand.status``          one demand: state, the reasons
                                                               of a refusal or a question,
                                                               productions
``POST /v1/demands/{id}/amendments``  ``demand.answer_``       answer a clarification request
                                    ``clarification``          with the amended demand
``POST /v1/demands/{id}/withdrawal``  ``demand.withdraw``      withdraw the demand
``GET /v1/productions/{id}``        ``demand.status``          download a production (sealed
                                                               with age to the authority's key)
==================================  =========================  ================================

An authority sees only its own demands: another authority's demand is ``not_found``, exactly as
a demand that does not exist.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from custodes.errors import ConflictError, CustodesError, NotFoundError
from custodes.model import (
    MAX_DEMAND_BYTES,
    Demand,
    DemandState,
    Outcome,
    SignatureStatus,
    format_target,
    new_demand_id,
    parse_demand,
    read_json,
)
from custodes.service import Services
from custodes.service.demands import amend_demand, withdraw_demand
from custodes.service.lifecycle import DemandRecord, get_demand, history
from custodes.service.production import Production, download, get_production, productions_of
from custodes.service.screening import receive_and_screen, screen_demand, volume_query
from custodes.store.api_tables import staged_documents
from custodes.store.bridge import run_bridged
from custodes.store.fast import execute
from custodes.web.direct import Direct

from .context import services_of
from .idempotency import Keeping
from .intake import (
    AdmitAlone,
    Admitting,
    Gate,
    SignedCall,
    UnsupportedMediaTypeError,
    signed,
)
from .listing import DEFAULT_LIMIT, MAX_LIMIT, demand_page
from .schemas import (
    DemandBody,
    DemandPage,
    DemandStatus,
    DocumentReceipt,
    FindingOut,
    LogEntryOut,
    ProductionOut,
    TargetBody,
    WithdrawBody,
    problems,
    read_model,
)
from .signatures import format_content_digest

__all__ = ["DocumentNotUploadedError", "authority_router", "demand_status", "staged_document"]

ANSWERED_WITH_REASONS = frozenset({DemandState.REFUSED, DemandState.CLARIFICATION_REQUESTED})
JSON_LIMIT = 64 * 1024
STAGED_FOR = timedelta(days=30)
"""How long an uploaded document waits for the demand that cites it."""


class DocumentNotUploadedError(ConflictError):
    code = "document_not_uploaded"
    title = "The cited document was not uploaded"


def _json_body(schema: type[Any], limit: int) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema.__name__}"}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ref}},
            "description": f"at most {limit} bytes",
        }
    }


def staged_document(services: Services, owner: str, sha256: str | None) -> bytes | None:
    """The document ``owner`` uploaded with this SHA-256 (None when none is cited);
    ``DocumentNotUploadedError`` when one is cited but was never uploaded."""
    if sha256 is None:
        return None
    with services.store.read() as conn:
        row = execute(conn, "SELECT" + _STAGED, [owner, sha256])
    if row is None:
        raise _not_uploaded(sha256)
    return bytes(row[0])


def _staged_and_volume(services: Services, owner: str, demand: Demand) -> tuple[bytes | None, int]:
    """For a new demand of an authority: the document it cites, as :func:`staged_document`,
    and its authority's volume (:func:`~custodes.service.screening.volume`), in one read."""
    sha256 = demand.instrument.document_sha256
    store = services.store
    named, params = volume_query(services, store.read_engine.dialect, demand)
    if sha256 is None:
        row = store.read_row("SELECT " + named, params)
        assert row is not None
        return None, int(row[0])
    row = store.read_row(f"SELECT {named}," + _STAGED, [*params, owner, sha256])
    if row is None:
        raise _not_uploaded(sha256)
    return bytes(row[1]), int(row[0])


def _not_uploaded(sha256: str) -> DocumentNotUploadedError:
    return DocumentNotUploadedError(
        f"instrument.document_sha256 {sha256} names no document you uploaded; "
        "POST it to /v1/documents first"
    )


_STAGED = " data FROM staged_documents WHERE owner = {mark} AND sha256 = {mark}"
"""Straight to the driver: every submission that cites a document reads it (after
``SELECT``, alone or after the authority's volume)."""


def stage_document(services: Services, owner: str, data: bytes) -> DocumentReceipt:
    """Keep an uploaded document for the demand that will cite it."""
    digest = hashlib.sha256(data).hexdigest()
    t = staged_documents
    now = services.clock()

    def work(conn: sa.Connection) -> None:
        conn.execute(t.delete().where(t.c.owner == owner, t.c.received_at < now - STAGED_FOR))
        exists = conn.execute(
            sa.select(t.c.sha256).where(t.c.owner == owner, t.c.sha256 == digest)
        ).first()
        if exists is None:
            conn.execute(t.insert().values(owner=owner, sha256=digest, data=data, received_at=now))

    services.store.write(work)
    return DocumentReceipt(sha256=digest, size=len(data))


def demand_status(services: Services, record: DemandRecord, *, new: bool = False) -> DemandStatus:
    """A demand as its authority sees it (``new``: it was received just now, so it has no
    productions yet, and none are looked up)."""
    reasons = []
    if record.state in ANSWERED_WITH_REASONS and record.screening is not None:
        for f in record.screening.findings:
            if f.outcome is Outcome.REFUSE:
                target = None if f.target is None else TargetBody(**format_target(f.target))
                finding = FindingOut(
                    rule=f.rule_id,
                    outcome=f.outcome.value,
                    reason=f.reason,
                    remedy=f.remedy,
                    target=target,
                    item=f.item,
                )
                reasons.append(finding)
    made = () if new else productions_of(services, record.id)
    productions = [_production_out(p) for p in made]
    return DemandStatus(
        id=record.id,
        version=record.version,
        state=record.state,
        kind=record.demand.kind,
        received_at=record.demand.received_at,
        target_count=len(record.demand.targets),
        reasons=reasons,
        productions=productions,
    )


def _production_out(p: Production) -> ProductionOut:
    return ProductionOut(
        id=p.id,
        created_at=p.created_at,
        package_sha256=p.package_sha256,
        record_count=p.record_count,
        categories=list(p.categories),
        href=f"/v1/productions/{p.id}",
    )


def _own(services: Services, call: SignedCall, demand_id: str) -> DemandRecord:
    try:
        record = get_demand(services, demand_id)
    except NotFoundError:
        record = None
    if record is None or record.demand.authority_id != call.authority.id:
        raise NotFoundError(f"you sent no demand {demand_id!r}")
    return record


def _check_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaTypeError("send the demand as application/json")


def _screened(services: Services, record: DemandRecord) -> DemandRecord:
    try:
        return screen_demand(services, record.id)
    except CustodesError:  # recorded as received; staff screen it again
        return get_demand(services, record.id)


def _status_response(
    services: Services, record: DemandRecord, status: int, *, new: bool = False
) -> Response:
    out = demand_status(services, record, new=new)
    # The bytes JSONResponse would send for out.model_dump(mode="json"), made in one step.
    return Response(
        out.model_dump_json(), status_code=status, media_type="application/json",
        headers={"Location": f"/v1/demands/{record.id}"},
    )  # fmt: skip


_SUBMITTING = signed("demand.submit")
Submitting = Annotated[Gate, Depends(_SUBMITTING)]
Reading = Annotated[Gate, Depends(signed("demand.status"))]
Answering = Annotated[Gate, Depends(signed("demand.answer_clarification"))]
Withdrawing = Annotated[Gate, Depends(signed("demand.withdraw"))]


def upload_document(gate: Submitting, request: Request) -> Response:
    """Upload an instrument document; cite its SHA-256 as instrument.document_sha256."""
    call = gate.admit()
    services = services_of(request)
    assert call.once is not None

    def operation() -> Response:
        receipt = stage_document(services, "authority:" + call.authority.id, call.body)
        return JSONResponse(receipt.model_dump(), status_code=201)

    return call.once.run(operation)


def submit_demand(gate: Submitting, request: Request) -> Response:
    """Submit a demand; it is recorded, screened, and its status answered."""
    at_once = _submit_at_once(gate, request)
    if at_once is not None:
        return at_once
    call = gate.admit()
    services = services_of(request)
    _check_json(request)
    once = call.once
    assert once is not None

    def operation() -> Response:
        demand = _parsed(services, call)
        document, named = _staged_and_volume(services, "authority:" + call.authority.id, demand)
        answered: list[tuple[DemandRecord, Response]] = []

        def answer(record: DemandRecord) -> Keeping:
            response = _status_response(services, record, 201, new=True)
            answered.append((record, response))
            return once.keeping(response)

        record = receive_and_screen(
            services, demand, signature=SignatureStatus.VALID, document=document,
            body=call.body, sender=call.authority, answer=answer, named=named,
        )  # fmt: skip
        for stored, response in answered:
            if stored is record:  # the answer was kept with the demand
                return response
        return _status_response(services, record, 201, new=True)

    return once.run(operation)


def _parsed(services: Services, call: SignedCall) -> Demand:
    raw = read_json(call.body, limit=MAX_DEMAND_BYTES)
    return parse_demand(
        raw, id=new_demand_id(), authority_id=call.authority.id, received_at=services.clock()
    )


def _submit_at_once(gate: Gate, request: Request) -> Response | None:
    """The common case in one transaction: a well-formed demand, admitted (nonce, rate,
    Idempotency-Key) with its own storing, its answer kept with it. None when the gate's
    checks could not judge by what the app remembers, or when anything refused the request
    or failed after them: nothing was written then, and :func:`submit_demand` admits the
    request first and goes on step by step, which answers with the refusal (in the order the
    steps give) or stores the demand. A request the gate's checks refuse is refused here."""
    if request.headers.get("content-type") != "application/json":
        return None  # before the gate's checks, which the step-by-step way makes again
    checked = gate.check()
    if checked is None:
        return None
    services, call = services_of(request), checked.call
    answered: list[Response] = []

    def answer(record: DemandRecord) -> Admitting:
        answered.append(_status_response(services, record, 201, new=True))
        return checked.admitting(answered[-1])

    try:
        demand = _parsed(services, call)
        document, named = _staged_and_volume(services, "authority:" + call.authority.id, demand)
        receive_and_screen(
            services, demand, signature=SignatureStatus.VALID, document=document,
            body=call.body, sender=call.authority, answer=answer, named=named, fall_back=False,
        )  # fmt: skip
    except (CustodesError, AdmitAlone):
        return None
    return answered[-1]


def list_demands(
    gate: Reading,
    request: Request,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> DemandPage:
    """The authority's own demands, newest first."""
    call = gate.admit()
    services = services_of(request)
    page = demand_page(services, authority_id=call.authority.id, cursor=cursor, limit=limit)
    items = [demand_status(services, r) for r in page.items]
    return DemandPage(items=items, next_cursor=page.next_cursor)


def _log_entry(index: int, kind: str, at: datetime) -> LogEntryOut:
    """An event about a demand, with the console's public files for its entry and receipt."""
    where = f"/console/log/{index}"
    return LogEntryOut(
        index=index, kind=kind, at=at, entry=f"{where}/entry", receipt=f"{where}/receipt"
    )


def one_demand(demand_id: str, gate: Reading, request: Request) -> DemandStatus:
    """One of the authority's demands, with the log entries that record it."""
    call = gate.admit()
    services = services_of(request)
    out = demand_status(services, _own(services, call, demand_id))
    out.log = [_log_entry(e.index, e.kind, e.at) for e in history(services, demand_id)]
    return out


def amend(demand_id: str, gate: Answering, request: Request) -> Response:
    """Answer a clarification request with the amended demand (a new version)."""
    call = gate.admit()
    services = services_of(request)
    _check_json(request)
    assert call.once is not None

    def operation() -> Response:
        current = _own(services, call, demand_id)
        raw = read_json(call.body, limit=MAX_DEMAND_BYTES)
        amended = parse_demand(
            raw, id=current.id, authority_id=call.authority.id, received_at=services.clock()
        )
        owner = "authority:" + call.authority.id
        document = staged_document(services, owner, amended.instrument.document_sha256)
        record = amend_demand(
            services, amended, signature=SignatureStatus.VALID, document=document, body=call.body
        )
        return _status_response(services, _screened(services, record), 200)

    return call.once.run(operation)


def withdraw(demand_id: str, gate: Withdrawing, request: Request) -> Response:
    """Withdraw the demand, with a reason."""
    call = gate.admit()
    services = services_of(request)
    _check_json(request)
    assert call.once is not None

    def operation() -> Response:
        _own(services, call, demand_id)
        body = read_model(WithdrawBody, call.body, limit=JSON_LIMIT)
        record = withdraw_demand(
            services, demand_id, reason=body.reason, authority=call.authority.id
        )
        return _status_response(services, record, 200)

    return call.once.run(operation)


def production(production_id: str, gate: Reading, request: Request) -> Response:
    """Download a production: an age file sealed to the authority's registered recipient."""
    call = gate.admit()
    services = services_of(request)
    try:
        made = get_production(services, production_id)
    except NotFoundError:
        made = None
    if made is None or made.authority_id != call.authority.id:
        raise NotFoundError(f"no production {production_id!r} for you")
    package = download(services, production_id, authority_id=call.authority.id)
    headers = {
        "Content-Disposition": f'attachment; filename="{production_id}.age"',
        "Content-Digest": format_content_digest(package),
    }
    return Response(package, media_type="application/octet-stream", headers=headers)


def _on_the_loop(endpoint: Callable[..., Response]) -> Callable[..., Awaitable[Response]]:
    """``endpoint`` run on the event loop's thread (:func:`custodes.store.bridge.run_bridged`)
    instead of a worker thread of its own: a request waiting for its commit then holds no
    thread, and a busy server does not spend its time switching between them. FastAPI reads
    the endpoint's own parameters and documentation."""

    async def run(*args: Any, **kwargs: Any) -> Response:
        return await run_bridged(functools.partial(endpoint, *args, **kwargs))

    run.__name__, run.__qualname__ = endpoint.__name__, endpoint.__qualname__
    run.__doc__ = endpoint.__doc__
    run.__signature__ = inspect.signature(endpoint)  # type: ignore[attr-defined]
    return run


_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_SIGNED = (400, 401, 403, 413, 422, 429)
_UPLOAD = _on_the_loop(upload_document)
_SUBMIT = _on_the_loop(submit_demand)
ROUTES: list[tuple[str, str, Callable[..., Any], dict[str, Any]]] = [
    ("POST", "/documents", _UPLOAD, {
        "status_code": 201, "response_model": DocumentReceipt,
        "responses": problems(*_SIGNED, 409),
        "openapi_extra": {"requestBody": {"required": True, "content": _BINARY}}}),
    ("POST", "/demands", _SUBMIT, {
        "status_code": 201, "response_model": DemandStatus,
        "responses": problems(*_SIGNED, 409, 415),
        "openapi_extra": _json_body(DemandBody, MAX_DEMAND_BYTES)}),
    ("GET", "/demands", list_demands, {
        "response_model": DemandPage, "responses": problems(*_SIGNED)}),
    ("GET", "/demands/{demand_id}", one_demand, {
        "response_model": DemandStatus, "responses": problems(*_SIGNED, 404)}),
    ("POST", "/demands/{demand_id}/amendments", _on_the_loop(amend), {
        "response_model": DemandStatus, "responses": problems(*_SIGNED, 404, 409, 415),
        "openapi_extra": _json_body(DemandBody, MAX_DEMAND_BYTES)}),
    ("POST", "/demands/{demand_id}/withdrawal", _on_the_loop(withdraw), {
        "response_model": DemandStatus, "responses": problems(*_SIGNED, 404, 409, 415),
        "openapi_extra": _json_body(WithdrawBody, JSON_LIMIT)}),
    ("GET", "/productions/{production_id}", production, {
        "response_class": Response,
        "responses": {200: {"content": _BINARY, "description": "the age-encrypted package"},
                      **problems(*_SIGNED, 404)}}),
]  # fmt: skip
"""Every route of the authority API: method, path, endpoint, FastAPI options."""


PREFIX = "/v1"

DIRECT = {
    PREFIX + path: Direct(_SUBMITTING, endpoint)
    for _, path, endpoint, _ in ROUTES
    if endpoint in (_UPLOAD, _SUBMIT)
}
"""The routes of :data:`ROUTES` that :class:`~custodes.web.direct.DirectRoutes` serves
without FastAPI's router (all POST): the busiest, whose only dependency is the gate."""


def authority_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["authority"])
    for method, path, endpoint, options in ROUTES:
        router.add_api_route(path, endpoint, methods=[method], **options)
    return router
