"""The authority's volume read from the index alone.

Every submission sums the targets its authority named in the pack's window. The index by
authority and time found those demands, but each row was then read from the table for its
target count. The index now holds the target count and the demand's id as well, so the sum
reads the index only (on PostgreSQL, for the pages the visibility map marks all-visible).

Revision ID: 0007_volume_index
Revises: 0006_arrival_channels
"""

from __future__ import annotations

from alembic import op

revision = "0007_volume_index"
down_revision: str | None = "0006_arrival_channels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "demands_authority_volume",
        "demands",
        ["authority_id", "received_at", "target_count", "id"],
    )
    op.drop_index("demands_authority_received", table_name="demands")


def downgrade() -> None:
    op.create_index("demands_authority_received", "demands", ["authority_id", "received_at"])
    op.drop_index("demands_authority_volume", table_name="demands")
