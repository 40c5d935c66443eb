"""Tiles and entry bundles: paths, bundles, reading nodes from tiles, incremental tiling."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.tlog import (
    FormatError,
    MemoryNodeReader,
    RangeError,
    SizeLimitError,
    leaf_hash,
    prove_consistency,
    prove_inclusion,
    root_of,
    tree_root,
)
from custodes.tlog.tiles import (
    ENTRIES_LEVEL,
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    Tile,
    TileNodeReader,
    bundle_tile,
    bundles_for_size,
    format_bundle,
    format_tile_path,
    new_tiles,
    parse_bundle,
    parse_tile_path,
    tiles_for_size,
)


def _leaves(n: int, start: int = 0) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(start, start + n)]


def _build(hashes: list[bytes]) -> dict[Tile, bytes]:
    """Every published hash tile of a tree, computed from scratch from the spec's definition."""
    tiles: dict[Tile, bytes] = {}
    level, row = 0, hashes
    while row:
        above = []
        for n in range(0, len(row), TILE_WIDTH):
            chunk = row[n : n + TILE_WIDTH]
            tiles[Tile(level, n // TILE_WIDTH, len(chunk))] = b"".join(chunk)
            if len(chunk) == TILE_WIDTH:
                above.append(root_of(chunk))
        level, row = level + 1, above
    return tiles


# paths --------------------------------------------------------------------------------------

tiles = st.builds(
    Tile,
    level=st.integers(min_value=-1, max_value=63),
    index=st.integers(min_value=0, max_value=2**56 - 1),
    width=st.integers(min_value=1, max_value=256),
)


@settings(max_examples=200, deadline=None)
@given(tiles)
def test_tile_paths_round_trip(tile: Tile) -> None:
    assert parse_tile_path(format_tile_path(tile)) == tile


@pytest.mark.parametrize(
    ("tile", "path"),
    [
        (Tile(0, 1234067, 256), "tile/0/x001/x234/067"),
        (Tile(0, 1234, 5), "tile/0/x001/234.p/5"),
        (Tile(3, 0, 256), "tile/3/000"),
        (Tile(63, 999, 255), "tile/63/999.p/255"),
        (bundle_tile(1000), "tile/entries/x001/000"),
        (Tile(ENTRIES_LEVEL, 0, 1), "tile/entries/000.p/1"),
    ],
)
def test_tile_paths_match_the_spec(tile: Tile, path: str) -> None:
    assert format_tile_path(tile) == path
    assert parse_tile_path(path) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/0/5",
        "tile/0/0005",
        "tile/0/x000/005",
        "tile/0/001/234",
        "tile/0/x001/x234",
        "tile/0/x1/234",
        "tile/0/000.p/256",
        "tile/0/000.p/0",
        "tile/0/000.p/012",
        "tile/0/000.p/",
        "tile/0/000.p/+5",
        "tile/0/000/",
        "/tile/0/000",
        "tile/entry/000",
        "tile/entries/000.p/300",
        "tile/0/x999/x999/x999/x999/x999/x999/999",
        "tile/0/x001/x001/x001/x001/x001/x001/x001/001",
        "tile/0/０００",
        "",
    ],
)
def test_parse_tile_path_rejects_non_canonical_paths(path: str) -> None:
    with pytest.raises(FormatError):
        parse_tile_path(path)


def test_tile_is_valid_by_construction() -> None:
    for fields in [(-2, 0, 1), (64, 0, 1), (0, -1, 1), (0, 0, 0), (0, 0, 257)]:
        with pytest.raises(FormatError):
            Tile(*fields)


def test_tiles_order_by_level_index_width() -> None:
    assert sorted([Tile(1, 0, 3), Tile(0, 2, 256), Tile(0, 2, 7)]) == [
        Tile(0, 2, 7),
        Tile(0, 2, 256),
        Tile(1, 0, 3),
    ]


# tiles_for_size -----------------------------------------------------------------------------


def test_tiles_for_size_follows_the_spec_examples() -> None:
    tiles70k = tiles_for_size(70_000)
    assert len([t for t in tiles70k if t.level == 0 and t.width == 256]) == 273
    assert [t for t in tiles70k if t.width < 256] == [
        Tile(0, 273, 112),
        Tile(1, 1, 17),
        Tile(2, 0, 1),
    ]
    assert Tile(1, 0, 256) in tiles70k
    assert tiles_for_size(256) == [Tile(0, 0, 256), Tile(1, 0, 1)]
    assert tiles_for_size(0) == []
    with pytest.raises(RangeError):
        tiles_for_size(-1)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=3000))
def test_tiles_for_size_lists_exactly_the_built_tiles(size: int) -> None:
    assert set(tiles_for_size(size)) == set(_build(_leaves(size)))
    assert bundles_for_size(size) == [
        Tile(ENTRIES_LEVEL, t.index, t.width) for t in tiles_for_size(size) if t.level == 0
    ]


# bundles ------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=256))
def test_bundles_round_trip(entries: list[bytes]) -> None:
    assert parse_bundle(format_bundle(entries), len(entries)) == entries


def test_bundle_holds_the_largest_entry() -> None:
    entries = [b"x" * MAX_ENTRY_SIZE, b""]
    assert parse_bundle(format_bundle(entries), 2) == entries


