"""The transparency page's figures: demands per quarter by country, kind and outcome.

The figures come from the **published log alone**, read and verified the way
``custodes report`` reads it (:func:`custodes.reports.build.read_log`: the checkpoint's
signature by the log's key, every tile and the root rebuilt from the entry bundles), and follow
the report's rules (docs/reports.md): a demand counts in the quarter of its first
``demand.received``; national-security process is left out (it is published only in bands,
after a delay); a count from 1 to 4 is shown as ``<5``.

A demand's outcome is its latest decision: ``refused``, ``approved in part`` (narrowed) or
``approved``; a demand with no decision is ``challenged`` if the platform contested it, else
``undecided`` (in screening or review, sent back for clarification, or withdrawn).

>>> from datetime import UTC, datetime
>>> from custodes.reports.tally import DemandRecord
>>> t = datetime(2026, 5, 1, tzinfo=UTC)
>>> records = [DemandRecord(f"d_{n}", n, t, country="DE", demand_kind="disclosure",
...                         refused=n < 6) for n in range(8)]
>>> f = figures_from(records)
>>> f.periods, [(s.name, s.values) for s in f.by_outcome if s.values != (0,)]
(('2026Q2',), [('refused', (6,)), ('undecided', ('<5',))])
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from custodes.audit.logcheck import dir_fetcher
from custodes.audit.policy import keys_policy
from custodes.reports.build import read_log
from custodes.reports.tally import UNKNOWN, DemandRecord
from custodes.tlog import Checkpoint

from .chart import SUPPRESSED, Cell, Series

__all__ = [
    "KIND_LABELS",
    "MAX_COUNTRIES",
    "MAX_PERIODS",
    "OUTCOMES",
    "Figures",
    "FiguresCache",
    "figures_from",
    "outcome_of",
    "publish",
    "quarter_of",
]

log = logging.getLogger(__name__)

MAX_PERIODS = 8
"""The page shows the latest eight quarters."""
MAX_COUNTRIES = 8
"""Countries shown one by one; the rest are summed as ``other countries``."""
OTHER_COUNTRIES = "other countries"
OUTCOMES = ("refused", "approved in part", "approved", "challenged", "undecided")
KIND_LABELS = {
    "disclosure": "disclosure",
    "emergency_disclosure": "emergency disclosure",
    "preservation": "preservation",
    "restriction": "restriction",
}


def quarter_of(when: datetime) -> str:
    """The reporting quarter of a UTC time, as ``custodes report --period`` writes it.

    >>> from datetime import UTC, datetime
    >>> quarter_of(datetime(2020, 6, 4, tzinfo=UTC))
    '2020Q2'
    """
    return f"{when.year}Q{(when.month - 1) // 3 + 1}"


def _next_quarter(label: str) -> str:
    year, q = int(label[:4]), int(label[5])
    return f"{year + 1}Q1" if q == 4 else f"{year}Q{q + 1}"


def publish(count: int) -> Cell:
    """A count as published: exact at 0 and from 5, else ``<5``.

    >>> publish(0), publish(3), publish(5)
    (0, '<5', 5)
    """
    return SUPPRESSED if 0 < count < 5 else count


def outcome_of(record: DemandRecord) -> str:
    """One of :data:`OUTCOMES` (see the module docstring)."""
    if record.refused:
        return "refused"
    if record.narrowed:
        return "approved in part"
    if record.pack is not None:
        return "approved"
    return "challenged" if record.challenged else "undecided"


@dataclass(frozen=True)
class Figures:
    """What the page shows: the quarters, one series per country, kind and outcome, the
    total per quarter, and the checkpoint the figures were computed from."""

    periods: tuple[str, ...]
    by_country: tuple[Series, ...]
    by_kind: tuple[Series, ...]
    by_outcome: tuple[Series, ...]
    totals: tuple[Cell, ...]
    left_out: int
    """National-security demands left out of every figure (they are not counted here)."""
    checkpoint: Checkpoint | None = None


def _periods(records: Sequence[DemandRecord]) -> tuple[str, ...]:
    if not records:
        return ()
    first = min(quarter_of(r.received) for r in records)
    last = max(quarter_of(r.received) for r in records)
    periods = [first]
    while periods[-1] != last:
        periods.append(_next_quarter(periods[-1]))
    return tuple(periods[-MAX_PERIODS:])


def _series(
    records: Sequence[DemandRecord], periods: Sequence[str], key: Callable[[DemandRecord], str],
    names: Sequence[str],
) -> tuple[Series, ...]:  # fmt: skip
    counts = Counter((key(r), quarter_of(r.received)) for r in records)
    return tuple(Series(n, tuple(publish(counts[n, p]) for p in periods)) for n in names)


def _countries(records: Sequence[DemandRecord], periods: Sequence[str]) -> tuple[Series, ...]:
    totals = Counter(r.country for r in records)
    ranked = sorted(totals, key=lambda c: (-totals[c], c == UNKNOWN, c))
    shown = ranked if len(ranked) <= MAX_COUNTRIES else ranked[: MAX_COUNTRIES - 1]
    rest = set(ranked) - set(shown)

    def country(r: DemandRecord) -> str:
        return OTHER_COUNTRIES if r.country in rest else r.country

    return _series(records, periods, country, [*shown, *([OTHER_COUNTRIES] if rest else [])])


def figures_from(demands: Iterable[DemandRecord], checkpoint: Checkpoint | None = None) -> Figures:
    """The page's figures from the demands of a replayed log (read at ``checkpoint``)."""
    every = list(demands)
    counted = [r for r in every if not r.national_security]
    periods = _periods(counted)
    shown = [r for r in counted if quarter_of(r.received) in periods]
    kinds = sorted({r.demand_kind for r in shown}, key=lambda k: (k not in KIND_LABELS, k))
    totals = Counter(quarter_of(r.received) for r in shown)
    return Figures(
        periods=periods,
        by_country=_countries(shown, periods),
        by_kind=tuple(
            Series(KIND_LABELS.get(s.name, s.name or UNKNOWN), s.values)
            for s in _series(shown, periods, lambda r: r.demand_kind, kinds)
        ),
        by_outcome=_series(shown, periods, outcome_of, OUTCOMES),
        totals=tuple(publish(totals[p]) for p in periods),
        left_out=len(every) - len(counted),
        checkpoint=checkpoint,
    )


