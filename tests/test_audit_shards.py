"""``audit --jobs N``: the events replayed by worker processes, split by demand, give the very
report one replay gives: the same findings in the same order, the same notes, the same count."""

from __future__ import annotations

import json
import multiprocessing
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from zlib import crc32

import pytest

from custodes.audit.auditor import AuditReport, audit_log
from custodes.audit.checks import Check, Replay, default_checks
from custodes.audit.errors import AuditError
from custodes.audit.findings import Finding
from custodes.audit.openings import parse_disclosure
from custodes.audit.packs import PublishedPack, load_published_pack
from custodes.audit.policy import Policy, parse_policy
from custodes.audit.shards import ShardedReplay, shard_of
from custodes.events import DEMAND_CLOSED, Event, parse_event
from custodes.policy import DEFAULT_PACK
from test_audit_cli import POLICY, app, runner
from test_audit_tamper import ENTRIES, memory_fetcher, publish

GOLDEN = Path(__file__).parent / "testdata" / "golden"
LATER = datetime(2027, 1, 1, tzinfo=UTC)
VARIANTS = 24
SEED = 4242
DISCLOSED = parse_disclosure((GOLDEN / "disclosure.json").read_bytes())
PACKS = [load_published_pack(DEFAULT_PACK)]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy((GOLDEN / "policy").read_bytes())


def _odd_entries() -> list[bytes]:
    """Entries that are no events, or events that make findings, some of them made to
    look, to a reader of bytes, as if they named a demand."""
    closed = next(e for e in ENTRIES if b'"kind":"demand.closed"' in e)
    registered = next(e for e in ENTRIES if b'"kind":"authority.registered"' in e)
    return [
        b"not an event",
        b'},"demand":"d_0001"',
        b'{"commit":{},"demand":"d_0001","facts":{},"kind":"demand.closed","time":"x","v":1}',
        closed.replace(b'"v":1', b'"v":2'),
        closed.replace(b'"demand":"', b'"demand":"never_received_'),
        registered,
        b"\xff" * 40,
    ]


def _variant(rng: random.Random) -> list[bytes]:
    """The golden log's entries with some dropped, repeated, moved and odd ones put in: a
    history rewritten so that its events break the rules in many ways."""
    entries = list(ENTRIES)
    for _ in range(rng.randrange(1, 12)):
        del entries[rng.randrange(len(entries))]
    for _ in range(rng.randrange(0, 6)):
        entries.insert(rng.randrange(len(entries)), rng.choice(ENTRIES))
    for _ in range(rng.randrange(0, 4)):
        i, j = rng.randrange(len(entries)), rng.randrange(len(entries))
        entries[i], entries[j] = entries[j], entries[i]
    for odd in rng.sample(_odd_entries(), rng.randrange(0, 4)):
        entries.insert(rng.randrange(len(entries)), odd)
    return entries


def _audit(
    files: dict[str, bytes], policy: Policy, jobs: int, packs: list[PublishedPack] | None
) -> AuditReport:
    checks = default_checks(DISCLOSED, packs)
    return audit_log(memory_fetcher(files), policy, checks=checks, as_of=LATER, jobs=jobs)


def _same(one: AuditReport, sharded: AuditReport) -> None:
    assert sharded.findings == one.findings
    assert sharded.notes == one.notes
    assert sharded.events == one.events


def test_every_event_about_a_demand_goes_to_the_shard_of_its_demand() -> None:
    about = 0
    for index, leaf in enumerate(ENTRIES):
        demand = parse_event(leaf).demand
        if demand is None:
            continue
        about += 1
        for shards in (2, 3, 7):
            assert shard_of(index, leaf, shards) == crc32(demand.encode()) % shards, leaf[:120]
    assert about > 200
    assert {shard_of(i, leaf, 3) for i, leaf in enumerate(ENTRIES)} == {0, 1, 2}


def test_the_golden_log_reports_alike_in_any_number_of_workers(policy: Policy) -> None:
    files = publish(list(ENTRIES))
    one = _audit(files, policy, 1, PACKS)
    assert one.events == len(ENTRIES) and one.findings  # the golden log's screenings differ
    for jobs in (2, 3, 5):
        _same(one, _audit(files, policy, jobs, PACKS))


