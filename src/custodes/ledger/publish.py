"""Publication: the log's static files under ``DATA/log/`` (c2sp.org/tlog-tiles).

Every file is written to a temporary name, flushed to disk and renamed into place, so a reader
(or a crash) never sees half a file. Tiles and entry bundles are immutable: writing one whose
path already holds different bytes raises :class:`~custodes.errors.TileConflictError` and
changes nothing. Only ``checkpoint`` is replaced, and always last, after the tiles it commits to.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from custodes.errors import TileConflictError

CHECKPOINT_FILE = "checkpoint"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Publisher:
    """Writes a log's published files below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _write(self, rel: str, data: bytes, *, immutable: bool) -> bool:
        path = self.root / rel
        if immutable and path.exists():
            if path.read_bytes() != data:
                raise TileConflictError(
                    f"published file {rel} would change", path=rel, size=len(data)
                )
            return False
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
        return True

    def write_immutable(self, files: Iterable[tuple[str, bytes]]) -> int:
        """Write tiles and bundles; returns how many were new."""
        written = 0
        dirs: set[Path] = set()
        for rel, data in files:
            if self._write(rel, data, immutable=True):
                written += 1
                dirs.add((self.root / rel).parent)
        for d in dirs:
            _fsync_dir(d)
        return written

    def write_checkpoint(self, note: bytes) -> None:
        self._write(CHECKPOINT_FILE, note, immutable=False)
        _fsync_dir(self.root)

    def read_checkpoint(self) -> bytes | None:
        path = self.root / CHECKPOINT_FILE
        return path.read_bytes() if path.exists() else None
