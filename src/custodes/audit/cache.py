"""A local copy of a published log's full tiles and entry bundles, for audits repeated over
the network.

c2sp.org/tlog-tiles: a full tile (256 hashes) or a full entry bundle (256 entries) never
changes once published; only the checkpoint and the partial tiles at the log's right edge do.
So an auditor who audits the same log every day need not download its million entries every
day: :class:`TileCache` keeps every full tile and bundle it fetched, and reads them from disk
the next time. The checkpoint and partial tiles are always fetched afresh.

A cache cannot hide a rewritten history: every file it gives is checked as a fetched one is,
and the newest signed checkpoint commits to all of them, so a history the platform rewrote
since no longer leads to that checkpoint's root. What a cache does not check is whether the
server still *serves* the bytes it once did to others; witnesses and other auditors see that,
and an audit without the cache does too. A copy on disk that went bad (a disk error, someone's
edit) would show as the log's fault; so when an audit that used the cache finds anything wrong
with the log's files, :func:`audit_cached` drops the cache and audits from the source again.

>>> TileCache.keeps("tile/entries/x001/234"), TileCache.keeps("tile/0/001.p/44")
(True, False)
>>> TileCache.keeps("checkpoint"), TileCache.keeps("tile/../../etc/passwd")
(False, False)
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from custodes.audit.auditor import AuditReport
from custodes.audit.errors import FetchError
from custodes.audit.logcheck import Fetch, ReadsAhead
from custodes.audit.source import UrlFetcher
from custodes.tlog import TlogError
from custodes.tlog.tiles import MAX_BUNDLE_SIZE, TILE_WIDTH, parse_tile_path

__all__ = ["TileCache", "audit_cached", "tile_cache"]

log = logging.getLogger(__name__)


class TileCache:
    """A :data:`~custodes.audit.logcheck.Fetch` that reads full tiles and bundles from
    ``directory`` when it has them, and keeps there those ``fetch`` gives it; everything
    else is ``fetch``'s. Reads ahead as ``fetch`` does. Safe to call from several threads."""

    def __init__(self, fetch: Fetch, directory: Path) -> None:
        self.fetch = fetch
        self.directory = directory
        self.read_ahead = fetch.read_ahead if isinstance(fetch, ReadsAhead) else 0
        self.hits = 0
        self.stored = 0
        self._lock = threading.Lock()

    @staticmethod
    def keeps(rel: str) -> bool:
        """Whether ``rel`` is a full tile or bundle: a file that never changes."""
        try:
            return parse_tile_path(rel).width == TILE_WIDTH
        except TlogError:
            return False

    def __call__(self, rel: str) -> bytes:
        if not self.keeps(rel):
            return self.fetch(rel)
        path = self.directory / rel
        data = self._read(path)
        if data is not None:
            with self._lock:
                self.hits += 1
            return data
        data = self.fetch(rel)
        self._write(path, data)
        with self._lock:
            self.stored += 1
        return data

    def _read(self, path: Path) -> bytes | None:
        """The cached copy, or None: not there, or longer than any full tile or bundle can be
        (fetched again, and replaced)."""
        try:
            with path.open("rb") as f:
                data = f.read(MAX_BUNDLE_SIZE + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FetchError(f"cannot read the cache {path}: {exc.strerror}") from None
        return data if len(data) <= MAX_BUNDLE_SIZE else None

    def _write(self, path: Path, data: bytes) -> None:
        """Keep ``data`` at ``path``, whole or not at all (written aside, then renamed)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, aside = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(aside, path)
            except BaseException:
                os.unlink(aside)
                raise
        except OSError as exc:
            raise FetchError(f"cannot write the cache {path}: {exc.strerror}") from None

    def drop(self) -> None:
        """Forget every file kept (the cache's directory is removed)."""
        shutil.rmtree(self.directory, ignore_errors=True)
        log.info("cache dropped directory=%s", self.directory)


def tile_cache(fetch: UrlFetcher, root: Path) -> TileCache:
    """A :class:`TileCache` for the log ``fetch`` reads, in a directory of its own below
    ``root``, named by its URL prefix: two logs never share one. A ``source`` file there names
    the log."""
    directory = root / hashlib.sha256(fetch.prefix.encode()).hexdigest()[:32]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "source").write_text(fetch.prefix + "\n", encoding="utf-8")
    except OSError as exc:
        raise FetchError(f"cannot use {root} as a cache: {exc.strerror}") from None
    return TileCache(fetch, directory)


def audit_cached(
    cache: TileCache,
    audit: Callable[[Fetch], AuditReport],
    again: Callable[[], None] = lambda: None,
) -> AuditReport:
    """``audit(cache)``: but if it read anything from the cache and found something wrong with
    the log's files, the cache is emptied and the report is that of ``audit`` of the source
    itself (``again()`` is told first), with a note saying so. A copy on disk that went bad is
    so never reported as the log's fault, and a real violation is reported all the same."""
    report = audit(cache)
    if not (cache.hits and report.log_findings):
        return report
    cache.drop()
    again()
    report = audit(cache.fetch)
    note = "the log's files did not all verify with the cache: it was emptied and the log "
    note += "audited again from the source"
    return replace(report, notes=(*report.notes, note))
