"""Production packages: nothing outside the approved scope, sealed to the authority alone."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Collection, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyrage
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import InputError, TooLargeError
from custodes.model import DataCategory, Target, TargetKind, TimeRange
from custodes.platform import FIXTURES, ReferencePlatform, build_reference_platform
from custodes.platform.adapter import Records, Row
from custodes.service.package import (
    CATEGORY_FIELDS,
    Package,
    ProducedRecord,
    ProductionScope,
    build_package,
    collect,
    format_package,
    open_package,
    parse_package,
    parse_subject,
    record_sha256,
    seal_package,
)

POOL = (
    FIXTURES.us_person,
    FIXTURES.us_content_user,
    FIXTURES.emergency_subject,
    FIXTURES.de_subscriber,
    FIXTURES.tiananmen_meetings[0],
    FIXTURES.tiananmen_hosts[1],
    FIXTURES.us_content_items[0],
)
CREATED = datetime(2024, 6, 4, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferencePlatform]:
    path = tmp_path_factory.mktemp("platform") / "platform.db"
    build_reference_platform(path, accounts=120, region_accounts=10)
    with ReferencePlatform(path) as p:
        yield p


class Leaky:
    """An adapter that over-shares: other subjects, other categories, extra fields, and
    records outside the period asked for. A production must keep none of it."""

    def __init__(self, honest: ReferencePlatform) -> None:
        self.honest = honest

    def read(
        self, target: Target, categories: Collection[DataCategory], time_range: TimeRange | None
    ) -> Records:
        found = self.honest.read(target, list(DataCategory), None)  # everything, any time
        rows: dict[DataCategory, tuple[Row, ...]] = {}
        for category, got in found.rows.items():
            extra = {"password_hash": "x", "internal_note": "secret"}
            rows[category] = tuple({**r, **extra} for r in got)
        if target == FIXTURES.us_person:  # answers for someone else as well
            return Records(FIXTURES.us_content_user, rows)
        return Records(target, rows)

    def __getattr__(self, name: str) -> object:
        return getattr(self.honest, name)


def _time_of(record: ProducedRecord) -> datetime | None:
    field = CATEGORY_FIELDS[record.category].time_field
    if field is None:
        return None
    value = record.fields[field]
    assert isinstance(value, str)
    return datetime.fromisoformat(value)


def _check_within(records: list[ProducedRecord], scope: ProductionScope) -> None:
    for r in records:
        assert r.subject in scope.subjects
        assert r.category in scope.categories
        assert set(r.fields) <= set(CATEGORY_FIELDS[r.category].fields)
        at = _time_of(r)
        if scope.time_range is not None and at is not None:
            assert scope.time_range.start <= at < scope.time_range.end


@st.composite
def scopes(draw: st.DrawFn) -> ProductionScope:
    subjects = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True))
    categories = draw(st.lists(st.sampled_from(list(DataCategory)), min_size=1, unique=True))
    period = None
    if draw(st.booleans()):
        start = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 4000)))
        period = TimeRange(start, start + timedelta(hours=draw(st.integers(1, 2400))))
    return ProductionScope("d_prop", "us-fbi", tuple(subjects), tuple(categories), period)


@settings(max_examples=60, deadline=None)
@given(scope=scopes(), leaky=st.booleans())
def test_a_production_never_holds_anything_outside_its_scope(
    platform: ReferencePlatform, scope: ProductionScope, leaky: bool
) -> None:
    adapter = Leaky(platform) if leaky else platform
    records, withheld = collect(adapter, scope)  # type: ignore[arg-type]
    _check_within(records, scope)
    honest, honest_withheld = collect(platform, scope)
    assert honest_withheld == 0
    if not leaky:
        assert withheld == 0
    # nothing the scope allows is lost, except what the leaky adapter mislabelled
    lost = {(r.subject, r.category, json.dumps(dict(r.fields))) for r in honest} - {
        (r.subject, r.category, json.dumps(dict(r.fields))) for r in records
    }
    assert all(subject == FIXTURES.us_person for subject, _, _ in lost)
    package = build_package("p_prop", scope, records, CREATED)
    opened = parse_package(format_package(package))
    assert opened.records() == records
    _check_within(opened.records(), scope)
    assert opened.manifest["scope"]["subjects"] == [str(s) for s in scope.subjects]


def test_the_package_opens_with_the_authority_identity_and_no_other(
    platform: ReferencePlatform,
) -> None:
    scope = ProductionScope("d_1", "us-fbi", (FIXTURES.us_content_user,), tuple(DataCategory), None)
    records, _ = collect(platform, scope)
    package = build_package("p_1", scope, records, CREATED)
    authority = pyrage.x25519.Identity.generate()
    sealed = seal_package(package, str(authority.to_public()))
    assert sealed.startswith(b"age-encryption.org/v1\n")
    assert b"u-us-content" not in sealed
    opened = open_package(sealed, str(authority))
    assert opened == package
    assert opened.manifest_sha256 == hashlib.sha256(package.files["manifest.json"]).hexdigest()
    assert opened.record_count == len(records) > 10
    for stranger in (pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()):
        with pytest.raises(InputError, match="cannot open"):
            open_package(sealed, str(stranger))
    with pytest.raises(InputError):
        open_package(sealed, "AGE-SECRET-KEY-1NOTAKEY")
    with pytest.raises(InputError):
        seal_package(package, "age1notarecipient")


def test_csv_files_carry_every_record_with_its_hash(platform: ReferencePlatform) -> None:
    scope = ProductionScope(
        "d_1",
        "us-fbi",
        (FIXTURES.tiananmen_meetings[0],),
        (DataCategory.PARTICIPANT_LIST, DataCategory.MEETING_METADATA),
        None,
    )
    records, _ = collect(platform, scope)
    package = build_package("p_1", scope, records, CREATED)
    text = package.files["participant_list.csv"].decode()
    lines = text.strip().split("\r\n")
    assert (
        lines[0]
        == "subject,"
        + ",".join(CATEGORY_FIELDS[DataCategory.PARTICIPANT_LIST].fields)
        + ",record_sha256"
    )
    participants = [r for r in records if r.category is DataCategory.PARTICIPANT_LIST]
    assert len(lines) - 1 == len(participants) > 5
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} == {
        record_sha256(r) for r in participants
    }
    assert sorted(package.files) == [
        "manifest.json",
        "meeting_metadata.csv",
        "participant_list.csv",
        "records.json",
    ]


def test_the_same_records_give_the_same_package_bytes(platform: ReferencePlatform) -> None:
    scope = ProductionScope(
        "d_1", "x", (FIXTURES.us_person,), (DataCategory.IP_SESSION_LOGS,), None
    )
    records, _ = collect(platform, scope)
    a = format_package(build_package("p_1", scope, records, CREATED))
    b = format_package(build_package("p_1", scope, list(records), CREATED))
    assert a == b


def _rezip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def _tampered(package: Package) -> Iterator[dict[str, bytes]]:
    files = dict(package.files)
    records = json.loads(files["records.json"])
    records[0]["fields"]["email"] = "someone-else@example.com"
    yield {**files, "records.json": json.dumps(records).encode()}
    yield {**files, "subscriber_info.csv": files["subscriber_info.csv"] + b"x"}
    yield {k: v for k, v in files.items() if k != "subscriber_info.csv"}
    yield {**files, "extra.txt": b"hello"}
    yield {k: v for k, v in files.items() if k != "manifest.json"}
    manifest = json.loads(files["manifest.json"])
    manifest["record_count"] += 1
    yield {**files, "manifest.json": json.dumps(manifest).encode()}
    yield {**files, "manifest.json": b"[]"}


def test_a_tampered_package_is_refused(platform: ReferencePlatform) -> None:
    scope = ProductionScope(
        "d_1", "x", (FIXTURES.us_person,), (DataCategory.SUBSCRIBER_INFO,), None
    )
    records, _ = collect(platform, scope)
    package = build_package("p_1", scope, records, CREATED)
    assert parse_package(_rezip(dict(package.files))) == package
    for files in _tampered(package):
        with pytest.raises(InputError):
            parse_package(_rezip(files))
    with pytest.raises(InputError):
        parse_package(b"not a zip")
    with pytest.raises(TooLargeError):
        parse_package(format_package(package), limit=100)


def test_a_package_that_inflates_past_the_limit_is_refused() -> None:
    bomb = _rezip({"manifest.json": b"{}", "records.json": b" " * 5_000_000})
    assert len(bomb) < 5_000_000
    with pytest.raises(TooLargeError):
        parse_package(bomb, limit=1_000_000)


def test_an_empty_production_still_has_a_manifest() -> None:
    scope = ProductionScope("d_1", "x", (FIXTURES.us_person,), (DataCategory.CONTENT,), None)
    package = build_package("p_1", scope, [], CREATED)
    assert parse_package(format_package(package)).record_count == 0
    assert package.files["content.csv"].count(b"\r\n") == 1


@pytest.mark.parametrize("text", ["account", "planet:x", ":x", "account:", 7])
def test_parse_subject_refuses_what_str_target_never_writes(text: object) -> None:
    with pytest.raises(InputError):
        parse_subject(text)  # type: ignore[arg-type]


def test_parse_subject_round_trips() -> None:
    for t in POOL:
        assert parse_subject(str(t)) == t
    assert parse_subject("account:a:b") == Target(TargetKind.ACCOUNT, "a:b")


def test_scope_categories_are_sorted_and_unique() -> None:
    scope = ProductionScope(
        "d_1",
        "x",
        (FIXTURES.us_person,),
        (DataCategory.SUBSCRIBER_INFO, DataCategory.CONTENT, DataCategory.CONTENT),
        None,
    )
    assert scope.categories == (DataCategory.CONTENT, DataCategory.SUBSCRIBER_INFO)
    assert replace(scope, demand_id="d_2").categories == scope.categories
