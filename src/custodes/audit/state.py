"""The auditor's memory of a log: the last checkpoint it verified, and the leaf hashes behind it.

The state file holds one signed checkpoint note, exactly as the log published it (with its
cosignatures): the last one an audit found valid, consistent and fully rebuilt. Next to it, the
directory ``STATE.tiles/`` keeps the level-0 hash tiles of that tree in the c2sp.org/tlog-tiles
layout (``tile/0/...``, 32 bytes per entry). When a later checkpoint turns out inconsistent with
the remembered one, these tiles tell which entry changed or went missing, so that the finding
names it. The state is only ever replaced by a newer checkpoint that passed every log check.

Every write goes to a temporary file first and is renamed into place. The default location is
``$XDG_STATE_HOME/custodes/audit/`` (``~/.local/state/custodes/audit/``), one file per origin.

>>> default_state_path("log.example.org/demands").name
'log.example.org_demands-2c8e21c0.checkpoint'
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from custodes.audit.errors import StateError
from custodes.audit.logcheck import MAX_CHECKPOINT_SIZE
from custodes.audit.policy import Policy
from custodes.tlog import (
    TILE_WIDTH,
    Checkpoint,
    Tile,
    TlogError,
    format_tile_path,
    new_verifier,
    open_note,
    parse_checkpoint,
    tiles_for_size,
)

__all__ = ["SeenLog", "default_state_path", "first_difference", "load_state", "save_state"]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_state_path(origin: str) -> Path:
    """Where the state for the log ``origin`` lives unless ``--state`` says otherwise."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    digest = hashlib.sha256(origin.encode()).hexdigest()[:8]
    slug = _UNSAFE.sub("_", origin).strip("_")[:80] or "log"
    return Path(base) / "custodes" / "audit" / f"{slug}-{digest}.checkpoint"


@dataclass(frozen=True)
class SeenLog:
    """The checkpoint an earlier audit accepted, and where its leaf hashes are kept."""

    path: Path
    note: bytes
    checkpoint: Checkpoint

    @property
    def tiles_dir(self) -> Path:
        return _tiles_dir(self.path)

    def leaf_tile(self, n: int) -> bytes | None:
        """The cached level-0 tile ``n`` of the remembered tree, if it is there."""
        width = min(TILE_WIDTH, self.checkpoint.size - n * TILE_WIDTH)
        if width <= 0:
            return None
        path = self.tiles_dir / format_tile_path(Tile(0, n, width))
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return data if len(data) == width * 32 else None


def _tiles_dir(path: Path) -> Path:
    return path.with_name(path.name + ".tiles")


def load_state(path: Path, policy: Policy, origin: str) -> SeenLog | None:
    """The remembered checkpoint of ``origin``, or None when there is no state file yet.

    Raises :class:`StateError` if the file is unreadable, not a checkpoint signed by a log of
    ``policy``, or a checkpoint of another log."""
    try:
        note = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read the state file {path}: {exc.strerror}") from None
    if len(note) > MAX_CHECKPOINT_SIZE:
        raise StateError(f"state file {path} is too large to be a checkpoint")
    try:
        opened = open_note(note, [new_verifier(p.vkey) for p in policy.logs])
        cp = parse_checkpoint(opened.text)
    except TlogError as exc:
        raise StateError(
            f"state file {path} is not a checkpoint of a log in the policy: {exc.detail}"
        ) from None
    if cp.origin != origin:
        raise StateError(
            f"state file {path} remembers the log {cp.origin!r}, not {origin!r}",
            state_origin=cp.origin,
        )
    return SeenLog(path, note, cp)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_state(path: Path, note: bytes, size: int, read_tile: Callable[[Tile], bytes]) -> None:
    """Remember ``note`` (a checkpoint of ``size`` entries) and its level-0 tiles.

    Full tiles already cached are kept (a full tile never changes); the partial tile at the
    right edge is rewritten. The tiles are written before the checkpoint, so the state never
    names a tree whose tiles are not there."""
    tiles = _tiles_dir(path)
    try:
        for tile in tiles_for_size(size):
            if tile.level != 0:
                continue
            target = tiles / format_tile_path(tile)
            if tile.width == TILE_WIDTH and target.exists():
                continue
            _write_atomic(target, read_tile(tile))
        _write_atomic(path, note)
    except OSError as exc:
        raise StateError(f"cannot write the state file {path}: {exc.strerror}") from None
    log.info("audit state saved path=%s size=%d", path, size)


def first_difference(seen: SeenLog, size: int, read_tile: Callable[[Tile], bytes]) -> int | None:
    """The first index at which the tree ``read_tile`` reads (of ``size`` entries) differs from
    the remembered one, or the end of the shorter one if one is a prefix of the other; None if
    they agree as far as both go and the remembered tree is no longer, or if the cache lacks a
    tile that would decide."""
    common = min(size, seen.checkpoint.size)
    for start in range(0, common, TILE_WIDTH):
        n = start // TILE_WIDTH
        cached = seen.leaf_tile(n)
        if cached is None:
            return None
        width = min(TILE_WIDTH, size - start)
        fresh = read_tile(Tile(0, n, width))
        for i in range(0, min(len(cached), len(fresh)), 32):
            if cached[i : i + 32] != fresh[i : i + 32]:
                return start + i // 32
    return common if size < seen.checkpoint.size else None
