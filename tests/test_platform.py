"""The reference platform: deterministic data, its fixtures, reading in scope, acting."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from custodes.errors import ConfigError, ConflictError, InputError, NotFoundError
from custodes.model import DataCategory, RestrictionAction, Target, TargetKind, TimeRange
from custodes.platform import (
    EPOCH,
    FIXTURES,
    PlatformAdapter,
    ReferencePlatform,
    build_reference_platform,
)


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        lines = list(db.iterdump())
    db.close()
    return lines


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default data set: 3,000 accounts, the fixtures and 23,000 accounts of one province."""
    path = tmp_path_factory.mktemp("platform") / "platform.db"
    build_reference_platform(path)
    return path


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[ReferencePlatform]:
    path = tmp_path / "small.db"
    build_reference_platform(path, accounts=300, region_accounts=40)
    with ReferencePlatform(path) as p:
        yield p


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    build_reference_platform(a, seed=7, accounts=400, region_accounts=100)
    build_reference_platform(b, seed=7, accounts=400, region_accounts=100)
    build_reference_platform(c, seed=8, accounts=400, region_accounts=100)
    assert _dump(a) == _dump(b)
    assert _dump(a) != _dump(c)


def test_build_refuses_to_replace_without_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    build_reference_platform(path, accounts=50, region_accounts=0)
    with pytest.raises(ConfigError, match="exists"):
        build_reference_platform(path, accounts=50, region_accounts=0)
    build_reference_platform(path, accounts=60, region_accounts=0, overwrite=True)
    with pytest.raises(ConfigError, match="no reference platform"):
        ReferencePlatform(tmp_path / "missing.db")


def test_the_default_data_set_is_realistic(full: Path) -> None:
    with ReferencePlatform(full) as p:
        assert isinstance(p, PlatformAdapter)
        countries = p.jurisdictions()
        assert len(countries) >= 30
        assert countries["CN"] >= 23_000
        assert p.count("sessions") > 3000
        assert p.count("content") > 500
        assert p.count("participants") > p.count("meetings") * 2
    with sqlite3.connect(full) as db:
        crossing = db.execute(
            "SELECT count(*) FROM meetings m JOIN accounts h ON h.id = m.host_id "
            "WHERE EXISTS (SELECT 1 FROM participants p WHERE p.meeting_id = m.id "
            "AND substr(p.jurisdiction, 1, 2) != substr(h.jurisdiction, 1, 2))"
        ).fetchone()[0]
        addresses = [r[0] for r in db.execute("SELECT ip FROM sessions LIMIT 500")]
        emails = [r[0] for r in db.execute("SELECT email FROM accounts LIMIT 500")]
    db.close()
    assert crossing > 50, "hosts and participants cross borders"
    assert all(a.startswith(("100.", "2001:db8:")) for a in addresses)
    assert all(e.rsplit("@", 1)[1].startswith("example.") for e in emails)


def test_tiananmen_fixtures(full: Path) -> None:
    with ReferencePlatform(full) as p:
        for meeting, host, state in zip(
            FIXTURES.tiananmen_meetings,
            FIXTURES.tiananmen_hosts,
            FIXTURES.tiananmen_host_states,
            strict=True,
        ):
            subject = p.subject(meeting)
            assert subject is not None
            assert (subject.jurisdiction, subject.data_region) == (state, "US")
            countries = {place[:2] for place in subject.affected}
            assert set(FIXTURES.tiananmen_participant_countries) <= countries
            host_row = p.read(meeting, [DataCategory.SUBSCRIBER_INFO], None)
            assert host_row.rows[DataCategory.SUBSCRIBER_INFO][0]["id"] == host.id
            participants = p.read(meeting, [DataCategory.PARTICIPANT_LIST], None)
            assert len(participants.rows[DataCategory.PARTICIPANT_LIST]) >= 20


def test_region_and_lawful_fixtures(full: Path) -> None:
    with ReferencePlatform(full) as p:
        for n in (0, 11_500, 22_999):
            subject = p.subject(FIXTURES.region_account(n))
            assert subject is not None and subject.jurisdiction == FIXTURES.region
        assert p.subject(FIXTURES.region_account(23_000)) is None
        content = p.subject(FIXTURES.us_content_user)
        assert content is not None and DataCategory.CONTENT in content.records
        de = p.subject(FIXTURES.de_subscriber)
        assert de is not None and (de.jurisdiction, de.data_region) == ("DE-BE", "IE")
        uk = p.subject(FIXTURES.uk_subject)
        assert uk is not None and (uk.jurisdiction, uk.data_region) == ("GB-ENG", "US")
        recent = TimeRange(EPOCH - timedelta(days=2), EPOCH)
        logs = p.read(FIXTURES.emergency_subject, [DataCategory.IP_SESSION_LOGS], recent)
        assert len(logs.rows[DataCategory.IP_SESSION_LOGS]) == 5
        evidence = p.evidence(FIXTURES.spam_evidence)
        assert evidence is not None and evidence.target == FIXTURES.spam_account
        assert p.evidence("ev-supplied-by-requester") is None


