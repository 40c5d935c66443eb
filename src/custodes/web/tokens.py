"""API tokens: how a staff member's automation calls the API without a browser session.

A token is ``cst_<24 hex>.<43 base64url>`` (:func:`custodes.web.auth.format_secret`), sent as
``Authorization: Bearer <token>``. It acts as the staff member who issued it, with the roles
the registry gives them at the time of each request; it is shown once, when issued, and only
its SHA-256 is kept. It expires (at most :attr:`~custodes.web.context.ApiConfig.token_max_ttl`
after issue) or is revoked by its holder.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from custodes.errors import ConflictError, InputError, NotFoundError
from custodes.service import Services
from custodes.service.lifecycle import utc
from custodes.store.api_tables import staff_tokens

from .auth import new_secret
from .context import ApiConfig

__all__ = ["ApiToken", "NewToken", "issue_token", "list_tokens", "revoke_token"]

_LABEL = re.compile(r"[^\x00-\x1f\x7f]{1,100}")


@dataclass(frozen=True)
class ApiToken:
    """An API token as listed (never with its secret)."""

    id: str
    staff_id: str
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewToken:
    """A token just issued, with the bearer text shown this once."""

    token: ApiToken
    bearer: str


def issue_token(
    services: Services, config: ApiConfig, staff_id: str, label: str, ttl: timedelta
) -> NewToken:
    """Issue ``staff_id`` a token named ``label`` that lives ``ttl``."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise InputError("a token label is 1-100 printable characters")
    if not timedelta(minutes=5) <= ttl <= config.token_max_ttl:
        raise InputError(f"a token lives from 5 minutes to {config.token_max_ttl.days} days")
    tid, secret, bearer = new_secret("cst")
    now = services.clock()
    token = ApiToken(tid, staff_id, label, now, now + ttl, None)
    services.store.write(
        lambda conn: conn.execute(
            staff_tokens.insert().values(
                id=tid,
                secret_sha256=_sha256(secret),
                staff_id=staff_id,
                label=label,
                created_at=now,
                expires_at=token.expires_at,
            )
        )
    )
    return NewToken(token, bearer)


def _sha256(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


def _token(row: sa.Row[tuple[object, ...]]) -> ApiToken:
    m = row._mapping
    revoked = m["revoked_at"]
    return ApiToken(
        m["id"], m["staff_id"], m["label"], utc(m["created_at"]), utc(m["expires_at"]),
        None if revoked is None else utc(revoked),
    )  # fmt: skip


def list_tokens(services: Services, staff_id: str) -> list[ApiToken]:
    """``staff_id``'s tokens, newest first."""
    t = staff_tokens
    with services.store.read() as conn:
        rows = conn.execute(
            sa.select(t).where(t.c.staff_id == staff_id).order_by(t.c.created_at.desc(), t.c.id)
        ).fetchall()
    return [_token(r) for r in rows]


def revoke_token(services: Services, staff_id: str, token_id: str) -> ApiToken:
    """Revoke one of ``staff_id``'s own tokens."""
    t = staff_tokens
    now = services.clock()

    def work(conn: sa.Connection) -> ApiToken:
        row = conn.execute(sa.select(t).where(t.c.id == token_id, t.c.staff_id == staff_id)).first()
        if row is None:
            raise NotFoundError(f"you hold no token {token_id!r}")
        if row.revoked_at is not None:
            raise ConflictError(f"token {token_id!r} is revoked already")
        conn.execute(t.update().where(t.c.id == token_id).values(revoked_at=now))
        return _token(conn.execute(sa.select(t).where(t.c.id == token_id)).one())

    return services.store.write(work)