def test_format_bundle_refuses_bad_input() -> None:
    with pytest.raises(SizeLimitError):
        format_bundle([b"x" * (MAX_ENTRY_SIZE + 1)])
    with pytest.raises(FormatError):
        format_bundle([])
    with pytest.raises(FormatError):
        format_bundle([b""] * 257)


@pytest.mark.parametrize(
    ("data", "width"),
    [
        (b"", 1),
        (b"\x00", 1),
        (b"\x00\x02a", 1),  # cut short
        (b"\x00\x01a\x00", 1),  # trailing byte
        (b"\x00\x01a", 2),  # fewer entries than the width
        (b"\x00\x01a\x00\x00", 1),  # more entries than the width
        (b"\x00\x00", 0),
        (b"\x00\x00", 257),
    ],
)
def test_parse_bundle_rejects_malformed_bundles(data: bytes, width: int) -> None:
    with pytest.raises(FormatError):
        parse_bundle(data, width)


def test_parse_bundle_checks_size_before_parsing() -> None:
    with pytest.raises(SizeLimitError):
        parse_bundle(b"\x00" * (256 * 65537 + 1), 256)


# TileNodeReader -----------------------------------------------------------------------------


def _reader(built: dict[Tile, bytes], size: int, log: list[Tile]) -> Callable[[Tile], bytes]:
    published = set(tiles_for_size(size))

    def read(tile: Tile) -> bytes:
        assert tile in published, f"{format_tile_path(tile)} is not published at size {size}"
        log.append(tile)
        return built[tile]

    return read


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=2000), st.data())
def test_tile_node_reader_gives_the_same_proofs_as_memory(size: int, data: st.DataObject) -> None:
    hashes = _leaves(size)
    log: list[Tile] = []
    tiles = TileNodeReader(_reader(_build(hashes), size, log), size)
    memory = MemoryNodeReader(hashes)
    assert tree_root(size, tiles) == root_of(hashes)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    old = data.draw(st.integers(min_value=0, max_value=size), label="old size")
    assert prove_inclusion(index, size, tiles) == prove_inclusion(index, size, memory)
    assert prove_consistency(old, size, tiles) == prove_consistency(old, size, memory)
    assert len(log) == len(set(log)), "a tile was read twice"


def test_tile_node_reader_reaches_level_two() -> None:
    size = 70_000
    hashes = _leaves(size)
    built = _build(hashes)
    reader = TileNodeReader(_reader(built, size, []), size)
    memory = MemoryNodeReader(hashes)
    assert tree_root(size, reader) == root_of(hashes)
    for level, index in [(16, 0), (15, 1), (12, 16), (9, 135), (3, 8749)]:
        assert reader.node(level, index) == memory.node(level, index)
    assert prove_inclusion(69_999, size, reader) == prove_inclusion(69_999, size, memory)


def test_tile_node_reader_refuses_incomplete_subtrees_and_bad_tiles() -> None:
    hashes = _leaves(5)
    built = _build(hashes)
    reader = TileNodeReader(lambda t: built[t], 5)
    with pytest.raises(RangeError):
        reader.node(1, 2)
    with pytest.raises(RangeError):
        reader.node(0, 5)
    short = TileNodeReader(lambda t: built[t][:-1], 5)
    with pytest.raises(FormatError):
        short.node(0, 0)


# new_tiles ----------------------------------------------------------------------------------


def _grow(steps: list[int]) -> None:
    """Grow a tree step by step with new_tiles and compare with a from-scratch build."""
    store: dict[Tile, bytes] = {}
    size = 0
    for step in steps:
        new = size + step
        log: list[Tile] = []
        changed = new_tiles(size, new, _leaves(step, size), _reader(store, size, log))
        assert len({t.level for t in log}) == len(log), "more than one tile read per level"
        assert all(t.width < TILE_WIDTH for t in log), "a full tile was read"
        expected = _build(_leaves(new))
        assert {t for t, _ in changed} == set(tiles_for_size(new)) - set(tiles_for_size(size))
        for tile, data in changed:
            assert data == expected[tile], format_tile_path(tile)
            store[tile] = data
        size = new


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=12))
def test_new_tiles_matches_a_from_scratch_build(steps: list[int]) -> None:
    _grow(steps)


def test_new_tiles_over_random_steps_past_level_two() -> None:
    rng = random.Random(9162)
    steps = [rng.choice([1, 2, 255, 256, 257, 1000, 4000]) for _ in range(12)]
    _grow([*steps, 65_536 - sum(steps), 1, 3000])


def test_new_tiles_for_no_growth_is_empty() -> None:
    assert new_tiles(10, 10, [], lambda t: b"") == []


def test_new_tiles_refuses_bad_arguments() -> None:
    with pytest.raises(RangeError):
        new_tiles(5, 4, [], lambda t: b"")
    with pytest.raises(RangeError):
        new_tiles(0, 2, _leaves(1), lambda t: b"")
    with pytest.raises(FormatError):
        new_tiles(0, 1, [b"short"], lambda t: b"")
    with pytest.raises(FormatError):
        new_tiles(3, 4, _leaves(1), lambda t: b"\x00" * 31)
