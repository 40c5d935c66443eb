"""Cursor pagination: pages of demands (newest first) and of registries (by id).

A cursor is opaque to the client: base64url of a small JSON object naming the last item of
the page it came with; the next page starts after it. Pages are keyed on what does not change
under them (a demand's time of receipt and id, a registry entry's id), so a page never repeats
an item and no item is skipped while the list grows.

>>> c = format_cursor({"r": "2024-01-01T00:00:00Z", "i": "d_1"})
>>> parse_cursor(c)
{'r': '2024-01-01T00:00:00Z', 'i': 'd_1'}
>>> parse_cursor("e30")
Traceback (most recent call last):
...
custodes.web.listing.CursorError: not a cursor this API gave out
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa

from custodes.errors import InputError
from custodes.model import DemandState, format_time, parse_time
from custodes.service import Services
from custodes.service.lifecycle import DemandRecord, db_time, load_demand
from custodes.store.demand_tables import demands

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "CursorError",
    "Page",
    "demand_page",
    "format_cursor",
    "page_of",
    "parse_cursor",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
T = TypeVar("T")


class CursorError(InputError):
    code = "bad_cursor"
    title = "Not a cursor"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def format_cursor(position: dict[str, str]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_cursor(text: str) -> dict[str, str]:
    """The position a cursor names; ``CursorError`` for anything this API did not give out."""
    try:
        if len(text) > 512:
            raise ValueError(text)
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CursorError("not a cursor this API gave out") from None
    ok = (
        isinstance(value, dict)
        and value
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    )
    if not ok or format_cursor(value) != text:
        raise CursorError("not a cursor this API gave out")
    return value  # type: ignore[no-any-return]


def demand_page(
    services: Services,
    *,
    authority_id: str | None = None,
    state: DemandState | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[DemandRecord]:
    """Demands newest first (by time of receipt, then id), of one authority or all, in one
    state or any."""
    query = sa.select(demands.c.id, demands.c.received_at)
    if authority_id is not None:
        query = query.where(demands.c.authority_id == authority_id)
    if state is not None:
        query = query.where(demands.c.state == state.value)
    if cursor is not None:
        after = parse_cursor(cursor)
        if set(after) != {"r", "i"}:
            raise CursorError("not a cursor of this list")
        try:
            at = db_time(parse_time(after["r"]))
        except InputError:
            raise CursorError("not a cursor this API gave out") from None
        query = query.where(
            sa.or_(
                demands.c.received_at < at,
                sa.and_(demands.c.received_at == at, demands.c.id < after["i"]),
            )
        )
    query = query.order_by(demands.c.received_at.desc(), demands.c.id.desc()).limit(limit + 1)
    with services.store.read() as conn:
        rows = conn.execute(query).all()
        records = [load_demand(conn, r.id) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = records[-1]
        next_cursor = format_cursor({"r": format_time(last.demand.received_at), "i": last.id})
    return Page(records, next_cursor)


def page_of(items: Sequence[T], key: Callable[[T], str], cursor: str | None, limit: int) -> Page[T]:
    """A page of ``items`` (already sorted by ``key``, which is unique), after ``cursor``."""
    start = 0
    if cursor is not None:
        after = parse_cursor(cursor)
        if set(after) != {"k"}:
            raise CursorError("not a cursor of this list")
        start = next((i for i, x in enumerate(items) if key(x) > after["k"]), len(items))
    chosen = list(items[start : start + limit])
    more = start + limit < len(items)
    return Page(chosen, format_cursor({"k": key(chosen[-1])}) if more and chosen else None)
