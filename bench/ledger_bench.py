"""The log's figures: durable appends per second, append-to-checkpoint latency, and offline
verification of a 1,000,000-entry log. Each beside a baseline from the same run."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path

from bench.common import backend_url, console, median, percentile, publish_log, show
from custodes.audit.logcheck import dir_fetcher, verify_log
from custodes.deployment import init_data_dir, open_deployment
from custodes.settings import load_settings
from custodes.store import create_store_engine, migrate
from custodes.store.tables import log_entries
from custodes.tlog import (
    format_tile_path,
    leaf_hash,
    new_verifier,
)
from custodes.tlog.tiles import TILE_WIDTH, bundle_tile

BATCH = 256


def _entry(tag: str, i: int) -> bytes:
    # about the size of a real event leaf (canonical JSON with commitments)
    return (
        f'{{"kind":"demand.screened","v":1,"seq":{i},"tag":"{tag}","country":"US",'
        f'"commit":"{hashlib.sha256(f"{tag}{i}".encode()).hexdigest()}"}}'
    ).encode()


def _baseline_inserts(url: str, n: int, batch: int = BATCH) -> float:
    """Raw batched INSERTs of the same rows, same durability settings, no log logic."""
    engine = create_store_engine(url)
    migrate(engine)
    rows = [
        {"idx": i, "leaf_hash": leaf_hash(e), "data": e}
        for i, e in enumerate(_entry("base", i) for i in range(n))
    ]
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        with engine.begin() as conn:
            conn.execute(log_entries.insert(), rows[start : start + batch])
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return n / elapsed


def _ledger_appends(url: str, n: int, writers: int, chunk: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        init_data_dir(data, "bench.custodes.example/log")
        with open_deployment(load_settings(data, database_url=url)) as dep:
            per_writer = n // writers
            barrier = threading.Barrier(writers + 1)

            def work(w: int) -> None:
                entries = [_entry(f"w{w}", i) for i in range(per_writer)]
                barrier.wait()
                for start in range(0, per_writer, chunk):
                    dep.ledger.append(entries[start : start + chunk])

            threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
            for t in threads:
                t.start()
            barrier.wait()
            t0 = time.perf_counter()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            assert dep.ledger.size() == per_writer * writers
            return per_writer * writers / elapsed


# (writers, entries per append call, baseline rows per commit): the baseline commits the same
# number of rows at a time as the group commit can at best gather from those writers.
APPEND_SHAPES = ((1, BATCH, BATCH), (32, 1, 32), (32, 8, BATCH))


ROUNDS = 5


def bench_append(n: int = 20000, rounds: int = ROUNDS) -> None:
    """Each shape in ``rounds`` rounds, each round the baseline and then the ledger: the
    disk's fsync time on this shared machine moves from one second to the next, so each
    ledger run is compared with the baseline run just before it, and the median of those
    ratios is reported with the lowest and the highest."""
    rows = []
    for backend in ("sqlite", "postgresql"):
        for writers, chunk, base_batch in APPEND_SHAPES:
            bases, rates = [], []
            for _ in range(rounds):
                with backend_url(backend) as url:
                    bases.append(_baseline_inserts(url, n, base_batch))
                with backend_url(backend) as url:
                    rates.append(_ledger_appends(url, n, writers, chunk))
            ratios = sorted(r / b for r, b in zip(rates, bases, strict=True))
            rows.append(
                [
                    backend,
                    str(writers),
                    str(chunk),
                    f"{median(rates):,.0f}",
                    f"{median(bases):,.0f} ({base_batch}/commit)",
                    f"{median(ratios):.0%}",
                    f"{ratios[0]:.0%}-{ratios[-1]:.0%}",
                ]
            )
    show(
        f"durable appends/s ({n:,} entries; medians of {rounds} rounds; baseline: raw "
        "batched INSERTs, same durability, just before each round)",
        ["backend", "writers", "per call", "appends/s", "baseline rows/s", "ratio", "range"],
        rows,
    )


def bench_latency(samples: int = 300, background_writers: int = 8, rate: int = 1000) -> None:
    """Append one entry, wait for a signed checkpoint covering it, prove its inclusion."""
    rows = []
    for backend in ("sqlite", "postgresql"):
        with backend_url(backend) as url, tempfile.TemporaryDirectory() as d:
            data = Path(d) / "data"
            init_data_dir(data, "bench.custodes.example/log")
            with open_deployment(load_settings(data, database_url=url)) as dep:
                dep.start()
                stop = threading.Event()

                def load(w: int, stop: threading.Event = stop) -> None:
                    i = 0
                    while not stop.is_set():
                        dep.ledger.append([_entry(f"bg{w}", i)])
                        i += 1
                        time.sleep(background_writers / rate)

                threads = [
                    threading.Thread(target=load, args=(w,)) for w in range(background_writers)
                ]
                for t in threads:
                    t.start()
                total: list[float] = []
                appends: list[float] = []
                for i in range(samples):
                    t0 = time.perf_counter()
                    [index] = dep.ledger.append([_entry("probe", i)])
                    t1 = time.perf_counter()
                    if not dep.sequencer.wait_for(index, timeout=10):
                        raise SystemExit("no checkpoint within 10 s")
                    signed = dep.ledger.latest_checkpoint()
                    assert signed is not None
                    dep.sequencer.prove(index, signed.checkpoint.size)
                    t2 = time.perf_counter()
                    appends.append(t1 - t0)
                    total.append(t2 - t0)
                stop.set()
                for t in threads:
                    t.join()
                size = dep.ledger.size()
        rows.append(
            [
                backend,
                f"{percentile(appends, 50) * 1000:.1f} / {percentile(appends, 99) * 1000:.1f}",
                f"{percentile(total, 50) * 1000:.0f} / {percentile(total, 99) * 1000:.0f}",
                f"{size:,}",
            ]
        )
    show(
        f"append -> signed checkpoint + inclusion proof ({samples} probes; background load "
        f"about {rate}/s from {background_writers} writers)",
        ["backend", "durable append p50/p99 ms (baseline)", "to proof p50/p99 ms", "log size"],
        rows,
    )


def _publish_synthetic_log(root: Path, n: int) -> tuple[str, int]:
    """Write a published log of n entries (bundles, tiles, checkpoint) straight from tlog."""
    return publish_log(root, (_entry("v", i) for i in range(n)), "bench.custodes.example/log"), n


def bench_verify(n: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        console.print(f"publishing a synthetic {n:,}-entry log ...")
        vkey, _ = _publish_synthetic_log(root, n)
        fetch = dir_fetcher(root)
        bundle_paths = [
            format_tile_path(bundle_tile(s // TILE_WIDTH, min(TILE_WIDTH, n - s)))
            for s in range(0, n, TILE_WIDTH)
        ]
        # baselines: read the same bundles and SHA-256 them (a) as one stream, (b) per entry
        t0 = time.perf_counter()
        stream = hashlib.sha256()
        for p in bundle_paths:
            stream.update(fetch(p))
        base_stream = time.perf_counter() - t0
        t0 = time.perf_counter()
        from custodes.tlog import parse_bundle

        for p in bundle_paths:
            for e in parse_bundle(
                fetch(p), TILE_WIDTH if not p.count(".p/") else int(p.rsplit("/", 1)[1])
            ):
                hashlib.sha256(e).digest()
        base_entries = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = verify_log(fetch, new_verifier(vkey))
        elapsed = time.perf_counter() - t0
        size = sum(os.path.getsize(root / p) for p in bundle_paths)
    show(
        f"custodes log verify, {n:,} entries ({size / 1e6:.0f} MB of bundles, "
        f"{result.tiles_checked:,} tiles rebuilt)",
        ["measure", "seconds", "verify / baseline"],
        [
            ["log verify (rebuild every tile + root)", f"{elapsed:.2f}", "1.00"],
            [
                "SHA-256 of each entry (baseline)",
                f"{base_entries:.2f}",
                f"{elapsed / base_entries:.2f}x",
            ],
            [
                "SHA-256 of the bundle bytes as one stream",
                f"{base_stream:.2f}",
                f"{elapsed / base_stream:.2f}x",
            ],
        ],
    )
