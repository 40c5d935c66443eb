"""Demands and the legal instruments behind them.

A :class:`Demand` is what an authority asks the platform to do: disclose data, preserve it,
restrict an account or a piece of content, or disclose in an emergency. Every field is
checked when the object is built, so a ``Demand`` that exists is well formed; whether it is
*lawful* is the policy pack's question (``custodes.policy.evaluate``), not this module's.

Things that are well formed but wrong — a target written as a selector ("all accounts on
server X") instead of a platform identifier, an offence category nobody has heard of — are
representable on purpose, so that screening can refuse them with a rule id rather than the
intake failing with a parse error.

>>> from datetime import UTC, datetime
>>> warrant = LegalInstrument(InstrumentKind.SEARCH_WARRANT, reference="2:24-mj-0042")
>>> d = Demand(
...     id="d_example",
...     authority_id="us-fbi-sf",
...     kind=DemandKind.DISCLOSURE,
...     instrument=warrant,
...     targets=(Target(TargetKind.ACCOUNT, "u-7f3a9c"),),
...     categories=(DataCategory.CONTENT,),
...     received_at=datetime(2024, 6, 1, tzinfo=UTC),
... )
>>> d.targets[0].is_selector, Target(TargetKind.ACCOUNT, "all free accounts").is_selector
(False, True)
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from custodes.errors import InputError, NotFoundError

__all__ = [
    "DataCategory",
    "Demand",
    "DemandKind",
    "EvidenceRef",
    "InstrumentKind",
    "LegalInstrument",
    "Nondisclosure",
    "Offence",
    "Restriction",
    "RestrictionAction",
    "Target",
    "TargetKind",
    "TimeRange",
    "check_code",
    "check_sha256",
    "check_token",
    "new_demand_id",
]

MAX_TEXT = 2000
MAX_TARGET_ID = 512

_CODE = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")
_TOKEN = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
_DEMAND_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class DemandKind(StrEnum):
    """What the authority wants done."""

    DISCLOSURE = "disclosure"
    PRESERVATION = "preservation"
    RESTRICTION = "restriction"
    EMERGENCY_DISCLOSURE = "emergency_disclosure"


class InstrumentKind(StrEnum):
    """The kind of legal process a demand rests on."""

    SUBPOENA = "subpoena"
    COURT_ORDER = "court_order"
    SEARCH_WARRANT = "search_warrant"
    PRESERVATION_REQUEST = "preservation_request"
    MLAT_REQUEST = "mlat_request"
    CLOUD_ACT_ORDER = "cloud_act_order"
    EPOC = "epoc"
    EPOC_PR = "epoc_pr"
    DSA_ART9_ORDER = "dsa_art9_order"
    DSA_ART10_ORDER = "dsa_art10_order"
    EMERGENCY_REQUEST = "emergency_request"
    ADMINISTRATIVE_REQUEST = "administrative_request"
    NATIONAL_SECURITY_LETTER = "national_security_letter"
    OTHER = "other"


class TargetKind(StrEnum):
    """What a target names. ``selector`` is a description instead of an identifier."""

    ACCOUNT = "account"
    MEETING = "meeting"
    CONTENT = "content"
    SELECTOR = "selector"


class DataCategory(StrEnum):
    """Categories of data a disclosure or preservation can reach."""

    SUBSCRIBER_INFO = "subscriber_info"
    PAYMENT_RECORDS = "payment_records"
    IP_SESSION_LOGS = "ip_session_logs"
    MEETING_METADATA = "meeting_metadata"
    PARTICIPANT_LIST = "participant_list"
    CONTENT = "content"


class RestrictionAction(StrEnum):
    """Actions a restriction demand can ask for."""

    END_MEETING = "end_meeting"
    SUSPEND_ACCOUNT = "suspend_account"
    QUARANTINE_ACCOUNT = "quarantine_account"
    REMOVE_CONTENT = "remove_content"
    GEO_RESTRICT_CONTENT = "geo_restrict_content"


def check_code(code: str, what: str = "jurisdiction") -> str:
    """Return ``code`` if it is an ISO 3166-1 alpha-2 or ISO 3166-2 code, else raise.

    >>> check_code("US-CA")
    'US-CA'
    """
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise InputError(f"{what} {code!r} is not an ISO 3166 code such as 'DE' or 'US-CA'")
    return code


def check_token(value: str, what: str) -> str:
    """Return ``value`` if it is a lowercase token (``[a-z][a-z0-9_]*``, at most 64)."""
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise InputError(f"{what} {value!r} must be a lowercase word such as 'fraud'")
    return value


def check_sha256(value: str, what: str) -> str:
    """Return ``value`` if it is 64 lowercase hex digits, else raise."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise InputError(f"{what} must be a SHA-256 digest in 64 lowercase hex digits")
    return value


