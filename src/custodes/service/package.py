"""Production packages: the format, reading in scope, and age encryption.

A production holds exactly what the demand's approval covers (invariant 5). :func:`collect`
asks the platform adapter for the approved categories of each approved subject over the
approved period, and then keeps only what falls inside the scope whatever the adapter sends
back: records of another subject or category are dropped, fields outside the category's
schema (:data:`CATEGORY_FIELDS`) are removed, and a record whose time lies outside the period
(or cannot be read) is dropped. What was withheld is counted, so an adapter that over-shares
shows up in the logs.

The package is a ZIP archive (fixed timestamps, so the same records give the same bytes)::

    manifest.json         RFC 8785 JSON: production, demand, authority, creation time, the
                          scope, one entry per record {n, subject, category, sha256}, the
                          SHA-256 of every other file, and the record count
    records.json          RFC 8785 JSON: the records, in manifest order
    <category>.csv        one file per category: subject, the category's fields, record_sha256

A record's SHA-256 is over ``JCS({"category": ..., "fields": {...}, "subject": ...})``.
The manifest's SHA-256 is what the log commits to (``production.delivered``,
``production_sha256``). The archive is encrypted with age (age-encryption.org/v1) to the
authority's X25519 recipient key; only the authority's identity decrypts it.
:func:`seal_package` and :func:`open_package` are the pair; :func:`open_package` checks every
hash in the manifest before it returns.

>>> from datetime import UTC, datetime
>>> from custodes.model import DataCategory, Target, TargetKind
>>> subject = Target(TargetKind.ACCOUNT, "u-1")
>>> rec = ProducedRecord(subject, DataCategory.SUBSCRIBER_INFO, {"id": "u-1", "name": "A"})
>>> scope = ProductionScope("d_1", "us-x", (subject,), (DataCategory.SUBSCRIBER_INFO,), None)
>>> pkg = build_package("p_1", scope, [rec], datetime(2024, 6, 4, tzinfo=UTC))
>>> parse_package(format_package(pkg)) == pkg
True
>>> sorted(pkg.files), pkg.record_count
(['manifest.json', 'records.json', 'subscriber_info.csv'], 1)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pyrage
import rfc8785

from custodes.errors import InputError, TooLargeError
from custodes.model import (
    DataCategory,
    Target,
    TargetKind,
    TimeRange,
    format_time,
    parse_time,
)
from custodes.platform import PlatformAdapter

__all__ = [
    "CATEGORY_FIELDS",
    "MAX_PACKAGE_BYTES",
    "CategorySchema",
    "Package",
    "ProducedRecord",
    "ProductionScope",
    "build_package",
    "check_recipient",
    "collect",
    "format_package",
    "open_package",
    "parse_package",
    "parse_subject",
    "record_sha256",
    "seal_package",
]

log = logging.getLogger(__name__)

MAX_PACKAGE_BYTES = 256 * 1024 * 1024
"""Largest package, sealed or not, that custodes builds or opens."""
_MAX_FILES = 16
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_FORMAT = 1


@dataclass(frozen=True)
class CategorySchema:
    """The fields a category's records may carry, in CSV order, and which one holds the
    record's time (None: the record has no time, like subscriber information)."""

    fields: tuple[str, ...]
    time_field: str | None


CATEGORY_FIELDS: Mapping[DataCategory, CategorySchema] = MappingProxyType(
    {
        DataCategory.SUBSCRIBER_INFO: CategorySchema(
            ("id", "name", "email", "jurisdiction", "account_type", "created_at", "status"),
            None,
        ),
        DataCategory.IP_SESSION_LOGS: CategorySchema(
            ("started_at", "ended_at", "ip", "country", "user_agent"), "started_at"
        ),
        DataCategory.PAYMENT_RECORDS: CategorySchema(
            ("paid_at", "amount_cents", "currency", "card_last4"), "paid_at"
        ),
        DataCategory.MEETING_METADATA: CategorySchema(
            ("id", "topic", "scheduled_at", "duration_minutes", "status", "participants"),
            "scheduled_at",
        ),
        DataCategory.PARTICIPANT_LIST: CategorySchema(
            ("meeting_id", "display_name", "email", "jurisdiction", "joined_at", "left_at", "ip"),
            "joined_at",
        ),
        DataCategory.CONTENT: CategorySchema(
            ("id", "kind", "title", "created_at", "size_bytes", "sha256", "status"), "created_at"
        ),
    }
)
"""What a production may hold of each category: nothing else reaches the authority."""