def test_selectors_and_unknown_targets_have_no_subject(platform: ReferencePlatform) -> None:
    assert platform.subject(Target(TargetKind.SELECTOR, "every user from CN-GD")) is None
    assert platform.subject(Target(TargetKind.ACCOUNT, "all free accounts")) is None
    assert platform.subject(Target(TargetKind.ACCOUNT, "u-nobody")) is None
    with pytest.raises(NotFoundError):
        platform.read(Target(TargetKind.ACCOUNT, "u-nobody"), [DataCategory.CONTENT], None)


def test_read_returns_only_the_categories_and_period_asked(platform: ReferencePlatform) -> None:
    user = FIXTURES.us_content_user
    everything = platform.read(user, [DataCategory.IP_SESSION_LOGS], None)
    assert set(everything.rows) == {DataCategory.IP_SESSION_LOGS}
    sessions = everything.rows[DataCategory.IP_SESSION_LOGS]
    assert sessions, "the fixture has sessions"
    cut = sessions[len(sessions) // 2]["started_at"]
    assert isinstance(cut, str)
    later = TimeRange(EPOCH.fromisoformat(cut.replace("Z", "+00:00")), EPOCH)
    recent = platform.read(user, [DataCategory.IP_SESSION_LOGS], later)
    assert 0 < recent.count < everything.count
    assert all(str(r["started_at"]) >= cut for r in recent.rows[DataCategory.IP_SESSION_LOGS])
    subscriber = platform.read(user, [DataCategory.SUBSCRIBER_INFO], later)
    assert set(subscriber.rows[DataCategory.SUBSCRIBER_INFO][0]) == {
        "id", "name", "email", "jurisdiction", "account_type", "created_at", "status",
    }  # fmt: skip


def test_restrictions_apply_and_lift(platform: ReferencePlatform) -> None:
    meeting = FIXTURES.tiananmen_meetings[0]
    applied = platform.apply_restriction(
        meeting, RestrictionAction.END_MEETING, territories=(), until=None,
        reference="d_1", at=EPOCH,
    )  # fmt: skip
    assert platform.status(meeting) == "ended"
    platform.lift_restriction(applied.id, at=EPOCH + timedelta(hours=1))
    assert platform.status(meeting) == "scheduled"
    with pytest.raises(ConflictError):
        platform.lift_restriction(applied.id, at=EPOCH + timedelta(hours=2))
    with pytest.raises(NotFoundError):
        platform.lift_restriction("r-999999", at=EPOCH)
    with pytest.raises(InputError, match="applies to a meeting"):
        platform.apply_restriction(
            FIXTURES.us_content_user, RestrictionAction.END_MEETING, territories=(),
            until=None, reference="d_1", at=EPOCH,
        )  # fmt: skip
    item = FIXTURES.us_content_items[0]
    with pytest.raises(InputError, match="territories"):
        platform.apply_restriction(
            item, RestrictionAction.GEO_RESTRICT_CONTENT, territories=(), until=None,
            reference="d_2", at=EPOCH,
        )  # fmt: skip
    geo = platform.apply_restriction(
        item, RestrictionAction.GEO_RESTRICT_CONTENT, territories=("DE",),
        until=EPOCH + timedelta(days=30), reference="d_2", at=EPOCH,
    )  # fmt: skip
    assert geo.id != applied.id and platform.status(item) == "visible"


def test_holds_and_notices(platform: ReferencePlatform) -> None:
    hold = platform.place_hold(
        FIXTURES.uk_subject,
        [DataCategory.CONTENT, DataCategory.IP_SESSION_LOGS],
        until=EPOCH + timedelta(days=60),
        reference="d_3",
        at=EPOCH,
    )
    assert hold.categories == (DataCategory.CONTENT, DataCategory.IP_SESSION_LOGS)
    platform.release_hold(hold.id, at=EPOCH + timedelta(days=1))
    with pytest.raises(ConflictError):
        platform.release_hold(hold.id, at=EPOCH + timedelta(days=2))
    (notice,) = platform.send_notice(
        FIXTURES.tiananmen_meetings[1], text="A demand concerned your meeting.",
        reference="d_4", at=EPOCH,
    )  # fmt: skip
    assert notice.account == FIXTURES.tiananmen_hosts[1].id
    assert platform.count("notices") == 1
