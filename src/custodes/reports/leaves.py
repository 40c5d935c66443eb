"""Reading log leaves for a report: :func:`custodes.events.parse_event`, refusals as
:class:`~custodes.reports.errors.LeafError`.

A report reads every entry of the log, so the cost of parsing one leaf decides how long a
report over millions of events takes. ``parse_event`` reads a leaf already in canonical form
(as every leaf custodes writes is) on a fast path, and proves it canonical without the RFC
8785 encoder; the report uses it as the auditor does, so both read the log the same way.
:func:`parse_leaf` gives its event for every leaf it accepts and a ``LeafError`` for every
leaf it refuses.

>>> from datetime import UTC, datetime
>>> from custodes.events import DEMAND_RECEIVED, encode_event, parse_event
>>> leaf, _ = encode_event(DEMAND_RECEIVED, time=datetime(2026, 7, 1, tzinfo=UTC),
...     demand="d_1", facts={"demand_kind": "disclosure", "instrument_kind": "subpoena",
...     "target_count": 2, "signature": "valid"})
>>> parse_leaf(leaf) == parse_event(leaf)
True
>>> parse_leaf(leaf.replace(b'"v":1', b'"v": 1'))
Traceback (most recent call last):
...
custodes.reports.errors.LeafError: leaf is not in RFC 8785 canonical form
"""

from __future__ import annotations

from custodes.events import Event, parse_event
from custodes.reports.errors import LeafError

__all__ = ["parse_leaf"]


def parse_leaf(leaf: bytes) -> Event:
    """Parse one leaf strictly; raise :class:`LeafError` wherever ``parse_event`` refuses."""
    try:
        return parse_event(leaf)
    except Exception as exc:  # the events' own InputError: the reports import only events
        raise LeafError(str(getattr(exc, "detail", exc))) from None
