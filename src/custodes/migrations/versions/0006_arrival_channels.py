"""The call-back channels an authority had registered when its emergency arrived.

Channels can now be added and removed after registration, so a call-back is judged against the
channels as they stood when the emergency arrived, kept with the demand. Emergencies already
stored get their authority's channels as they stand now: the rule they were judged by so far.

Revision ID: 0006_arrival_channels
Revises: 0005_api
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006_arrival_channels"
down_revision: str | None = "0005_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("demands") as batch:
        batch.add_column(sa.Column("arrival_channels", sa.Text, nullable=True))
    conn = op.get_bind()
    demands = sa.table(
        "demands",
        sa.column("id", sa.Text),
        sa.column("kind", sa.Text),
        sa.column("authority_id", sa.Text),
        sa.column("arrival_channels", sa.Text),
    )
    authorities = sa.table("authorities", sa.column("id", sa.Text), sa.column("record", sa.Text))
    rows = conn.execute(
        sa.select(demands.c.id, authorities.c.record)
        .select_from(demands.outerjoin(authorities, demands.c.authority_id == authorities.c.id))
        .where(demands.c.kind == "emergency_disclosure")
    ).all()
    for demand_id, record in rows:
        channels = json.loads(record).get("channels", []) if record is not None else []
        conn.execute(
            demands.update()
            .where(demands.c.id == demand_id)
            .values(arrival_channels=json.dumps(channels, sort_keys=True))
        )


def downgrade() -> None:
    with op.batch_alter_table("demands") as batch:
        batch.drop_column("arrival_channels")
