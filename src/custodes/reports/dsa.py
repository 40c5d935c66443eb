"""EU exports: DSA statements of reasons for restrictions, and the Art. 15(1)(a) orders table.

**Statements of reasons** (Regulation (EU) 2022/2065, Art. 17 and 24(5)) are written in the
field format of the DSA Transparency Database API (``POST /api/v1/statements``: a JSON object
``{"statements": [...]}``, field names and enumeration keys as the API takes them). One
statement is made for each item of each ``restriction.applied`` event applied in the period,
for every demand but national-security process, when the restriction reaches the EU/EEA (its
territories include an EEA country, or it names none). Only public facts of the log go in:

==================================  =========================================================
field                               from the log
==================================  =========================================================
``decision_visibility`` (+other)    ``remove_content`` -> ``DECISION_VISIBILITY_CONTENT_REMOVED``,
                                    ``geo_restrict_content`` -> ``..._CONTENT_DISABLED``,
                                    ``end_meeting`` (and any other) -> ``DECISION_VISIBILITY_OTHER``
``decision_account``                ``suspend_account`` -> ``DECISION_ACCOUNT_SUSPENDED``
``decision_provision``              ``quarantine_account`` -> ``..._PARTIAL_SUSPENSION``
``end_date_*_restriction``          application date + ``duration_days``, if logged
``decision_ground``                 ``DECISION_GROUND_ILLEGAL_CONTENT`` (an authority's order)
``illegal_content_legal_ground``    the instrument, the authority's kind and country
``content_type`` (+other)           ``CONTENT_TYPE_OTHER``: account, live meeting, content item
``category``                        ``STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE`` (the alleged
                                    offence is committed to, not published)
``territorial_scope``               the EEA countries among the territories (all if none named)
``content_date``                    the date the order was received (an upper bound: the log
                                    does not know when the content was posted)
``application_date``                the date of ``restriction.applied``
``source_type``                     ``SOURCE_TYPE_OTHER_NOTIFICATION`` (a government order)
``automated_*``                     ``No`` / ``AUTOMATED_DECISION_NOT_AUTOMATED`` (dual control)
``puid``                            ``DEMAND-ENTRY-ITEM``: demand id, log entry, item number
                                    (``ORIGIN/DEMAND-ENTRY-ITEM`` in a report of several logs)
==================================  =========================================================

**The orders table** (:data:`~custodes.reports.tables.DSA_ORDERS`) follows the "Member State
orders" part of the quantitative template of Commission Implementing Regulation (EU)
2024/2835, Annex I: per issuing Member State (EU-27) and category of illegal content, orders
to act against illegal content (restriction demands) and orders to provide information
(disclosure and emergency disclosure demands) received in the period, with the median hours
to inform the authority of receipt and to give effect. custodes confirms receipt in the
signed API's response, in the same transaction that logs ``demand.received``, so that time is
0 for orders that arrived signed (and unknown for the others); time to give effect runs from
the first ``demand.received`` to the first ``restriction.applied`` (orders to act) or
``production.delivered`` (orders to provide information). Counts of 1 to 4 are ``<5`` and a
median over fewer than 5 orders is withheld, as in every other table.

>>> eea_scope(("US",)), eea_scope(("DE", "FR-75", "US"))
((), ('DE', 'FR'))
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from custodes.reports.errors import ReportFormatError
from custodes.reports.figures import cohort
from custodes.reports.period import Period
from custodes.reports.tables import DSA_ORDERS, SUPPRESS_BELOW, Table, row_of, suppress
from custodes.reports.tally import DemandRecord, RestrictionRecord, Tally

__all__ = [
    "EEA",
    "EU",
    "Statement",
    "eea_scope",
    "orders_table",
    "parse_statement",
    "statements_of_reasons",
]

EU = frozenset(
    {
        *("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU"),
        *("IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"),
    }
)
"""The 27 Member States (ISO 3166-1; Greece is GR, as the Transparency Database takes it)."""
EEA = tuple(sorted(EU | {"IS", "LI", "NO"}))
"""The territorial scopes the Transparency Database accepts."""

NOT_SPECIFIED = "not_specified"
ORDERS_TO_ACT = frozenset({"restriction"})
ORDERS_TO_INFORM = frozenset({"disclosure", "emergency_disclosure"})
_CONTEXT = (
    "Receipt is confirmed in the signed intake API's response, logged as demand.received "
    "(0 hours); time to give effect runs from the first demand.received to the first "
    "restriction.applied or production.delivered. Counts of 1 to 4 are shown as <5; a "
    "median over fewer than 5 orders is withheld. The alleged offence is not published."
)


@dataclass(frozen=True)
class Statement:
    """One statement of reasons, field for field as the Transparency Database API takes it."""

    decision_visibility: tuple[str, ...] | None
    decision_visibility_other: str | None
    decision_provision: str | None
    decision_account: str | None
    end_date_visibility_restriction: str | None
    end_date_service_restriction: str | None
    end_date_account_restriction: str | None
    decision_ground: str
    illegal_content_legal_ground: str
    illegal_content_explanation: str
    content_type: tuple[str, ...]
    content_type_other: str | None
    category: str
    territorial_scope: tuple[str, ...]
    content_date: str
    application_date: str
    decision_facts: str
    source_type: str
    source_identity: str
    automated_detection: str
    automated_decision: str
    puid: str

    def as_api(self) -> dict[str, Any]:
        """The API's JSON object: fields without a value are left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


