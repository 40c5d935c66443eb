"""Event kinds and their canonical log leaf: public facts plus salted commitments.

Every step in the life of a demand, and every privileged staff access, appends one event to
the transparency log. The leaf is RFC 8785 canonical JSON with exactly these members::

    {"commit": {FIELD: HEX, ...},      salted SHA-256 commitments to everything personal
     "demand": "d_...",                opaque demand id (absent for events about no demand)
     "facts": {FACT: VALUE, ...},      only facts safe to publish
     "kind": "demand.received",        dotted lowercase, never renamed once published
     "time": "2024-06-04T12:00:00Z",   UTC, whole seconds
     "v": 1}                           leaf schema version

Facts are country codes, kinds, counts, rule ids, outcomes and the policy pack hash; each
fact name has one shape (:data:`FACTS`) and each kind lists the facts and private fields it
may carry (:data:`KINDS`). Nothing else gets in: free text cannot pass a fact's shape.

A scalar private field ``f`` with value ``v`` and a fresh 32-byte salt ``s`` is committed as
``SHA-256("custodes/commit/v1\\n" || s || JCS([f, v]))``. A list field commits to each
element ``i`` as ``SHA-256("custodes/commit/v1\\n" || s_i || JCS([f, i, v_i]))`` and publishes
the root ``SHA-256("custodes/commit-list/v1\\n" || c_0 || c_1 || ...)``, so one element can
be opened to an auditor without revealing the others. :func:`encode_event` returns the leaf
and the openings (salts and values), which are stored privately.

>>> from datetime import UTC, datetime
>>> fixed = lambda n: bytes(n)  # deterministic salts, for the example only
>>> leaf, openings = encode_event(
...     DEMAND_RECEIVED, time=datetime(2024, 6, 4, 12, tzinfo=UTC), demand="d_1",
...     facts={"demand_kind": "disclosure", "instrument_kind": "subpoena",
...            "target_count": 1, "signature": "valid"},
...     private={"targets": ["alice@example.com"]}, salt=fixed)
>>> b"alice" in leaf
False
>>> event = parse_event(leaf)
>>> event.facts["target_count"], check_opening(event, "targets",
...     list_opening("targets", openings["targets"], 0))
(1, None)
"""

from .kinds import (
    APPROVAL_GIVEN,
    AUTHORITY_CHANNEL_ADDED,
    AUTHORITY_CHANNEL_REMOVED,
    AUTHORITY_KEY_ADDED,
    AUTHORITY_KEY_REVOKED,
    AUTHORITY_REGISTERED,
    AUTHORITY_REINSTATED,
    AUTHORITY_SUSPENDED,
    CLOCK_OVERDUE,
    DEMAND_AMENDED,
    DEMAND_APPROVED,
    DEMAND_CHALLENGED,
    DEMAND_CLARIFICATION_REQUESTED,
    DEMAND_CLOSED,
    DEMAND_EXECUTED,
    DEMAND_NARROWED,
    DEMAND_NOTIFIED,
    DEMAND_RECEIVED,
    DEMAND_REFUSED,
    DEMAND_REVIEW_OPENED,
    DEMAND_SCREENED,
    DEMAND_WITHDRAWN,
    EMERGENCY_CALLBACK_RECORDED,
    EMERGENCY_FOLLOW_UP_COMPLETED,
    FACTS,
    KINDS,
    NOTICE_DEFERRED,
    NOTICE_SENT,
    POLICY_ACTIVATED,
    PRESERVATION_EXTENDED,
    PRESERVATION_PLACED,
    PRESERVATION_RELEASED,
    PRODUCTION_DELIVERED,
    PRODUCTION_DOWNLOADED,
    REQUEST_REFUSED,
    RESTRICTION_APPLIED,
    RESTRICTION_LIFTED,
    STAFF_ACCESS_DENIED,
    STAFF_ACCESS_GRANTED,
    STAFF_ACCESS_READ,
    STAFF_ACCESS_REVOKED,
    STAFF_ROLE_GRANTED,
    STAFF_ROLE_REVOKED,
    TOS_ACTION_LINKED,
    TOS_ACTION_RECORDED,
    EventSpec,
    Fact,
)
from .leaf import (
    MAX_LEAF_BYTES,
    Event,
    ListOpening,
    Opening,
    Openings,
    check_opening,
    encode_event,
    format_event,
    format_openings,
    list_opening,
    open_commitment,
    parse_event,
    parse_openings,
)

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
    "KINDS",
    "MAX_LEAF_BYTES",
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
    "TOS_ACTION_LINKED",
    "TOS_ACTION_RECORDED",
    "Event",
    "EventSpec",
    "Fact",
    "ListOpening",
    "Opening",
    "Openings",
    "check_opening",
    "encode_event",
    "format_event",
    "format_openings",
    "list_opening",
    "open_commitment",
    "parse_event",
    "parse_openings",
]
