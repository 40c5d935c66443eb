"""Demands, authorities, staff, approvals, clocks and terms-of-service actions.

Revision ID: 0003_demands
Revises: 0002_event_openings
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_demands"
down_revision: str | None = "0002_event_openings"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "authorities",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("jurisdiction", sa.Text, nullable=False),
        sa.Column("standing", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("registered_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("registered_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
    )
    op.create_table(
        "demands",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("authority_id", sa.Text, nullable=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", _TZ, nullable=False),
        sa.Column("target_count", sa.Integer, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("intake_staff", sa.Text, nullable=True),
        sa.Column("callback", sa.Text, nullable=False),
        sa.Column("screening", sa.Text, nullable=True),
        sa.Column("pack", sa.Text, nullable=True),
        sa.Column("roles_required", sa.Text, nullable=False),
        sa.Column("approvals_needed", sa.Integer, nullable=False),
        sa.Column("scope", sa.Text, nullable=True),
        sa.Column("decided_at", _TZ, nullable=True),
        sa.Column("executed_at", _TZ, nullable=True),
        sa.Column("updated_at", _TZ, nullable=False),
    )
    op.create_index("demands_authority_received", "demands", ["authority_id", "received_at"])
    op.create_table(
        "demand_targets",
        sa.Column("demand_id", sa.Text, sa.ForeignKey("demands.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("target_id", sa.Text, nullable=False),
    )
    op.create_index("demand_targets_target", "demand_targets", ["kind", "target_id"])
    op.create_table(
        "demand_documents",
        sa.Column("demand_id", sa.Text, sa.ForeignKey("demands.id"), primary_key=True),
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("received_at", _TZ, nullable=False),
    )
    op.create_table(
        "approvals",
        sa.Column("demand_id", sa.Text, sa.ForeignKey("demands.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("staff_id", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("given_at", _TZ, nullable=False),
        sa.Column("log_index", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "demand_clocks",
        sa.Column("demand_id", sa.Text, sa.ForeignKey("demands.id"), primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("started_at", _TZ, nullable=False),
        sa.Column("due_at", _TZ, nullable=False),
        sa.Column("met_at", _TZ, nullable=True),
        sa.Column("alerted_at", _TZ, nullable=True),
    )
    op.create_index("demand_clocks_due", "demand_clocks", ["due_at"])
    op.create_table(
        "demand_events",
        sa.Column("demand_id", sa.Text, sa.ForeignKey("demands.id"), primary_key=True),
        sa.Column("log_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("staff_id", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_table(
        "tos_actions",
        sa.Column("log_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("action_index", sa.BigInteger, nullable=False),
        sa.Column("target_kind", sa.Text, nullable=False),
        sa.Column("target_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("staff_id", sa.Text, nullable=False),
        sa.Column("demand_id", sa.Text, sa.ForeignKey("demands.id"), nullable=True),
        sa.Column("state_involved", sa.Boolean, nullable=False),
        sa.Column("at", _TZ, nullable=False),
    )
    op.create_index("tos_actions_target", "tos_actions", ["target_kind", "target_id"])


def downgrade() -> None:
    op.drop_index("tos_actions_target", "tos_actions")
    op.drop_index("demand_clocks_due", "demand_clocks")
    op.drop_index("demand_targets_target", "demand_targets")
    op.drop_index("demands_authority_received", "demands")
    for name in (
        "tos_actions",
        "demand_events",
        "demand_clocks",
        "approvals",
        "demand_documents",
        "demand_targets",
        "demands",
        "staff",
        "authorities",
    ):
        op.drop_table(name)
