"""Tables of staff access and of execution (SQLAlchemy Core, sharing :data:`metadata`).

Staff access (``custodes.service.access``):

- ``staff_capabilities``: one row per capability issued: who holds it, under which
  justification, for which subjects and data categories, until when; the SHA-256 of its
  secret (the token itself is never stored) and when it was revoked, if it was.
- ``staff_access_events``: every grant, refusal, read and revocation by subject, keyed by its
  log index, so that a user can list the accesses to their own data (access transparency).
  Each row is written in the transaction that appends its event.

Execution (``custodes.service.execution``, ``production``, ``notices``):

- ``authority_recipients``: the age X25519 recipient key each authority's productions are
  encrypted to, and who registered it.
- ``productions``: each production of an approved demand: the age-encrypted package, the
  SHA-256 of its manifest and of the package, counts, the authority and its recipient key.
- ``production_downloads``: each time the authority fetched a package.
- ``restrictions_applied``: the restrictions custodes applied through the platform, by the
  platform's id, with their end (``until``) and when they were lifted.
- ``holds``: preservation holds by the platform's id, their clock, and how they ended
  (``released``, ``expired`` or ``produced``).
- ``scheduled_actions``: the durable scheduler: notices, lifts and hold expiries that fall
  due at ``due_at``. ``state`` goes ``pending`` → ``claimed`` → ``done``; a claimed notice that
  never completed is ``in_doubt`` and is not sent again (see ``custodes.service.notices``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from custodes.store.tables import metadata

__all__ = [
    "authority_recipients",
    "holds",
    "production_downloads",
    "productions",
    "restrictions_applied",
    "scheduled_actions",
    "staff_access_events",
    "staff_capabilities",
    "utc",
]

staff_capabilities = Table(
    "staff_capabilities",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("secret_sha256", LargeBinary(32), nullable=False),
    Column("staff_id", Text, nullable=False),
    Column("staff_location", String(16), nullable=False),
    Column("justification", String(32), nullable=False),
    Column("reference", Text, nullable=False),
    Column("demand_id", String(64)),
    Column("subjects", Text, nullable=False),
    Column("categories", Text, nullable=False),
    Column("pack", String(64), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

staff_access_events = Table(
    "staff_access_events",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("subject", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("capability_id", String(64)),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("staff_location", String(16), nullable=False),
    Column("justification", String(32), nullable=False),
    Column("categories", Text, nullable=False),
    Column("rules", Text, nullable=False),
    Index("staff_access_events_subject", "subject", "idx"),
)

authority_recipients = Table(
    "authority_recipients",
    metadata,
    Column("authority_id", Text, primary_key=True),
    Column("recipient", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("registered_by", Text, nullable=False),
)

productions = Table(
    "productions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("demand_id", String(64), nullable=False, index=True),
    Column("authority_id", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("package_sha256", String(64), nullable=False),
    Column("record_count", Integer, nullable=False),
    Column("target_count", Integer, nullable=False),
    Column("categories", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("event_idx", BigInteger, nullable=False),
    Column("package", LargeBinary, nullable=False),
)

production_downloads = Table(
    "production_downloads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("production_id", String(64), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event_idx", BigInteger),
)

restrictions_applied = Table(
    "restrictions_applied",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("demand_id", String(64), nullable=False, index=True),
    Column("target", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("territories", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True)),
    Column("lifted_at", DateTime(timezone=True)),
)

holds = Table(
    "holds",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("demand_id", String(64), nullable=False, index=True),
    Column("target", Text, nullable=False),
    Column("categories", Text, nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True), nullable=False),
    Column("extended", Boolean, nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("outcome", String(16)),
    Column("produced_by", String(64)),
)

scheduled_actions = Table(
    "scheduled_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("ref", String(128), nullable=False),
    Column("demand_id", String(64), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("claimed_at", DateTime(timezone=True)),
    Column("done_at", DateTime(timezone=True)),
    Column("payload", Text, nullable=False),
    UniqueConstraint("kind", "ref", name="scheduled_actions_kind_ref"),
    Index("scheduled_actions_due", "state", "due_at"),
)


def utc(value: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
