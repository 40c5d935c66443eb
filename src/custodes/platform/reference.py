"""The reference platform: a :class:`~custodes.platform.adapter.PlatformAdapter` over the
SQLite data set of :mod:`custodes.platform.dataset`.

>>> import tempfile, pathlib
>>> from custodes.platform import FIXTURES, build_reference_platform
>>> path = pathlib.Path(tempfile.mkdtemp()) / "platform.db"
>>> _ = build_reference_platform(path, accounts=200, region_accounts=50)
>>> with ReferencePlatform(path) as platform:
...     s = platform.subject(FIXTURES.tiananmen_meetings[0])
>>> s.jurisdiction, s.data_region, sorted({place[:2] for place in s.affected})
('US-NY', 'US', ['AU', 'CA', 'CN', 'GB', 'HK', 'TW', 'US'])
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from types import TracebackType

from custodes.errors import ConfigError, ConflictError, InputError, NotFoundError
from custodes.model import (
    DataCategory,
    RestrictionAction,
    Subject,
    Target,
    TargetKind,
    TimeRange,
)

from .adapter import AppliedRestriction, HeldEvidence, Hold, Notice, Records, Row
from .dataset import stamp

__all__ = ["ReferencePlatform"]

_C = DataCategory
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# (target kind, category) -> (query, time column or None). Every query takes the target id.
_READS: dict[tuple[TargetKind, DataCategory], tuple[str, str | None]] = {
    (TargetKind.ACCOUNT, _C.SUBSCRIBER_INFO): (
        "SELECT id, name, email, jurisdiction, account_type, created_at, status "
        "FROM accounts WHERE id = ?", None),
    (TargetKind.ACCOUNT, _C.IP_SESSION_LOGS): (
        "SELECT started_at, ended_at, ip, country, user_agent FROM sessions "
        "WHERE account_id = ?", "started_at"),
    (TargetKind.ACCOUNT, _C.PAYMENT_RECORDS): (
        "SELECT paid_at, amount_cents, currency, card_last4 FROM payments "
        "WHERE account_id = ?", "paid_at"),
    (TargetKind.ACCOUNT, _C.MEETING_METADATA): (
        "SELECT m.id, m.topic, m.scheduled_at, m.duration_minutes, m.status, "
        "(SELECT count(*) FROM participants p WHERE p.meeting_id = m.id) AS participants "
        "FROM meetings m WHERE m.host_id = ?", "m.scheduled_at"),
    (TargetKind.ACCOUNT, _C.PARTICIPANT_LIST): (
        "SELECT p.meeting_id, p.display_name, a.email, p.jurisdiction, p.joined_at, p.left_at, "
        "p.ip FROM participants p JOIN meetings m ON m.id = p.meeting_id "
        "LEFT JOIN accounts a ON a.id = p.account_id WHERE m.host_id = ?", "p.joined_at"),
    (TargetKind.ACCOUNT, _C.CONTENT): (
        "SELECT id, kind, title, created_at, size_bytes, sha256, status FROM content "
        "WHERE owner_id = ?", "created_at"),
    (TargetKind.MEETING, _C.SUBSCRIBER_INFO): (
        "SELECT a.id, a.name, a.email, a.jurisdiction, a.account_type, a.created_at, a.status "
        "FROM accounts a JOIN meetings m ON m.host_id = a.id WHERE m.id = ?", None),
    (TargetKind.MEETING, _C.MEETING_METADATA): (
        "SELECT m.id, m.topic, m.scheduled_at, m.duration_minutes, m.status, "
        "(SELECT count(*) FROM participants p WHERE p.meeting_id = m.id) AS participants "
        "FROM meetings m WHERE m.id = ?", "m.scheduled_at"),
    (TargetKind.MEETING, _C.PARTICIPANT_LIST): (
        "SELECT p.meeting_id, p.display_name, a.email, p.jurisdiction, p.joined_at, p.left_at, "
        "p.ip FROM participants p LEFT JOIN accounts a ON a.id = p.account_id "
        "WHERE p.meeting_id = ?", "p.joined_at"),
    (TargetKind.MEETING, _C.CONTENT): (
        "SELECT id, kind, title, created_at, size_bytes, sha256, status FROM content "
        "WHERE meeting_id = ?", "created_at"),
    (TargetKind.CONTENT, _C.SUBSCRIBER_INFO): (
        "SELECT a.id, a.name, a.email, a.jurisdiction, a.account_type, a.created_at, a.status "
        "FROM accounts a JOIN content c ON c.owner_id = a.id WHERE c.id = ?", None),
    (TargetKind.CONTENT, _C.CONTENT): (
        "SELECT id, kind, title, created_at, size_bytes, sha256, status FROM content "
        "WHERE id = ?", "created_at"),
}  # fmt: skip

# target kind -> (the column holding the target's id, the tables joining it to its holder)
_HOLDERS: dict[TargetKind, tuple[str, str]] = {
    TargetKind.ACCOUNT: ("a.id", "accounts a"),
    TargetKind.MEETING: ("m.id", "accounts a JOIN meetings m ON a.id = m.host_id"),
    TargetKind.CONTENT: ("c.id", "accounts a JOIN content c ON a.id = c.owner_id"),
}
_OWNER = {
    kind: f"SELECT a.id, a.jurisdiction, a.data_region, a.account_type FROM {tables} "
    f"WHERE {key} = ?"
    for kind, (key, tables) in _HOLDERS.items()
}

# target kind -> who takes part where the target lives (meeting id, then target id).
_PLACES: dict[TargetKind, str] = {
    TargetKind.MEETING: "SELECT DISTINCT p.meeting_id, p.jurisdiction FROM participants p "
    "WHERE p.meeting_id IN ({})",
    TargetKind.CONTENT: "SELECT DISTINCT c.id, p.jurisdiction FROM content c "
    "JOIN participants p ON p.meeting_id = c.meeting_id WHERE c.id IN ({})",
}
_BATCH = 500
"""Targets per batched look-up: well under SQLite's smallest limit on bound parameters."""
_CATEGORIES = {kind: [c for (k, c) in _READS if k is kind] for kind in TargetKind}
"""For each target kind, the categories of :data:`_READS` in order."""


