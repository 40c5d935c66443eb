"""Tampering with copies of the golden log: every mutation is reported as the right violation.

Each mutation changes, drops, reorders or inserts one entry, flips a byte of a tile or of the
checkpoint, swaps the checkpoint for another, rolls the log back, or replaces it with a
rewritten history signed with the log's own key. The auditor runs on an in-memory copy of the
published files, remembering the checkpoint at size 150 (or 300 for rollbacks), and must
report exactly the expected violation, naming the right entry or file.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custodes.audit.auditor import AuditReport, audit_log
from custodes.audit.findings import MAX_NAMED
from custodes.audit.logcheck import Fetch, MissingFileError, dir_fetcher
from custodes.audit.policy import Policy, parse_policy
from custodes.tlog import (
    Checkpoint,
    format_checkpoint,
    generate_key,
    leaf_hash,
    new_cosigner,
    new_signer,
    root_of,
    sign_note,
)
from custodes.tlog.tiles import (
    TILE_WIDTH,
    bundle_tile,
    bundles_for_size,
    format_bundle,
    format_tile_path,
    new_tiles,
    parse_bundle,
    tiles_for_size,
)

GOLDEN = Path(__file__).parent / "testdata" / "golden"
ORIGIN = "golden.custodes.example/log"
MUTATIONS = 1200
SEED = 9162

Files = dict[str, bytes]


def _load(root: Path) -> Files:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


GOLDEN_FILES = _load(GOLDEN / "log")
SIZE = 300
ENTRIES = [
    e
    for t in bundles_for_size(SIZE)
    for e in parse_bundle(GOLDEN_FILES[format_tile_path(t)], t.width)
]
LOG_SKEY = (GOLDEN / "log.skey").read_text().strip()
WITNESS_SKEY = (GOLDEN / "witness.skey").read_text().strip()


def memory_fetcher(files: Files) -> Fetch:
    def fetch(rel: str) -> bytes:
        try:
            return files[rel]
        except KeyError:
            raise MissingFileError(f"{rel} is missing", path=rel) from None

    return fetch


def publish(entries: list[bytes], skey: str = LOG_SKEY) -> Files:
    """A complete published log of ``entries``, signed with ``skey`` and cosigned by w1."""
    hashes = [leaf_hash(e) for e in entries]
    files = {format_tile_path(t): data for t, data in new_tiles(0, len(entries), hashes, _never)}
    for t in bundles_for_size(len(entries)):
        chunk = entries[t.index * TILE_WIDTH : t.index * TILE_WIDTH + t.width]
        files[format_tile_path(t)] = format_bundle(chunk)
    text = format_checkpoint(Checkpoint(ORIGIN, len(entries), root_of(hashes)))
    cosignature = sign_note(text, new_cosigner(WITNESS_SKEY, clock=lambda: 1_767_600_000))
    files["checkpoint"] = sign_note(text, new_signer(skey)) + cosignature.split(b"\n\n")[-1]
    return files


def _never(tile: object) -> bytes:
    raise AssertionError(f"a log grown from nothing reads no tile, not {tile}")


@dataclass(frozen=True)
class Expect:
    """The one violation a mutation must produce, and what it must name."""

    codes: frozenset[str]
    entries: tuple[int, ...] | None = None  # the named entries of the first such finding
    path: str | None = None  # the file the finding names
    history: str = "seen150"  # which remembered checkpoint the audit starts from
    all_of: frozenset[str] = frozenset()  # codes that must all be there, when several may


@dataclass(frozen=True)
class Mutation:
    kind: str
    files: Files
    expect: Expect


def _bundle_of(index: int) -> tuple[str, int, list[bytes]]:
    t = bundle_tile(index // TILE_WIDTH, min(TILE_WIDTH, SIZE - index // TILE_WIDTH * TILE_WIDTH))
    path = format_tile_path(t)
    return path, t.index * TILE_WIDTH, parse_bundle(GOLDEN_FILES[path], t.width)


def _encode(entries: list[bytes]) -> bytes:
    """A bundle's bytes for any number of entries (format_bundle refuses more than 256)."""
    return b"".join(len(e).to_bytes(2, "big") + e for e in entries)


def _with_bundle(path: str, data: bytes) -> Files:
    return GOLDEN_FILES | {path: data}


def change_entry(rng: random.Random) -> Mutation:
    k = rng.randrange(SIZE)
    path, start, entries = _bundle_of(k)
    entry = bytearray(entries[k - start])
    entry[rng.randrange(len(entry))] ^= rng.randrange(1, 256)
    entries[k - start] = bytes(entry)
    return Mutation(
        "change an entry",
        _with_bundle(path, _encode(entries)),
        Expect(frozenset({"entry_mismatch"}), (k,)),
    )


def change_length(rng: random.Random) -> Mutation:
    k = rng.randrange(SIZE)
    path, start, entries = _bundle_of(k)
    data = bytearray(GOLDEN_FILES[path])
    offset = sum(2 + len(e) for e in entries[: k - start]) + rng.randrange(2)
    data[offset] ^= rng.randrange(1, 256)
    return Mutation(
        "change an entry's length",
        _with_bundle(path, bytes(data)),
        Expect(frozenset({"bundle_malformed"}), (k,)),
    )