def _check_text(value: str, what: str, *, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InputError(f"{what} must be text of at most {limit} characters")
    return value


def _check_aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{what} must carry a time zone")
    return value


def new_demand_id() -> str:
    """A fresh opaque demand id: random, so it reveals nothing about the demand."""
    return "d_" + secrets.token_hex(12)


@dataclass(frozen=True)
class Target:
    """One thing a demand names: an account, a meeting, a content item, or a selector."""

    kind: TargetKind
    id: str
    is_selector: bool = field(init=False, repr=False, compare=False)
    """True when the target describes many subjects instead of naming one."""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, TargetKind):
            raise InputError(f"target kind {self.kind!r} is not one of {_names(TargetKind)}")
        if not isinstance(self.id, str) or not self.id.strip():
            raise InputError("a target needs a non-empty id")
        if len(self.id) > MAX_TARGET_ID:
            raise InputError(f"a target id is at most {MAX_TARGET_ID} characters")
        selector = self.kind is TargetKind.SELECTOR or not _IDENTIFIER.fullmatch(self.id)
        object.__setattr__(self, "is_selector", selector)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"


@dataclass(frozen=True)
class TimeRange:
    """A half-open interval ``[start, end)`` of time the demand covers."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _check_aware(self.start, "time_range.start")
        _check_aware(self.end, "time_range.end")
        if self.end <= self.start:
            raise InputError("time_range.end must be after time_range.start")

    @property
    def days(self) -> int:
        """Length in whole days, rounded up."""
        length = self.end - self.start
        return -(-length // timedelta(days=1))


@dataclass(frozen=True)
class LegalInstrument:
    """The legal process: its kind, reference, issuer, date, cited provisions, document."""

    kind: InstrumentKind
    reference: str = ""
    issuer: str = ""
    issued_on: date | None = None
    provisions: tuple[str, ...] = ()
    document_sha256: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, InstrumentKind):
            raise InputError(
                f"instrument kind {self.kind!r} is not one of {_names(InstrumentKind)}"
            )
        _check_text(self.reference, "instrument.reference", limit=256)
        _check_text(self.issuer, "instrument.issuer", limit=256)
        for p in self.provisions:
            _check_text(p, "instrument.provisions[]", limit=256)
        if self.document_sha256 is not None:
            check_sha256(self.document_sha256, "instrument.document_sha256")


@dataclass(frozen=True)
class Offence:
    """The alleged offence in the authority's words, and the category custodes judges."""

    category: str
    description: str = ""

    def __post_init__(self) -> None:
        check_token(self.category, "offence.category")
        _check_text(self.description, "offence.description")


