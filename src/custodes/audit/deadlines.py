"""Deadlines and notice: emergencies followed up in time, users told once gags end (F7).

:class:`DeadlineCheck`
    An emergency disclosure (``demand_kind`` ``emergency_disclosure``) executed at time *t*
    needs its ``emergency.follow_up_completed`` (second review and legal process) by
    *t* + :data:`FOLLOW_UP` (48 hours): later is ``follow_up_late``; none by the audit's
    *as of* time is ``follow_up_missing``. Every ``clock.overdue`` the platform logged about
    itself is ``deadline_missed``.

:class:`NoticeCheck`
    A ``notice.sent`` or ``demand.notified`` dated before the ``gag_until`` of the demand's
    ``notice.deferred`` is ``notice_during_gag``. A gag that ended more than
    :data:`NOTICE_GRACE` (30 days) before *as of* with no notice after it is
    ``notice_overdue``. A demand that delivered data or restricted someone and was closed
    with neither a notice nor a dated deferral is ``notice_missing``. A deferral whose end
    date is not a real date (``2026-02-30``, or digits other than ASCII, which the fact's
    shape lets through) is no dated deferral, and the report notes it.

Times are the events' own (UTC, whole seconds), so a finding holds whatever the log says.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ClassVar

from custodes.audit.approvals import EMERGENCY
from custodes.audit.checks import Check
from custodes.audit.findings import Finding
from custodes.events import (
    CLOCK_OVERDUE,
    DEMAND_AMENDED,
    DEMAND_CLOSED,
    DEMAND_EXECUTED,
    DEMAND_NOTIFIED,
    DEMAND_RECEIVED,
    EMERGENCY_FOLLOW_UP_COMPLETED,
    NOTICE_DEFERRED,
    NOTICE_SENT,
    PRODUCTION_DELIVERED,
    RESTRICTION_APPLIED,
    Event,
)

__all__ = ["FOLLOW_UP", "NOTICE_GRACE", "DeadlineCheck", "NoticeCheck"]

#: Time from an emergency disclosure to its second review and legal process.
FOLLOW_UP = timedelta(hours=48)
#: Time from the end of a gag order by which affected users must have been told.
NOTICE_GRACE = timedelta(days=30)


@dataclass(slots=True)
class _Emergency:
    emergency: bool = False
    executed: tuple[int, datetime] | None = None
    followed_up: bool = False


class DeadlineCheck(Check):
    """Emergency follow-ups arrive on time; the platform's own overdue alerts are findings."""

    name = "deadlines"
    methods: ClassVar[Mapping[str, str]] = {
        CLOCK_OVERDUE: "_overdue",
        DEMAND_RECEIVED: "_received",
        DEMAND_AMENDED: "_received",
        DEMAND_EXECUTED: "_executed",
        EMERGENCY_FOLLOW_UP_COMPLETED: "_followed_up",
    }

    def __init__(self, follow_up: timedelta = FOLLOW_UP) -> None:
        self.follow_up = follow_up
        self._demands: defaultdict[str, _Emergency] = defaultdict(_Emergency)

    def _overdue(self, index: int, event: Event) -> Iterable[Finding]:
        demand = event.demand
        if demand is None:
            return ()
        clock, due = event.facts["clock"], event.facts["due_at"]
        detail = f"the platform logged that the {clock} clock of demand {demand} ran out at {due}"
        return [Finding("deadline_missed", detail, (index,), demand)]

    def _received(self, index: int, event: Event) -> Iterable[Finding]:
        if event.demand is not None:  # an amendment does not reset an execution already done
            self._demands[event.demand].emergency = event.facts.get("demand_kind") == EMERGENCY
        return ()

    def _executed(self, index: int, event: Event) -> Iterable[Finding]:
        if event.demand is not None:
            state = self._demands[event.demand]
            state.emergency = state.emergency or event.facts.get("demand_kind") == EMERGENCY
            if state.emergency and state.executed is None:
                state.executed = (index, event.time)
        return ()

    def _followed_up(self, index: int, event: Event) -> Iterable[Finding]:
        demand = event.demand
        if demand is None:
            return ()
        state = self._demands[demand]
        if state.followed_up:
            return ()
        state.followed_up = True
        if state.executed is not None and event.time > state.executed[1] + self.follow_up:
            executed, at = state.executed
            detail = (
                f"the emergency disclosure of demand {demand} at {at:%Y-%m-%d %H:%M} UTC "
                f"was followed up at {event.time:%Y-%m-%d %H:%M} UTC, after "
                f"{int(self.follow_up.total_seconds() // 3600)} hours"
            )
            return [Finding("follow_up_late", detail, (executed, index), demand)]
        return ()

    def finish(self, as_of: datetime) -> Iterable[Finding]:
        for demand, state in self._demands.items():
            if state.executed is None or state.followed_up:
                continue
            index, at = state.executed
            due = at + self.follow_up
            if as_of > due:
                detail = (
                    f"the emergency disclosure of demand {demand} was due its follow-up by "
                    f"{due:%Y-%m-%d %H:%M} UTC; none is logged"
                )
                yield Finding("follow_up_missing", detail, (index,), demand)


