"""Shared pieces of the benchmarks: backends, percentiles, printing."""

from __future__ import annotations

import os
import statistics
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from custodes.tlog import (
    format_bundle,
    format_checkpoint,
    generate_key,
    leaf_hashes,
    new_signer,
    root_of,
    sign_note,
    tree_root,
)
from custodes.tlog.checkpoint import Checkpoint
from custodes.tlog.tiles import TILE_WIDTH, Tile, TileNodeReader, bundle_tile, format_tile_path

console = Console(highlight=False)
PG_ENV = "CUSTODES_TEST_DATABASE_URL"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def backend_url(backend: str) -> Iterator[str]:
    """A fresh database of the given backend for one measurement."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{Path(d) / 'bench.db'}"
        return
    base = os.environ.get(PG_ENV, DEFAULT_PG)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def show(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*r)
    console.print(table)


def publish_log(
    root: Path,
    leaves: Iterable[bytes],
    origin: str,
    tick: Callable[[int], None] | None = None,
) -> str:
    """Write a published log of ``leaves`` (entry bundles, every tile, a signed checkpoint)
    into ``root`` straight from ``custodes.tlog``, streaming the leaves; returns the log's
    verifier key. Benchmarks use it to build large logs quickly."""
    skey, vkey = generate_key(origin)
    hashes: list[bytes] = []
    chunk: list[bytes] = []

    def flush() -> None:
        path = root / format_tile_path(bundle_tile(len(hashes) // TILE_WIDTH, len(chunk)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(format_bundle(chunk))
        hashes.extend(leaf_hashes(chunk))
        if tick is not None:
            tick(len(chunk))
        chunk.clear()

    for leaf in leaves:
        chunk.append(leaf)
        if len(chunk) == TILE_WIDTH:
            flush()
    if chunk:
        flush()
    n = len(hashes)
    built: dict[tuple[int, int], bytes] = {}
    level, row = 0, hashes
    while row:
        parents = []
        for start in range(0, len(row), TILE_WIDTH):
            part = row[start : start + TILE_WIDTH]
            tile = Tile(level, start // TILE_WIDTH, len(part))
            built[(level, tile.index)] = b"".join(part)
            path = root / format_tile_path(tile)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(built[(level, tile.index)])
            if len(part) == TILE_WIDTH:
                parents.append(root_of(part))
        level, row = level + 1, parents
    reader = TileNodeReader(lambda t: built[(t.level, t.index)][: t.width * 32], n)
    cp = Checkpoint(origin, n, tree_root(n, reader))
    (root / "checkpoint").write_bytes(sign_note(format_checkpoint(cp), new_signer(skey)))
    return vkey
