"""The replay makes no reference cycles, so the auditor may pause the cycle collector."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path

from custodes.audit.auditor import audit_log, collector_paused
from custodes.audit.checks import Replay, default_checks
from custodes.audit.findings import Finding
from custodes.audit.logcheck import dir_fetcher
from custodes.audit.packs import PublishedPack, load_published_pack
from custodes.audit.policy import parse_policy
from custodes.events import parse_event
from custodes.policy import DEFAULT_PACK
from custodes.tlog import TILE_WIDTH, bundle_tile, format_tile_path, parse_bundle

GOLDEN = Path(__file__).parent / "testdata" / "golden"
LATER = datetime(2027, 1, 1, tzinfo=UTC)


def _golden_leaves() -> list[bytes]:
    fetch = dir_fetcher(GOLDEN / "log")
    leaves: list[bytes] = []
    for start in range(0, 300, TILE_WIDTH):
        width = min(TILE_WIDTH, 300 - start)
        bundle = fetch(format_tile_path(bundle_tile(start // TILE_WIDTH, width)))
        leaves += parse_bundle(bundle, width)
    return leaves


def _hostile(leaves: list[bytes]) -> list[bytes]:
    """Entries the parser refuses on each of its paths, and events that make findings."""
    demand = next(leaf for leaf in leaves if b'"kind":"demand.closed"' in leaf)
    return [
        b"\xff\xfe",
        b"not json",
        b'{"commit":{},"facts":{},"kind":"demand.closed","time":"2026","v":1,"v":2}',
        b'{"commit":{},"demand":"d_1","facts":{},"kind":"demand.closed","time":"x","v":1}',
        b"[" * 100_000,
        demand.replace(b'"v":1', b'"v":2'),
        demand.replace(b'"demand":"', b'"demand":"never_received_'),
        *leaves[:40],  # every demand received again: effects judged twice
    ]


def _replay(entries: list[bytes], packs: list[PublishedPack] | None) -> tuple[list[Finding], int]:
    replay = Replay(default_checks({}, packs))
    for index, entry in enumerate(entries):
        replay.feed(index, entry)
    return replay.finish(LATER), replay.events


def test_the_replay_leaves_no_cyclic_garbage() -> None:
    leaves = _golden_leaves()
    entries = leaves + _hostile(leaves)
    for packs in (None, [load_published_pack(DEFAULT_PACK)]):
        default_checks({}, packs)  # what importing the checks leaves is not the replay's
        gc.collect()
        with collector_paused():
            assert not gc.isenabled()
            findings, events = _replay(entries, packs)  # the replay and its checks are gone
            assert gc.collect() == 0
        assert gc.isenabled()
        assert any(f.code == "event_malformed" for f in findings)
        assert any(f.code == "unknown_demand" for f in findings)
        assert events == sum(1 for e in entries if _parses(e))


def _parses(entry: bytes) -> bool:
    try:
        parse_event(entry)
    except Exception:
        return False
    return True


def test_audit_log_restores_the_collector_as_it_found_it() -> None:
    policy = parse_policy((GOLDEN / "policy").read_bytes())
    fetch = dir_fetcher(GOLDEN / "log")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert audit_log(fetch, policy, checks=default_checks(), as_of=LATER).clean
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        assert audit_log(fetch, policy, checks=default_checks(), as_of=LATER).clean
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_objects_frozen_before_stay_frozen() -> None:
    kept: list[list[int]] = [[] for _ in range(10)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept)
        with collector_paused():
            made: list[list[int]] = [[] for _ in range(10)]
        assert gc.get_freeze_count() == frozen and gc.isenabled() and made
    finally:
        gc.unfreeze()
