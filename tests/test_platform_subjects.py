"""The reference platform's batched look-up says exactly what its one-by-one look-up says."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.model import Target, TargetKind
from custodes.platform import FIXTURES, ReferencePlatform, build_reference_platform, reference

_KINDS = {"accounts": TargetKind.ACCOUNT, "meetings": TargetKind.MEETING,
          "content": TargetKind.CONTENT}  # fmt: skip


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("subjects") / "platform.db"
    build_reference_platform(path, accounts=300, region_accounts=40)
    return path


@pytest.fixture
def platform(path: Path) -> Iterator[ReferencePlatform]:
    with ReferencePlatform(path) as p:
        yield p


def _fixtures() -> list[Target]:
    f = FIXTURES
    return [*f.tiananmen_meetings, *f.tiananmen_hosts, f.us_content_user, *f.us_content_items,
            f.de_subscriber, f.uk_subject, f.us_person, f.emergency_subject, f.spam_account,
            f.region_account(0), f.region_account(39)]  # fmt: skip


def _random(path: Path, seed: int) -> list[Target]:
    """Some accounts, meetings and content items drawn from the data set."""
    pick = random.Random(seed)
    with sqlite3.connect(path) as db:
        out = [
            Target(kind, ident)
            for table, kind in _KINDS.items()
            for (ident,) in pick.sample(db.execute(f"SELECT id FROM {table}").fetchall(), 15)
        ]
    db.close()
    return out


_STRANGERS = [
    Target(TargetKind.ACCOUNT, "u-nobody"),
    Target(TargetKind.MEETING, "m-nowhere"),
    Target(TargetKind.CONTENT, "c-nothing"),
    FIXTURES.region_account(40),  # one past the region block
    Target(TargetKind.SELECTOR, "every user from CN-GD"),
    Target(TargetKind.ACCOUNT, "all free accounts"),
    Target(TargetKind.ACCOUNT, "it's; a' quote -- and a ?"),
]


@pytest.mark.parametrize("batch", [500, 3])
def test_subjects_answers_what_subject_answers(
    platform: ReferencePlatform, path: Path, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reference, "_BATCH", batch)  # 3: the answer spans several batches
    targets = _fixtures() + _random(path, 7) + _STRANGERS
    answers = platform.subjects(targets)
    assert list(answers) == targets
    assert answers == {t: platform.subject(t) for t in targets}
    known = [t for t, s in answers.items() if s is not None]
    assert len(known) == len(targets) - len(_STRANGERS)
    assert any(s.affected for s in answers.values() if s is not None), "meetings reach people"
    assert any(s.records for s in answers.values() if s is not None)


def test_subjects_of_repeated_unknown_and_no_targets(platform: ReferencePlatform) -> None:
    host = FIXTURES.tiananmen_hosts[0]
    assert platform.subjects([host, host]) == {host: platform.subject(host)}
    assert platform.subjects(_STRANGERS) == dict.fromkeys(_STRANGERS)
    assert platform.subjects([]) == {}
