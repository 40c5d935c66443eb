"""The HTTP API's bookkeeping: nonces, rate windows, idempotency, staged documents, revoked
keys, staff credentials, sessions and API tokens.

Revision ID: 0005_api
Revises: 0004_access_execution
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_api"
down_revision: str | None = "0004_access_execution"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_nonces",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("nonce", sa.String(128), primary_key=True),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_index("api_nonces_expires", "api_nonces", ["expires_at"])
    op.create_table(
        "api_rate_windows",
        sa.Column("bucket", sa.Text, primary_key=True),
        sa.Column("window", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "api_idempotency",
        sa.Column("principal", sa.Text, primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("content_type", sa.Text),
        sa.Column("location", sa.Text),
        sa.Column("body", sa.LargeBinary),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_index("api_idempotency_expires", "api_idempotency", ["expires_at"])
    op.create_table(
        "staged_documents",
        sa.Column("owner", sa.Text, primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
    )
    op.create_table(
        "revoked_keys",
        sa.Column("authority_id", sa.Text, primary_key=True),
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("revoked_at", _TS, nullable=False),
    )
    op.create_table(
        "staff_credentials",
        sa.Column("staff_id", sa.Text, primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("totp_secret", sa.Text, nullable=False),
        sa.Column("totp_last_step", sa.BigInteger, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("secret_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("staff_id", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("ended_at", _TS),
    )
    op.create_table(
        "staff_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("secret_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("staff_id", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS),
    )
    op.create_index("staff_tokens_staff", "staff_tokens", ["staff_id"])


def downgrade() -> None:
    for name in (
        "staff_tokens",
        "staff_sessions",
        "staff_credentials",
        "revoked_keys",
        "staged_documents",
        "api_idempotency",
        "api_rate_windows",
        "api_nonces",
    ):
        op.drop_table(name)
