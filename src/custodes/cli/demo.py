"""``custodes demo``: build a demo deployment and (unless told not to) serve it."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Annotated

import typer

from custodes.cli.output import console, progress_bar, reported_errors
from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.settings import load_settings

SAMPLE_KINDS = ("demand.received", "demand.screened", "approval.given", "demand.executed")
SAMPLE_COUNTRIES = ("US", "DE", "FR", "GB", "BR", "IN", "JP", "CN", "KE", "MX")


def _sample_events(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    events = []
    for i in range(count):
        event = {
            "kind": SAMPLE_KINDS[i % len(SAMPLE_KINDS)],
            "seq": i,
            "country": rng.choice(SAMPLE_COUNTRIES),
            "targets": rng.randint(1, 25),
        }
        events.append(json.dumps(event, sort_keys=True, separators=(",", ":")).encode())
    return events


def build_demo(dep: Deployment, events: int, seed: int) -> None:
    entries = _sample_events(events, seed)
    with progress_bar() as bar:
        task = bar.add_task("appending sample events", total=len(entries))
        for start in range(0, len(entries), 250):
            dep.ledger.append(entries[start : start + 250])
            bar.advance(task, min(250, len(entries) - start))
    while dep.sequencer.integrate() is not None:
        pass


def demo(
    data: Annotated[Path, typer.Option("--data", help="Demo data directory.")] = Path("demo-data"),
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve it afterwards.")] = True,
    events: Annotated[int, typer.Option(help="Sample events to append.", min=1)] = 3000,
    seed: Annotated[int, typer.Option(help="Seed for the sample data.")] = 2020,
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 8000,
) -> None:
    """Build a demo data directory (fresh each time) and serve it."""
    with reported_errors():
        if data.exists():
            if not (data / "custodes.toml").is_file():
                from custodes.cli.output import fail

                fail("usage", f"{data} exists and is not a custodes data directory")
            shutil.rmtree(data)
        init_data_dir(data, "demo.custodes.example/log")
        with open_deployment(load_settings(data)) as dep:
            build_demo(dep, events, seed)
            signed = dep.ledger.latest_checkpoint()
            assert signed is not None
            console.print(
                f"demo log at {data}/log: size {signed.checkpoint.size}, "
                f"root {signed.checkpoint.root.hex()}"
            )
    if serve:
        from custodes.cli import serve as serve_cmd

        serve_cmd(data=data, port=port)
