"""The JSON shapes of the API, as pydantic models: what the OpenAPI document promises.

Request bodies of the staff API are validated by these models (a body that does not fit is a
``validation`` problem); the authority API reads its bodies with the model's own parsers
(:func:`custodes.model.read_json`, :func:`custodes.model.parse_demand`) and these models only
document them. Responses are built from the service's frozen objects by the ``*_out``
functions of the route modules.

:func:`problems` lists the problem responses a route may give, so that the OpenAPI document
names every status code the API can answer with.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custodes.errors import InputError
from custodes.model import (
    AuthorityKind,
    ChannelKind,
    DataCategory,
    DemandKind,
    DemandState,
    InstrumentKind,
    RestrictionAction,
    Standing,
    TargetKind,
    read_json,
)

from .problems import PROBLEM_JSON

__all__ = [
    "DOCUMENTED_BODIES",
    "PROBLEM_STATUSES",
    "Problem",
    "component_schemas",
    "problems",
    "read_model",
]

PROBLEM_STATUSES: dict[int, str] = {
    400: "Malformed input",
    401: "Who is asking could not be established",
    403: "Policy does not permit it",
    404: "No such resource",
    409: "The current state does not allow it",
    413: "The body is over the route's size limit",
    415: "The body's media type is not accepted",
    422: "The request did not match its schema, or an Idempotency-Key was reused",
    429: "Too many requests; see Retry-After",
}


class Problem(BaseModel):
    """An RFC 9457 problem details object; ``code`` is stable (see docs/api.md)."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    code: str


M = TypeVar("M", bound=BaseModel)


def read_model(model: type[M], body: bytes, *, limit: int) -> M:
    """``body`` as ``model``: size checked first, JSON read strictly
    (:func:`custodes.model.read_json`), and any mismatch an ``InputError`` naming the field."""
    raw = read_json(body, limit=limit)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise InputError(f"{where}: {first.get('msg', 'invalid')}") from None


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route that may answer with these problem statuses."""
    return {
        s: {"description": PROBLEM_STATUSES[s], "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}
        for s in sorted(statuses)
    }


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

Short = Annotated[str, Field(min_length=1, max_length=256)]
Reason = Annotated[str, Field(min_length=1, max_length=2000, description="plain words")]
Ident = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
Code = Annotated[str, Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$", description="ISO 3166")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- demands, as the authority sends them (documentation of custodes.model.codec) ----------


class TargetBody(_Body):
    kind: TargetKind
    id: Annotated[str, Field(min_length=1, max_length=512)]


class InstrumentBody(_Body):
    kind: InstrumentKind
    reference: Short | None = None
    issuer: Short | None = None
    issued_on: date | None = None
    provisions: list[Short] | None = None
    document_sha256: Sha256 | None = Field(
        None, description="SHA-256 of the instrument document, uploaded first to /v1/documents"
    )


class TimeRangeBody(_Body):
    start: datetime
    end: datetime


class OffenceBody(_Body):
    category: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    description: Annotated[str, Field(max_length=2000)] | None = None


class RestrictionBody(_Body):
    action: RestrictionAction
    territories: list[Code] | None = None
    duration_days: Annotated[int, Field(ge=1, le=36500)] | None = None


class NondisclosureBody(_Body):
    until: date | None = None


class EvidenceBody(_Body):
    sha256: Sha256
    description: Annotated[str, Field(max_length=2000)] | None = None
    platform_ref: Annotated[str, Field(max_length=128)] | None = None


class DemandBody(_Body):
    """A demand as an authority sends it. ``id``, the authority and the time of receipt are
    set by custodes, never by the body; unknown fields are refused."""

    kind: DemandKind
    instrument: InstrumentBody
    targets: Annotated[list[TargetBody], Field(min_length=1)]
    categories: list[DataCategory] | None = None
    time_range: TimeRangeBody | None = None
    offence: OffenceBody | None = None
    restriction: RestrictionBody | None = None
    deadline: datetime | None = None
    nondisclosure: NondisclosureBody | None = None
    evidence: list[EvidenceBody] | None = None
    claims_tos_violation: bool | None = None


# -- what the API answers ------------------------------------------------------------------


class FindingOut(BaseModel):
    rule: str
    outcome: str
    reason: str
    remedy: str
    target: TargetBody | None = None
    item: str | None = None
    role: str | None = None


class ProductionOut(BaseModel):
    id: str
    created_at: datetime
    package_sha256: str
    record_count: int
    categories: list[str]
    href: str


class LogEntryOut(BaseModel):
    """An event about a demand, where the transparency log holds it."""

    index: int = Field(description="the entry's index in the published log")
    kind: str = Field(description="the event's kind, e.g. demand.received")
    at: datetime
    entry: str = Field(description="the entry's bytes, as published (no signature needed)")
    receipt: str = Field(
        description="its c2sp.org/tlog-proof receipt against the latest signed checkpoint"
    )


class DemandStatus(BaseModel):
    """A demand as its authority sees it."""

    id: str
    version: int
    state: DemandState
    kind: DemandKind
    received_at: datetime
    target_count: int
    reasons: list[FindingOut] = Field(
        description="for a refused demand or a clarification request: the rules, in words"
    )
    productions: list[ProductionOut]
    log: list[LogEntryOut] | None = Field(
        default=None,
        description="on GET /v1/demands/{id}: every event logged about the demand, in log "
        "order, with where to fetch its entry and its receipt, to check offline that the log "
        "holds it (custodes log check)",
    )


class DemandPage(BaseModel):
    items: list[DemandStatus]
    next_cursor: str | None


class DocumentReceipt(BaseModel):
    sha256: str
    size: int


class WithdrawBody(_Body):
    reason: Reason


DOCUMENTED_BODIES: tuple[type[BaseModel], ...] = (DemandBody, WithdrawBody)
"""Bodies the authority API reads itself: the OpenAPI document carries their schemas."""


def component_schemas() -> dict[str, Any]:
    """``components/schemas`` entries the routes refer to but FastAPI does not generate."""
    out: dict[str, Any] = {"Problem": Problem.model_json_schema()}
    for model in DOCUMENTED_BODIES:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


class StaffOut(BaseModel):
    id: str
    roles: list[str]
    location: str


class AuthorityKeyBody(_Body):
    id: Ident
    ed25519: Annotated[str, Field(description="the raw 32-byte public key, base64")]


class ChannelBody(_Body):
    kind: ChannelKind
    address: Short


class AuthorityBody(_Body):
    id: Ident
    name: Short
    kind: AuthorityKind
    jurisdiction: Code
    standing: Standing | None = None
    keys: list[AuthorityKeyBody] | None = None
    channels: list[ChannelBody] | None = None


class ChannelOut(BaseModel):
    id: str = Field(description="names the channel in DELETE .../channels/{channel}")
    kind: str
    address: str


class AuthorityOut(BaseModel):
    id: str
    name: str
    kind: str
    jurisdiction: str
    standing: str
    keys: list[dict[str, str]]
    channels: list[ChannelOut]
