"""The sequencer: integrates committed entries into the tree and signs checkpoints.

One integration step, run only by the leader (see :mod:`custodes.ledger.lock`):

1. read the last checkpoint and the entries committed after it (up to ``max_batch``);
2. compute the tiles that change (``tlog.new_tiles``, right edge only) and the new root;
3. prove the new tree consistent with the last checkpoint and check that proof: a tree that
   fails it raises :class:`~custodes.errors.ForkError` and nothing is signed;
4. in one transaction, store the changed tiles and the signed checkpoint;
5. publish the tiles, entry bundles and, last, the checkpoint under ``DATA/log/``.

A crash between 4 and 5 is healed by :meth:`Sequencer.republish`, which runs when a sequencer
takes leadership: it writes every published file that is missing for the stored checkpoint.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import ForkError, LedgerError
from custodes.ledger import SignedCheckpoint
from custodes.ledger.lock import LeaderLock
from custodes.ledger.publish import Publisher
from custodes.store import Store
from custodes.store.tables import log_checkpoints, log_entries, log_state, log_tiles
from custodes.tlog import (
    EMPTY_ROOT,
    Checkpoint,
    ProofError,
    Signer,
    check_consistency,
    format_checkpoint,
    prove_consistency,
    prove_inclusion,
    sign_note,
    tree_root,
)
from custodes.tlog.tiles import (
    TILE_WIDTH,
    Tile,
    TileNodeReader,
    bundle_tile,
    format_bundle,
    format_tile_path,
    new_tiles,
    tiles_for_size,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InclusionProof:
    index: int
    size: int
    hashes: list[bytes]


class StoredTiles:
    """Reads hash tiles from ``log_tiles``; a stored tile wider than asked is cut down, which is
    sound because a partial tile is a prefix of every wider version of it."""

    def __init__(self, conn: Connection, overlay: dict[tuple[int, int], bytes] | None = None):
        self._conn = conn
        self._overlay = overlay or {}

    def __call__(self, tile: Tile) -> bytes:
        data = self._overlay.get((tile.level, tile.index))
        if data is None:
            data = self._conn.execute(_TILE, {"level": tile.level, "idx": tile.index}).scalar()
        need = tile.width * 32
        if data is None or len(data) < need:
            raise LedgerError(
                f"tile {format_tile_path(tile)} is missing from the store", tile=str(tile)
            )
        return bytes(data[:need])


def _latest(conn: Connection) -> tuple[int, bytes]:
    row = conn.execute(_LATEST).first()
    return (0, EMPTY_ROOT) if row is None else (int(row[0]), bytes(row[1]))


def _state(conn: Connection) -> tuple[int, bytes, bool, int]:
    """In one statement: the last checkpoint's size and root, whether there is one, and the
    size the log will have once every committed entry is integrated."""
    size, root, next_index = conn.execute(_STATE).one()
    if size is None:
        return 0, EMPTY_ROOT, False, int(next_index)
    return int(size), bytes(root), True, int(next_index)


# Built once: the sequencer runs them every integration, several times a second.
_TILE = sa.select(log_tiles.c.data).where(
    log_tiles.c.level == sa.bindparam("level"), log_tiles.c.idx == sa.bindparam("idx")
)
_LATEST = (
    sa.select(log_checkpoints.c.size, log_checkpoints.c.root)
    .order_by(log_checkpoints.c.size.desc())
    .limit(1)
)
_LATEST_SIZE = _LATEST.subquery()
_STATE = sa.select(
    sa.select(_LATEST_SIZE.c.size).scalar_subquery(),
    sa.select(_LATEST_SIZE.c.root).scalar_subquery(),
    sa.select(log_state.c.next_index).scalar_subquery(),
)
_ENTRIES = (
    sa.select(log_entries.c.idx, log_entries.c.leaf_hash, log_entries.c.data)
    .where(log_entries.c.idx >= sa.bindparam("first"), log_entries.c.idx < sa.bindparam("end"))
    .order_by(log_entries.c.idx)
)
_KEY = (log_tiles.c.level == sa.bindparam("b_level")) & (log_tiles.c.idx == sa.bindparam("b_idx"))
_UPDATE_TILE = log_tiles.update().where(_KEY)
_INSERT_TILE = log_tiles.insert()
_INSERT_CHECKPOINT = log_checkpoints.insert()


class Sequencer:
    """Integrates, signs and publishes one log."""

    def __init__(
        self,
        store: Store,
        signer: Signer,
        origin: str,
        publisher: Publisher,
        lock: LeaderLock,
        *,
        max_batch: int = 65536,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        cosign: Callable[[bytes, Callable[[int], list[bytes]]], bytes] | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self.origin = origin
        self.publisher = publisher
        self.lock = lock
        self.max_batch = max_batch
        self.clock = clock
        self.cosign = cosign
        """Witnessing: takes the signed note and a consistency prover from an older size, and
        returns the note with cosignatures (``custodes.ledger.witnessing``)."""
        self._integrated = threading.Condition()
        self._wake = threading.Event()
        self._size = -1
        self._published: int | None = None
        """Size of the checkpoint this process last saw on disk with all its files (None:
        not looked yet)."""
        self.following = False
        """Whether the last :meth:`integrate` found another process leading."""

    # -- integration -------------------------------------------------------------------------

    def integrate(self) -> SignedCheckpoint | None:
        """One step; returns the new checkpoint, or None when there was nothing to do or this
        process is not the leader."""
        self.following = not self.lock.try_acquire()
        if self.following:
            return None
        with self.store.read() as conn:
            old_size, old_root, has_checkpoint, next_index = _state(conn)
        if old_size != self._published:
            # At start, and whenever another leader stored a checkpoint (one that died with
            # its integration in flight can commit it after its lock went with its session,
            # without publishing it): write what the stored checkpoint needs first.
            self.republish()
            with self.store.read() as conn:
                old_size, old_root, has_checkpoint, next_index = _state(conn)
        if next_index == old_size and has_checkpoint:
            self._note_size(old_size)
            return None
        with self.store.read() as conn:
            end = min(next_index, old_size + self.max_batch)
            first = old_size - old_size % TILE_WIDTH
            rows = conn.execute(_ENTRIES, {"first": first, "end": end}).all()
            if [int(r[0]) for r in rows] != list(range(first, end)):
                raise LedgerError(f"entries {first}..{end} are not contiguous in the store")
            hashes = [bytes(r[1]) for r in rows[old_size - first :]]
            changed = new_tiles(old_size, end, hashes, StoredTiles(conn))
            overlay = {(t.level, t.index): data for t, data in changed}
            reader = TileNodeReader(StoredTiles(conn, overlay), end)
            root = tree_root(end, reader)
            proof = prove_consistency(old_size, end, reader) if old_size else []
        if old_size:
            try:
                check_consistency(proof, old_size, end, old_root, root)
            except ProofError as exc:
                raise ForkError(
                    f"tree of size {end} is inconsistent with checkpoint {old_size}",
                    old_size=old_size,
                    old_root=old_root.hex(),
                    new_size=end,
                    new_root=root.hex(),
                    proof=[h.hex() for h in proof],
                ) from exc
        cp = Checkpoint(self.origin, end, root)
        note = sign_note(format_checkpoint(cp), self.signer)
        if self.cosign is not None:  # witnesses cosign before anything is stored or published
            note = self.cosign(note, lambda old: self._prove_from(old, end, overlay))
        try:
            self._store_checkpoint(changed, old_size, end, root, note)
        except sa.exc.IntegrityError:
            # A leader that died with its integration in flight can still commit it after
            # its lock went with its session: its checkpoint of this size took the key first.
            # Nothing of ours was stored or published; the next integration publishes its
            # files and goes on top of it.
            raise LedgerError("another sequencer integrated concurrently") from None
        bundles = list(_bundles(first, [bytes(r[2]) for r in rows]))
        self.publisher.write_immutable(
            [(format_tile_path(t), d) for t, d in changed]
            + [(format_tile_path(t), d) for t, d in bundles]
        )
        self.publisher.write_checkpoint(note)
        self._published = end
        log.info("integrated size=%d added=%d", end, end - old_size)
        self._note_size(end)
        return SignedCheckpoint(cp, note)

    def _store_checkpoint(
        self, changed: list[tuple[Tile, bytes]], old_size: int, end: int, root: bytes, note: bytes
    ) -> None:
        """Store the new tiles and the signed checkpoint, unless another sequencer stored one
        since ``old_size`` was read."""
        with self.store.transaction() as conn:
            if _latest(conn)[0] != old_size and old_size:
                raise LedgerError("another sequencer integrated concurrently")
            for tile, data in changed:
                key = {"b_level": tile.level, "b_idx": tile.index}
                values = {"width": tile.width, "data": data}
                if conn.execute(_UPDATE_TILE, {**key, **values}).rowcount == 0:
                    conn.execute(_INSERT_TILE, {"level": tile.level, "idx": tile.index, **values})
            conn.execute(
                _INSERT_CHECKPOINT,
                {"size": end, "root": root, "note": note.decode(), "created_at": self.clock()},
            )

    def _prove_from(
        self, old: int, size: int, overlay: dict[tuple[int, int], bytes]
    ) -> list[bytes]:
        with self.store.read() as conn:
            return prove_consistency(old, size, TileNodeReader(StoredTiles(conn, overlay), size))

    def _note_size(self, size: int) -> None:
        with self._integrated:
            self._size = size
            self._integrated.notify_all()

    def wait_for(self, index: int, timeout: float) -> bool:
        """Block until a checkpoint integrated by this process covers ``index``."""
        with self._integrated:
            return self._integrated.wait_for(lambda: self._size > index, timeout=timeout)

    # -- publication ---------------------------------------------------------------------------

    def republish(self) -> int:
        """Write every published file the stored checkpoint needs and the disk lacks."""
        with self.store.read() as conn:
            row = conn.execute(
                sa.select(log_checkpoints.c.size, log_checkpoints.c.note)
                .order_by(log_checkpoints.c.size.desc())
                .limit(1)
            ).first()
            if row is None:
                self._published = 0
                return 0
            size, note = int(row[0]), row[1].encode()
            read = StoredTiles(conn)
            files: list[tuple[str, bytes]] = []
            for tile in tiles_for_size(size):
                path = format_tile_path(tile)
                if not (self.publisher.root / path).exists():
                    files.append((path, read(tile)))
            for start in range(0, size, TILE_WIDTH):
                width = min(TILE_WIDTH, size - start)
                tile = bundle_tile(start // TILE_WIDTH, width)
                if not (self.publisher.root / format_tile_path(tile)).exists():
                    data = [
                        bytes(r[0])
                        for r in conn.execute(
                            sa.select(log_entries.c.data)
                            .where(log_entries.c.idx >= start, log_entries.c.idx < start + width)
                            .order_by(log_entries.c.idx)
                        )
                    ]
                    files.append((format_tile_path(tile), format_bundle(data)))
        written = self.publisher.write_immutable(files)
        if self.publisher.read_checkpoint() != note:
            self.publisher.write_checkpoint(note)
        self._published = size
        if written:
            log.info("republished files=%d size=%d", written, size)
        return written

    # -- proofs ----------------------------------------------------------------------------------

    def prove(self, index: int, size: int) -> InclusionProof:
        with self.store.read() as conn:
            reader = TileNodeReader(StoredTiles(conn), size)
            return InclusionProof(index, size, prove_inclusion(index, size, reader))

    # -- running ---------------------------------------------------------------------------------

    def poke(self) -> None:
        """New entries were committed in this process: integrate without waiting."""
        self._wake.set()

    def run(self, stop: threading.Event, interval: float) -> None:
        """Integrate until ``stop`` is set. When idle it sleeps for ``interval`` or until
        :meth:`poke`. While entries keep coming it signs at most one checkpoint per
        ``interval``: a busy log gets fewer, larger checkpoints rather than one per commit,
        each of which took the processor from the requests that make the entries. A
        follower (another process leads) retries leadership once per ``interval`` and is not
        woken by its own process's commits: the leader integrates every process's entries,
        and a try on each commit cost a connection and a round trip each."""
        while not stop.is_set():
            self._wake.clear()
            started = time.monotonic()
            try:
                cp = self.integrate()
            except Exception:
                log.exception("integration failed")
                cp = None
            if cp is not None:
                stop.wait(max(0.0, started + interval - time.monotonic()))
            elif self.following:
                stop.wait(interval)
            else:
                self._wake.wait(interval)
        self.lock.release()


def _bundles(first: int, entries: list[bytes]) -> Iterator[tuple[Tile, bytes]]:
    """Entry bundles covering entries ``first..`` (``first`` is a multiple of 256)."""
    for off in range(0, len(entries), TILE_WIDTH):
        chunk = entries[off : off + TILE_WIDTH]
        yield bundle_tile((first + off) // TILE_WIDTH, len(chunk)), format_bundle(chunk)
