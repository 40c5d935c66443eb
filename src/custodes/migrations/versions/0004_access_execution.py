"""Staff access, authority recipient keys, productions, restrictions, holds, due actions.

Revision ID: 0004_access_execution
Revises: 0003_demands
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_access_execution"
down_revision: str | None = "0003_demands"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_capabilities",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("secret_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("staff_id", sa.Text, nullable=False),
        sa.Column("staff_location", sa.String(16), nullable=False),
        sa.Column("justification", sa.String(32), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("demand_id", sa.String(64)),
        sa.Column("subjects", sa.Text, nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("pack", sa.String(64), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS),
    )
    op.create_table(
        "staff_access_events",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("capability_id", sa.String(64)),
        sa.Column("at", _TS, nullable=False),
        sa.Column("staff_location", sa.String(16), nullable=False),
        sa.Column("justification", sa.String(32), nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("rules", sa.Text, nullable=False),
    )
    op.create_index("staff_access_events_subject", "staff_access_events", ["subject", "idx"])
    op.create_table(
        "authority_recipients",
        sa.Column("authority_id", sa.Text, primary_key=True),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("registered_at", _TS, nullable=False),
        sa.Column("registered_by", sa.Text, nullable=False),
    )
    op.create_table(
        "productions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("demand_id", sa.String(64), nullable=False),
        sa.Column("authority_id", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("package_sha256", sa.String(64), nullable=False),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("target_count", sa.Integer, nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("event_idx", sa.BigInteger, nullable=False),
        sa.Column("package", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_productions_demand_id", "productions", ["demand_id"])
    op.create_table(
        "production_downloads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("production_id", sa.String(64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("event_idx", sa.BigInteger),
    )
    op.create_index(
        "ix_production_downloads_production_id", "production_downloads", ["production_id"]
    )
    op.create_table(
        "restrictions_applied",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("demand_id", sa.String(64), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("territories", sa.Text, nullable=False),
        sa.Column("applied_at", _TS, nullable=False),
        sa.Column("until", _TS),
        sa.Column("lifted_at", _TS),
    )
    op.create_index("ix_restrictions_applied_demand_id", "restrictions_applied", ["demand_id"])
    op.create_table(
        "holds",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("demand_id", sa.String(64), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("placed_at", _TS, nullable=False),
        sa.Column("until", _TS, nullable=False),
        sa.Column("extended", sa.Boolean, nullable=False),
        sa.Column("ended_at", _TS),
        sa.Column("outcome", sa.String(16)),
        sa.Column("produced_by", sa.String(64)),
    )
    op.create_index("ix_holds_demand_id", "holds", ["demand_id"])
    op.create_table(
        "scheduled_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(128), nullable=False),
        sa.Column("demand_id", sa.String(64), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_at", _TS),
        sa.Column("done_at", _TS),
        sa.Column("payload", sa.Text, nullable=False),
        sa.UniqueConstraint("kind", "ref", name="scheduled_actions_kind_ref"),
    )
    op.create_index("scheduled_actions_due", "scheduled_actions", ["state", "due_at"])


def downgrade() -> None:
    for name in (
        "scheduled_actions",
        "holds",
        "restrictions_applied",
        "production_downloads",
        "productions",
        "authority_recipients",
        "staff_access_events",
        "staff_capabilities",
    ):
        op.drop_table(name)
