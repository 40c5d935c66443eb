"""The read path's event encoder makes exactly what the general event encoder makes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import InputError
from custodes.events import (
    STAFF_ACCESS_READ,
    check_opening,
    encode_event,
    format_openings,
    parse_event,
    parse_openings,
)
from custodes.model import DataCategory
from custodes.service.gateway import ReadEncoder

staff_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,40}", fullmatch=True)
subjects = st.tuples(
    st.sampled_from(["account", "meeting", "content"]),
    st.text(min_size=1, max_size=40),  # any text: escaping must match RFC 8785 exactly
).map(lambda t: f"{t[0]}:{t[1]}")
times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
)
category_sets = st.sets(st.sampled_from([c.value for c in DataCategory]), min_size=1)


@settings(max_examples=300, deadline=None)
@given(
    staff=staff_ids,
    subject=subjects,
    at=times,
    categories=category_sets,
    salts=st.tuples(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32)),
)
def test_the_read_encoder_matches_encode_event_byte_for_byte(
    staff: str, subject: str, at: datetime, categories: set[str], salts: tuple[bytes, bytes]
) -> None:
    names = tuple(sorted(categories))
    given_salts: Iterator[bytes] = iter(salts)
    leaf, openings = encode_event(
        STAFF_ACCESS_READ,
        time=at,
        facts={"categories": list(names)},
        private={"staff": staff, "subject": subject},
        salt=lambda n: next(given_salts),
    )
    encoder = ReadEncoder()
    for _ in range(2):  # the second time from its caches
        fast = encoder.encode(at=at, categories=names, staff=staff, subject=subject, salts=salts)
        assert fast == (leaf, format_openings(openings))
    event = parse_event(fast[0])
    parsed = parse_openings(fast[1])
    for name in ("staff", "subject"):
        opening = parsed[name]
        assert not isinstance(opening, tuple)
        check_opening(event, name, opening)


def test_the_read_encoder_refuses_unsorted_categories() -> None:
    with pytest.raises(InputError):
        ReadEncoder().encode(
            at=datetime(2024, 1, 1, tzinfo=UTC),
            categories=("subscriber_info", "content"),
            staff="s",
            subject="account:u-1",
            salts=(bytes(32), bytes(32)),
        )
