"""The replay of the events split by demand between worker processes (``audit --jobs N``).

Every check keeps its state by demand, and counts across demands only in its
:attr:`~custodes.audit.checks.Check.tallies`; an event that names no demand is looked at by
no check. So the events of one demand can be replayed apart from the others', and the
replays' findings, counts and malformed entries added up afterwards give the very report
one replay of the whole log gives (:meth:`~custodes.audit.checks.Replay.absorb`; a test
holds the two together over tampered logs).

The audit's own process rebuilds the tree, as it always does, and sends every well-formed
entry bundle to every worker. Each worker reads from each entry the demand it names
(:func:`leaf_demand`, without parsing it), and parses and replays only the entries whose
demand is its own: the demand's id hashed (CRC-32) modulo the number of workers. Entries
that name no demand, malformed ones included, are the first worker's. A well-formed leaf is
in canonical form, where the demand id follows the commitments' closing brace, so the demand
read from the bytes is the one the parsed event names; what any other bytes seem to name
decides only which one worker finds them malformed.

The workers are forked from the audit's process, so they start with its checks (packs and
disclosed openings included) without copying them through a pipe; they are this module's
children, ended by their process ids if the audit stops early. Forking needs a POSIX system;
elsewhere ``--jobs`` above 1 is refused.
"""

from __future__ import annotations

import logging
import multiprocessing
import traceback
import zlib
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from custodes.audit.checks import Check, Replay, ReplayResult
from custodes.audit.errors import AuditError
from custodes.audit.findings import Finding
from custodes.tlog.tiles import TILE_WIDTH, parse_bundle

__all__ = ["MAX_JOBS", "ShardedReplay", "leaf_demand", "shard_of"]

log = logging.getLogger(__name__)

#: Most worker processes one audit starts.
MAX_JOBS = 64
_DEMAND = b',"demand":"'


def leaf_demand(leaf: bytes) -> bytes | None:
    """The demand id a leaf in canonical form names, read from its bytes: what stands between
    ``,"demand":"`` right after the first ``}`` (the commitments' end) and the next quote.
    None if the bytes are not so."""
    end = leaf.find(b"}")
    if end < 0 or not leaf.startswith(_DEMAND, end + 1):
        return None
    start = end + 1 + len(_DEMAND)
    close = leaf.find(b'"', start)
    return None if close < 0 else leaf[start:close]


def shard_of(leaf: bytes, shards: int) -> int:
    """Which of ``shards`` replays the entry ``leaf``: by its demand, else the first."""
    demand = leaf_demand(leaf)
    return 0 if demand is None else zlib.crc32(demand) % shards


class _Shard(Replay):
    """The replay of the demands of one shard, in a worker process."""

    def __init__(self, checks: Sequence[Check], shard: int, shards: int) -> None:
        super().__init__(checks)
        self.shard = shard
        self.shards = shards

    def feed_bundle(self, start: int, entries: list[bytes]) -> None:
        feed, shard, shards, crc32, prefix = self.feed, self.shard, self.shards, zlib.crc32, _DEMAND
        skip = len(prefix) + 1
        for i, entry in enumerate(entries):
            # shard_of, inlined: a million calls of it would cost a worker a third of a second
            end = entry.find(b"}")
            if end >= 0 and entry.startswith(prefix, end + 1):
                close = entry.find(b'"', end + skip)
                owner = 0 if close < 0 else crc32(entry[end + skip : close]) % shards
            else:
                owner = 0
            if owner == shard:
                feed(start + i, entry)


def _work(conn: Connection, replay: _Shard, size: int) -> None:
    """A worker's life: bundles in, until the time to judge deadlines at; its result out."""
    try:
        while True:
            message = conn.recv()
            if isinstance(message, datetime):
                conn.send(replay.result(message))
                return
            start, data = message
            replay.feed_bundle(start, parse_bundle(data, min(TILE_WIDTH, size - start)))
    except EOFError:
        return  # the audit stopped early: nothing to send
    except BaseException:
        conn.send(traceback.format_exc(limit=8))
    finally:
        conn.close()


class ShardedReplay:
    """A :class:`~custodes.audit.checks.Replay` of a log of ``size`` entries across
    ``jobs`` worker processes; use it as a context manager, which ends the workers."""

    def __init__(self, checks: Sequence[Check], jobs: int, size: int) -> None:
        if not 2 <= jobs <= MAX_JOBS:
            raise AuditError(f"a sharded replay takes 2 to {MAX_JOBS} jobs, not {jobs}")
        if "fork" not in multiprocessing.get_all_start_methods():
            raise AuditError("--jobs above 1 needs a system that can fork processes")
        self.replay = Replay(checks)
        self.jobs = jobs
        self._size = size
        self._conns: list[Connection] = []
        self._workers: list[BaseProcess] = []
        self._done = False

    @property
    def events(self) -> int:
        return self.replay.events

    def __enter__(self) -> ShardedReplay:
        context = multiprocessing.get_context("fork")
        try:
            for shard in range(self.jobs):
                mine, theirs = context.Pipe()
                replay = _Shard(self.replay.checks, shard, self.jobs)
                worker = context.Process(
                    target=_work,
                    args=(theirs, replay, self._size),
                    name=f"custodes-audit-{shard}",
                    daemon=True,
                )
                worker.start()
                theirs.close()
                self._conns.append(mine)
                self._workers.append(worker)
        except BaseException:
            self._end()
            raise
        log.debug("replay sharded jobs=%d pids=%s", self.jobs, [w.pid for w in self._workers])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end()

    def feed_bundle(self, start: int, data: bytes) -> None:
        """Send the well-formed entry bundle that starts at entry ``start`` to every worker."""
        message = (start, data)
        for shard, conn in enumerate(self._conns):
            try:
                conn.send(message)
            except OSError:
                raise self._failure(shard) from None

    def finish(self, as_of: datetime) -> list[Finding]:
        """Every finding, as one replay of the whole log would give them."""
        for shard, conn in enumerate(self._conns):
            try:
                conn.send(as_of)
            except OSError:
                raise self._failure(shard) from None
        for shard, conn in enumerate(self._conns):
            result = self._receive(shard, conn)
            self.replay.absorb(result)
        self._done = True
        return self.replay.finish(as_of)

    def notes(self) -> list[str]:
        return self.replay.notes()

    def _receive(self, shard: int, conn: Connection) -> ReplayResult:
        try:
            result: Any = conn.recv()
        except (EOFError, OSError):
            raise self._failure(shard) from None
        if not isinstance(result, ReplayResult):
            raise AuditError(f"replay worker {shard} failed:\n{result}")
        return result

    def _failure(self, shard: int) -> AuditError:
        worker = self._workers[shard]
        worker.join(timeout=1)
        return AuditError(f"replay worker {shard} ended early (exit code {worker.exitcode})")

    def _end(self) -> None:
        """Close the pipes and end the workers: they exit when their pipe closes, and those
        still busy after a few seconds are ended by their process ids."""
        for conn in self._conns:
            conn.close()
        for worker in self._workers:
            worker.join(timeout=None if self._done else 5)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        self._conns, self._workers = [], []
