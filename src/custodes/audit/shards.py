"""The replay of the events split by demand between worker processes (``audit --jobs N``).

Every check keeps its state by demand, and counts across demands only in its
:attr:`~custodes.audit.checks.Check.tallies`; the default checks draw nothing from an event
that names no demand. So the events of one demand can be replayed apart from the others',
and the replays' findings, counts and malformed entries added up afterwards give the very
report one replay of the whole log gives (:meth:`~custodes.audit.checks.Replay.absorb`; a
test holds the two together over rewritten histories).

The audit's own process rebuilds the tree, as it always does, and reads from each entry of
every well-formed bundle the demand it names, without parsing it (:func:`shard_of`). It
sends each worker the entries whose demand is the worker's own: the demand's id hashed
(CRC-32) modulo the number of workers. Entries that name no demand, malformed ones
included, are dealt out by their index: no check draws anything from them, and malformed
entries are added up in log order whoever found them. Each worker parses and replays its
entries, in log order. A well-formed leaf is in canonical form, where the demand id follows
the commitments' closing brace, so the demand read from the bytes is the one the parsed
event names; what any other bytes seem to name decides only which one worker parses them.

The workers are forked from the audit's process, so they start with its checks (packs and
disclosed openings included) without copying them through a pipe; they are this module's
children, ended by their process ids if the audit stops early. Forking needs a POSIX system;
elsewhere ``--jobs`` above 1 is refused.
"""

from __future__ import annotations

import contextlib
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

__all__ = ["MAX_JOBS", "ShardedReplay", "shard_of"]

log = logging.getLogger(__name__)

#: Most worker processes one audit starts.
MAX_JOBS = 64
#: What the pipe to a worker holds: about twenty bundles' worth of its entries.
PIPE_BYTES = 1 << 20
_DEMAND = b'},"demand":"'


def shard_of(index: int, leaf: bytes, shards: int) -> int:
    """Which of ``shards`` replays the entry ``leaf`` at ``index``: by the demand id its bytes
    name, what stands between the first ``},"demand":"`` and the next quote (its CRC-32,
    modulo ``shards``); else by its index.

    In a leaf in canonical form the first ``}`` closes the commitments, and if the event is
    about a demand, ``,"demand":"`` and its id follow at once: so every event about a demand
    goes to the shard of its own demand. Other bytes go to one shard or another, and that
    is all they decide."""
    return _owners(index, [leaf], shards)[0]


def _owners(start: int, entries: list[bytes], shards: int) -> list[int]:
    """:func:`shard_of` each of ``entries``, the first at index ``start``; in one loop, as a
    million calls of a function would cost the audit a quarter of a second."""
    owners = []
    crc32, skip = zlib.crc32, len(_DEMAND)
    for index, entry in enumerate(entries, start):
        owner = index % shards
        at = entry.find(_DEMAND)
        if at >= 0:
            close = entry.find(b'"', at + skip)
            if close >= 0:
                owner = crc32(entry[at + skip : close]) % shards
        owners.append(owner)
    return owners


def _work(inbox: Connection, outbox: Connection, replay: Replay) -> None:
    """A worker's life: its entries in, until the time to judge deadlines at; its result out."""
    try:
        while True:
            message = inbox.recv()
            if isinstance(message, datetime):
                outbox.send(replay.result(message))
                return
            feed = replay.feed
            for index, entry in zip(*message, strict=True):
                feed(index, entry)
    except EOFError:
        return  # the audit stopped early: nothing to send
    except BaseException:
        outbox.send(traceback.format_exc(limit=8))
    finally:
        inbox.close()
        outbox.close()


def _widen(conn: Connection) -> None:
    """Let a pipe hold :data:`PIPE_BYTES`, where the system allows it (Linux), so that the
    audit's process can run ahead of a busy worker instead of waiting on it."""
    import fcntl  # POSIX only, as forking is

    if hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):  # over the system's limit: the pipe stays as it is
            fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class ShardedReplay:
    """A :class:`~custodes.audit.checks.Replay` of ``checks`` across ``jobs`` worker
    processes; use it as a context manager, which ends the workers."""

    def __init__(self, checks: Sequence[Check], jobs: int) -> None:
        if not 2 <= jobs <= MAX_JOBS:
            raise AuditError(f"a sharded replay takes 2 to {MAX_JOBS} jobs, not {jobs}")
        if "fork" not in multiprocessing.get_all_start_methods():
            raise AuditError("--jobs above 1 needs a system that can fork processes")
        self.replay = Replay(checks)
        self.jobs = jobs
        self._inboxes: list[Connection] = []
        self._outboxes: list[Connection] = []
        self._workers: list[BaseProcess] = []
        self._done = False

    @property
    def events(self) -> int:
        return self.replay.events

    def __enter__(self) -> ShardedReplay:
        context = multiprocessing.get_context("fork")
        try:
            for shard in range(self.jobs):
                inbox, to_worker = context.Pipe(duplex=False)
                from_worker, outbox = context.Pipe(duplex=False)
                _widen(to_worker)
                self._inboxes.append(to_worker)
                self._outboxes.append(from_worker)
                worker = context.Process(
                    target=_work,
                    args=(inbox, outbox, Replay(self.replay.checks)),
                    name=f"custodes-audit-{shard}",
                    daemon=True,
                )
                worker.start()
                inbox.close()
                outbox.close()
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

    def feed_bundle(self, start: int, entries: list[bytes]) -> None:
        """Send each worker its entries of a well-formed bundle that starts at entry ``start``,
        with their indexes."""
        parts: list[tuple[list[int], list[bytes]]] = [([], []) for _ in range(self.jobs)]
        owners = _owners(start, entries, self.jobs)
        for index, (owner, entry) in enumerate(zip(owners, entries, strict=True), start):
            indexes, mine = parts[owner]
            indexes.append(index)
            mine.append(entry)
        for shard, conn in enumerate(self._inboxes):
            try:
                conn.send(parts[shard])
            except OSError:
                raise self._failure(shard) from None

    def finish(self, as_of: datetime) -> list[Finding]:
        """Every finding, as one replay of the whole log would give them."""
        for shard, conn in enumerate(self._inboxes):
            try:
                conn.send(as_of)
            except OSError:
                raise self._failure(shard) from None
        for shard, conn in enumerate(self._outboxes):
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
        """What stopped a worker that no longer reads its entries: the error it reported,
        else how it ended."""
        worker, outbox = self._workers[shard], self._outboxes[shard]
        worker.join(timeout=1)
        with contextlib.suppress(EOFError, OSError):
            if outbox.poll(0):
                return AuditError(f"replay worker {shard} failed:\n{outbox.recv()}")
        return AuditError(f"replay worker {shard} ended early (exit code {worker.exitcode})")

    def _end(self) -> None:
        """Close the pipes and end the workers: they exit when their pipe closes, and those
        still busy after a few seconds are ended by their process ids."""
        for conn in [*self._inboxes, *self._outboxes]:
            conn.close()
        for worker in self._workers:
            worker.join(timeout=None if self._done else 5)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        self._inboxes, self._outboxes, self._workers = [], [], []