Value = str | int | None


@dataclass(frozen=True)
class ProductionScope:
    """What an approval lets a production read: these subjects, these categories, this
    period (None: records of any time)."""

    demand_id: str
    authority_id: str
    subjects: tuple[Target, ...]
    categories: tuple[DataCategory, ...]
    time_range: TimeRange | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(sorted(set(self.categories))))


@dataclass(frozen=True)
class ProducedRecord:
    """One record of one subject in one category, limited to the category's fields."""

    subject: Target
    category: DataCategory
    fields: Mapping[str, Value]

    def canonical(self) -> dict[str, Any]:
        return {
            "category": self.category.value,
            "fields": dict(self.fields),
            "subject": str(self.subject),
        }


def parse_subject(text: str) -> Target:
    """The target whose text form (``str(target)``, ``kind:id``) is ``text``.

    >>> parse_subject("meeting:m-tam-1")
    Target(kind=<TargetKind.MEETING: 'meeting'>, id='m-tam-1')
    """
    kind, sep, ident = text.partition(":") if isinstance(text, str) else ("", "", "")
    if not sep:
        raise InputError(f"{text!r} is not a subject like account:u-1")
    try:
        return Target(TargetKind(kind), ident)
    except ValueError:
        raise InputError(f"{text!r} is not a subject like account:u-1") from None


def record_sha256(record: ProducedRecord) -> str:
    """The SHA-256 (hex) the manifest lists for ``record``."""
    return hashlib.sha256(rfc8785.dumps(record.canonical())).hexdigest()


# -- reading in scope ----------------------------------------------------------------------


def _in_period(value: Value, period: TimeRange | None) -> bool:
    if period is None:
        return True
    if not isinstance(value, str):
        return False
    try:
        at = parse_time(value)
    except InputError:
        return False
    return period.start <= at < period.end


def collect(adapter: PlatformAdapter, scope: ProductionScope) -> tuple[list[ProducedRecord], int]:
    """The records ``scope`` allows, read through ``adapter``, and how many rows the adapter
    returned that the scope does not allow (withheld)."""
    kept: list[ProducedRecord] = []
    withheld = 0
    for subject in scope.subjects:
        found = adapter.read(subject, scope.categories, scope.time_range)
        for category, rows in found.rows.items():
            allowed = found.target == subject and category in scope.categories
            schema = CATEGORY_FIELDS.get(category)
            for row in rows:
                if not allowed or schema is None:
                    withheld += 1
                    continue
                if schema.time_field is not None and not _in_period(
                    row.get(schema.time_field), scope.time_range
                ):
                    withheld += 1
                    continue
                fields = {f: row.get(f) for f in schema.fields}
                kept.append(ProducedRecord(subject, category, fields))
    if withheld:
        log.warning(
            "production withheld rows outside the scope demand=%s rows=%d",
            scope.demand_id,
            withheld,
        )
    return kept, withheld


# -- the package ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """A production package: its files by name (the manifest among them)."""

    files: Mapping[str, bytes]

    @property
    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.files["manifest.json"])
        return doc

    @property
    def manifest_sha256(self) -> str:
        return hashlib.sha256(self.files["manifest.json"]).hexdigest()

    @property
    def record_count(self) -> int:
        return int(self.manifest["record_count"])

    def records(self) -> list[ProducedRecord]:
        """The records of ``records.json``, in manifest order."""
        return [
            ProducedRecord(parse_subject(d["subject"]), DataCategory(d["category"]), d["fields"])
            for d in json.loads(self.files["records.json"])
        ]


