"""The ``custodes`` command line. Every command is documented in docs/cli.md (generated)."""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from custodes.cli import audit as audit_cmd
from custodes.cli import authority as authority_cmd
from custodes.cli import demo as demo_cmd
from custodes.cli import log as log_cmd
from custodes.cli import policy as policy_cmd
from custodes.cli import report as report_cmd
from custodes.cli import staff as staff_cmd
from custodes.cli import submit as submit_cmd
from custodes.cli import witness as witness_cmd
from custodes.cli.output import console, reported_errors
from custodes.deployment import init_data_dir, open_deployment
from custodes.settings import load_settings

app = typer.Typer(
    name="custodes",
    help="Government demands and privileged access to user data, through one verifiable log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(log_cmd.app, name="log")
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(witness_cmd.app, name="witness")
app.command("demo")(demo_cmd.demo)
app.command("audit")(audit_cmd.audit)
app.add_typer(authority_cmd.app, name="authority")
app.add_typer(staff_cmd.app, name="staff")
app.command("submit")(submit_cmd.submit)
app.command("report")(report_cmd.report)

DataOpt = Annotated[Path, typer.Option("--data", help="Data directory.")]


@app.command("init")
def init(
    data: DataOpt = Path("data"),
    origin: Annotated[
        str, typer.Option(help="The log's origin line, e.g. custodes.example.com/log.")
    ] = "custodes.example/log",
) -> None:
    """Create a data directory with a fresh log signing key and the log's origin."""
    with reported_errors():
        init_data_dir(data, origin)
        with open_deployment(load_settings(data)) as dep:
            dep.sequencer.integrate()
            console.print(f"initialised {data} for log {origin}")
            console.print(f"verifier key: {dep.vkey}", soft_wrap=True)


@app.command("serve")
def serve(
    data: DataOpt = Path("data"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the API, the console and the published log (DATA/log/ at /log/)."""
    import uvicorn

    from custodes.service.scheduler import Scheduler
    from custodes.web.app import create_app

    with reported_errors():
        dep = open_deployment(load_settings(data))
    dep.start()
    app_ = create_app(dep)
    scheduler = Scheduler(app_.state.services)
    scheduler.start()
    # Everything made while starting (modules, the policy pack, the platform, the app) lives
    # as long as the server: keep it out of the collector's full passes, each of which
    # otherwise stopped every request for a tenth of a second once the heap had grown.
    gc.collect()
    gc.freeze()
    try:
        console.print(f"custodes serving {data} on http://{host}:{port}/")
        console.print(f"reviewer console: http://{host}:{port}/console/")
        uvicorn.run(app_, host=host, port=port, log_level="warning")
    finally:
        scheduler.stop()
        dep.close()


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("CUSTODES_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    app()
