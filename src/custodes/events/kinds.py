"""The event kinds and the facts a leaf may publish.

Each kind is a dotted lowercase name that is never renamed once published. Its
:class:`EventSpec` lists the facts it must and may carry and the private fields it commits
to; :data:`FACTS` gives the one shape each fact's value must have. Free text cannot pass any
of these shapes, which is how personal data is kept out of the public log.

>>> KINDS[DEMAND_SCREENED].required == {"pack", "outcome", "findings"}
True
>>> FACTS["authority_jurisdiction"]("CN"), FACTS["target_count"](23000)
('CN', 23000)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from custodes.errors import InputError

__all__ = [
    "APPROVAL_GIVEN",
    "AUTHORITY_CHANNEL_ADDED",
    "AUTHORITY_CHANNEL_REMOVED",
    "AUTHORITY_KEY_ADDED",
    "AUTHORITY_KEY_REVOKED",
    "AUTHORITY_REGISTERED",
    "AUTHORITY_REINSTATED",
    "AUTHORITY_SUSPENDED",
    "CLOCK_OVERDUE",
    "DEMAND_AMENDED",
    "DEMAND_APPROVED",
    "DEMAND_CHALLENGED",
    "DEMAND_CLARIFICATION_REQUESTED",
    "DEMAND_CLOSED",
    "DEMAND_EXECUTED",
    "DEMAND_ID",
    "DEMAND_NARROWED",
    "DEMAND_NOTIFIED",
    "DEMAND_RECEIVED",
    "DEMAND_REFUSED",
    "DEMAND_REVIEW_OPENED",
    "DEMAND_SCREENED",
    "DEMAND_WITHDRAWN",
    "EMERGENCY_CALLBACK_RECORDED",
    "EMERGENCY_FOLLOW_UP_COMPLETED",
    "FACTS",
    "FIELD_NAME",
    "HEX64",
    "KINDS",
    "NOTICE_DEFERRED",
    "NOTICE_SENT",
    "POLICY_ACTIVATED",
    "PRESERVATION_EXTENDED",
    "PRESERVATION_PLACED",
    "PRESERVATION_RELEASED",
    "PRODUCTION_DELIVERED",
    "PRODUCTION_DOWNLOADED",
    "REQUEST_REFUSED",
    "RESTRICTION_APPLIED",
    "RESTRICTION_LIFTED",
    "STAFF_ACCESS_DENIED",
    "STAFF_ACCESS_GRANTED",
    "STAFF_ACCESS_READ",
    "STAFF_ACCESS_REVOKED",
    "STAFF_ROLE_GRANTED",
    "STAFF_ROLE_REVOKED",
    "TIME",
    "TOS_ACTION_LINKED",
    "TOS_ACTION_RECORDED",
    "EventSpec",
    "Fact",
]

# -- fact shapes ---------------------------------------------------------------------------

Fact = str | int | bool | tuple[str, ...] | tuple[Mapping[str, str | int], ...]

_CODE = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")
_TOKEN = re.compile(r"[a-z][a-z0-9_]{0,63}")
_RULE = re.compile(r"[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_]{0,31}){1,3}")
HEX64 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
DEMAND_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_MAX_COUNT = 2**53 - 1
_MAX_LIST = 1000


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[Any], Fact]:
    def check(value: Any) -> Fact:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InputError(f"expected {what}, got {value!r}")
        return value

    return check


def _list_of(item: Callable[[Any], Fact], *, ordered: bool) -> Callable[[Any], Fact]:
    def check(value: Any) -> Fact:
        if not isinstance(value, list | tuple) or len(value) > _MAX_LIST:
            raise InputError(f"expected a list of at most {_MAX_LIST}")
        out = tuple(str(item(v)) for v in value)
        if ordered and list(out) != sorted(set(out)):
            raise InputError("expected a sorted list without repeats")
        return out

    return check


def _count(value: Any) -> Fact:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise InputError(f"expected a count, got {value!r}")
    return value


def _index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise InputError(f"expected a target index, got {value!r}")
    return value


def _flag(value: Any) -> Fact:
    if not isinstance(value, bool):
        raise InputError(f"expected true or false, got {value!r}")
    return value


_outcome = _matching(re.compile("refuse|escalate|pass"), "refuse, escalate or pass")
_code = _matching(_CODE, "an ISO 3166 code")
_token = _matching(_TOKEN, "a lowercase token")
_rule = _matching(_RULE, "a rule id")


def _findings(value: Any) -> Fact:
    if not isinstance(value, list | tuple) or len(value) > _MAX_LIST:
        raise InputError(f"expected a list of at most {_MAX_LIST} findings")
    out: list[Mapping[str, str | int]] = []
    for f in value:
        if not isinstance(f, Mapping) or not {"rule", "outcome"} <= set(f) <= _FINDING_KEYS:
            raise InputError("a finding is {rule, outcome[, target][, item]}")
        one: dict[str, str | int] = {
            "rule": str(_rule(f["rule"])),
            "outcome": str(_outcome(f["outcome"])),
        }
        if "target" in f:
            one["target"] = _index(f["target"])
        if "item" in f:
            one["item"] = str(_token(f["item"]))
        out.append(one)
    return tuple(out)


_FINDING_KEYS = frozenset({"rule", "outcome", "target", "item"})

FACTS: Mapping[str, Callable[[Any], Fact]] = {
    "approvals": _count,
    "authority_jurisdiction": _code,
    "authority_kind": _token,
    "callback": _token,
    "categories": _list_of(_token, ordered=True),
    "channel_kind": _token,
    "clock": _token,
    "demand_kind": _token,
    "dropped_targets": _count,
    "due_at": _matching(TIME, "a UTC time like 2024-06-04T12:00:00Z"),
    "duration_days": _count,
    "error_code": _token,
    "findings": _findings,
    "gag_until": _matching(_DATE, "a date like 2024-06-04"),
    "instrument_kind": _token,
    "justification": _token,
    "nondisclosure": _token,
    "outcome": _outcome,
    "pack": _matching(HEX64, "a SHA-256 in hex"),
    "record_count": _count,
    "restriction_action": _token,
    "role": _token,
    "roles": _list_of(_token, ordered=True),
    "route": _token,
    "rules": _list_of(_rule, ordered=True),
    "signature": _token,
    "state_involved": _flag,
    "subject_jurisdictions": _list_of(_code, ordered=True),
    "target_count": _count,
    "territories": _list_of(_code, ordered=True),
    "volume": _count,
}
"""Every fact name a leaf may carry, with the check its value must pass."""

# -- kinds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    """What one event kind carries: required and optional facts, private fields."""

    kind: str
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    private: frozenset[str] = frozenset()
    private_lists: frozenset[str] = frozenset()
    about_demand: bool = True
    summary: str = ""


_KINDS: dict[str, EventSpec] = {}
KINDS: Mapping[str, EventSpec] = MappingProxyType(_KINDS)
"""Every event kind, by name."""


NONCE = "nonce"
"""A private field every kind may carry: a random value committed to, so that two events alike
in every public fact (same kind, second and facts, nothing private) still make two distinct
leaves instead of one (the log keeps an identical entry once)."""


def _kind(
    kind: str,
    summary: str,
    *,
    required: str = "",
    optional: str = "",
    private: str = "",
    lists: str = "",
    about_demand: bool = True,
) -> str:
    spec = EventSpec(
        kind,
        frozenset(required.split()),
        frozenset(optional.split()),
        frozenset(private.split()) | {NONCE},
        frozenset(lists.split()),
        about_demand,
        summary,
    )
    assert not (spec.required | spec.optional) - set(FACTS), kind
    _KINDS[kind] = spec
    return kind


_RECEIVED_FACTS = (
    "authority_jurisdiction authority_kind categories restriction_action territories "
    "duration_days nondisclosure"
)
_RECEIVED_PRIVATE = "authority instrument_reference document_sha256 offence staff body_sha256"

DEMAND_RECEIVED = _kind(
    "demand.received",
    "a demand arrived at intake (signed API or typed in by staff)",
    required="demand_kind instrument_kind target_count signature",
    optional=_RECEIVED_FACTS,
    private=_RECEIVED_PRIVATE,
    lists="targets",
)
DEMAND_AMENDED = _kind(
    "demand.amended",
    "the authority answered a clarification request with an amended demand",
    required="demand_kind instrument_kind target_count signature",
    optional=_RECEIVED_FACTS,
    private=_RECEIVED_PRIVATE,
    lists="targets",
)
DEMAND_SCREENED = _kind(
    "demand.screened",
    "the policy pack judged the demand; findings and the pack hash are recorded",
    required="pack outcome findings",
    optional="subject_jurisdictions rules route volume",
)
DEMAND_REFUSED = _kind(
    "demand.refused", "the demand was refused", optional="rules pack", private="staff note"
)
DEMAND_CLARIFICATION_REQUESTED = _kind(
    "demand.clarification_requested",
    "staff asked the authority to clarify or narrow the demand",
    optional="rules",
    private="staff note",
)
DEMAND_REVIEW_OPENED = _kind(
    "demand.review_opened",
    "the demand entered review; specialist roles that must sign off are listed",
    optional="roles",
    private="staff",
)
APPROVAL_GIVEN = _kind(
    "approval.given",
    "one staff member approved, in the named role",
    required="role",
    optional="approvals",
    private="staff note",
)
DEMAND_APPROVED = _kind(
    "demand.approved",
    "the required approvals are complete; the demand may be executed",
    required="pack approvals",
    optional="target_count categories",
)
DEMAND_NARROWED = _kind(
    "demand.narrowed",
    "the demand was approved in part; refused targets or categories were dropped",
    required="pack approvals target_count dropped_targets",
    optional="categories",
    lists="targets",
)
DEMAND_CHALLENGED = _kind(
    "demand.challenged",
    "the platform challenged the demand",
    optional="rules",
    private="staff grounds",
)
DEMAND_WITHDRAWN = _kind("demand.withdrawn", "the authority withdrew the demand", private="note")
DEMAND_EXECUTED = _kind(
    "demand.executed",
    "the approved demand was carried out",
    required="pack demand_kind",
    private="staff",
)
DEMAND_NOTIFIED = _kind(
    "demand.notified", "every affected user who may be told has been told", optional="record_count"
)
DEMAND_CLOSED = _kind("demand.closed", "the demand was closed", optional="outcome", private="staff")
PRODUCTION_DELIVERED = _kind(
    "production.delivered",
    "data was delivered to the authority, encrypted to its key",
    required="categories target_count record_count",
    private="production_sha256 recipient",
)
PRODUCTION_DOWNLOADED = _kind(
    "production.downloaded",
    "the authority downloaded a sealed production through the signed API",
    optional="record_count",
    private="production_sha256 authority",
)
RESTRICTION_APPLIED = _kind(
    "restriction.applied",
    "an account, meeting or content item was restricted",
    required="restriction_action target_count",
    optional="territories duration_days",
    private="staff",
    lists="targets",
)
RESTRICTION_LIFTED = _kind(
    "restriction.lifted",
    "a restriction ended or was lifted",
    required="restriction_action",
    private="staff",
    lists="targets",
)
PRESERVATION_PLACED = _kind(
    "preservation.placed",
    "records were put on hold",
    required="categories target_count due_at",
    private="staff",
    lists="targets",
)
PRESERVATION_EXTENDED = _kind(
    "preservation.extended", "a hold was extended once", required="due_at", private="staff"
)
PRESERVATION_RELEASED = _kind("preservation.released", "a hold was released", private="staff")
NOTICE_SENT = _kind(
    "notice.sent",
    "affected users were told about the demand",
    required="record_count",
    private="staff",
    lists="recipients",
)
NOTICE_DEFERRED = _kind(
    "notice.deferred",
    "notice waits for a dated nondisclosure order to end",
    required="gag_until",
    private="staff",
)
EMERGENCY_CALLBACK_RECORDED = _kind(
    "emergency.callback_recorded",
    "staff called the authority back to confirm an emergency",
    required="callback channel_kind",
    private="staff channel",
)
EMERGENCY_FOLLOW_UP_COMPLETED = _kind(
    "emergency.follow_up_completed",
    "the second review and follow-up legal process of an emergency arrived",
    private="staff document_sha256",
)
CLOCK_OVERDUE = _kind(
    "clock.overdue", "a deadline passed without being met (an alert)", required="clock due_at"
)
TOS_ACTION_RECORDED = _kind(
    "tos_action.recorded",
    "a terms-of-service action on a subject of no open demand",
    required="restriction_action",
    private="staff target note",
    about_demand=False,
)
TOS_ACTION_LINKED = _kind(
    "tos_action.linked",
    "a terms-of-service action on a target of an open demand, counted as state-involved",
    required="restriction_action state_involved",
    private="staff target note",
)
REQUEST_REFUSED = _kind(
    "request.refused",
    "malformed, oversized or unauthenticated input was refused and changed nothing",
    required="error_code",
    optional="authority_jurisdiction",
    private="authority body_sha256",
    about_demand=False,
)
STAFF_ACCESS_GRANTED = _kind(
    "staff_access.granted",
    "a staff member was allowed to read a subject's data, under a justification",
    required="justification pack",
    optional="subject_jurisdictions categories",
    private="staff grantor subject note",
    about_demand=False,
)
STAFF_ACCESS_DENIED = _kind(
    "staff_access.denied",
    "a staff access request was refused by policy",
    required="justification",
    optional="rules subject_jurisdictions",
    private="staff subject",
    about_demand=False,
)
STAFF_ACCESS_READ = _kind(
    "staff_access.read",
    "a staff member read data under a granted access",
    required="categories",
    optional="record_count",
    private="staff subject",
    about_demand=False,
)
STAFF_ACCESS_REVOKED = _kind(
    "staff_access.revoked", "a staff access ended", private="staff subject", about_demand=False
)
AUTHORITY_REGISTERED = _kind(
    "authority.registered",
    "a requesting authority was registered",
    required="authority_jurisdiction authority_kind",
    private="authority name staff",
    about_demand=False,
)
AUTHORITY_SUSPENDED = _kind(
    "authority.suspended",
    "an authority was suspended",
    optional="authority_jurisdiction",
    private="authority staff note",
    about_demand=False,
)
AUTHORITY_REINSTATED = _kind(
    "authority.reinstated",
    "a suspended authority was reinstated",
    optional="authority_jurisdiction",
    private="authority staff",
    about_demand=False,
)
AUTHORITY_KEY_ADDED = _kind(
    "authority.key_added",
    "a verification key was registered",
    private="authority key staff",
    about_demand=False,
)
AUTHORITY_KEY_REVOKED = _kind(
    "authority.key_revoked",
    "a verification key was revoked",
    private="authority key staff",
    about_demand=False,
)
AUTHORITY_CHANNEL_ADDED = _kind(
    "authority.channel_added",
    "a call-back channel was registered",
    required="channel_kind",
    private="authority channel staff",
    about_demand=False,
)
AUTHORITY_CHANNEL_REMOVED = _kind(
    "authority.channel_removed",
    "a call-back channel was removed",
    required="channel_kind",
    private="authority channel staff",
    about_demand=False,
)
STAFF_ROLE_GRANTED = _kind(
    "staff.role_granted",
    "a role was given",
    required="role",
    private="staff grantor",
    about_demand=False,
)
STAFF_ROLE_REVOKED = _kind(
    "staff.role_revoked",
    "a role was taken away",
    required="role",
    private="staff grantor",
    about_demand=False,
)
POLICY_ACTIVATED = _kind(
    "policy.activated",
    "a policy pack became the one demands are judged under",
    required="pack",
    private="staff",
    about_demand=False,
)