def test_rewritten_histories_report_alike_split_or_not(
    policy: Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(SEED)
    codes: Counter[str] = Counter()
    notes = 0
    for n in range(VARIANTS):
        files = publish(_variant(rng))
        packs = PACKS if n % 2 else None
        one = _audit(files, policy, 1, packs)
        assert not one.log_findings  # the history verifies: its events were replayed
        _same(one, _audit(files, policy, 2 + n % 3, packs))
        codes.update(f.code for f in one.findings)
        notes += len(one.notes)
    # The variants must exercise what the merge adds up, or this test would prove little.
    assert len(codes) >= 8 and codes["event_malformed"] and codes["unknown_demand"], codes
    assert notes, "no variant made a note (counts the workers add up)"
    with capsys.disabled():
        print(f"\n{VARIANTS} rewritten histories, each reported alike by 1 and by 2-4 workers:")
        for code, count in sorted(codes.items()):
            print(f"  {count:5d}  {code}")


def test_tallies_add_up_across_replays() -> None:
    """A pack named by screenings in two shards is one finding, its entries in log order."""
    one, a, b = (Replay(default_checks({}, PACKS)) for _ in range(3))
    screened = [e for e in ENTRIES if b'"kind":"demand.screened"' in e]
    other = [
        e.replace(PACKS[0].hash.encode(), b"f" * 64) if b'"pack":"' in e else e for e in ENTRIES
    ]
    assert screened
    for index, leaf in enumerate(other):
        one.feed(index, leaf)
        (a if shard_of(index, leaf, 2) == 0 else b).feed(index, leaf)
    merged = Replay(default_checks({}, PACKS))
    for part in (a, b):
        merged.absorb(part.result(LATER))
    expected = one.finish(LATER)
    assert "pack_unpublished" in {f.code for f in expected}
    assert merged.finish(LATER) == expected
    assert merged.notes() == one.notes() and merged.events == one.events


class _Exploding(Check):
    name = "exploding"
    kinds = frozenset({DEMAND_CLOSED})

    def observe(self, index: int, event: Event) -> Iterable[Finding]:
        raise RuntimeError(f"cannot judge entry {index}")


@pytest.mark.parametrize("copies", [1, 40])
def test_a_worker_that_fails_fails_the_audit_and_leaves_no_process(
    policy: Policy, copies: int
) -> None:
    """Its error is the audit's, whether it failed once every entry was sent (one copy of
    the golden log) or while the audit's process was still sending (forty)."""
    files = publish(list(ENTRIES) * copies)
    with pytest.raises(RuntimeError):
        audit_log(memory_fetcher(files), policy, checks=[_Exploding()], jobs=1)
    with pytest.raises(AuditError, match="cannot judge entry"):
        audit_log(memory_fetcher(files), policy, checks=[_Exploding()], jobs=2)
    assert not multiprocessing.active_children()


def test_a_stopped_audit_ends_its_workers(policy: Policy) -> None:
    files = publish(list(ENTRIES))

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        audit_log(memory_fetcher(files), policy, checks=default_checks(), progress=stop, jobs=2)
    assert not multiprocessing.active_children()


def test_an_unverified_log_is_not_replayed_however_split(policy: Policy) -> None:
    files = publish(list(ENTRIES))
    bundle = "tile/entries/000"
    files[bundle] = files[bundle][:-1] + bytes([files[bundle][-1] ^ 1])
    one, two = (_audit(files, policy, jobs, None) for jobs in (1, 2))
    assert [f.code for f in one.findings] == ["entry_mismatch"]
    _same(one, two)
    assert "events not checked" in one.notes[0]


def test_a_sharded_replay_takes_two_workers_or_more() -> None:
    for jobs in (0, 1, 65):
        with pytest.raises(AuditError, match="2 to 64 jobs"):
            ShardedReplay(default_checks(), jobs)


def test_the_command_reports_alike_with_jobs(tmp_path: Path) -> None:
    args = ["audit", str(GOLDEN), "--policy", POLICY, "--as-of", "2027-01-01T00:00:00Z"]
    reports: list[Mapping[str, object]] = []
    for jobs in ("1", "2", "0"):
        result = runner.invoke(app, [*args, "--no-state", "--json", "--jobs", jobs])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.output))
    assert reports[0] == reports[1] == reports[2]
    for bad in ("-1", "65"):
        result = runner.invoke(app, [*args, "--no-state", "--jobs", bad])
        assert result.exit_code != 0
        assert "--jobs is 0 (one per processor) or 1 to 64" in result.output


def test_the_installed_command_reports_alike_with_two_workers(tmp_path: Path) -> None:
    """The command as an auditor runs it, in a process of its own, progress bar and all."""
    reports = []
    for jobs in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-m", "custodes", "audit", str(GOLDEN), "--policy", POLICY,
             "--no-state", "--json", "--as-of", "2027-01-01T00:00:00Z", "--jobs", jobs],
            capture_output=True, timeout=120, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        reports.append(json.loads(done.stdout))
    assert reports[0] == reports[1] and reports[0]["clean"] is True
