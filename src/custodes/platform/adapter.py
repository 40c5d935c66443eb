"""The adapter between custodes and the platform's users and data.

custodes never reaches into the platform's systems directly: it asks a
:class:`PlatformAdapter`. Screening asks only :meth:`~PlatformAdapter.subjects` (where each
person is, where their data is held, what exists) and :meth:`~PlatformAdapter.evidence`
(whether evidence is platform-held and what its hash is). Execution of an approved demand
reads exactly the categories and period approved (:meth:`~PlatformAdapter.read`), applies
or lifts restrictions, places or releases holds, and sends notices. Every effect names the
demand it serves (``reference``) and the time custodes gives it (``at``), so the platform's
own records line up with the log.

The built-in :class:`~custodes.platform.reference.ReferencePlatform` implements this over a
generated SQLite data set; an HTTP adapter for a real platform implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from custodes.model import DataCategory, RestrictionAction, Subject, Target, TimeRange

__all__ = [
    "AppliedRestriction",
    "HeldEvidence",
    "Hold",
    "Notice",
    "PlatformAdapter",
    "Records",
    "Row",
]

Row = Mapping[str, str | int | None]
"""One record: field name to value."""


@dataclass(frozen=True)
class Records:
    """What :meth:`PlatformAdapter.read` found for one target, category by category."""

    target: Target
    rows: Mapping[DataCategory, tuple[Row, ...]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """How many records in all."""
        return sum(len(r) for r in self.rows.values())


@dataclass(frozen=True)
class HeldEvidence:
    """A piece of evidence the platform itself holds, with the SHA-256 it was captured with."""

    ref: str
    sha256: str
    target: Target
    kind: str
    captured_at: datetime


@dataclass(frozen=True)
class AppliedRestriction:
    """A restriction in force: what, where (empty: everywhere), until when, for which demand."""

    id: str
    target: Target
    action: RestrictionAction
    territories: tuple[str, ...]
    applied_at: datetime
    until: datetime | None
    reference: str


@dataclass(frozen=True)
class Hold:
    """Records preserved for a demand until ``until``."""

    id: str
    target: Target
    categories: tuple[DataCategory, ...]
    placed_at: datetime
    until: datetime
    reference: str


@dataclass(frozen=True)
class Notice:
    """A notice delivered to one account holder about a demand."""

    id: str
    account: str
    target: Target
    reference: str
    sent_at: datetime


@runtime_checkable
class PlatformAdapter(Protocol):
    """What custodes needs from the platform. Unknown targets or ids raise
    :class:`~custodes.errors.NotFoundError`; acting twice (lifting a lifted restriction)
    raises :class:`~custodes.errors.ConflictError`."""

    def subject(self, target: Target) -> Subject | None:
        """Where the subject of ``target`` is, where its data is held, what records exist;
        None when the platform has no such thing (or ``target`` is a selector)."""
        ...

    def subjects(self, targets: Collection[Target]) -> dict[Target, Subject | None]:
        """:meth:`subject` for each of ``targets`` (every one a key of the answer), asked in
        as few round trips as the platform allows: screening asks for a demand's targets
        together."""
        ...

    def evidence(self, ref: str) -> HeldEvidence | None:
        """The platform-held evidence item ``ref``, if the platform holds one."""
        ...

    def read(
        self,
        target: Target,
        categories: Collection[DataCategory],
        time_range: TimeRange | None,
    ) -> Records:
        """The records of ``target`` in ``categories``, limited to ``time_range`` where a
        record has a time. Nothing else: scope is enforced here, not promised."""
        ...

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
        """Restrict ``target`` (only in ``territories`` for a geo-restriction)."""
        ...

    def lift_restriction(self, restriction_id: str, *, at: datetime) -> None:
        """End a restriction early, or when its duration runs out."""
        ...

    def place_hold(
        self,
        target: Target,
        categories: Collection[DataCategory],
        *,
        until: datetime,
        reference: str,
        at: datetime,
    ) -> Hold:
        """Preserve the records of ``target`` in ``categories`` until ``until``."""
        ...

    def release_hold(self, hold_id: str, *, at: datetime) -> None:
        """Release a hold."""
        ...

    def send_notice(
        self, target: Target, *, text: str, reference: str, at: datetime
    ) -> tuple[Notice, ...]:
        """Tell the account holders behind ``target`` (the account, a meeting's host, a
        content item's owner) about the demand; returns one notice per holder."""
        ...
