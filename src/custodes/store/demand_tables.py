"""The tables of demands, authorities and staff (SQLAlchemy Core, on the shared metadata).

Only :mod:`custodes.service` writes them, always in the transaction that appends the event
recording the change. Structured values (an authority's keys and channels, a demand's body,
its screening inputs and findings, its approved scope) are stored as the JSON the model's
``format_*`` functions write, so that what is stored parses back with the same checks as
input from outside. The schema is created by the migrations ``0003_demands`` and
``0006_arrival_channels``.

- ``authorities``: registered requesting authorities (``record``: ``format_authority``).
- ``staff``: the platform's staff (``record``: ``format_staff``).
- ``demands``: one row per demand, its current version: state, body, screening, scope; for
  an emergency, ``arrival_channels``: the authority's call-back channels when it arrived.
- ``demand_targets``: the targets of each demand's current version, by position; looked up
  by target to link a terms-of-service action to the open demands naming it.
- ``demand_documents``: the legal instrument's document, by SHA-256.
- ``approvals``: every ``approval.given`` of a demand's current version (one per person).
- ``demand_clocks``: deadlines that run for a demand, and when they were met or alerted.
- ``demand_events``: the log index of every event about a demand (its history), with who
  acted and the reason they wrote (kept privately: not every event commits to a note).
- ``tos_actions``: terms-of-service actions, one row per event: ``action_index`` (the log
  index of the action's first event) groups the events of one action linked to several demands.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
)

from custodes.store.tables import metadata

__all__ = [
    "approvals",
    "authorities",
    "demand_clocks",
    "demand_documents",
    "demand_events",
    "demand_targets",
    "demands",
    "staff",
    "tos_actions",
]

authorities = Table(
    "authorities",
    metadata,
    Column("id", Text, primary_key=True),
    Column("jurisdiction", Text, nullable=False),
    Column("standing", Text, nullable=False),
    Column("record", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

staff = Table(
    "staff",
    metadata,
    Column("id", Text, primary_key=True),
    Column("location", Text, nullable=False),
    Column("record", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

demands = Table(
    "demands",
    metadata,
    Column("id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("authority_id", Text, nullable=True),
    Column("state", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("target_count", Integer, nullable=False),
    Column("signature", Text, nullable=False),
    Column("intake_staff", Text, nullable=True),
    Column("callback", Text, nullable=False),
    Column("screening", Text, nullable=True),
    Column("pack", Text, nullable=True),
    Column("roles_required", Text, nullable=False),
    Column("approvals_needed", Integer, nullable=False),
    Column("scope", Text, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("executed_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("arrival_channels", Text, nullable=True),
)
# Also the authority's volume (the targets it named in a window, every submission): with the
# target count and the id in the index, the sum reads the index alone.
Index(
    "demands_authority_volume",
    demands.c.authority_id,
    demands.c.received_at,
    demands.c.target_count,
    demands.c.id,
)

demand_targets = Table(
    "demand_targets",
    metadata,
    Column("demand_id", Text, ForeignKey("demands.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("kind", Text, nullable=False),
    Column("target_id", Text, nullable=False),
)
Index("demand_targets_target", demand_targets.c.kind, demand_targets.c.target_id)

demand_documents = Table(
    "demand_documents",
    metadata,
    Column("demand_id", Text, ForeignKey("demands.id"), primary_key=True),
    Column("sha256", Text, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    Column("demand_id", Text, ForeignKey("demands.id"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("staff_id", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("given_at", DateTime(timezone=True), nullable=False),
    Column("log_index", BigInteger, nullable=False),
)

demand_clocks = Table(
    "demand_clocks",
    metadata,
    Column("demand_id", Text, ForeignKey("demands.id"), primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("met_at", DateTime(timezone=True), nullable=True),
    Column("alerted_at", DateTime(timezone=True), nullable=True),
)
Index("demand_clocks_due", demand_clocks.c.due_at)

demand_events = Table(
    "demand_events",
    metadata,
    Column("demand_id", Text, ForeignKey("demands.id"), primary_key=True),
    Column("log_index", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("staff_id", Text, nullable=True),
    Column("note", Text, nullable=True),
)

tos_actions = Table(
    "tos_actions",
    metadata,
    Column("log_index", BigInteger, primary_key=True, autoincrement=False),
    Column("action_index", BigInteger, nullable=False),
    Column("target_kind", Text, nullable=False),
    Column("target_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("staff_id", Text, nullable=False),
    Column("demand_id", Text, ForeignKey("demands.id"), nullable=True),
    Column("state_involved", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("tos_actions_target", tos_actions.c.target_kind, tos_actions.c.target_id)
