"""The review forms of a demand page, parsed into frozen requests before anything acts on them.

Every form names its action in the URL (``POST /console/demands/ID/ACTION``) and carries a
written reason (``reason``, 1-2000 characters, checked again by the service). Narrowing also
names what to drop, by value, and only values the scope under review holds are accepted:

- ``drop_target``: a target as written on the page (``account:u-123``), repeatable;
- ``drop_category``: a data category (``content``), repeatable;
- ``period_start``, ``period_end``: a shorter period, ``YYYY-MM-DDTHH:MM`` in UTC (an empty
  one keeps that end of the period under review).

A sign-off names its ``role``.

>>> from custodes.model import Target, TargetKind
>>> from custodes.service.judgements import Scope
>>> scope = Scope((Target(TargetKind.ACCOUNT, "u-1"), Target(TargetKind.ACCOUNT, "u-2")), (), None)
>>> form = parse_review_form("narrow", [("reason", "u-2 is not named in the warrant"),
...                                     ("drop_target", "account:u-2")], scope)
>>> form.action, [str(t) for t in form.drop_targets]
(<Action.NARROW: 'narrow'>, ['account:u-2'])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from custodes.errors import InputError, NotFoundError
from custodes.model import DataCategory, Target, TimeRange
from custodes.service.judgements import Scope

__all__ = ["MAX_FIELDS", "Action", "ReviewForm", "parse_period_bound", "parse_review_form"]

MAX_FIELDS = 1000
"""Most fields one review form may carry (a demand names at most a few hundred targets)."""
_MAX_VALUE = 2000


class Action(StrEnum):
    """What a review form asks for (the last part of its URL)."""

    SCREEN = "screen"
    APPROVE = "approve"
    SIGN_OFF = "sign-off"
    DECIDE = "decide"
    NARROW = "narrow"
    REFUSE = "refuse"
    CLARIFY = "clarify"
    CHALLENGE = "challenge"
    RESUME = "resume"


@dataclass(frozen=True)
class ReviewForm:
    """One submitted review form."""

    action: Action
    reason: str
    role: str | None = None
    drop_targets: tuple[Target, ...] = ()
    drop_categories: tuple[DataCategory, ...] = ()
    period: TimeRange | None = None


def parse_period_bound(raw: str, what: str) -> datetime | None:
    """A ``datetime-local`` value read as UTC; None when empty.

    >>> parse_period_bound("2020-06-04T12:30", "start").isoformat()
    '2020-06-04T12:30:00+00:00'
    """
    text = raw.strip()
    if not text:
        return None
    try:
        value = datetime.strptime(text[:16], "%Y-%m-%dT%H:%M")
    except ValueError:
        raise InputError(f"the period's {what} must be a date and time such as "
                         "2020-06-04T12:00") from None  # fmt: skip
    return value.replace(tzinfo=UTC)


def _period(start: str, end: str, scope: Scope) -> TimeRange | None:
    begin, until = parse_period_bound(start, "start"), parse_period_bound(end, "end")
    if begin is None and until is None:
        return None
    if scope.time_range is None:
        raise InputError("the demand names no period to shorten")
    return TimeRange(begin or scope.time_range.start, until or scope.time_range.end)


def _one(values: Iterable[str], name: str) -> str:
    found = list(values)
    if len(found) > 1:
        raise InputError(f"the form sends {name} more than once")
    return found[0] if found else ""


def parse_review_form(
    action: str, fields: Iterable[tuple[str, object]], scope: Scope | None
) -> ReviewForm:
    """Parse the fields of a review form for ``action`` against the ``scope`` under review
    (``InputError`` or ``NotFoundError`` for anything the page did not offer)."""
    try:
        act = Action(action)
    except ValueError:
        raise NotFoundError(f"a demand has no action {action!r}") from None
    pairs = [(k, v) for k, v in fields if isinstance(v, str)]
    if len(pairs) > MAX_FIELDS or any(len(v) > _MAX_VALUE for _, v in pairs):
        raise InputError("the form is too large")

    def values(name: str) -> list[str]:
        return [v for k, v in pairs if k == name]

    reason = _one(values("reason"), "reason")
    role = _one(values("role"), "role") or None
    if act is Action.SIGN_OFF and role is None:
        raise InputError("choose the role you sign off in")
    if act is not Action.NARROW:
        return ReviewForm(act, reason, role=role)
    if scope is None:
        raise InputError("screening left nothing to narrow")
    targets = {str(t): t for t in scope.targets}
    unknown = [v for v in values("drop_target") if v not in targets]
    if unknown:
        raise InputError(f"{unknown[0][:100]} is not a target under review")
    categories = {c.value: c for c in scope.categories}
    stray = [v for v in values("drop_category") if v not in categories]
    if stray:
        raise InputError(f"{stray[0][:100]} is not a data category under review")
    return ReviewForm(
        act,
        reason,
        drop_targets=tuple(targets[v] for v in dict.fromkeys(values("drop_target"))),
        drop_categories=tuple(categories[v] for v in dict.fromkeys(values("drop_category"))),
        period=_period(
            _one(values("period_start"), "period_start"),
            _one(values("period_end"), "period_end"),
            scope,
        ),
    )
