"""What was judged about a demand, as stored with it: its screening and its scope.

A :class:`Screening` keeps everything the policy pack judged the demand on (the authority as
registered then, what the platform said about each target, the intake facts) next to the
findings and the pack's hash, so that the screening can be replayed later and must give the
same findings. A :class:`Scope` is what review would let through: the targets and data
categories left after screening refused some and reviewers narrowed the rest, and the period.

Both are stored as JSON; ``parse_*`` is the exact inverse of ``format_*``.

>>> from datetime import UTC, datetime
>>> from custodes.model import DataCategory, Target, TargetKind
>>> a, b = Target(TargetKind.ACCOUNT, "u-1"), Target(TargetKind.ACCOUNT, "u-2")
>>> s = Scope((a,), (DataCategory.SUBSCRIBER_INFO,), None, dropped_targets=(b,))
>>> parse_scope(format_scope(s)) == s, s.narrowed
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custodes.errors import InputError
from custodes.events.kinds import HEX64
from custodes.model import (
    Authority,
    DataCategory,
    Demand,
    Finding,
    ScreeningContext,
    Subject,
    Target,
    TimeRange,
    Verdict,
    format_authority,
    format_context,
    format_finding,
    format_subject,
    format_target,
    format_time,
    parse_authority,
    parse_context,
    parse_finding,
    parse_subject,
    parse_target,
    parse_time,
    summarize,
)

__all__ = [
    "Scope",
    "Screening",
    "format_scope",
    "format_screening",
    "initial_scope",
    "parse_scope",
    "parse_screening",
]


@dataclass(frozen=True)
class Screening:
    """One screening: the pack it ran under, all it was judged on, and what it found."""

    pack: str
    authority: Authority | None
    subjects: Mapping[Target, Subject] = field(hash=False)
    context: ScreeningContext
    findings: tuple[Finding, ...]

    def verdict(self, demand: Demand) -> Verdict:
        """The findings folded into what happens next (:func:`custodes.model.summarize`)."""
        return summarize(demand, self.findings)


def format_screening(s: Screening) -> dict[str, Any]:
    return {
        "pack": s.pack,
        "authority": None if s.authority is None else format_authority(s.authority),
        "subjects": [format_subject(x) for x in s.subjects.values()],
        "context": format_context(s.context),
        "findings": [format_finding(f) for f in s.findings],
    }


def _list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, list):
        raise InputError(f"{key}: expected a list")
    return value


def parse_screening(raw: Any) -> Screening:
    if not isinstance(raw, dict):
        raise InputError("a stored screening is an object")
    pack = raw.get("pack")
    if not isinstance(pack, str) or not HEX64.fullmatch(pack):
        raise InputError("pack: expected a SHA-256 in hex")
    authority = raw.get("authority")
    subjects = [parse_subject(x, f"subjects[{i}]") for i, x in enumerate(_list(raw, "subjects"))]
    findings = [parse_finding(x, f"findings[{i}]") for i, x in enumerate(_list(raw, "findings"))]
    return Screening(
        pack=pack,
        authority=None if authority is None else parse_authority(authority),
        subjects={s.target: s for s in subjects},
        context=parse_context(raw.get("context")),
        findings=tuple(findings),
    )


@dataclass(frozen=True)
class Scope:
    """What review would let through, and what was dropped on the way.

    ``period_narrowed`` says a reviewer shortened the time range."""

    targets: tuple[Target, ...]
    categories: tuple[DataCategory, ...]
    time_range: TimeRange | None
    dropped_targets: tuple[Target, ...] = ()
    dropped_categories: tuple[DataCategory, ...] = ()
    period_narrowed: bool = False

    @property
    def narrowed(self) -> bool:
        """Whether anything the authority asked for was left out."""
        return bool(self.dropped_targets or self.dropped_categories or self.period_narrowed)


def initial_scope(demand: Demand, verdict: Verdict) -> Scope:
    """The scope review starts from: the demand less what screening refused."""
    refused_items = set(verdict.refused_items)
    refused_targets = set(verdict.refused_targets)
    return Scope(
        targets=tuple(t for t in demand.targets if t not in refused_targets),
        categories=tuple(c for c in demand.categories if c.value not in refused_items),
        time_range=demand.time_range,
        dropped_targets=verdict.refused_targets,
        dropped_categories=tuple(c for c in demand.categories if c.value in refused_items),
    )


def format_scope(s: Scope) -> dict[str, Any]:
    out: dict[str, Any] = {
        "targets": [format_target(t) for t in s.targets],
        "categories": [c.value for c in s.categories],
        "dropped_targets": [format_target(t) for t in s.dropped_targets],
        "dropped_categories": [c.value for c in s.dropped_categories],
        "period_narrowed": s.period_narrowed,
    }
    if s.time_range is not None:
        out["time_range"] = {
            "start": format_time(s.time_range.start),
            "end": format_time(s.time_range.end),
        }
    return out


def _categories(raw: Mapping[str, Any], key: str) -> tuple[DataCategory, ...]:
    out = []
    for value in _list(raw, key):
        try:
            out.append(DataCategory(value))
        except ValueError:
            raise InputError(f"{key}: {value!r} is not a data category") from None
    return tuple(out)


def parse_scope(raw: Any) -> Scope:
    if not isinstance(raw, dict):
        raise InputError("a stored scope is an object")
    period = raw.get("time_range")
    time_range = None
    if period is not None:
        if not isinstance(period, dict):
            raise InputError("time_range: expected an object")
        time_range = TimeRange(
            parse_time(period.get("start"), "time_range.start"),
            parse_time(period.get("end"), "time_range.end"),
        )
    narrowed = raw.get("period_narrowed")
    if not isinstance(narrowed, bool):
        raise InputError("period_narrowed: expected true or false")
    return Scope(
        targets=tuple(parse_target(t, "targets[]") for t in _list(raw, "targets")),
        categories=_categories(raw, "categories"),
        time_range=time_range,
        dropped_targets=tuple(
            parse_target(t, "dropped_targets[]") for t in _list(raw, "dropped_targets")
        ),
        dropped_categories=_categories(raw, "dropped_categories"),
        period_narrowed=narrowed,
    )
