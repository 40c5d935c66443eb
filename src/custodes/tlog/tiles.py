"""Tiles and entry bundles (c2sp.org/tlog-tiles): the static files a log publishes.

Paths::

    tile-path   = "tile/" level "/" index [".p/" width]
    bundle-path = "tile/entries/" index [".p/" width]
    level       = "0" / %x31-39 [DIGIT]          ; 0..63, no leading zeroes
    index       = *("x" 3DIGIT "/") 3DIGIT       ; 1234067 is x001/x234/067; no "x000/" lead
    width       = %x31-39 *2DIGIT                ; 1..255, present only for partial tiles

A hash tile at level L, index N holds up to 256 consecutive hashes of complete subtrees of
256**L leaves: hash i is MTH(D[(N*256 + i) * 256**L : (N*256 + i + 1) * 256**L]). A tile
of width W < 256 is partial. An entry bundle holds entries as big-endian uint16
length-prefixed byte strings; entry i of bundle N is leaf N*256 + i.

In this module a :class:`Tile` with ``level == ENTRIES_LEVEL`` (-1) names an entry bundle,
so that hash tiles and bundles share one ordered type and one path grammar.

>>> format_tile_path(Tile(0, 1234067, 256))
'tile/0/x001/x234/067'
>>> format_tile_path(bundle_tile(5, 17))
'tile/entries/005.p/17'
>>> parse_tile_path("tile/1/000.p/3")
Tile(level=1, index=0, width=3)
>>> [format_tile_path(t) for t in tiles_for_size(70_000)][-4:]
['tile/0/273.p/112', 'tile/1/000', 'tile/1/001.p/17', 'tile/2/000.p/1']
>>> parse_bundle(format_bundle([b"a", b""]), 2)
[b'a', b'']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from custodes.tlog.encoding import MAX_UINT64
from custodes.tlog.errors import FormatError, RangeError, SizeLimitError
from custodes.tlog.hashing import HASH_SIZE, node_hash, root_of
from custodes.tlog.proof import NodeReader

__all__ = [
    "ENTRIES_LEVEL",
    "MAX_BUNDLE_SIZE",
    "MAX_ENTRY_SIZE",
    "MAX_TILE_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Tile",
    "TileNodeReader",
    "bundle_tile",
    "bundles_for_size",
    "format_bundle",
    "format_tile_path",
    "new_tiles",
    "parse_bundle",
    "parse_tile_path",
    "tiles_for_size",
]

logger = logging.getLogger(__name__)

TILE_HEIGHT = 8
TILE_WIDTH = 256
#: The ``level`` of a :class:`Tile` that names an entry bundle.
ENTRIES_LEVEL = -1
MAX_TILE_LEVEL = 63
#: Largest entry a bundle can hold (its length prefix is a uint16).
MAX_ENTRY_SIZE = 65535
#: Largest entry bundle: 256 entries of the largest size with their prefixes.
MAX_BUNDLE_SIZE = TILE_WIDTH * (2 + MAX_ENTRY_SIZE)

_MAX_INDEX = MAX_UINT64 // TILE_WIDTH
_PATH = re.compile(r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/){0,6}[0-9]{3})(?:\.p/([0-9]+))?")
_MAX_PATH_LENGTH = 64


@dataclass(frozen=True, order=True)
class Tile:
    """A hash tile (level 0..63) or an entry bundle (level -1), with its width 1..256."""

    level: int
    index: int
    width: int

    def __post_init__(self) -> None:
        if not ENTRIES_LEVEL <= self.level <= MAX_TILE_LEVEL:
            raise FormatError(f"tile level {self.level} is outside -1..63")
        if not 0 <= self.index <= _MAX_INDEX:
            raise FormatError(f"tile index {self.index} is out of range")
        if not 1 <= self.width <= TILE_WIDTH:
            raise FormatError(f"tile width {self.width} is outside 1..256")

    @property
    def is_bundle(self) -> bool:
        return self.level == ENTRIES_LEVEL


def bundle_tile(index: int, width: int = TILE_WIDTH) -> Tile:
    """The entry bundle ``index`` of ``width`` entries."""
    return Tile(ENTRIES_LEVEL, index, width)


def _format_index(index: int) -> str:
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def format_tile_path(tile: Tile) -> str:
    """The path of a tile or bundle below the log prefix, e.g. ``tile/0/x001/234.p/5``."""
    level = "entries" if tile.is_bundle else str(tile.level)
    path = f"tile/{level}/{_format_index(tile.index)}"
    return path if tile.width == TILE_WIDTH else f"{path}.p/{tile.width}"


def parse_tile_path(path: str) -> Tile:
    """Parse a canonical tile or bundle path; raises :class:`FormatError` otherwise."""
    match = _PATH.fullmatch(path) if len(path) <= _MAX_PATH_LENGTH else None
    if match is None:
        raise FormatError(f"not a tile path: {path[:_MAX_PATH_LENGTH]!r}")
    level_text, index_text, width_text = match.groups()
    level = ENTRIES_LEVEL if level_text == "entries" else int(level_text)
    index = int(index_text.replace("x", "").replace("/", ""))
    width = TILE_WIDTH if width_text is None else int(width_text)
    tile = Tile(level, index, width)
    if format_tile_path(tile) != path:
        raise FormatError(f"not a canonical tile path: {path!r}")
    return tile


def _level_tiles(level: int, count: int) -> list[Tile]:
    """The tiles (full, then partial) of ``count`` hashes or entries at one level."""
    full, partial = divmod(count, TILE_WIDTH)
    tiles = [Tile(level, n, TILE_WIDTH) for n in range(full)]
    if partial:
        tiles.append(Tile(level, full, partial))
    return tiles


def tiles_for_size(size: int) -> list[Tile]:
    """Every hash tile, full and partial, at every level, that a tree of ``size`` publishes."""
    if not 0 <= size <= MAX_UINT64:
        raise RangeError(f"tree size {size} is outside 0..2**64-1")
    tiles: list[Tile] = []
    level, count = 0, size
    while count:
        tiles.extend(_level_tiles(level, count))
        level, count = level + 1, count // TILE_WIDTH
    return tiles


def bundles_for_size(size: int) -> list[Tile]:
    """Every entry bundle, full and partial, that a tree of ``size`` publishes."""
    if not 0 <= size <= MAX_UINT64:
        raise RangeError(f"tree size {size} is outside 0..2**64-1")
    return _level_tiles(ENTRIES_LEVEL, size)


def format_bundle(entries: Sequence[bytes]) -> bytes:
    """Encode 1..256 entries as an entry bundle."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise FormatError(f"a bundle holds 1..256 entries, not {len(entries)}")
    out = bytearray()
    for i, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise SizeLimitError(
                f"entry {i} has {len(entry)} bytes, over {MAX_ENTRY_SIZE}", entry=i
            )
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def parse_bundle(data: bytes, width: int) -> list[bytes]:
    """Decode an entry bundle that must hold exactly ``width`` entries and nothing more."""
    if not 1 <= width <= TILE_WIDTH:
        raise FormatError(f"bundle width {width} is outside 1..256")
    if len(data) > MAX_BUNDLE_SIZE:
        raise SizeLimitError(f"bundle of {len(data)} bytes is over {MAX_BUNDLE_SIZE}")
    entries: list[bytes] = []
    pos, size = 0, len(data)
    for i in range(width):
        if pos + 2 > size:
            raise FormatError(f"bundle ends before entry {i} of {width}", entry=i)
        end = pos + 2 + (data[pos] << 8 | data[pos + 1])
        if end > size:
            raise FormatError(f"bundle entry {i} is cut short", entry=i)
        entries.append(data[pos + 2 : end])
        pos = end
    if pos != len(data):
        raise FormatError(f"bundle has {len(data) - pos} bytes after entry {width - 1}")
    return entries


