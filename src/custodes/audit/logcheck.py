"""Rebuild a published log from its entry bundles and check it against its checkpoint.

:func:`verify_log` opens the checkpoint with the log's verifier key, reads every entry bundle,
hashes every entry (RFC 9162 leaf hashes), rebuilds every hash tile at every level, compares
each one byte for byte with the published tile, computes the root and compares it with the
checkpoint. Any difference raises :class:`LogVerificationError` naming the file.

Files are read through a :data:`Fetch` function, so the same code checks a directory or a URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from custodes.tlog import (
    Checkpoint,
    TlogError,
    Verifier,
    leaf_hash,
    open_note,
    parse_checkpoint,
    root_of,
    tree_root,
)
from custodes.tlog.tiles import (
    TILE_WIDTH,
    Tile,
    TileNodeReader,
    bundle_tile,
    format_tile_path,
    parse_bundle,
)

Fetch = Callable[[str], bytes]
Progress = Callable[[int, int], None]

MAX_CHECKPOINT_SIZE = 16 * 1024


class LogVerificationError(TlogError):
    """The published log does not match its checkpoint."""

    code = "log_verification"
    status = 422
    title = "Published log does not verify"


class MissingFileError(LogVerificationError):
    code = "log_file_missing"
    title = "A published log file is missing"


def dir_fetcher(root: Path) -> Fetch:
    """Read published files from a directory (the ``log/`` folder of a data directory)."""

    def fetch(rel: str) -> bytes:
        path = root / rel
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise MissingFileError(f"{rel} is missing", path=rel) from exc

    return fetch


@dataclass(frozen=True)
class VerifiedLog:
    checkpoint: Checkpoint
    entries: int
    tiles_checked: int


def open_checkpoint(fetch: Fetch, verifier: Verifier) -> Checkpoint:
    note_bytes = fetch("checkpoint")
    if len(note_bytes) > MAX_CHECKPOINT_SIZE:
        raise LogVerificationError("checkpoint is larger than any checkpoint custodes writes")
    note = open_note(note_bytes, [verifier])
    cp = parse_checkpoint(note.text)
    if cp.origin != verifier.name:
        raise LogVerificationError(
            f"checkpoint origin {cp.origin!r} is not the key's name {verifier.name!r}"
        )
    return cp


def verify_log(
    fetch: Fetch,
    verifier: Verifier,
    progress: Progress | None = None,
    on_entry: Callable[[int, bytes], None] | None = None,
) -> VerifiedLog:
    """Check everything published against the signed checkpoint; returns what was checked.

    ``on_entry(index, data)`` sees every entry in order (the auditor replays events with it)."""
    cp = open_checkpoint(fetch, verifier)
    size = cp.size
    hashes: list[bytes] = []
    for start in range(0, size, TILE_WIDTH):
        width = min(TILE_WIDTH, size - start)
        path = format_tile_path(bundle_tile(start // TILE_WIDTH, width))
        entries = parse_bundle(fetch(path), width)
        for i, entry in enumerate(entries):
            if on_entry is not None:
                on_entry(start + i, entry)
            hashes.append(leaf_hash(entry))
        if progress is not None:
            progress(start + width, size)
    built: dict[tuple[int, int], bytes] = {}
    level = 0
    level_hashes = hashes
    while level_hashes:
        next_level: list[bytes] = []
        for start in range(0, len(level_hashes), TILE_WIDTH):
            chunk = level_hashes[start : start + TILE_WIDTH]
            tile = Tile(level, start // TILE_WIDTH, len(chunk))
            path = format_tile_path(tile)
            data = b"".join(chunk)
            if fetch(path) != data:
                raise LogVerificationError(f"{path} does not match the entries", path=path)
            built[(level, tile.index)] = data
            if len(chunk) == TILE_WIDTH:
                next_level.append(root_of(chunk))
        level_hashes = next_level
        level += 1
    reader = TileNodeReader(lambda t: built[(t.level, t.index)][: t.width * 32], size)
    root = tree_root(size, reader)
    if root != cp.root:
        raise LogVerificationError(
            f"entries hash to root {root.hex()}, checkpoint says {cp.root.hex()}",
            computed=root.hex(),
            checkpoint=cp.root.hex(),
        )
    return VerifiedLog(cp, size, len(built))
