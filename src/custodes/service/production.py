"""Productions: the only code path that reads user data for an authority (invariant 5).

==============================  ==========================================================
use-case                        events
==============================  ==========================================================
:func:`register_recipient`      ``authority.key_added`` (the age key productions go to)
:func:`produce`                 ``production.delivered``, ``notice.deferred`` (gag),
                                ``demand.executed``; a hold turned into the production:
                                ``preservation.released``
:func:`download`                (see below)
==============================  ==========================================================

:func:`produce` takes an approved disclosure (or emergency disclosure), checks the custodian
(:func:`custodes.service.execution.check_custodian`), reads exactly the approved categories of
the approved subjects over the approved period (:func:`custodes.service.package.collect`),
packages them with a manifest of every record's SHA-256, and encrypts the package with age to
the recipient key registered for the authority, never to a key the custodian supplies. One
transaction then stores the sealed package, logs ``production.delivered`` (the categories and
the counts as facts, the manifest's SHA-256 and the recipient as commitments, which the
platform opens to an auditor), schedules the notice, and marks the demand executed.

``preserved`` names an earlier preservation demand whose holds the production takes over: once
the production is recorded, its holds on the produced subjects end (``produced``).

The authority fetches the sealed package through the signed API with :func:`download`; every
download is kept (``production_downloads``), with the authority and the time.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custodes.errors import ConflictError, ForbiddenError, NotFoundError
from custodes.events import AUTHORITY_KEY_ADDED, PRODUCTION_DELIVERED, PRODUCTION_DOWNLOADED
from custodes.model import DemandKind
from custodes.service import Services, record
from custodes.service.authorities import find_authority
from custodes.service.execution import (
    check_custodian,
    check_unchanged,
    release_holds,
    scope_for,
)
from custodes.service.lifecycle import db_time, log_event
from custodes.service.notices import plan_notice
from custodes.service.package import (
    ProductionScope,
    build_package,
    check_recipient,
    collect,
    seal_package,
)
from custodes.service.scope import ApprovedScope, mark_executed
from custodes.service.staff import load_staff, permit
from custodes.store.access_tables import (
    authority_recipients,
    production_downloads,
    productions,
    utc,
)

__all__ = [
    "Production",
    "download",
    "get_production",
    "produce",
    "productions_of",
    "recipient_of",
    "register_recipient",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Production:
    """A production as stored (without the sealed package itself)."""

    id: str
    demand_id: str
    authority_id: str
    recipient: str
    manifest_sha256: str
    package_sha256: str
    record_count: int
    target_count: int
    categories: tuple[str, ...]
    created_at: datetime
    event: int
    """Log index of its ``production.delivered``."""


def register_recipient(services: Services, authority_id: str, recipient: str, *, by: str) -> int:
    """Register (or replace) the age X25519 recipient that productions for
    ``authority_id`` are encrypted to; needs ``authority.manage``. Logs
    ``authority.key_added`` with the key committed as ``age:<recipient>``."""
    check_recipient(recipient)

    def work(conn: Connection) -> int:
        permit(services, load_staff(conn, by), "authority.manage")
        if find_authority(conn, authority_id) is None:
            raise NotFoundError(f"no registered authority {authority_id!r}")
        t = authority_recipients
        conn.execute(t.delete().where(t.c.authority_id == authority_id))
        conn.execute(
            t.insert().values(
                authority_id=authority_id,
                recipient=recipient,
                registered_at=db_time(services.clock()),
                registered_by=by,
            )
        )
        private = {"authority": authority_id, "key": f"age:{recipient}", "staff": by}
        return record(conn, services, AUTHORITY_KEY_ADDED, private=private)

    return services.write(work)


def recipient_of(services: Services, authority_id: str) -> str:
    """The age recipient registered for ``authority_id`` (``ConflictError`` if none)."""
    t = authority_recipients
    with services.store.read() as conn:
        found = conn.execute(
            sa.select(t.c.recipient).where(t.c.authority_id == authority_id)
        ).scalar_one_or_none()
    if found is None:
        raise ConflictError(
            f"authority {authority_id!r} has no registered age recipient: nothing can be "
            "produced for it until one is registered",
            authority=authority_id,
        )
    return str(found)


def _done(scope: ApprovedScope, count: int) -> str:
    cats = ", ".join(c.value.replace("_", " ") for c in scope.categories)
    return f"{count} records ({cats}) were disclosed to the authority, encrypted to its key"


def produce(
    services: Services, demand_id: str, *, by: str, preserved: str | None = None
) -> Production:
    """Produce the approved data of ``demand_id`` for its authority (see the module)."""
    scope = scope_for(services, demand_id, DemandKind.DISCLOSURE, DemandKind.EMERGENCY_DISCLOSURE)
    check_custodian(services, scope, by)
    recipient = recipient_of(services, scope.authority.id)
    wanted = ProductionScope(
        demand_id, scope.authority.id, scope.targets, scope.categories, scope.time_range
    )
    records, withheld = collect(services.platform, wanted)
    created = services.clock().replace(microsecond=0)
    pid = "p_" + secrets.token_hex(12)
    package = build_package(pid, wanted, records, created)
    sealed = seal_package(package, recipient)
    made = Production(
        id=pid,
        demand_id=demand_id,
        authority_id=scope.authority.id,
        recipient=recipient,
        manifest_sha256=package.manifest_sha256,
        package_sha256=hashlib.sha256(sealed).hexdigest(),
        record_count=len(records),
        target_count=len(scope.targets),
        categories=tuple(c.value for c in scope.categories),
        created_at=created,
        event=-1,
    )
    made = services.write(lambda conn: _record(conn, services, scope, made, sealed, by=by))
    log.info(
        "production delivered demand=%s records=%d withheld=%d",
        demand_id,
        made.record_count,
        withheld,
    )
    if preserved is not None:
        release_holds(services, preserved, outcome="produced", by=by, targets=scope.targets)
    return made


def _record(
    conn: Connection,
    services: Services,
    scope: ApprovedScope,
    made: Production,
    sealed: bytes,
    *,
    by: str,
) -> Production:
    """The production's transaction: the scope still holds; its event, the sealed package,
    the notice and the demand's execution."""
    check_unchanged(conn, scope)
    facts = {
        "categories": list(made.categories),
        "target_count": made.target_count,
        "record_count": made.record_count,
    }
    private = {"production_sha256": made.manifest_sha256, "recipient": made.recipient}
    index = log_event(
        conn, services, made.demand_id, PRODUCTION_DELIVERED, facts=facts, private=private, staff=by
    )
    conn.execute(
        productions.insert().values(
            id=made.id,
            demand_id=made.demand_id,
            authority_id=made.authority_id,
            recipient=made.recipient,
            manifest_sha256=made.manifest_sha256,
            package_sha256=made.package_sha256,
            record_count=made.record_count,
            target_count=made.target_count,
            categories=",".join(made.categories),
            created_at=db_time(made.created_at),
            event_idx=index,
            package=sealed,
        )
    )
    plan_notice(conn, services, scope, done=_done(scope, made.record_count))
    mark_executed(conn, services, made.demand_id, by=by)
    return replace(made, event=index)


