"""The reports' fast leaf parser accepts and refuses exactly what ``parse_event`` does."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custodes.audit.logcheck import dir_fetcher
from custodes.events import (
    AUTHORITY_CHANNEL_ADDED,
    AUTHORITY_CHANNEL_REMOVED,
    DEMAND_RECEIVED,
    DEMAND_SCREENED,
    Event,
    encode_event,
    parse_event,
)
from custodes.reports.errors import LeafError
from custodes.reports.leaves import parse_leaf
from custodes.reports.tally import Tally
from custodes.tlog import TILE_WIDTH, bundle_tile, format_tile_path, parse_bundle

GOLDEN = Path(__file__).parent / "testdata" / "golden" / "log"


def golden_leaves() -> list[bytes]:
    fetch = dir_fetcher(GOLDEN)
    leaves: list[bytes] = []
    for start in range(0, 300, TILE_WIDTH):
        width = min(TILE_WIDTH, 300 - start)
        leaves += parse_bundle(
            fetch(format_tile_path(bundle_tile(start // TILE_WIDTH, width))), width
        )
    return leaves


def both(leaf: bytes) -> tuple[Event | None, Event | None]:
    """What each parser makes of ``leaf`` (None: refused)."""
    try:
        slow: Event | None = parse_event(leaf)
    except Exception:
        slow = None
    try:
        fast: Event | None = parse_leaf(leaf)
    except LeafError:
        fast = None
    return slow, fast


def test_every_golden_leaf_parses_to_the_same_event() -> None:
    leaves = golden_leaves()
    assert len(leaves) == 300
    for leaf in leaves:
        assert parse_leaf(leaf) == parse_event(leaf)


def _mutations(leaf: bytes, rng: random.Random) -> list[bytes]:
    i = rng.randrange(len(leaf))
    text = leaf.decode()
    return [
        leaf[:i] + bytes([leaf[i] ^ (1 << rng.randrange(8))]) + leaf[i + 1 :],
        leaf[:i] + leaf[i + 1 :],
        leaf[:i] + rng.choice([b" ", b"\n", b"0", b'"', b",", b"1", b"}"]) + leaf[i:],
        text.replace('"kind"', '"kind":"x","kind"', 1).encode(),  # a repeated member
        text.replace('{"commit"', '{"v":1,"commit"', 1).encode(),  # out of order, repeated
        text.replace('"v":1', '"v":1.0').encode(),
        text.replace('"v":1', '"v":true').encode(),
        text.replace('"Z"', '"+00:00"').encode(),
        re.sub(r'"time":"2', '"time":"\uff12', text, count=1).encode(),  # a full-width digit
        text.replace('"facts":{', '"facts":{"target_count":2,', 1).encode(),
        text.replace('"demand":"', '"demand":"\\u0064', 1).encode(),  # an escaped letter
        text.replace('"demand":"d_', '"demand":null,"x":"', 1).encode(),
        leaf + b"\n",
    ]


def test_thousands_of_mutated_leaves_get_the_same_answer() -> None:
    rng = random.Random(7)
    leaves = golden_leaves()
    agreed = refused = 0
    for leaf in leaves * 3:
        for mutated in _mutations(leaf, rng):
            slow, fast = both(mutated)
            assert slow == fast, mutated
            agreed += 1
            refused += slow is None
    print(f"{agreed} mutated leaves, {refused} refused by both parsers")
    assert agreed >= 10_000 and refused > agreed // 2


@pytest.mark.parametrize(
    "text",
    [
        "tab\there",
        'quote " and back\\slash',
        "control \x01\x1f",
        "non-ASCII: é ß 中 \u2028 \U0001f600",
        "\x7f delete",
    ],
)
def test_strings_are_escaped_as_rfc_8785_escapes_them(text: str) -> None:
    # a demand id cannot hold these, but a fact of the wrong shape must still be refused the
    # same way, and the canonical check must agree wherever strings appear
    leaf, _ = encode_event(
        DEMAND_SCREENED,
        time=datetime(2026, 7, 1, tzinfo=UTC),
        demand="d_1",
        facts={"pack": "a" * 64, "outcome": "pass", "findings": []},
    )
    forged = leaf.replace(b'"outcome":"pass"', f'"outcome":{_jcs(text)}'.encode())
    assert both(forged) == (None, None)
    received, _ = encode_event(
        DEMAND_RECEIVED,
        time=datetime(2026, 7, 1, tzinfo=UTC),
        demand="d_1",
        facts={
            "demand_kind": "disclosure",
            "instrument_kind": "subpoena",
            "target_count": 1,
            "signature": "valid",
        },
        private={"staff": text},
    )
    assert parse_leaf(received) == parse_event(received)


def _jcs(text: str) -> str:
    import rfc8785

    return rfc8785.dumps(text).decode()


def test_oversized_and_non_utf8_leaves_are_refused() -> None:
    assert both(b"{" + b" " * 70_000 + b"}") == (None, None)
    assert both(b'{"kind":"\xff"}') == (None, None)
    assert both(b"[" * 100_000) == (None, None)


@pytest.mark.parametrize("kind", [AUTHORITY_CHANNEL_ADDED, AUTHORITY_CHANNEL_REMOVED])
def test_call_back_channel_events_are_read_and_count_no_demand(kind: str) -> None:
    leaf, _ = encode_event(
        kind,
        time=datetime(2026, 3, 2, 8, tzinfo=UTC),
        facts={"channel_kind": "email"},
        private={"authority": "us-ca-sfpd", "channel": "duty@sfgov.example", "staff": "admin"},
    )
    assert parse_leaf(leaf) == parse_event(leaf)
    tally = Tally()
    tally.feed(0, leaf)
    assert (tally.events, tally.not_events, tally.demands) == (1, 0, {})