class FiguresCache:
    """Figures of the published log in ``log_dir``, verified with ``vkey``, recomputed when a
    new checkpoint is published but at most once every ``min_age`` seconds (reading a large
    log takes a while; the page says which checkpoint it shows)."""

    def __init__(self, log_dir: Path, vkey: str, *, min_age: float = 10.0) -> None:
        self.log_dir = log_dir
        self.policy = keys_policy([vkey])
        self.min_age = min_age
        self._lock = threading.Lock()
        self._note: bytes | None = None
        self._figures: Figures | None = None
        self._at = 0.0

    def figures(self) -> Figures:
        """The figures (``UnverifiedLogError`` when the published log does not verify)."""
        with self._lock:
            path = self.log_dir / "checkpoint"
            note = path.read_bytes() if path.is_file() else b""
            fresh = time.monotonic() - self._at < self.min_age
            if self._figures is not None and (note == self._note or fresh):
                return self._figures
            if not note:
                figures = figures_from(())
            else:
                checkpoint, tally = read_log(dir_fetcher(self.log_dir), self.policy)
                figures = figures_from(tally.demands.values(), checkpoint)
                log.info("transparency figures size=%d demands=%d", checkpoint.size,
                         len(tally.demands))  # fmt: skip
            self._note, self._figures, self._at = note, figures, time.monotonic()
            return figures
