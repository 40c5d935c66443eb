"""The log as a running service.

:class:`Ledger` accepts entries: :meth:`Ledger.append_in` inside a caller's transaction (the
service layer uses it so that a state change and its event commit together), and
:meth:`Ledger.append` on its own (group-committed through the store's writer). Either way an
entry gets its index when its transaction commits, and an entry whose bytes were appended before
gets the first index back instead of a second one.

:class:`~custodes.ledger.sequencer.Sequencer` integrates committed entries into the Merkle tree:
it writes the tiles, signs a checkpoint (never for a tree inconsistent with the last one) and
publishes tiles, entry bundles and the checkpoint under ``DATA/log/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import EntryTooLargeError, InputError, NotFoundError, StorageError
from custodes.store import Store
from custodes.store.fast import (
    CHUNK,
    Part,
    defer_rows,
    execute,
    flush_deferred,
    insert_count,
    select_in,
)
from custodes.store.tables import log_checkpoints, log_entries, log_state
from custodes.tlog import Checkpoint, leaf_hashes, parse_checkpoint

MAX_ENTRY_SIZE = 65535
"""tlog-tiles entry bundles prefix each entry with a 16-bit length."""

_FIND = "SELECT leaf_hash, idx FROM log_entries WHERE leaf_hash IN ({in})"
_RESERVE = "UPDATE log_state SET next_index = next_index + {mark} WHERE id = 1 RETURNING next_index"
_SKIP_KNOWN = "ON CONFLICT (leaf_hash) DO NOTHING"
_UNDO_ENTRIES = "DELETE FROM log_entries WHERE idx >= {mark}"
_UNDO_COUNTER = "UPDATE log_state SET next_index = {mark} WHERE id = 1"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and the signed note that carries it."""

    checkpoint: Checkpoint
    note: bytes


def _checked(entries: Sequence[bytes]) -> list[bytes]:
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, bytes):
            raise InputError(f"entry {i} is {type(e).__name__}, not bytes")
        if not e or len(e) > MAX_ENTRY_SIZE:
            raise EntryTooLargeError(
                f"entry {i} has {len(e)} bytes; entries hold 1..{MAX_ENTRY_SIZE}", size=len(e)
            )
        out.append(e)
    return out


class Ledger:
    """Appends to and reads from one log stored in ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append_in(
        self, conn: Connection, entries: Sequence[bytes], *, new: bool = False
    ) -> list[int]:
        """Append within the caller's transaction; the indexes hold once it commits.

        Locks the log's counter row, so call it last in a transaction: concurrent appenders
        (threads or processes) wait for the lock, which is what keeps indexes dense and
        in commit order. Entries get indexes in order of first appearance.

        ``new`` says the entries cannot be in the log yet (each event carries new salts or
        a nonce), which saves looking for them; one that is all the same fails the insert on
        its unique leaf hash, and the transaction with it."""
        return self._append_checked(conn, _checked(entries), new=new)

    def _append_checked(
        self, conn: Connection, data: list[bytes], *, new: bool = False
    ) -> list[int]:
        hashes = leaf_hashes(data)
        by_hash = dict(zip(hashes, data, strict=True))  # first appearance first
        known: dict[bytes, int] = {}
        # Most entries are new: insert them all (an entry already in the log fails the plain
        # insert of ``new`` entries, and is skipped otherwise), and look up the log only if
        # the count comes out short. Then the insert is undone (the counter's lock is still
        # ours, so nobody else saw it) and redone for the entries that are really new.
        if new:  # a known entry fails the insert, deferred or not, and the transaction with it
            self._insert(conn, by_hash, known, clause=None)
            return [known[h] for h in hashes]
        inserted = self._insert(conn, by_hash, known, clause=_SKIP_KNOWN)
        if inserted != len(by_hash):
            base = min(known.values())
            execute(conn, _UNDO_ENTRIES, [base])
            execute(conn, _UNDO_COUNTER, [base])
            known.clear()
            unique = list(by_hash)
            for start in range(0, len(unique), CHUNK):
                found = select_in(conn, _FIND, unique[start : start + CHUNK])
                known.update({bytes(h): int(i) for h, i in found})
            fresh = {h: e for h, e in by_hash.items() if h not in known}
            if fresh:
                self._insert(conn, fresh, known, clause="")
        return [known[h] for h in hashes]

    @staticmethod
    def _insert(
        conn: Connection, entries: dict[bytes, bytes], known: dict[bytes, int], clause: str | None
    ) -> int:
        """Reserve indexes for ``entries`` (by leaf hash) by moving the counter, record them
        in ``known``, insert the rows and return how many were inserted.

        The counter's row lock serialises appenders until commit. An entry another process
        committed before this lock makes the plain insert fail on the unique leaf hash (and
        the caller retries); with ``clause`` it is skipped and the count comes out short.
        Without one (None), the insert waits for the transaction's other deferred statements
        (:func:`~custodes.store.fast.defer_rows`) and every entry counts as inserted."""
        # What the transaction deferred goes first, in the statement that moves the counter:
        # from there the counter's lock is held until commit, and every other appender
        # waits for it.
        moved = flush_deferred(conn, Part(_RESERVE, [len(entries)], ("next_index",)))
        if not moved:
            raise StorageError("the log's counter row is missing: the schema is damaged")
        next_index = int(moved[0][0]) - len(entries)
        new_rows = []
        for h, e in entries.items():
            known[h] = next_index
            new_rows.append({"idx": next_index, "leaf_hash": h, "data": e})
            next_index += 1
        if clause is None:
            defer_rows(conn, log_entries, new_rows)
            return len(new_rows)
        return insert_count(conn, log_entries, new_rows, clause)

    def append(self, entries: Sequence[bytes]) -> list[int]:
        """Append and return the indexes once the entries are durable.

        Concurrent callers share one transaction and one commit (group commit)."""
        data = _checked(entries)  # here, so that bad input fails its own caller alone
        return self.store.writer.submit_merged("ledger.append", data, self._append_checked)

    def size(self) -> int:
        """Entries accepted so far, integrated or not."""
        with self.store.read() as conn:
            return int(conn.execute(sa.select(log_state.c.next_index)).scalar_one())

    def entry(self, index: int) -> bytes:
        with self.store.read() as conn:
            data = conn.execute(
                sa.select(log_entries.c.data).where(log_entries.c.idx == index)
            ).scalar()
        if data is None:
            raise NotFoundError(f"no log entry {index}", index=index)
        return bytes(data)

    def entries(self, start: int, end: int) -> list[bytes]:
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(log_entries.c.data)
                .where(log_entries.c.idx >= start, log_entries.c.idx < end)
                .order_by(log_entries.c.idx)
            )
            return [bytes(r[0]) for r in rows]

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self.store.read() as conn:
            row = conn.execute(
                sa.select(log_checkpoints.c.note).order_by(log_checkpoints.c.size.desc()).limit(1)
            ).first()
        if row is None:
            return None
        note = row[0].encode()
        return SignedCheckpoint(parse_checkpoint(_note_body(note)), note)


def _note_body(note: bytes) -> str:
    """The text of a signed note, before the blank line and signatures."""
    text = note.decode()
    body, sep, _ = text.partition("\n\n")
    if not sep:
        raise InputError("signed note has no signature block")
    return body + "\n"