_LIST_FIELDS = frozenset({"decision_visibility", "content_type", "territorial_scope"})
_OPTIONAL = frozenset(f.name for f in fields(Statement) if "None" in str(f.type))


def parse_statement(doc: Mapping[str, Any]) -> Statement:
    """The inverse of :meth:`Statement.as_api`; raises :class:`ReportFormatError`."""
    names = {f.name for f in fields(Statement)}
    if not isinstance(doc, Mapping) or set(doc) - names or names - _OPTIONAL - set(doc):
        raise ReportFormatError("a statement of reasons has other fields than the API's")
    values: dict[str, Any] = {}
    for name in names:
        value = doc.get(name)
        if name in _LIST_FIELDS and isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise ReportFormatError(f"statement field {name} is a list of strings")
            value = tuple(value)
        elif value is not None and not isinstance(value, str):
            raise ReportFormatError(f"statement field {name} is a string")
        values[name] = value
    return Statement(**values)


def eea_scope(territories: Sequence[str]) -> tuple[str, ...]:
    """The EEA countries among ``territories`` (ISO 3166 codes), or every one if none named."""
    if not territories:
        return EEA
    return tuple(sorted({c[:2] for c in territories} & set(EEA)))


_AUTHORITY = {
    "police": "a police authority",
    "prosecutor": "a prosecutor",
    "court": "a court",
    "regulator": "a regulator",
    "intelligence": "an intelligence service",
}
_INSTRUMENT = {
    "dsa_art9_order": "an order under Article 9 of Regulation (EU) 2022/2065",
    "court_order": "a court order",
    "search_warrant": "a search warrant",
    "administrative_request": "an administrative request",
}
_ACTION: dict[str, tuple[str, str, str]] = {  # field, value, content type
    "remove_content": ("decision_visibility", "DECISION_VISIBILITY_CONTENT_REMOVED", "item"),
    "geo_restrict_content": (
        "decision_visibility",
        "DECISION_VISIBILITY_CONTENT_DISABLED",
        "item",
    ),
    "suspend_account": ("decision_account", "DECISION_ACCOUNT_SUSPENDED", "account"),
    "quarantine_account": (
        "decision_provision",
        "DECISION_PROVISION_PARTIAL_SUSPENSION",
        "account",
    ),
    "end_meeting": ("decision_visibility", "DECISION_VISIBILITY_OTHER", "meeting"),
}
_CONTENT = {"item": "Content item", "account": "Account", "meeting": "Live meeting"}
_END_FIELD = {
    "decision_visibility": "end_date_visibility_restriction",
    "decision_account": "end_date_account_restriction",
    "decision_provision": "end_date_service_restriction",
}


_DECISION_FIELDS = (
    "decision_visibility",
    "decision_visibility_other",
    "decision_provision",
    "decision_account",
    *_END_FIELD.values(),
)


def _who(d: DemandRecord) -> str:
    where = d.country if d.country != "unknown" else "a country the log does not name"
    return f"{_AUTHORITY.get(d.authority_kind, 'an authority')} of {where}"