@dataclass(frozen=True)
class Restriction:
    """What a restriction demand asks for, where, and for how long (None: indefinitely).

    ``territories`` are kept sorted and without repeats."""

    action: RestrictionAction
    territories: tuple[str, ...] = ()
    duration_days: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.action, RestrictionAction):
            raise InputError(
                f"restriction action {self.action!r} is not one of {_names(RestrictionAction)}"
            )
        for code in self.territories:
            check_code(code, "restriction territory")
        object.__setattr__(self, "territories", tuple(sorted(set(self.territories))))
        if self.duration_days is not None and not 0 < self.duration_days <= 36500:
            raise InputError("restriction.duration_days must be between 1 and 36500")


@dataclass(frozen=True)
class Nondisclosure:
    """A nondisclosure (gag) order; ``until`` None means it names no end date."""

    until: date | None


@dataclass(frozen=True)
class EvidenceRef:
    """Evidence a demand relies on: its SHA-256, and the platform's id for it if it has one."""

    sha256: str
    description: str = ""
    platform_ref: str | None = None

    def __post_init__(self) -> None:
        check_sha256(self.sha256, "evidence.sha256")
        _check_text(self.description, "evidence.description")
        if self.platform_ref is not None:
            _check_text(self.platform_ref, "evidence.platform_ref", limit=128)


@dataclass(frozen=True)
class Demand:
    """A government demand as received. Validated on construction; judged by policy.

    ``categories`` are kept sorted and without repeats; ``targets`` keep their order (findings
    and the log refer to targets by position) and may not repeat."""

    id: str
    authority_id: str | None
    kind: DemandKind
    instrument: LegalInstrument
    targets: tuple[Target, ...]
    received_at: datetime
    categories: tuple[DataCategory, ...] = ()
    time_range: TimeRange | None = None
    offence: Offence | None = None
    restriction: Restriction | None = None
    deadline: datetime | None = None
    nondisclosure: Nondisclosure | None = None
    evidence: tuple[EvidenceRef, ...] = ()
    claims_tos_violation: bool = False
    _index: dict[Target, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _DEMAND_ID.fullmatch(self.id):
            raise InputError("a demand id is 1-64 characters of [A-Za-z0-9_-]")
        if not isinstance(self.kind, DemandKind):
            raise InputError(f"demand kind {self.kind!r} is not one of {_names(DemandKind)}")
        _check_aware(self.received_at, "received_at")
        if self.deadline is not None:
            _check_aware(self.deadline, "deadline")
        for category in self.categories:
            if not isinstance(category, DataCategory):
                raise InputError(f"data category {category!r} is not one of {_names(DataCategory)}")
        object.__setattr__(self, "categories", tuple(sorted(set(self.categories))))
        index: dict[Target, int] = {}
        for i, target in enumerate(self.targets):
            if target in index:
                raise InputError(f"target {target} is named twice", target=str(target))
            index[target] = i
        object.__setattr__(self, "_index", index)
        self._check_shape()

    def _check_shape(self) -> None:
        if self.kind is DemandKind.RESTRICTION:
            if self.restriction is None:
                raise InputError("a restriction demand must say which restriction it wants")
            if self.categories:
                raise InputError("a restriction demand takes no data categories")
        else:
            if self.restriction is not None:
                raise InputError(f"a {self.kind.value} demand takes no restriction")
            if not self.categories:
                raise InputError(f"a {self.kind.value} demand must name data categories")

    def target_index(self, target: Target) -> int:
        """Position of ``target`` in :attr:`targets` (raises ``NotFoundError`` if absent)."""
        try:
            return self._index[target]
        except KeyError:
            raise NotFoundError(f"{target} is not a target of this demand") from None

    @property
    def items(self) -> tuple[str, ...]:
        """What the demand seeks, as the instrument ladder names it.

        Data categories for disclosures, ``preservation`` for preservations, the action for
        restrictions.
        """
        if self.kind is DemandKind.PRESERVATION:
            return ("preservation",)
        if self.restriction is not None:
            return (self.restriction.action.value,)
        return tuple(c.value for c in self.categories)


def _names(kind: type[StrEnum]) -> str:
    return ", ".join(m.value for m in kind)