def _production(row: Any) -> Production:
    return Production(
        id=row.id,
        demand_id=row.demand_id,
        authority_id=row.authority_id,
        recipient=row.recipient,
        manifest_sha256=row.manifest_sha256,
        package_sha256=row.package_sha256,
        record_count=row.record_count,
        target_count=row.target_count,
        categories=tuple(row.categories.split(",")),
        created_at=utc(row.created_at),
        event=int(row.event_idx),
    )


_COLUMNS = [c for c in productions.c if c.name != "package"]


def get_production(services: Services, production_id: str) -> Production:
    """One production (``NotFoundError`` if none)."""
    with services.store.read() as conn:
        row = conn.execute(sa.select(*_COLUMNS).where(productions.c.id == production_id)).first()
    if row is None:
        raise NotFoundError(f"no production {production_id!r}", production=production_id)
    return _production(row)


def productions_of(services: Services, demand_id: str) -> list[Production]:
    """The productions of ``demand_id``, oldest first."""
    with services.store.read() as conn:
        rows = conn.execute(
            sa.select(*_COLUMNS)
            .where(productions.c.demand_id == demand_id)
            .order_by(productions.c.created_at)
        ).fetchall()
    return [_production(r) for r in rows]


def download(services: Services, production_id: str, *, authority_id: str) -> bytes:
    """The sealed package of ``production_id`` for the authority it was made for (the web
    layer has verified the request's signature); every download is kept."""

    def work(conn: Connection) -> bytes:
        row = conn.execute(
            sa.select(
                productions.c.authority_id,
                productions.c.package,
                productions.c.demand_id,
                productions.c.package_sha256,
                productions.c.record_count,
            ).where(productions.c.id == production_id)
        ).first()
        if row is None:
            raise NotFoundError(f"no production {production_id!r}", production=production_id)
        if row.authority_id != authority_id:
            raise ForbiddenError("a production is downloaded only by the authority it is for")
        inserted = conn.execute(
            production_downloads.insert().values(
                production_id=production_id, at=db_time(services.clock())
            )
        ).inserted_primary_key
        assert inserted is not None
        index = log_event(
            conn,
            services,
            row.demand_id,
            PRODUCTION_DOWNLOADED,
            facts={"record_count": row.record_count},
            private={"production_sha256": row.package_sha256, "authority": authority_id},
        )
        conn.execute(
            production_downloads.update()
            .where(production_downloads.c.id == inserted[0])
            .values(event_idx=index)
        )
        return bytes(row.package)

    return services.write(work)