@dataclass(slots=True)
class _Notice:
    gag: tuple[int, date] | None = None
    notified: int | None = None
    affected: int | None = None


def _real_date(text: str) -> date | None:
    """The date ``text`` names, if it is a real one written with ASCII digits."""
    try:
        return date.fromisoformat(text) if text.isascii() else None
    except ValueError:
        return None


def _untold(state: _Notice) -> bool:
    """Users were affected, and neither told nor covered by a dated gag."""
    return state.affected is not None and state.notified is None and state.gag is None


class NoticeCheck(Check):
    """Users are told by default; a gag holds notice back only until its end date."""

    name = "notice"
    tallies = ("_undated",)
    methods: ClassVar[Mapping[str, str]] = {
        NOTICE_DEFERRED: "_deferred",
        NOTICE_SENT: "_notified",
        DEMAND_NOTIFIED: "_notified",
        PRODUCTION_DELIVERED: "_affected",
        RESTRICTION_APPLIED: "_affected",
        DEMAND_CLOSED: "_closed",
    }

    def __init__(self, grace: timedelta = NOTICE_GRACE) -> None:
        self.grace = grace
        self._demands: defaultdict[str, _Notice] = defaultdict(_Notice)
        self._undated: list[int] = []

    def _deferred(self, index: int, event: Event) -> Iterable[Finding]:
        if event.demand is not None:
            state = self._demands[event.demand]
            until = _real_date(str(event.facts["gag_until"]))
            if until is None:  # the fact's shape lets 2026-02-30 through: no dated gag
                self._undated.append(index)
            else:
                state.gag = (index, until)
        return ()

    def _notified(self, index: int, event: Event) -> Iterable[Finding]:
        demand = event.demand
        if demand is None:
            return ()
        state = self._demands[demand]
        state.notified = index
        if state.gag is not None and event.time.date() < state.gag[1]:
            detail = (
                f"users were notified about demand {demand} on {event.time:%Y-%m-%d}, "
                f"while its gag order ran until {state.gag[1]}"
            )
            return [Finding("notice_during_gag", detail, (state.gag[0], index), demand)]
        return ()

    def _affected(self, index: int, event: Event) -> Iterable[Finding]:
        if event.demand is not None:
            state = self._demands[event.demand]
            if state.affected is None:
                state.affected = index
        return ()

    def _closed(self, index: int, event: Event) -> Iterable[Finding]:
        demand = event.demand
        if demand is None:
            return ()
        state = self._demands[demand]
        if _untold(state):
            assert state.affected is not None
            detail = (
                f"demand {demand} affected users and was closed without a notice or a "
                "dated gag order"
            )
            return [Finding("notice_missing", detail, (state.affected, index), demand)]
        return ()

    def finish(self, as_of: datetime) -> Iterable[Finding]:
        for demand, state in self._demands.items():
            if state.gag is None:
                continue
            index, until = state.gag
            told_after = state.notified is not None and state.notified > index
            if not told_after and as_of.date() > until + self.grace:
                detail = (
                    f"the gag order on demand {demand} ended on {until}; no notice is logged "
                    f"{self.grace.days} days later"
                )
                yield Finding("notice_overdue", detail, (index,), demand)

    def notes(self) -> Iterable[str]:
        if self._undated:
            entries = ", ".join(map(str, self._undated[:10]))
            yield (
                f"notice: {len(self._undated)} gag order(s) name an end date that is not a "
                f"real date (entries {entries}); they were taken as no dated gag"
            )