@lru_cache(maxsize=256)
def _subjects_sql(kind: TargetKind, n: int) -> str:
    """One query for ``n`` targets of ``kind``: each known target's id, its holder's place,
    data region and account type, then one 0/1 column per category of :data:`_READS` (in
    that order) saying whether such records exist; unknown targets give no row. The
    existence tests are the very queries :meth:`ReferencePlatform.read` runs, correlated
    with the wanted id."""
    key, tables = _HOLDERS[kind]
    exists = "".join(
        f", EXISTS ({sql.replace('?', 'wanted.ident')})"
        for (k, _), (sql, _) in _READS.items()
        if k is kind
    )
    values = ", ".join(["(?)"] * n)
    return (
        f"WITH wanted(ident) AS (VALUES {values}) "
        f"SELECT wanted.ident, a.jurisdiction, a.data_region, a.account_type{exists} "
        f"FROM {tables} JOIN wanted ON {key} = wanted.ident"
    )


# action -> (target kind, table, column, value while restricted, value when lifted)
_A, _M, _K = TargetKind.ACCOUNT, TargetKind.MEETING, TargetKind.CONTENT
_EFFECTS: dict[RestrictionAction, tuple[TargetKind, str, str, str, str]] = {
    RestrictionAction.END_MEETING: (_M, "meetings", "status", "ended", "scheduled"),
    RestrictionAction.SUSPEND_ACCOUNT: (_A, "accounts", "status", "suspended", "active"),
    RestrictionAction.QUARANTINE_ACCOUNT: (_A, "accounts", "status", "quarantined", "active"),
    RestrictionAction.REMOVE_CONTENT: (_K, "content", "status", "removed", "visible"),
    RestrictionAction.GEO_RESTRICT_CONTENT: (_K, "content", "restricted_in", "", ""),
}


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


