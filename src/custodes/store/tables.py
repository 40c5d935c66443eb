"""The log's tables (SQLAlchemy Core). Domain tables live beside them in their own modules and
share :data:`metadata`; every change to a table goes through an Alembic migration in
``custodes/migrations/versions``.

- ``log_state``: one row; ``next_index`` is the size the log will have once every committed
  entry is integrated. Locking this row serialises appends across processes.
- ``log_entries``: every accepted entry, by index, with its RFC 9162 leaf hash (unique: the same
  entry appended twice keeps its first index).
- ``log_tiles``: the hash tiles of the integrated tree (tlog-tiles), full and the current
  partial one per level; the published files under ``DATA/log/tile/`` are copies of these rows.
- ``log_checkpoints``: every signed checkpoint, by tree size.
- ``event_openings``: the private openings of each event's commitments, by log index.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

metadata = MetaData()

log_state = Table(
    "log_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("next_index", BigInteger, nullable=False),
)

log_entries = Table(
    "log_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(32), nullable=False, unique=True),
    Column("data", LargeBinary, nullable=False),
)

log_tiles = Table(
    "log_tiles",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("width", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

event_openings = Table(
    "event_openings",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("openings", LargeBinary, nullable=False),
)
"""The salts and values behind each event's commitments (private; opened entry by entry)."""