def _csv(schema: CategorySchema, records: Iterable[tuple[ProducedRecord, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["subject", *schema.fields, "record_sha256"])
    for rec, digest in records:
        row = ["" if rec.fields.get(f) is None else rec.fields[f] for f in schema.fields]
        writer.writerow([str(rec.subject), *row, digest])
    return out.getvalue().encode("utf-8")


def build_package(
    production_id: str,
    scope: ProductionScope,
    records: Sequence[ProducedRecord],
    created_at: datetime,
) -> Package:
    """The package of ``records`` for ``scope``: records, CSV files and the manifest."""
    digests = [record_sha256(r) for r in records]
    files: dict[str, bytes] = {
        "records.json": rfc8785.dumps([r.canonical() for r in records]),
    }
    for category in scope.categories:
        mine = [(r, d) for r, d in zip(records, digests, strict=True) if r.category is category]
        files[f"{category.value}.csv"] = _csv(CATEGORY_FIELDS[category], mine)
    period = scope.time_range
    manifest: dict[str, Any] = {
        "format": _FORMAT,
        "production": production_id,
        "demand": scope.demand_id,
        "authority": scope.authority_id,
        "created_at": format_time(created_at.astimezone(UTC).replace(microsecond=0)),
        "scope": {
            "subjects": [str(s) for s in scope.subjects],
            "categories": [c.value for c in scope.categories],
            "time_range": None
            if period is None
            else {"start": format_time(period.start), "end": format_time(period.end)},
        },
        "records": [
            {"n": n, "subject": str(r.subject), "category": r.category.value, "sha256": d}
            for n, (r, d) in enumerate(zip(records, digests, strict=True))
        ],
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        "record_count": len(records),
    }
    files["manifest.json"] = rfc8785.dumps(manifest)
    return Package(MappingProxyType(dict(sorted(files.items()))))


def format_package(package: Package) -> bytes:
    """The package as a ZIP archive; the same package always gives the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(package.files.items()):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return out.getvalue()


def parse_package(raw: bytes, *, limit: int = MAX_PACKAGE_BYTES) -> Package:
    """Read a package archive: sizes checked before anything is inflated, then every hash
    in the manifest. Raises :class:`InputError` on anything :func:`format_package` never
    writes or any hash that does not match."""
    if len(raw) > limit:
        raise TooLargeError(f"package of {len(raw)} bytes is over {limit}")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_FILES or sum(i.file_size for i in infos) > limit:
                raise TooLargeError("package holds too many files or too many bytes")
            files = {i.filename: archive.read(i) for i in infos}
    except (zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"not a production package: {exc}") from None
    package = Package(MappingProxyType(dict(sorted(files.items()))))
    _check_manifest(package)
    return package


def _check_manifest(package: Package) -> None:
    if "manifest.json" not in package.files or "records.json" not in package.files:
        raise InputError("a package holds manifest.json and records.json")
    try:
        manifest = package.manifest
        listed = manifest["files"]
        entries = manifest["records"]
        records = package.records()
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"the package manifest is malformed: {exc}") from None
    others = {k: v for k, v in package.files.items() if k != "manifest.json"}
    actual = {name: hashlib.sha256(data).hexdigest() for name, data in others.items()}
    if listed != actual:
        raise InputError("the package's files do not match its manifest")
    if manifest.get("record_count") != len(records) or len(entries) != len(records):
        raise InputError("the package's record count does not match its manifest")
    for n, (entry, rec) in enumerate(zip(entries, records, strict=True)):
        if entry != {
            "n": n,
            "subject": str(rec.subject),
            "category": rec.category.value,
            "sha256": record_sha256(rec),
        }:
            raise InputError(f"record {n} does not match its manifest entry", record=n)


# -- encryption ----------------------------------------------------------------------------


def check_recipient(recipient: str) -> str:
    """Return ``recipient`` if it is an age X25519 recipient (``age1...``), else raise."""
    if not isinstance(recipient, str) or not recipient.startswith("age1") or len(recipient) > 100:
        raise InputError("an age recipient looks like age1… (X25519)")
    try:
        pyrage.x25519.Recipient.from_str(recipient)
    except pyrage.RecipientError as exc:
        raise InputError(f"not an age recipient: {exc}") from None
    return recipient


def seal_package(package: Package, recipient: str) -> bytes:
    """The package archive encrypted with age to ``recipient`` (the authority's key)."""
    key = pyrage.x25519.Recipient.from_str(check_recipient(recipient))
    sealed: bytes = pyrage.encrypt(format_package(package), [key])
    return sealed


def open_package(sealed: bytes, identity: str) -> Package:
    """Decrypt ``sealed`` with the age ``identity`` (``AGE-SECRET-KEY-1...``) and check it.
    :class:`InputError` if the identity is not a recipient or the package is not intact."""
    if len(sealed) > MAX_PACKAGE_BYTES + 65536:
        raise TooLargeError("sealed package is over the size limit")
    try:
        key = pyrage.x25519.Identity.from_str(identity)
        raw: bytes = pyrage.decrypt(sealed, [key])
    except (pyrage.IdentityError, pyrage.DecryptError) as exc:
        raise InputError(f"cannot open the package: {exc}") from None
    return parse_package(raw)