def _statement(d: DemandRecord, r: RestrictionRecord, item: int) -> Statement:
    field, value, content = _ACTION.get(
        r.action, ("decision_visibility", "DECISION_VISIBILITY_OTHER", "item")
    )
    decision: dict[str, Any] = dict.fromkeys(_DECISION_FIELDS)
    decision[field] = (value,) if field == "decision_visibility" else value
    if value == "DECISION_VISIBILITY_OTHER":
        decision["decision_visibility_other"] = (
            "A live meeting was ended" if r.action == "end_meeting" else f"Restriction: {r.action}"
        )
    if r.duration_days is not None:
        end = r.time + timedelta(days=r.duration_days)
        decision[_END_FIELD[field]] = end.date().isoformat()
    instrument = _INSTRUMENT.get(d.instrument, f"a legal instrument ({d.instrument})")
    received, applied = d.received.date().isoformat(), r.time.date().isoformat()
    scope = ", ".join(r.territories) if r.territories else "every territory"
    return Statement(
        **decision,
        decision_ground="DECISION_GROUND_ILLEGAL_CONTENT",
        illegal_content_legal_ground=f"{instrument[0].upper()}{instrument[1:]}, by {_who(d)}",
        illegal_content_explanation=(
            "The issuing authority found the information illegal under the law its order "
            "cites. The platform gave effect to the order after checking it against its "
            "published policy and approving it under dual control; every step is an event in "
            f"its public transparency log (demand {d.demand}{_in_log(d)})."
        ),
        content_type=("CONTENT_TYPE_OTHER",),
        content_type_other=_CONTENT[content],
        category="STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
        territorial_scope=eea_scope(r.territories),
        content_date=received,
        application_date=applied,
        decision_facts=(
            f"Order received on {received} from {_who(d)}, naming {d.subjects} item(s). "
            f"Approved by {d.approvals} staff member(s) under policy pack "
            f"{d.pack or 'not logged'}. Applied on {applied} to {r.items} item(s) "
            f"({r.action}), in {scope}; {_entry(d, r)}, item {item + 1} of {r.items}."
        ),
        source_type="SOURCE_TYPE_OTHER_NOTIFICATION",
        source_identity=f"Order of {_who(d)}",
        automated_detection="No",
        automated_decision="AUTOMATED_DECISION_NOT_AUTOMATED",
        puid=f"{d.log}/{d.demand}-{r.index}-{item}" if d.log else f"{d.demand}-{r.index}-{item}",
    )


def _in_log(d: DemandRecord) -> str:
    """Which log, in a report of several (a demand id is unique only within its log)."""
    return f" of log {d.log}" if d.log else ""


def _entry(d: DemandRecord, r: RestrictionRecord) -> str:
    return f"entry {r.index} of log {d.log}" if d.log else f"log entry {r.index}"


def statements_of_reasons(tally: Tally, period: Period) -> list[Statement]:
    """A statement for each item of each restriction applied in the period (see above)."""
    found: list[tuple[tuple[int, int], DemandRecord, RestrictionRecord]] = []
    rank = {origin: n for n, origin in enumerate(tally.logs)}  # logs in the order read
    for d in tally.demands.values():
        if d.national_security:
            continue
        found += [((rank.get(d.log, 0), r.index), d, r) for r in d.restrictions if r.time in period]
    found.sort(key=lambda t: t[0])
    return [
        _statement(d, r, i) for _, d, r in found if eea_scope(r.territories) for i in range(r.items)
    ]


def _median_hours(hours: Iterable[float]) -> float | None:
    values = list(hours)
    if len(values) < SUPPRESS_BELOW:
        return None
    return round(statistics.median(values), 2)


def _hours(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds() / 3600


def _order_cells(orders: list[DemandRecord], act: bool) -> list[Any]:
    receipt = _median_hours(0.0 for d in orders if d.signature == "valid")
    effects = []
    for d in orders:
        done = min((r.time for r in d.restrictions), default=None) if act else d.first_production
        hours = _hours(d.received, done)
        if hours is not None:
            effects.append(hours)
    cells: list[Any] = [suppress(len(orders))]
    if act:
        cells.append(suppress(sum(d.subjects for d in orders)))
    return [*cells, receipt, _median_hours(effects)]


def orders_table(tally: Tally, period: Period) -> Table:
    """Art. 9 and Art. 10 orders per Member State, as in Implementing Regulation 2024/2835."""
    states: dict[str, list[DemandRecord]] = {}
    for d in cohort(tally, period):
        if d.country in EU and d.demand_kind in ORDERS_TO_ACT | ORDERS_TO_INFORM:
            states.setdefault(d.country, []).append(d)
    rows = []
    for state, orders in sorted(states.items()):
        act = [d for d in orders if d.demand_kind in ORDERS_TO_ACT]
        inform = [d for d in orders if d.demand_kind in ORDERS_TO_INFORM]
        cells = [state, NOT_SPECIFIED, *_order_cells(act, True), *_order_cells(inform, False)]
        rows.append(row_of(DSA_ORDERS, [*cells, _CONTEXT]))
    return Table(DSA_ORDERS, tuple(rows))
