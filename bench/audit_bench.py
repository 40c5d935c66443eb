"""``custodes audit`` of a 1,000,000-event log, beside SHA-256 over the same bytes.

The events are real: seven kinds of demand (a lawful disclosure, one narrowed to the subject a
treaty route covers, a refusal, an emergency with its call-back and follow-up, a
restriction, a gag challenged, a preservation) and staff access, each screened once by the
real policy pack (:func:`custodes.policy.evaluate`) and encoded with
:func:`custodes.events.encode_event`, then copied for every demand with its own id, times and
volume. Every demand meets its obligations, so the audit is clean: what is measured is the
cost of checking, not of reporting. The published log (bundles, tiles, signed checkpoint) is
written straight with tlog.

Baselines, read from the same files in the same run: SHA-256 of the bundle bytes as one
stream (the least any check of the bytes can cost), and SHA-256 of each entry (one hash call
per entry, as the leaf hashes need; the entries are cut out of the bundles first).

Each audit runs once in one process and once with the events replayed by :data:`JOBS`
worker processes (``--jobs``); the baselines run in one process.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.common import console, publish_log, show
from custodes.audit.auditor import audit_log
from custodes.audit.checks import default_checks
from custodes.audit.logcheck import dir_fetcher
from custodes.audit.packs import load_published_pack
from custodes.audit.policy import NONE, Policy, PolicyLog
from custodes.events import encode_event
from custodes.model import (
    Authority,
    AuthorityKind,
    CallbackStatus,
    DataCategory,
    Demand,
    DemandKind,
    InstrumentKind,
    LegalInstrument,
    Nondisclosure,
    Offence,
    Restriction,
    RestrictionAction,
    ScreeningContext,
    SignatureStatus,
    Subject,
    Target,
    TargetKind,
    TimeRange,
    summarize,
)
from custodes.policy import DEFAULT_PACK, PolicyPack, evaluate, load_pack
from custodes.service.judgements import Screening
from custodes.service.screening import screened_facts
from custodes.tlog import (
    TILE_WIDTH,
    bundle_tile,
    format_tile_path,
    parse_bundle,
)

ORIGIN = "bench.custodes.example/log"
_ID = "d_TEMPLATE"
_T0 = datetime(2026, 1, 1, tzinfo=UTC)
_TIME = f'"time":"{_T0:%Y-%m-%dT%H:%M:%SZ}"'.encode()
_VOLUME = 7
AS_OF = datetime(2027, 7, 1, tzinfo=UTC)
JOBS = 2
"""Worker processes of the ``--jobs`` rows: one per processor of the machine the figures in
docs/performance.md come from."""

Step = tuple[str, dict[str, Any], dict[str, Any]]  # kind, facts, private
Case = tuple[Demand, Authority, Mapping[Target, Subject | None], CallbackStatus]


def _acct(ident: str) -> Target:
    return Target(TargetKind.ACCOUNT, ident)


def _authority(ident: str, kind: AuthorityKind, where: str) -> Authority:
    return Authority(ident, f"{ident} agency", kind, where)


def _demand(authority: Authority, kind: DemandKind, instrument: InstrumentKind,
            targets: tuple[Target, ...], **fields: Any) -> Demand:  # fmt: skip
    document = hashlib.sha256(authority.id.encode()).hexdigest()
    legal = LegalInstrument(instrument, f"{authority.id}-1", authority.name, None, (), document)
    return Demand(_ID, authority.id, kind, legal, targets, _T0, **fields)


def _subject(target: Target, where: str, region: str) -> Subject:
    return Subject(target, where, region, "business", affected=frozenset({where}))


def _cases() -> dict[str, Case]:
    us = _authority("us-court", AuthorityKind.COURT, "US")
    gb = _authority("gb-police", AuthorityKind.POLICE, "GB")
    cn = _authority("cn-mps", AuthorityKind.POLICE, "CN")
    sfpd = _authority("us-ca-pd", AuthorityKind.POLICE, "US-CA")
    alice, bob, post = _acct("u-alice"), _acct("u-bob"), Target(TargetKind.CONTENT, "c-1")
    us_alice = {alice: _subject(alice, "US-CA", "US")}
    period = TimeRange(_T0 - timedelta(days=90), _T0)
    content, subscriber = (DataCategory.CONTENT,), (DataCategory.SUBSCRIBER_INFO,)
    none = CallbackStatus.NONE
    return {
        "disclosure": (_demand(us, DemandKind.DISCLOSURE, InstrumentKind.SEARCH_WARRANT, (alice,),
                               categories=content, time_range=period, offence=Offence("fraud")),
                       us, us_alice, none),
        "narrowed": (_demand(gb, DemandKind.DISCLOSURE, InstrumentKind.CLOUD_ACT_ORDER,
                             (alice, bob), categories=subscriber, offence=Offence("fraud")),
                     gb, {alice: _subject(alice, "GB-ENG", "US"),
                          bob: _subject(bob, "US-NY", "US")}, none),
        "refused": (_demand(cn, DemandKind.DISCLOSURE, InstrumentKind.ADMINISTRATIVE_REQUEST,
                            (alice,), categories=subscriber, offence=Offence("subversion")),
                    cn, us_alice, none),
        "emergency": (_demand(sfpd, DemandKind.EMERGENCY_DISCLOSURE,
                              InstrumentKind.EMERGENCY_REQUEST, (alice,), categories=subscriber,
                              offence=Offence("threat_to_life")),
                      sfpd, us_alice, CallbackStatus.REGISTERED),
        "restriction": (_demand(us, DemandKind.RESTRICTION, InstrumentKind.COURT_ORDER, (post,),
                                restriction=Restriction(RestrictionAction.REMOVE_CONTENT, ("US",)),
                                offence=Offence("fraud")),
                        us, {post: _subject(post, "US-CA", "US")}, none),
        "gag": (_demand(us, DemandKind.DISCLOSURE, InstrumentKind.SUBPOENA, (alice,),
                        categories=subscriber, offence=Offence("fraud"),
                        nondisclosure=Nondisclosure(None)),
                us, us_alice, none),
        "preservation": (_demand(us, DemandKind.PRESERVATION,
                                 InstrumentKind.PRESERVATION_REQUEST, (alice,),
                                 categories=content, offence=Offence("fraud")),
                         us, us_alice, none),
    }  # fmt: skip


def _received(demand: Demand, authority: Authority) -> Step:
    facts: dict[str, Any] = {
        "demand_kind": demand.kind.value,
        "instrument_kind": demand.instrument.kind.value,
        "target_count": len(demand.targets),
        "signature": "valid",
        "authority_jurisdiction": authority.jurisdiction,
        "authority_kind": authority.kind.value,
    }
    if demand.categories:
        facts["categories"] = [c.value for c in demand.categories]
    if demand.restriction is not None:
        facts["restriction_action"] = demand.restriction.action.value
        facts["territories"] = list(demand.restriction.territories)
    if demand.nondisclosure is not None:
        facts["nondisclosure"] = "undated" if demand.nondisclosure.until is None else "dated"
    private: dict[str, Any] = {
        "authority": authority.id,
        "body_sha256": "ab" * 32,
        "document_sha256": demand.instrument.document_sha256,
        "instrument_reference": demand.instrument.reference,
        "staff": "s-intake",
        "targets": [str(t) for t in demand.targets],
    }
    if demand.offence is not None:
        private["offence"] = demand.offence.category
    return "demand.received", facts, private


def _screened(pack: PolicyPack, case: Case) -> tuple[Step, Any]:
    demand, authority, subjects, callback = case
    context = ScreeningContext(_T0, SignatureStatus.VALID, callback, _VOLUME)
    findings = evaluate(pack, demand, authority, subjects, context)
    verdict = summarize(demand, findings)
    found = {t: s for t, s in subjects.items() if s is not None}
    screening = Screening(pack.hash, authority, found, context, tuple(findings))
    return ("demand.screened", screened_facts(demand, screening, verdict), {}), verdict


def _lifecycle(name: str, pack: str, demand: Demand, screened: Step, verdict: Any) -> list[Step]:
    """What follows the screening: review, decision, effects, notice, close."""
    staff = {"staff": "s-rev"}
    kind = demand.kind.value
    cats = [c.value for c in demand.categories]
    review: Step = ("demand.review_opened", {"roles": list(verdict.roles)}, staff)

    def approvals(n: int) -> list[Step]:
        return [("approval.given", {"role": "approver", "approvals": i + 1},
                 {"staff": f"s-appr-{i}", "note": "lawful"}) for i in range(n)]  # fmt: skip

    executed: Step = ("demand.executed", {"pack": pack, "demand_kind": kind}, {"staff": "s-dc"})
    produced: Step = ("production.delivered",
                      {"categories": cats, "target_count": 1, "record_count": 3},
                      {"production_sha256": "cd" * 32, "recipient": "age1bench"})  # fmt: skip
    told: Step = ("notice.sent", {"record_count": 1}, {"staff": "s-dc"})
    closed: Step = ("demand.closed", {"outcome": verdict.outcome.value}, {"staff": "s-dc"})
    decision = {"pack": pack, "approvals": 2, "target_count": 1, "categories": cats}
    decided: Step = ("demand.approved", decision, {})
    if name == "disclosure":
        return [review, *approvals(2), decided, executed, produced, told, closed]
    if name == "narrowed":
        narrowed: Step = ("demand.narrowed", decision | {"dropped_targets": 1},
                          {"targets": ["u-alice"]})  # fmt: skip
        return [review, *approvals(2), narrowed, executed, produced, told, closed]
    if name == "refused":
        found = screened[1]["findings"]
        refusing = sorted({f["rule"] for f in found if f["outcome"] == "refuse"})
        refused: Step = ("demand.refused", {"pack": pack, "rules": refusing}, staff)
        return [refused, closed]
    if name == "emergency":
        approved: Step = ("demand.approved", {"pack": pack, "approvals": 1, "target_count": 1,
                          "categories": cats}, {})  # fmt: skip
        follow_up: Step = ("emergency.follow_up_completed", {},
                           {"staff": "s-rev", "document_sha256": "ef" * 32})  # fmt: skip
        return [review, *approvals(1), approved, executed, produced, follow_up, told, closed]
    if name == "restriction":
        applied: Step = ("restriction.applied", {"restriction_action": "remove_content",
                         "target_count": 1, "territories": ["US"]},
                         {"staff": "s-dc", "targets": ["content:c-1"]})  # fmt: skip
        approved = ("demand.approved", {"pack": pack, "approvals": 2, "target_count": 1}, {})
        return [review, *approvals(2), approved, executed, applied, told, closed]
    if name == "gag":
        challenged: Step = ("demand.challenged", {"rules": list(verdict.rules)},
                            {"staff": "s-legal", "grounds": "no end date"})  # fmt: skip
        return [review, challenged, closed]
    placed: Step = ("preservation.placed", {"categories": cats, "target_count": 1,
                    "due_at": "2026-04-01T00:00:00Z"}, {"staff": "s-dc"})  # fmt: skip
    released: Step = ("preservation.released", {}, {"staff": "s-dc"})
    return [review, *approvals(2), decided, executed, placed, released, closed]


def _staff_access(pack: str) -> list[Step]:
    who = {"staff": "s-ts", "subject": "u-carol"}
    return [
        ("staff_access.granted", {"justification": "abuse_investigation", "pack": pack},
         {**who, "grantor": "s-lead"}),
        ("staff_access.read", {"categories": ["subscriber_info"], "record_count": 1}, who),
        ("staff_access.revoked", {}, who),
    ]  # fmt: skip


def templates(pack: PolicyPack) -> list[list[bytes]]:
    """Each kind of demand once, as leaves, with its id and time to be filled in."""
    out = []
    for name, case in _cases().items():
        screened, verdict = _screened(pack, case)
        steps = [_received(case[0], case[1])]
        if case[3] is CallbackStatus.REGISTERED:
            steps.append(("emergency.callback_recorded",
                          {"callback": "registered", "channel_kind": "phone"},
                          {"staff": "s-intake", "channel": "+1 555 0100"}))  # fmt: skip
        steps += [screened, *_lifecycle(name, pack.hash, case[0], screened, verdict)]
        out.append([_encode(k, f, p, demand=_ID) for k, f, p in steps])
    out.append([_encode(k, f, p, demand=None) for k, f, p in _staff_access(pack.hash)])
    return out


def _encode(kind: str, facts: dict[str, Any], private: dict[str, Any], demand: str | None) -> bytes:
    return encode_event(kind, time=_T0, demand=demand, facts=facts, private=private)[0]


def synthetic_leaves(n: int, pack: PolicyPack, seed: int = 7) -> Iterator[bytes]:
    """``n`` leaves: demands one after another, a minute between events, each screening
    logging its own volume (below the pack's review threshold)."""
    rng = random.Random(seed)
    made = demand = 0
    kinds = templates(pack)
    old_id, old_volume = f'"{_ID}"'.encode(), f'"volume":{_VOLUME}'.encode()
    clock = _T0
    while made < n:
        template = kinds[demand % len(kinds)]
        new_id = f'"d_{demand:012d}"'.encode()
        volume = f'"volume":{rng.randrange(1, 200)}'.encode()
        for leaf in template:
            clock += timedelta(seconds=30)
            when = f'"time":"{clock:%Y-%m-%dT%H:%M:%SZ}"'.encode()
            yield leaf.replace(old_id, new_id).replace(_TIME, when).replace(old_volume, volume)
            made += 1
            if made == n:
                return
        demand += 1


def publish(root: Path, leaves: Iterator[bytes], n: int, tick: Callable[[int], None]) -> str:
    """Write the published log of ``leaves`` into ``root``; returns the log's verifier key."""
    return publish_log(root, itertools.islice(leaves, n), ORIGIN, tick)


def _bundle_paths(n: int) -> list[tuple[str, int]]:
    return [
        (format_tile_path(bundle_tile(s // TILE_WIDTH, min(TILE_WIDTH, n - s))),
         min(TILE_WIDTH, n - s))
        for s in range(0, n, TILE_WIDTH)
    ]  # fmt: skip


def _baselines(root: Path, n: int) -> tuple[float, float, int]:
    """(streaming SHA-256 of the bundles, SHA-256 of each entry, bytes) over the same files."""
    fetch = dir_fetcher(root)
    paths = _bundle_paths(n)
    t0 = time.perf_counter()
    stream = hashlib.sha256()
    size = 0
    for path, _ in paths:
        data = fetch(path)
        stream.update(data)
        size += len(data)
    streamed = time.perf_counter() - t0
    t0 = time.perf_counter()
    sha256 = hashlib.sha256
    for path, width in paths:
        for entry in parse_bundle(fetch(path), width):
            sha256(entry).digest()
    per_entry = time.perf_counter() - t0
    return streamed, per_entry, size


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


Timed = tuple[float, float | None, float | None]
"""Seconds of wall time, then of processor time in the audit's own process and in its
workers (None for a baseline)."""


def _audit(
    root: Path, policy: Policy, n: int, packs: list[Any] | None, label: str, *, jobs: int = 1
) -> Timed:
    with _progress() as bar:
        task = bar.add_task(label, total=n)
        before = os.times()
        t0 = time.perf_counter()
        report = audit_log(
            dir_fetcher(root),
            policy,
            checks=default_checks({}, packs),
            as_of=AS_OF,
            progress=lambda done, total: bar.update(task, completed=done),
            jobs=jobs,
        )
        elapsed = time.perf_counter() - t0
        after = os.times()
    assert report.events == n and report.clean, report.findings[:3]
    own = after.user - before.user + after.system - before.system
    workers = after.children_user - before.children_user
    workers += after.children_system - before.children_system
    return elapsed, own, workers


def bench_audit(n: int = 1_000_000) -> None:
    pack = load_pack()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        with _progress() as bar:
            task = bar.add_task(f"making and publishing {n:,} events", total=n)
            vkey = publish(root, synthetic_leaves(n, pack), n, lambda k: bar.advance(task, k))
        policy = Policy((PolicyLog(vkey),), (), (), NONE)
        streamed, per_entry, size = _baselines(root, n)
        audit = _audit(root, policy, n, None, "custodes audit")
        split = _audit(root, policy, n, None, f"custodes audit --jobs {JOBS}", jobs=JOBS)
        published = [load_published_pack(DEFAULT_PACK)]
        judged = _audit(root, policy, n, published, "custodes audit --pack")
        judged_split = _audit(
            root, policy, n, published, f"custodes audit --pack --jobs {JOBS}", jobs=JOBS
        )
    measured: list[tuple[str, Timed]] = [
        ("SHA-256, one stream", (streamed, None, None)),
        ("SHA-256 of each entry", (per_entry, None, None)),
        ("audit", audit),
        (f"audit --jobs {JOBS}", split),
        ("audit --pack", judged),
        (f"audit --pack --jobs {JOBS}", judged_split),
    ]
    rows = [
        [what, f"{seconds:.2f}", f"{n / seconds:,.0f}", f"{seconds / streamed:.1f}x",
         f"{seconds / per_entry:.1f}x", _cpu(own), _cpu(workers)]
        for what, (seconds, own, workers) in measured
    ]  # fmt: skip
    show(
        f"custodes audit of {n:,} events ({size / 1e6:,.0f} MB of entry bundles)",
        ["measure", "seconds", "entries/s", "/ stream", "/ per entry", "CPU s", "workers"],
        rows,
    )
    console.print(
        "SHA-256 of the bundle bytes as one stream, and of each entry: the baselines. "
        "audit: custodes audit, every tile, every event, every check; --pack: every screening "
        f"judged again; --jobs {JOBS}: the events replayed in {JOBS} worker processes. "
        "CPU s: processor time of the audit's own process; workers: of its workers."
    )
    walls = [(what, seconds) for what, (seconds, _, _) in measured]
    console.print(f"chart: {_chart(walls, per_entry, n, CHART)}")


def _cpu(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


CHART = Path("artifacts/bench/audit.svg")
"""Where :func:`bench_audit` draws its figures."""
GOAL = 3.0
"""The issue's goal: an audit under this many times SHA-256 of each entry."""


def _chart(measured: list[tuple[str, float]], per_entry: float, n: int, path: Path) -> Path:
    """Each measure's seconds, against the goal drawn from the per-entry baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    labels = [what if "SHA" in what else f"custodes {what}" for what, _ in measured][::-1]
    seconds = [s for _, s in measured][::-1]
    colours = ["tab:grey" if "SHA-256" in label else "tab:blue" for label in labels]
    ax.barh(labels, seconds, color=colours)
    for y, value in enumerate(seconds):
        ax.text(value, y, f" {value:.2f} s ({value / per_entry:.1f}x)", va="center", fontsize=8)
    goal = GOAL * per_entry
    ax.axvline(goal, color="tab:red", linestyle="--", label=f"goal: {GOAL:.0f}x per-entry SHA-256")
    ax.set(title=f"custodes audit of {n:,} events, seconds", xlim=(0, max(seconds) * 1.3))
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
