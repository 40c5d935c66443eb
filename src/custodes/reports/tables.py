"""The tables a report publishes, every column of them, and small-number suppression.

A :class:`Table` is a name, a title, its :class:`Column` list and rows of cells. A cell is an
``int``, a ``float`` (rounded when computed), a ``str``, ``None`` (withheld or not applicable:
an empty CSV field, JSON ``null``) or :data:`SUPPRESSED`. Every table a report can hold is in
:data:`SCHEMAS`; the CSV files, ``datapackage.json``, ``report.json`` and the HTML are all
renderings of these tables, and docs/reports.md explains every column (a test checks).

**Suppression.** A count from 1 to :data:`SUPPRESS_BELOW` - 1 (1 to 4) is published as
``"<5"`` (:data:`SUPPRESSED`); 0 and 5 or more are exact. A share or a median computed from a
suppressed count is withheld (``None``). Only columns marked ``suppressible`` are counts of
demands, subjects or actions and are suppressed.

>>> [suppress(n) for n in (0, 1, 4, 5, 230)]
[0, '<5', '<5', 5, 230]
>>> share(7, 10), share(3, 10), share(0, 0)
(70.0, None, None)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from custodes.reports.errors import ReportFormatError

__all__ = [
    "BY_AUTHORITY_KIND",
    "BY_COUNTRY",
    "DEMANDS",
    "DSA_ORDERS",
    "NATIONAL_SECURITY",
    "RESTRICTIONS",
    "SCHEMAS",
    "SUPPRESSED",
    "SUPPRESS_BELOW",
    "TOTALS",
    "Cell",
    "Column",
    "Schema",
    "Table",
    "check_cell",
    "row_of",
    "share",
    "suppress",
]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SUPPRESS_BELOW = 5
SUPPRESSED = "<5"
"""How a suppressed count (1 to 4) is published."""

Cell = int | float | str | None


@dataclass(frozen=True)
class Column:
    """One column: its name (CSV header and JSON key), Frictionless type, title, meaning."""

    name: str
    type: str  # "string", "integer", "number" or "date" (Frictionless table schema types)
    title: str
    description: str
    suppressible: bool = False


@dataclass(frozen=True)
class Schema:
    """A table's name (its CSV file is ``NAME.csv`` with ``_`` as ``-``), title and columns."""

    name: str
    title: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def path(self) -> str:
        return self.name.replace("_", "-") + ".csv"


@dataclass(frozen=True)
class Table:
    """A schema and its rows, in the order they are published."""

    schema: Schema
    rows: tuple[tuple[Cell, ...], ...]

    @property
    def name(self) -> str:
        return self.schema.name

    def records(self) -> list[dict[str, Cell]]:
        names = [c.name for c in self.schema.columns]
        return [dict(zip(names, row, strict=True)) for row in self.rows]


def suppress(count: int) -> int | str:
    """``count``, or :data:`SUPPRESSED` when it is from 1 to 4."""
    return SUPPRESSED if 0 < count < SUPPRESS_BELOW else count


def share(part: int, whole: int) -> float | None:
    """``part`` as a percentage of ``whole`` (one decimal), or None when either is suppressed
    or ``whole`` is 0."""
    if whole == 0 or suppress(part) == SUPPRESSED or suppress(whole) == SUPPRESSED:
        return None
    return round(100 * part / whole, 1)


def _count(name: str, title: str, description: str) -> Column:
    return Column(name, "integer", title, description, suppressible=True)


_COUNTRY = Column(
    "country",
    "string",
    "Country",
    "ISO 3166-1 alpha-2 code of the requesting authority's country ('unknown' if not logged)",
)
_AUTHORITY = Column(
    "authority_kind",
    "string",
    "Authority kind",
    "police, prosecutor, court, regulator, intelligence or other ('unknown' if not logged)",
)
_METRICS: tuple[Column, ...] = (
    _count("demands", "Demands received", "demands received in the period"),
    _count("subjects", "Subjects specified", "accounts, meetings or items the demands named"),
    _count(
        "with_data_produced",
        "Demands with some data produced",
        "demands for which at least one record was delivered to the authority",
    ),
    Column(
        "share_with_data_produced",
        "number",
        "Share with some data produced (%)",
        "with_data_produced as a percentage of demands; empty when either is suppressed",
    ),
    _count("refused", "Refused", "demands whose latest decision was a refusal"),
    _count("narrowed", "Narrowed", "demands whose latest decision approved them in part"),
    _count("challenged", "Challenged", "demands the platform challenged"),
    _count("emergency", "Emergency requests", "emergency disclosure requests"),
    _count("preservation", "Preservation requests", "requests to preserve records"),
    _count(
        "notices_delayed_by_gag",
        "Notices delayed by gag orders",
        "demands whose notice to users waited for a dated nondisclosure order to end",
    ),
    _count(
        "state_driven_tos_actions",
        "State-driven terms-of-service actions",
        "terms-of-service actions taken on a subject of an open demand (failure mode F4)",
    ),
)

