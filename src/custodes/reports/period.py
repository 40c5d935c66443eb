"""Reporting periods: a calendar year, a half-year or a quarter, in UTC.

Grammar (no spaces, upper-case letters only)::

    period  = year [ half / quarter ]
    year    = 4DIGIT                  ; 1970 to 9999
    half    = "H" ("1" / "2")         ; January-June, July-December
    quarter = "Q" ("1" / "2" / "3" / "4")

A period is the half-open interval ``[start, end)`` of UTC times; an event belongs to it when
its time does.

>>> p = parse_period("2026H2")
>>> p.start.isoformat(), p.end.isoformat()
('2026-07-01T00:00:00+00:00', '2027-01-01T00:00:00+00:00')
>>> format_period(parse_period("2026Q3")), parse_period("2026").end.year
('2026Q3', 2027)
>>> parse_period("2026h2")
Traceback (most recent call last):
...
custodes.reports.errors.PeriodError: '2026h2' is not a period such as 2026H2, 2026Q3 or 2026
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from custodes.reports.errors import PeriodError

__all__ = ["Period", "format_period", "parse_period"]

_GRAMMAR = re.compile(r"([0-9]{4})(?:([HQ])([0-9]))?")
_MONTHS = {"": 12, "H": 6, "Q": 3}
_PARTS = {"": 0, "H": 2, "Q": 4}


@dataclass(frozen=True, order=True)
class Period:
    """``year``, and ``part`` ``""`` (the year), ``"H"`` or ``"Q"`` with its ``number``."""

    year: int
    part: str = ""
    number: int = 0

    def __post_init__(self) -> None:
        if self.part not in _PARTS or not 1970 <= self.year <= 9999:
            raise PeriodError(f"no period {self.year}{self.part}{self.number or ''}")
        count = _PARTS[self.part]
        if (count == 0 and self.number != 0) or (count and not 1 <= self.number <= count):
            raise PeriodError(f"no period {self.year}{self.part}{self.number}")

    @property
    def start(self) -> datetime:
        month = 1 + (self.number - 1) * _MONTHS[self.part] if self.part else 1
        return datetime(self.year, month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        if not self.part or self.number == _PARTS[self.part]:
            return datetime(self.year + 1, 1, 1, tzinfo=UTC)
        return datetime(self.year, 1 + self.number * _MONTHS[self.part], 1, tzinfo=UTC)

    def __contains__(self, when: object) -> bool:
        return isinstance(when, datetime) and self.start <= when < self.end

    def __str__(self) -> str:
        return format_period(self)


def format_period(period: Period) -> str:
    """The period as written on the command line and in reports, e.g. ``2026H2``."""
    return f"{period.year}{period.part}{period.number if period.part else ''}"


def parse_period(text: str) -> Period:
    """Parse ``2026``, ``2026H1``/``2026H2`` or ``2026Q1``..``2026Q4``."""
    match = _GRAMMAR.fullmatch(text) if isinstance(text, str) and len(text) <= 6 else None
    if match is None:
        raise PeriodError(f"{text!r} is not a period such as 2026H2, 2026Q3 or 2026")
    year, part, number = match.groups()
    try:
        return Period(int(year), part or "", int(number or 0))
    except PeriodError:
        raise PeriodError(f"{text!r} is not a period such as 2026H2, 2026Q3 or 2026") from None