def _split_hashes(tile: Tile, data: bytes) -> list[bytes]:
    if len(data) != tile.width * HASH_SIZE:
        raise FormatError(
            f"tile {format_tile_path(tile)} has {len(data)} bytes, not {tile.width * HASH_SIZE}",
            tile=format_tile_path(tile),
        )
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


class TileNodeReader(NodeReader):
    """A :class:`~custodes.tlog.proof.NodeReader` over the published tiles of a tree.

    ``read_tile(tile)`` returns the bytes of a hash tile; the reader asks only for tiles that
    a tree of ``size`` publishes (partial ones at the width of that size), checks their
    length, and keeps every tile it read for its own lifetime, with every inner node it
    hashed from them (at most 255 a tile): proofs of nearby entries share most of their
    nodes, and each is hashed once.
    """

    def __init__(self, read_tile: Callable[[Tile], bytes], size: int) -> None:
        if not 0 <= size <= MAX_UINT64:
            raise RangeError(f"tree size {size} is outside 0..2**64-1")
        self._read_tile = read_tile
        self._size = size
        self._tiles: dict[Tile, list[bytes]] = {}
        self._inner: dict[tuple[int, int], bytes] = {}

    @property
    def size(self) -> int:
        return self._size

    def _hashes(self, tile: Tile) -> list[bytes]:
        hashes = self._tiles.get(tile)
        if hashes is None:
            hashes = _split_hashes(tile, self._read_tile(tile))
            self._tiles[tile] = hashes
        return hashes

    def node(self, level: int, index: int) -> bytes:
        if not 0 <= level <= MAX_TILE_LEVEL or index < 0 or (index + 1) << level > self._size:
            raise RangeError(
                f"no complete subtree at level {level}, index {index} in a tree of {self._size}"
            )
        tile_level, height = divmod(level, TILE_HEIGHT)
        if height and (known := self._inner.get((level, index))) is not None:
            return known
        count = self._size >> (TILE_HEIGHT * tile_level)  # hashes stored at that tile level
        first = index << height
        n, offset = divmod(first, TILE_WIDTH)
        width = min(TILE_WIDTH, count - n * TILE_WIDTH)
        row = self._hashes(Tile(tile_level, n, width))[offset : offset + (1 << height)]
        below = level - height
        for up in range(1, height + 1):
            row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
            start = first >> up
            for i, h in enumerate(row):
                self._inner[(below + up, start + i)] = h
        return row[0]