def drop_entry(rng: random.Random) -> Mutation:
    k = rng.randrange(SIZE)
    path, start, entries = _bundle_of(k)
    del entries[k - start]
    return Mutation(
        "drop an entry",
        _with_bundle(path, _encode(entries)),
        Expect(frozenset({"bundle_malformed"}), (k,)),
    )


def insert_entry(rng: random.Random) -> Mutation:
    k = rng.randrange(SIZE + 1)
    path, start, entries = _bundle_of(min(k, SIZE - 1))
    stranger = bytearray(ENTRIES[rng.randrange(SIZE)])
    stranger[rng.randrange(len(stranger))] ^= 0x01
    entries.insert(k - start, bytes(stranger))
    named = (k,) if k < SIZE else ()
    return Mutation(
        "insert an entry",
        _with_bundle(path, _encode(entries)),
        Expect(frozenset({"bundle_malformed"}), named),
    )


def reorder_entries(rng: random.Random) -> Mutation:
    k = rng.randrange(SIZE - 1)
    path, start, entries = _bundle_of(k)
    j = rng.randrange(k + 1, start + len(entries)) if k + 1 < start + len(entries) else k - 1
    a, b = sorted((k, j))
    if rng.random() < 0.5:
        entries[a - start], entries[b - start] = entries[b - start], entries[a - start]
        named: tuple[int, ...] = (a, b)
    else:  # move one entry to a later place: every entry in between shifts
        entries.insert(b - start, entries.pop(a - start))
        named = tuple(range(a, b + 1))
    return Mutation(
        "reorder entries",
        _with_bundle(path, _encode(entries)),
        Expect(frozenset({"entry_mismatch"}), named),
    )


def flip_tile_byte(rng: random.Random) -> Mutation:
    path = format_tile_path(rng.choice(tiles_for_size(SIZE)))
    data = bytearray(GOLDEN_FILES[path])
    data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    return Mutation(
        "flip a tile byte",
        GOLDEN_FILES | {path: bytes(data)},
        Expect(frozenset({"tile_mismatch"}), path=path),
    )


def flip_checkpoint_byte(rng: random.Random) -> Mutation:
    note = bytearray(GOLDEN_FILES["checkpoint"])
    at = rng.randrange(len(note))
    note[at] ^= rng.randrange(1, 256)
    cosigned_from = GOLDEN_FILES["checkpoint"].rindex("\n—".encode()) + 1
    codes = (
        {"checkpoint_unverified"}
        if at < cosigned_from
        else {"checkpoint_unverified", "witness_cosignature", "witness_quorum"}
    )
    return Mutation(
        "flip a checkpoint byte",
        GOLDEN_FILES | {"checkpoint": bytes(note)},
        Expect(frozenset(codes)),
    )


def swap_checkpoint(rng: random.Random) -> Mutation:
    choice = rng.randrange(4)
    if choice == 0:  # signed by a key that merely has the log's name
        impostor, _ = generate_key(ORIGIN)
        note = publish(ENTRIES, impostor)["checkpoint"]
        return Mutation(
            "forged checkpoint",
            GOLDEN_FILES | {"checkpoint": note},
            Expect(frozenset({"checkpoint_unverified"})),
        )
    if choice == 1:  # the genuine signatures on an edited tree head
        text = GOLDEN_FILES["checkpoint"].decode()
        edited = text.replace("\n300\n", f"\n{rng.randrange(1, 300)}\n", 1)
        return Mutation(
            "edited checkpoint",
            GOLDEN_FILES | {"checkpoint": edited.encode()},
            Expect(frozenset({"checkpoint_unverified"})),
        )
    if choice == 2:  # the witness's cosignature stripped
        note = GOLDEN_FILES["checkpoint"]
        stripped = note[: note.rindex("—".encode())]
        return Mutation(
            "uncosigned checkpoint",
            GOLDEN_FILES | {"checkpoint": stripped},
            Expect(frozenset({"witness_quorum"})),
        )
    # the log key signs another root for the same size, over the genuine files
    other = publish([*ENTRIES[:-1], ENTRIES[-1] + b" "])["checkpoint"]
    both = frozenset({"root_mismatch", "fork"})
    return Mutation(
        "same size, another root",
        GOLDEN_FILES | {"checkpoint": other},
        Expect(both, history="seen300", all_of=both),
    )


def roll_back(rng: random.Random) -> Mutation:
    if rng.random() < 0.5:  # an earlier genuine checkpoint over the files still published
        files = GOLDEN_FILES | {"checkpoint": (GOLDEN / "checkpoint-150").read_bytes()}
        return Mutation(
            "roll back", files, Expect(frozenset({"rollback"}), (150,), history="seen300")
        )
    size = rng.randrange(151, SIZE)  # a shorter log, re-signed
    return Mutation(
        "roll back",
        publish(ENTRIES[:size]),
        Expect(frozenset({"rollback"}), (size,), history="seen300"),
    )


