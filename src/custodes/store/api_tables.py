"""Tables of the HTTP API: who is calling, and what they already asked (SQLAlchemy Core).

Every row here is bookkeeping of the web layer, not domain state: none of it is logged, and
losing all of it would log every staff member out and forget recent nonces, nothing more.
They live in the database (not in process memory) so that several ``custodes serve``
processes sharing one PostgreSQL agree on them.

- ``api_nonces``: the nonce of every signed request accepted, per key, until the request's
  signature could no longer be accepted anyway (replay protection, RFC 9421 §7.2.2).
- ``api_rate_windows``: requests counted per bucket (``authority:<id>``, ``staff:<id>``,
  ``login:<staff id>``) and fixed window.
- ``api_idempotency``: the outcome of every POST by ``(principal, Idempotency-Key)``, with a
  fingerprint of the request; ``status`` is empty while the request is being handled.
- ``staged_documents``: instrument documents uploaded before the demand that cites them, by
  uploader and SHA-256.
- ``revoked_keys``: the request-signing keys of authorities that were revoked, so that a
  request signed with one is refused as revoked rather than as unknown.
- ``staff_credentials``: each staff member's argon2id password hash and TOTP secret, and the
  last TOTP time step accepted (a code is good once).
- ``staff_sessions``: console sessions; only the SHA-256 of the cookie's secret is kept.
- ``staff_tokens``: API tokens for automation; only the SHA-256 of the secret is kept.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from custodes.store.tables import metadata

__all__ = [
    "api_idempotency",
    "api_nonces",
    "api_rate_windows",
    "revoked_keys",
    "staff_credentials",
    "staff_sessions",
    "staff_tokens",
    "staged_documents",
]

_TS = DateTime(timezone=True)

api_nonces = Table(
    "api_nonces",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("nonce", String(128), primary_key=True),
    Column("expires_at", _TS, nullable=False),
)
Index("api_nonces_expires", api_nonces.c.expires_at)

api_rate_windows = Table(
    "api_rate_windows",
    metadata,
    Column("bucket", Text, primary_key=True),
    Column("window", BigInteger, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
)

api_idempotency = Table(
    "api_idempotency",
    metadata,
    Column("principal", Text, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer),
    Column("content_type", Text),
    Column("location", Text),
    Column("body", LargeBinary),
    Column("created_at", _TS, nullable=False),
    Column("expires_at", _TS, nullable=False),
)
Index("api_idempotency_expires", api_idempotency.c.expires_at)

staged_documents = Table(
    "staged_documents",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("received_at", _TS, nullable=False),
)

revoked_keys = Table(
    "revoked_keys",
    metadata,
    Column("authority_id", Text, primary_key=True),
    Column("key_id", Text, primary_key=True),
    Column("revoked_at", _TS, nullable=False),
)

staff_credentials = Table(
    "staff_credentials",
    metadata,
    Column("staff_id", Text, primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", Text, nullable=False),
    Column("totp_last_step", BigInteger, nullable=False),
    Column("updated_at", _TS, nullable=False),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("secret_sha256", LargeBinary(32), nullable=False),
    Column("staff_id", Text, nullable=False),
    Column("created_at", _TS, nullable=False),
    Column("expires_at", _TS, nullable=False),
    Column("last_seen_at", _TS, nullable=False),
    Column("ended_at", _TS),
)

staff_tokens = Table(
    "staff_tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("secret_sha256", LargeBinary(32), nullable=False),
    Column("staff_id", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("created_at", _TS, nullable=False),
    Column("expires_at", _TS, nullable=False),
    Column("revoked_at", _TS),
)
Index("staff_tokens_staff", staff_tokens.c.staff_id)