DEMANDS = Schema(
    "demands",
    "Demands by country and authority kind",
    "Every demand received in the period except national-security process.",
    (_COUNTRY, _AUTHORITY, *_METRICS),
    ("country", "authority_kind"),
)
BY_COUNTRY = Schema(
    "demands_by_country",
    "Demands by country",
    "The demands table summed over authority kinds, suppressed after summing.",
    (_COUNTRY, *_METRICS),
    ("country",),
)
BY_AUTHORITY_KIND = Schema(
    "demands_by_authority_kind",
    "Demands by authority kind",
    "The demands table summed over countries, suppressed after summing.",
    (_AUTHORITY, *_METRICS),
    ("authority_kind",),
)
TOTALS = Schema(
    "totals",
    "All demands",
    "The demands table summed over everything, suppressed after summing.",
    _METRICS,
    (),
)
RESTRICTIONS = Schema(
    "restrictions",
    "Restrictions by kind and territorial scope",
    "Restrictions applied for demands received in the period.",
    (
        _COUNTRY,
        _AUTHORITY,
        Column(
            "restriction_action",
            "string",
            "Restriction",
            "end_meeting, suspend_account, quarantine_account, remove_content, "
            "geo_restrict_content",
        ),
        Column(
            "territorial_scope",
            "string",
            "Territorial scope",
            "requesting_state (only where the authority's country is), "
            "beyond_requesting_state (somewhere else too), unlimited (no territory named), "
            "unknown (the authority's country is not logged)",
        ),
        _count("restrictions", "Restrictions applied", "restriction.applied events"),
        _count("items", "Items restricted", "accounts, meetings or items restricted"),
    ),
    ("country", "authority_kind", "restriction_action", "territorial_scope"),
)
NATIONAL_SECURITY = Schema(
    "national_security",
    "National-security process, in bands",
    "Demands under national-security instruments, reported only in bands and only once the "
    "statutory delay after the period has passed.",
    (
        Column(
            "jurisdiction",
            "string",
            "Jurisdiction",
            "the country whose law the instrument belongs to",
        ),
        Column("instrument_kind", "string", "Instrument", "the kind of national-security process"),
        Column("band_size", "integer", "Band size", "the width of each band"),
        Column(
            "demands_band",
            "string",
            "Demands received (band)",
            "e.g. 0-249; empty while withheld",
        ),
        Column(
            "subjects_band",
            "string",
            "Subjects specified (band)",
            "e.g. 0-249; empty while withheld",
        ),
        Column("delay_days", "integer", "Statutory delay (days)", "days after the period ends"),
        Column("publishable_from", "date", "Publishable from", "the period's end plus the delay"),
        Column(
            "status",
            "string",
            "Status",
            "published, or withheld when the log's latest event is before publishable_from",
        ),
    ),
    ("jurisdiction", "instrument_kind"),
)
_HOURS = "hours, median over the orders the time is known for; empty when fewer than 5"
DSA_ORDERS = Schema(
    "dsa_orders",
    "DSA Art. 15(1)(a): orders from Member State authorities",
    "Orders to act against illegal content (Art. 9) and to provide information (Art. 10) "
    "received in the period, per issuing Member State and category of illegal content, in "
    "the layout of Commission Implementing Regulation (EU) 2024/2835, Annex I.",
    (
        Column("member_state", "string", "Member State", "ISO 3166-1 code of the issuer"),
        Column(
            "category",
            "string",
            "Category of illegal content",
            "not_specified: the log does not publish the alleged offence",
        ),
        _count(
            "orders_to_act",
            "Number of orders to act against illegal content received",
            "restriction demands",
        ),
        _count(
            "items_in_orders_to_act",
            "Number of specific items of information included in the total number of orders "
            "to act against illegal content",
            "items the restriction demands named",
        ),
        Column(
            "median_hours_to_confirm_receipt_act",
            "number",
            "Median time to inform the authority of the receipt of the order to act against "
            "illegal content",
            _HOURS,
        ),
        Column(
            "median_hours_to_give_effect_act",
            "number",
            "Median time to give effect to the order to act against illegal content",
            _HOURS,
        ),
        _count(
            "orders_to_provide_information",
            "Number of orders to provide information",
            "disclosure and emergency disclosure demands",
        ),
        Column(
            "median_hours_to_confirm_receipt_information",
            "number",
            "Median time to inform the authority of the receipt of the order to provide "
            "information",
            _HOURS,
        ),
        Column(
            "median_hours_to_give_effect_information",
            "number",
            "Median time to give effect to the order to provide information",
            _HOURS,
        ),
        Column(
            "context",
            "string",
            "Contextual information",
            "how the figures were measured",
        ),
    ),
    ("member_state", "category"),
)

SCHEMAS: dict[str, Schema] = {
    s.name: s
    for s in (
        TOTALS,
        DEMANDS,
        BY_COUNTRY,
        BY_AUTHORITY_KIND,
        RESTRICTIONS,
        NATIONAL_SECURITY,
        DSA_ORDERS,
    )
}
"""Every table a report holds, in the order it holds them."""


def check_cell(column: Column, value: object) -> Cell:
    """``value`` if it is a valid cell of ``column``; else raise :class:`ReportFormatError`."""
    if value is None:
        return None
    if column.suppressible and value == SUPPRESSED:
        return SUPPRESSED
    fits = {
        "integer": type(value) is int and not (column.suppressible and 0 < value < SUPPRESS_BELOW),
        "number": type(value) is float,
        "string": isinstance(value, str),
        "date": isinstance(value, str) and _DATE.fullmatch(value) is not None,
    }
    if fits.get(column.type, False):
        return value  # type: ignore[return-value]  # checked just above
    raise ReportFormatError(f"column {column.name} cannot hold {value!r} ({column.type})")


def row_of(schema: Schema, values: Sequence[object]) -> tuple[Cell, ...]:
    """A row of ``schema`` from ``values`` in column order, each checked."""
    if len(values) != len(schema.columns):
        raise ReportFormatError(
            f"{schema.name}: {len(values)} cells for {len(schema.columns)} columns"
        )
    return tuple(check_cell(c, v) for c, v in zip(schema.columns, values, strict=True))