def rewrite_history(rng: random.Random) -> Mutation:
    k = rng.randrange(150)  # inside what the auditor saw; signed and cosigned all the same
    entries = list(ENTRIES)
    if rng.random() < 0.5:
        del entries[k]
    else:
        entries[k] = entries[k].replace(b'"time":"2026', b'"time":"2025', 1)
    return Mutation("rewrite history", publish(entries), Expect(frozenset({"fork"}), (k,)))


KINDS: list[tuple[Callable[[random.Random], Mutation], int]] = [
    (change_entry, 20),
    (change_length, 8),
    (drop_entry, 12),
    (insert_entry, 12),
    (reorder_entries, 12),
    (flip_tile_byte, 12),
    (flip_checkpoint_byte, 10),
    (swap_checkpoint, 6),
    (roll_back, 4),
    (rewrite_history, 4),
]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy((GOLDEN / "policy").read_bytes())


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory, policy: Policy) -> dict[str, Path]:
    """State files remembering the genuine checkpoints at 150 and at 300."""
    root = tmp_path_factory.mktemp("histories")
    early = root / "early"
    shutil.copytree(GOLDEN / "log", early)
    (early / "checkpoint").write_bytes((GOLDEN / "checkpoint-150").read_bytes())
    states = {"seen150": root / "seen150" / "state", "seen300": root / "seen300" / "state"}
    for name, source in (("seen150", early), ("seen300", GOLDEN / "log")):
        assert audit_log(dir_fetcher(source), policy, state_path=states[name]).state_saved
    return states


def _audit(files: Files, policy: Policy, state: Path) -> AuditReport:
    return audit_log(
        memory_fetcher(files),
        policy,
        state_path=state,
        as_of=datetime(2027, 1, 1, tzinfo=UTC),
        remember=False,
    )


def _check(m: Mutation, report: AuditReport) -> None:
    codes = {f.code for f in report.findings}
    assert codes and codes <= m.expect.codes, (m.kind, report.findings)
    assert m.expect.all_of <= codes, (m.kind, report.findings)
    if "witness_quorum" in m.expect.codes and "checkpoint_unverified" not in codes:
        assert "witness_quorum" in codes, (m.kind, report.findings)
    first = report.findings[0]
    if m.expect.entries is not None:
        assert first.entries == m.expect.entries[:MAX_NAMED], (m.kind, first)
        assert first.evidence.get("count", len(first.entries)) == len(m.expect.entries)
    if m.expect.path is not None:
        assert first.evidence.get("path") == m.expect.path, (m.kind, first)


def _mutations(rng: random.Random) -> Iterator[Mutation]:
    makers, weights = zip(*KINDS, strict=True)
    for _ in range(MUTATIONS):
        yield rng.choices(makers, weights)[0](rng)


def test_every_random_mutation_is_reported_as_its_violation(
    policy: Policy, histories: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    genuine = _audit(GOLDEN_FILES, policy, histories["seen300"])
    assert genuine.clean, genuine.findings
    rng = random.Random(SEED)
    counts: Counter[str] = Counter()
    for m in _mutations(rng):
        report = _audit(m.files, policy, histories[m.expect.history])
        _check(m, report)
        assert not report.state_saved
        counts[m.kind] += 1
    assert sum(counts.values()) >= 1000 and len(counts) >= len(KINDS)
    with capsys.disabled():
        total = sum(counts.values())
        print(f"\n{total} random mutations of the golden log, each reported as its violation:")
        for kind, n in sorted(counts.items()):
            print(f"  {n:5d}  {kind}")


def test_the_unmutated_copy_is_clean_from_either_history(
    policy: Policy, histories: dict[str, Path]
) -> None:
    for state in histories.values():
        report = _audit(GOLDEN_FILES, policy, state)
        assert report.clean, report.findings


def test_a_missing_bundle_or_tile_is_named(policy: Policy) -> None:
    for path in ("tile/entries/000", "tile/0/001.p/44", "tile/1/000.p/1"):
        files = {k: v for k, v in GOLDEN_FILES.items() if k != path}
        report = audit_log(memory_fetcher(files), policy)
        assert [f.code for f in report.findings] == ["file_missing"], path
        assert report.findings[0].evidence["path"] == path


def test_tampering_on_disk_is_reported_like_in_memory(tmp_path: Path, policy: Policy) -> None:
    copy = tmp_path / "log"
    shutil.copytree(GOLDEN / "log", copy)
    bundle = copy / "tile" / "entries" / "000"
    entries = parse_bundle(bundle.read_bytes(), TILE_WIDTH)
    entries[17], entries[18] = entries[18], entries[17]
    bundle.write_bytes(format_bundle(entries))
    report = audit_log(dir_fetcher(copy), policy)
    assert [(f.code, f.entries) for f in report.findings] == [("entry_mismatch", (17, 18))]
