"""``custodes witness``: run a witness for other people's logs (c2sp.org/tlog-witness)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from custodes.cli.output import console, reported_errors
from custodes.witness.cosigning import Witness
from custodes.witness.store import WitnessStore, init_witness_dir

app = typer.Typer(
    help="A witness: cosigns a log's checkpoints only if they extend what it saw.",
    no_args_is_help=True,
)

WitnessDirOpt = Annotated[Path, typer.Option("--data", help="Witness directory.")]


@app.command("init")
def init(
    name: Annotated[str, typer.Option(help="The witness's key name, e.g. witness.example.org.")],
    data: WitnessDirOpt = Path("witness"),
) -> None:
    """Create a witness directory with a fresh cosigning key."""
    with reported_errors():
        vkey = init_witness_dir(data, name)
    console.print(f"initialised witness {name} in {data}")
    console.print(f"witness key: {vkey}", soft_wrap=True)


@app.command("key")
def key(data: WitnessDirOpt = Path("witness")) -> None:
    """Print the witness's verifier key, for log operators and auditors' policies."""
    with reported_errors():
        console.print(WitnessStore(data).vkey, soft_wrap=True)


@app.command("add-log")
def add_log(
    vkey: Annotated[str, typer.Argument(help="The log's verifier key (its name is its origin).")],
    data: WitnessDirOpt = Path("witness"),
) -> None:
    """Start witnessing a log."""
    with reported_errors():
        origin = WitnessStore(data).add_log(vkey)
    console.print(f"witnessing {origin}")


@app.command("serve")
def serve(
    data: WitnessDirOpt = Path("witness"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 7380,
) -> None:
    """Serve POST /add-checkpoint for the logs in the witness directory."""
    import uvicorn

    from custodes.witness.server import create_witness_app

    with reported_errors():
        store = WitnessStore(data)
        witness = Witness(store, store.cosigner())
    console.print(f"witness {witness.cosigner.name} serving on http://{host}:{port}/")
    uvicorn.run(create_witness_app(witness), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    app()
