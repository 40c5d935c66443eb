"""The staff registry: who works for the platform, in which roles, and where.

Roles come from the policy pack (``roles.toml``); where someone is located matters because
nobody located in the requesting state may approve an effect on a subject outside it. A use-case
that a person performs names that person by staff id, and the service reads their roles and
location from this registry: a caller cannot claim a role it was not given.

==============================  ========================================================
use-case                        event (one per role for a registration)
==============================  ========================================================
:func:`register_staff`          ``staff.role_granted`` for each role
:func:`grant_role`              ``staff.role_granted``
:func:`revoke_role`             ``staff.role_revoked``
==============================  ========================================================

Managing staff takes the ``staff.manage`` permission (the ``admin`` role). The very first
person registered in an empty registry needs nobody's permission (``by=None``), so that a
deployment can be bootstrapped; the log shows that registration's grantor as ``bootstrap``.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from custodes.events import STAFF_ROLE_GRANTED, STAFF_ROLE_REVOKED
from custodes.model import Staff, check_token, format_staff, parse_staff
from custodes.policy import authorize
from custodes.store.demand_tables import staff as staff_table

from . import Services, record

__all__ = [
    "BOOTSTRAP",
    "get_staff",
    "grant_role",
    "list_staff",
    "load_staff",
    "permit",
    "register_staff",
    "revoke_role",
]

BOOTSTRAP = "bootstrap"
"""The grantor recorded for the first registration of an empty registry."""


def load_staff(conn: Connection, staff_id: str) -> Staff:
    """The registered staff member ``staff_id``; ``ForbiddenError`` if nobody is registered
    under it (an unknown person is never allowed to act)."""
    raw = conn.execute(
        sa.select(staff_table.c.record).where(staff_table.c.id == staff_id)
    ).scalar_one_or_none()
    if raw is None:
        raise ForbiddenError(f"{staff_id!r} is not registered staff", staff=staff_id)
    return parse_staff(json.loads(raw))


def permit(services: Services, staff: Staff, action: str) -> None:
    """Return if the pack lets ``staff`` perform ``action``; else ``ForbiddenError``."""
    authorize(services.pack, staff, action).check()


def get_staff(services: Services, staff_id: str) -> Staff:
    """One registered staff member (``NotFoundError`` if there is none)."""
    with services.store.read() as conn:
        try:
            return load_staff(conn, staff_id)
        except ForbiddenError:
            raise NotFoundError(f"no staff member {staff_id!r}", staff=staff_id) from None


def list_staff(services: Services) -> list[Staff]:
    """Every registered staff member, by id."""
    with services.store.read() as conn:
        rows = conn.execute(sa.select(staff_table.c.record).order_by(staff_table.c.id))
        return [parse_staff(json.loads(r[0])) for r in rows]


def _check_roles(services: Services, roles: frozenset[str]) -> None:
    for role in sorted(roles):
        check_token(role, "role")
        if role not in services.pack.tables.roles:
            raise InputError(f"the policy pack defines no role {role!r}", role=role)


def _manager(services: Services, conn: Connection, by: str | None) -> str:
    """The grantor's id after checking they may manage staff (or the bootstrap case)."""
    if by is None:
        count = conn.execute(sa.select(sa.func.count()).select_from(staff_table)).scalar_one()
        if count:
            raise ForbiddenError("only an administrator registers staff once anyone is registered")
        return BOOTSTRAP
    permit(services, load_staff(conn, by), "staff.manage")
    return by


def _save(conn: Connection, member: Staff, services: Services, *, new: bool) -> None:
    now = services.clock()
    doc = json.dumps(format_staff(member), sort_keys=True)
    if new:
        conn.execute(
            staff_table.insert().values(
                id=member.id,
                location=member.location,
                record=doc,
                registered_at=now,
                updated_at=now,
            )
        )
    else:
        conn.execute(
            staff_table.update()
            .where(staff_table.c.id == member.id)
            .values(location=member.location, record=doc, updated_at=now)
        )


def register_staff(services: Services, member: Staff, *, by: str | None) -> list[int]:
    """Register ``member`` with their roles and location; returns the log indexes.

    Logs one ``staff.role_granted`` per role (a registration names at least one role).
    """
    if not member.roles:
        raise InputError("a staff member is registered with at least one role")
    _check_roles(services, member.roles)

    def work(conn: Connection) -> list[int]:
        grantor = _manager(services, conn, by)
        exists = conn.execute(
            sa.select(staff_table.c.id).where(staff_table.c.id == member.id)
        ).first()
        if exists is not None:
            raise ConflictError(f"staff member {member.id!r} is already registered")
        _save(conn, member, services, new=True)
        return [
            record(
                conn,
                services,
                STAFF_ROLE_GRANTED,
                facts={"role": role},
                private={"staff": member.id, "grantor": grantor},
            )
            for role in sorted(member.roles)
        ]

    return services.write(work)


def grant_role(services: Services, staff_id: str, role: str, *, by: str) -> int:
    """Give ``staff_id`` the pack role ``role``; logs ``staff.role_granted``."""
    _check_roles(services, frozenset({role}))

    def work(conn: Connection) -> int:
        grantor = _manager(services, conn, by)
        member = load_staff(conn, staff_id)
        if role in member.roles:
            raise ConflictError(f"{staff_id!r} already holds the role {role!r}")
        _save(conn, Staff(member.id, member.roles | {role}, member.location), services, new=False)
        return record(
            conn,
            services,
            STAFF_ROLE_GRANTED,
            facts={"role": role},
            private={"staff": staff_id, "grantor": grantor},
        )

    return services.write(work)


def revoke_role(services: Services, staff_id: str, role: str, *, by: str) -> int:
    """Take the role ``role`` away from ``staff_id``; logs ``staff.role_revoked``."""

    def work(conn: Connection) -> int:
        grantor = _manager(services, conn, by)
        member = load_staff(conn, staff_id)
        if role not in member.roles:
            raise ConflictError(f"{staff_id!r} does not hold the role {role!r}")
        _save(conn, Staff(member.id, member.roles - {role}, member.location), services, new=False)
        return record(
            conn,
            services,
            STAFF_ROLE_REVOKED,
            facts={"role": role},
            private={"staff": staff_id, "grantor": grantor},
        )

    return services.write(work)
