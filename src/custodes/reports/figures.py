"""From the replayed log to the report's own tables: count, then suppress.

The *cohort* of a period is every demand whose first ``demand.received`` falls in it. Every
figure of the demand tables is about the cohort, whatever the time its later events happened
(a demand received on 30 June and refused on 2 July counts as refused in the first half), so
a report computed later from a longer log can only see more outcomes, never lose demands.

National-security process (:data:`~custodes.reports.tally.NATIONAL_SECURITY_INSTRUMENTS`) is
left out of every table but :data:`~custodes.reports.tables.NATIONAL_SECURITY`: there, each
instrument's country always has a row (so that the row itself says nothing), its counts are
given in bands of :data:`BAND_SIZE` (0-249, 250-499, ...), and only once
:data:`NATIONAL_SECURITY_DELAY` has passed after the period's end, judged at the time of the
log's latest event (``as_of``); until then the row is ``withheld``. These defaults follow the
structure of 50 U.S.C. 1874 (bands of 250 for all national-security process combined, and a
delay of 180 days as for FISA process under its first two options); the legal team sets them.

Counts are summed exactly and suppressed last (:func:`~custodes.reports.tables.suppress`), so
a country's total may be exact while some of its cells are ``<5``.

>>> band(0), band(249), band(250)
('0-249', '0-249', '250-499')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from custodes.audit.jurisdiction import is_domestic
from custodes.reports.period import Period
from custodes.reports.tables import (
    BY_AUTHORITY_KIND,
    BY_COUNTRY,
    DEMANDS,
    NATIONAL_SECURITY,
    RESTRICTIONS,
    TOTALS,
    Cell,
    Table,
    row_of,
    share,
    suppress,
)
from custodes.reports.tally import (
    NATIONAL_SECURITY_INSTRUMENTS,
    UNKNOWN,
    DemandRecord,
    Tally,
)

__all__ = [
    "BAND_SIZE",
    "NATIONAL_SECURITY_DELAY",
    "band",
    "cohort",
    "demand_tables",
    "national_security_table",
    "territorial_scope",
]

BAND_SIZE = 250
NATIONAL_SECURITY_DELAY = timedelta(days=180)


def band(count: int, size: int = BAND_SIZE) -> str:
    """The band ``count`` falls in: ``0-249``, ``250-499``, ..."""
    low = count // size * size
    return f"{low}-{low + size - 1}"


def cohort(tally: Tally, period: Period) -> list[DemandRecord]:
    """The period's demands, except national-security process, in log order."""
    return [d for d in tally.demands.values() if d.received in period and not d.national_security]


def territorial_scope(country: str, territories: Iterable[str]) -> str:
    """Where a restriction applies, seen from the requesting authority's country."""
    codes = list(territories)
    if not codes:
        return "unlimited"
    if country == UNKNOWN:
        return UNKNOWN
    return (
        "requesting_state"
        if all(is_domestic(c, country) for c in codes)
        else "beyond_requesting_state"
    )


@dataclass
class _Counts:
    demands: int = 0
    subjects: int = 0
    produced: int = 0
    refused: int = 0
    narrowed: int = 0
    challenged: int = 0
    emergency: int = 0
    preservation: int = 0
    gagged: int = 0
    tos: int = 0

    def add(self, d: DemandRecord) -> None:
        self.demands += 1
        self.subjects += d.subjects
        self.produced += d.produced
        self.refused += d.refused
        self.narrowed += d.narrowed
        self.challenged += d.challenged
        self.emergency += d.emergency
        self.preservation += d.preservation
        self.gagged += d.gagged
        self.tos += d.state_driven_tos_actions

    def cells(self) -> list[Cell]:
        return [
            suppress(self.demands),
            suppress(self.subjects),
            suppress(self.produced),
            share(self.produced, self.demands),
            *(
                suppress(n)
                for n in (
                    self.refused,
                    self.narrowed,
                    self.challenged,
                    self.emergency,
                    self.preservation,
                    self.gagged,
                    self.tos,
                )
            ),
        ]


def _grouped(
    demands: list[DemandRecord], key: Callable[[DemandRecord], tuple[str, ...]]
) -> list[tuple[tuple[str, ...], _Counts]]:
    groups: dict[tuple[str, ...], _Counts] = {}
    for d in demands:
        groups.setdefault(key(d), _Counts()).add(d)
    return sorted(groups.items())


def _restrictions(demands: list[DemandRecord]) -> Table:
    groups: dict[tuple[str, str, str, str], list[int]] = {}
    for d in demands:
        for r in d.restrictions:
            scope = territorial_scope(d.country, r.territories)
            counts = groups.setdefault((d.country, d.authority_kind, r.action, scope), [0, 0])
            counts[0] += 1
            counts[1] += r.items
    rows = [
        row_of(RESTRICTIONS, [*key, suppress(n), suppress(items)])
        for key, (n, items) in sorted(groups.items())
    ]
    return Table(RESTRICTIONS, tuple(rows))


def demand_tables(tally: Tally, period: Period) -> list[Table]:
    """Totals, demands by country and authority kind (and each alone), restrictions."""
    demands = cohort(tally, period)
    total = _Counts()
    for d in demands:
        total.add(d)
    tables = [Table(TOTALS, (row_of(TOTALS, total.cells()),))]
    for schema, key in (
        (DEMANDS, lambda d: (d.country, d.authority_kind)),
        (BY_COUNTRY, lambda d: (d.country,)),
        (BY_AUTHORITY_KIND, lambda d: (d.authority_kind,)),
    ):
        rows = [row_of(schema, [*k, *c.cells()]) for k, c in _grouped(demands, key)]
        tables.append(Table(schema, tuple(rows)))
    tables.append(_restrictions(demands))
    return tables


def national_security_table(tally: Tally, period: Period, as_of: datetime | None) -> Table:
    """One row per national-security instrument: bands, or withheld until the delay passed."""
    opens = period.end + NATIONAL_SECURITY_DELAY
    published = as_of is not None and as_of >= opens
    rows = []
    for instrument, country in sorted(NATIONAL_SECURITY_INSTRUMENTS.items()):
        ns = [
            d for d in tally.demands.values() if d.received in period and d.instrument == instrument
        ]
        demands_band = band(len(ns)) if published else None
        subjects_band = band(sum(d.subjects for d in ns)) if published else None
        rows.append(
            row_of(
                NATIONAL_SECURITY,
                [
                    country,
                    instrument,
                    BAND_SIZE,
                    demands_band,
                    subjects_band,
                    NATIONAL_SECURITY_DELAY.days,
                    opens.date().isoformat(),
                    "published" if published else "withheld",
                ],
            )
        )
    return Table(NATIONAL_SECURITY, tuple(rows))
