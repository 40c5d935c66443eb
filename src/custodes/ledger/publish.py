"""Publication: the log's static files under ``DATA/log/`` (c2sp.org/tlog-tiles).

Every file is written to a temporary name, flushed to disk and renamed into place, so a reader
(or a crash) never sees half a file. Tiles and entry bundles are immutable: writing one whose
path already holds different bytes raises :class:`~custodes.errors.TileConflictError` and
changes nothing. Only ``checkpoint`` is replaced, and always last, after the tiles it commits to.

The files of one integration (a few tiles and bundles) go together: all are written under
temporary names, then flushed to disk at once (each with its own ``fsync``, issued from
several threads, so that the file system commits them in one journal commit rather than one
each), then renamed into place, then each directory that got a name is flushed, again at
once. Only then does :meth:`Publisher.write_checkpoint` write the checkpoint that covers
them, so every tile and bundle is on disk, under its name, before a checkpoint needing it is
published. Each flush is one more wait on the disk that the database's commits share.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from custodes.errors import TileConflictError

CHECKPOINT_FILE = "checkpoint"


def _fsync(path: Path) -> None:
    """Flush a file, or a directory's names, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


FLUSHERS = 8
"""Threads that flush one batch of files to disk together (shared by the process)."""


class _Flushers:
    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # A child forked from a process whose threads were started has none of them: it
        # starts its own when it first needs them.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool = None
        self._lock = threading.Lock()

    def fsync_all(self, paths: Collection[Path]) -> None:
        """:func:`_fsync` every path, all at once; raises the first failure."""
        if len(paths) <= 1:
            for path in paths:
                _fsync(path)
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(FLUSHERS, thread_name_prefix="custodes-fsync")
            pool = self._pool
        for done in [pool.submit(_fsync, path) for path in paths]:
            done.result()


_fsync_all = _Flushers().fsync_all


class Publisher:
    """Writes a log's published files below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write_immutable(self, files: Iterable[tuple[str, bytes]]) -> int:
        """Write tiles and bundles, durably, under their names; returns how many were new."""
        staged: dict[str, tuple[bytes, Path, Path]] = {}  # rel: (data, temporary name, name)
        renamed = 0
        try:
            for rel, data in files:
                path = self.root / rel
                if rel in staged or path.exists():
                    was = staged[rel][0] if rel in staged else path.read_bytes()
                    if was != data:
                        raise TileConflictError(
                            f"published file {rel} would change", path=rel, size=len(data)
                        )
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
                staged[rel] = (data, Path(name), path)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            _fsync_all([temporary for _, temporary, _ in staged.values()])
            for _, temporary, path in staged.values():
                os.replace(temporary, path)
                renamed += 1
        finally:
            for _, temporary, _ in list(staged.values())[renamed:]:
                temporary.unlink(missing_ok=True)
        _fsync_all({path.parent for _, _, path in staged.values()})
        return renamed

    def write_checkpoint(self, note: bytes) -> None:
        """Replace the checkpoint, durably (call it once what it covers is written)."""
        path = self.root / CHECKPOINT_FILE
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(note)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync(self.root)

    def read_checkpoint(self) -> bytes | None:
        path = self.root / CHECKPOINT_FILE
        return path.read_bytes() if path.exists() else None