def new_tiles(
    old_size: int,
    new_size: int,
    new_leaf_hashes: Sequence[bytes],
    read_tile: Callable[[Tile], bytes],
) -> list[tuple[Tile, bytes]]:
    """The hash tiles whose content changes when the tree grows from old_size to new_size.

    ``new_leaf_hashes`` are the hashes of leaves [old_size, new_size); ``read_tile`` reads
    tiles of the old tree as published for ``old_size``. Only the right edge is touched:
    at most one partial tile is read per level. Tiles come out level by level, left to
    right; each is new, or a wider version of a partial tile of the old tree.
    """
    if not 0 <= old_size <= new_size <= MAX_UINT64:
        raise RangeError(f"cannot grow a tree from size {old_size} to {new_size}")
    if len(new_leaf_hashes) != new_size - old_size:
        raise RangeError(
            f"growing from {old_size} to {new_size} needs {new_size - old_size} leaf hashes, "
            f"not {len(new_leaf_hashes)}"
        )
    for h in new_leaf_hashes:
        if len(h) != HASH_SIZE:
            raise FormatError(f"a leaf hash must be {HASH_SIZE} bytes, not {len(h)}")
    changed: list[tuple[Tile, bytes]] = []
    level, old_count, new_count = 0, old_size, new_size
    added = list(new_leaf_hashes)  # hashes [old_count, new_count) at this level
    while new_count > old_count:
        first = old_count // TILE_WIDTH
        kept = old_count - first * TILE_WIDTH  # hashes in the old partial tile
        row = (
            _split_hashes(Tile(level, first, kept), read_tile(Tile(level, first, kept)))
            if kept
            else []
        )
        row.extend(added)
        added = []
        for n in range(first, -(-new_count // TILE_WIDTH)):
            chunk = row[(n - first) * TILE_WIDTH : (n - first + 1) * TILE_WIDTH]
            changed.append((Tile(level, n, len(chunk)), b"".join(chunk)))
            if len(chunk) == TILE_WIDTH:
                added.append(root_of(chunk))
        level, old_count, new_count = level + 1, old_count // TILE_WIDTH, new_count // TILE_WIDTH
    logger.debug(
        "new tiles", extra={"old_size": old_size, "new_size": new_size, "tiles": len(changed)}
    )
    return changed
