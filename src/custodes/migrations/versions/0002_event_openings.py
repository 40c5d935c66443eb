"""Private openings of event commitments.

Revision ID: 0002_event_openings
Revises: 0001_log
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_event_openings"
down_revision: str | None = "0001_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_openings",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("openings", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("event_openings")