class ReferencePlatform:
    """The built-in platform. Thread-safe; every change is one SQLite transaction."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no reference platform at {path}; build it first")
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != "1":
            raise ConfigError(f"{path} is not a reference platform database of this version")
        epoch = _time(meta["epoch"])
        assert epoch is not None
        self.epoch: datetime = epoch
        """The data set's "now": every generated time lies before it."""

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReferencePlatform:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _one(self, sql: str, *args: object) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- screening ---------------------------------------------------------------------

    def subject(self, target: Target) -> Subject | None:
        if target.is_selector:
            return None
        owner = self._one(_OWNER[target.kind], target.id)
        if owner is None:
            return None
        records = {c for (kind, c), (sql, _) in _READS.items()
                   if kind is target.kind and self._has(sql, target.id)}  # fmt: skip
        affected: set[str] = set()
        if target.kind is TargetKind.MEETING:
            affected = self._places("WHERE meeting_id = ?", target.id)
        elif target.kind is TargetKind.CONTENT:
            affected = self._places(
                "WHERE meeting_id = (SELECT meeting_id FROM content WHERE id = ?)", target.id
            )
        return Subject(
            target,
            owner["jurisdiction"],
            owner["data_region"],
            owner["account_type"],
            frozenset(records),
            frozenset(affected),
        )

    def subjects(self, targets: Collection[Target]) -> dict[Target, Subject | None]:
        """:meth:`subject` for many targets at once: a couple of queries per target kind
        and batch of :data:`_BATCH`, instead of up to nine per target."""
        out: dict[Target, Subject | None] = dict.fromkeys(targets)
        wanted: dict[TargetKind, dict[str, Target]] = {}
        for target in out:
            if not target.is_selector and target.kind in _HOLDERS:
                wanted.setdefault(target.kind, {})[target.id] = target
        for kind, named in wanted.items():
            idents = list(named)
            for i in range(0, len(idents), _BATCH):
                for subject in self._batch(kind, idents[i : i + _BATCH], named):
                    out[subject.target] = subject
        return out

    def _batch(
        self, kind: TargetKind, idents: list[str], named: dict[str, Target]
    ) -> list[Subject]:
        categories = _CATEGORIES[kind]
        places: dict[str, set[str]] = {}
        with self._lock:
            rows = self._db.execute(_subjects_sql(kind, len(idents)), idents).fetchall()
            if kind in _PLACES:
                marks = ", ".join(["?"] * len(idents))
                for ident, place in self._db.execute(_PLACES[kind].format(marks), idents):
                    places.setdefault(ident, set()).add(place)
        return [
            Subject(
                named[row[0]],
                row[1],
                row[2],
                row[3],
                frozenset(c for c, has in zip(categories, row[4:], strict=True) if has),
                frozenset(places.get(row[0], ())),
            )
            for row in rows
        ]

    def _has(self, sql: str, ident: str) -> bool:
        row = self._one(f"SELECT EXISTS ({sql})", ident)
        return row is not None and row[0] == 1

    def _places(self, where: str, ident: str) -> set[str]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT DISTINCT jurisdiction FROM participants {where}", (ident,)
            )
            return {r[0] for r in rows}

    def evidence(self, ref: str) -> HeldEvidence | None:
        row = self._one("SELECT * FROM evidence WHERE id = ?", ref)
        if row is None:
            return None
        captured = _time(row["captured_at"])
        assert captured is not None
        target = Target(TargetKind(row["target_kind"]), row["target_id"])
        return HeldEvidence(row["id"], row["sha256"], target, row["kind"], captured)

    # -- reading -----------------------------------------------------------------------

    def read(
        self, target: Target, categories: Collection[DataCategory], time_range: TimeRange | None
    ) -> Records:
        if self.subject(target) is None:
            raise NotFoundError(f"the platform has no {target}")
        rows: dict[DataCategory, tuple[Row, ...]] = {}
        for category in sorted(set(categories)):
            query = _READS.get((target.kind, category))
            if query is None:
                rows[category] = ()
                continue
            sql, column = query
            args: list[object] = [target.id]
            if column is not None and time_range is not None:
                sql += f" AND {column} >= ? AND {column} < ?"
                args += [stamp(time_range.start), stamp(time_range.end)]
            if column is not None:
                sql += f" ORDER BY {column}"
            with self._lock:
                found = self._db.execute(sql, args).fetchall()
            rows[category] = tuple(dict(r) for r in found)
        return Records(target, rows)

    # -- acting ------------------------------------------------------------------------

    def _next_id(self, db: sqlite3.Connection, table: str, prefix: str) -> str:
        n = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return f"{prefix}-{n + 1:06d}"

    def apply_restriction(
        self,
        target: Target,
        action: RestrictionAction,
        *,
        territories: tuple[str, ...],
        until: datetime | None,
        reference: str,
        at: datetime,
    ) -> AppliedRestriction:
        kind, table, column, value, _ = _EFFECTS[action]
        if target.kind is not kind:
            raise InputError(f"{action.value} applies to a {kind.value}, not to {target}")
        if action is RestrictionAction.GEO_RESTRICT_CONTENT:
            if not territories:
                raise InputError("a geo-restriction names its territories")
            value = ",".join(sorted(territories))
        with self._write() as db:
            if db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (target.id,)).fetchone() is None:
                raise NotFoundError(f"the platform has no {target}")
            ident = self._next_id(db, "restrictions", "r")
            db.execute(
                "INSERT INTO restrictions VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (ident, target.kind.value, target.id, action.value, ",".join(territories),
                 stamp(at), stamp(until) if until else None, reference),
            )  # fmt: skip
            db.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (value, target.id))
        return AppliedRestriction(ident, target, action, territories, at, until, reference)

    def lift_restriction(self, restriction_id: str, *, at: datetime) -> None:
        with self._write() as db:
            row = db.execute(
                "SELECT * FROM restrictions WHERE id = ?", (restriction_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no restriction {restriction_id}")
            if row["lifted_at"] is not None:
                raise ConflictError(f"restriction {restriction_id} was already lifted")
            _, table, column, _, lifted = _EFFECTS[RestrictionAction(row["action"])]
            db.execute("UPDATE restrictions SET lifted_at = ? WHERE id = ?", (stamp(at), row["id"]))
            db.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (lifted, row["target_id"]))

    def place_hold(
        self,
        target: Target,
        categories: Collection[DataCategory],
        *,
        until: datetime,
        reference: str,
        at: datetime,
    ) -> Hold:
        if self.subject(target) is None:
            raise NotFoundError(f"the platform has no {target}")
        kept = tuple(sorted(set(categories)))
        with self._write() as db:
            ident = self._next_id(db, "holds", "h")
            db.execute(
                "INSERT INTO holds VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                (ident, target.kind.value, target.id, ",".join(c.value for c in kept), stamp(at),
                 stamp(until), reference),
            )  # fmt: skip
        return Hold(ident, target, kept, at, until, reference)

    def release_hold(self, hold_id: str, *, at: datetime) -> None:
        with self._write() as db:
            row = db.execute("SELECT released_at FROM holds WHERE id = ?", (hold_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no hold {hold_id}")
            if row["released_at"] is not None:
                raise ConflictError(f"hold {hold_id} was already released")
            db.execute("UPDATE holds SET released_at = ? WHERE id = ?", (stamp(at), hold_id))

    def send_notice(
        self, target: Target, *, text: str, reference: str, at: datetime
    ) -> tuple[Notice, ...]:
        owner = None if target.is_selector else self._one(_OWNER[target.kind], target.id)
        if owner is None:
            raise NotFoundError(f"the platform has no {target}")
        with self._write() as db:
            ident = self._next_id(db, "notices", "n")
            db.execute(
                "INSERT INTO notices VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ident, owner["id"], target.kind.value, target.id, reference, stamp(at), text),
            )
        return (Notice(ident, owner["id"], target, reference, at),)

    # -- inspection (tests, demo) --------------------------------------------------------

    def status(self, target: Target) -> str:
        """The platform's current status of ``target`` (``active``, ``ended``, ``removed``…)."""
        table = {TargetKind.ACCOUNT: "accounts", TargetKind.MEETING: "meetings",
                 TargetKind.CONTENT: "content"}.get(target.kind)  # fmt: skip
        row = self._one(f"SELECT status FROM {table} WHERE id = ?", target.id) if table else None
        if row is None:
            raise NotFoundError(f"the platform has no {target}")
        return str(row["status"])

    def count(self, table: str) -> int:
        """Rows in one of the data set's tables."""
        if table not in {"accounts", "sessions", "payments", "meetings", "participants",
                         "content", "evidence", "restrictions", "holds", "notices"}:  # fmt: skip
            raise InputError(f"no table {table}")
        row = self._one(f"SELECT count(*) FROM {table}")
        return int(row[0]) if row else 0

    def jurisdictions(self) -> dict[str, int]:
        """Accounts per country (ISO 3166-1 part of their jurisdiction)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT substr(jurisdiction, 1, 2) AS c, count(*) FROM accounts "
                "GROUP BY c ORDER BY c"
            ).fetchall()
        return {r[0]: r[1] for r in rows}
