"""``custodes authority``: register requesting authorities, their signing keys and their
call-back channels.

Run on the server, against the deployment's data directory (and database); each command is
performed by a registered administrator named with ``--by`` and logged like any other step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from custodes.cli.output import console, fail, reported_errors
from custodes.deployment import open_deployment
from custodes.errors import InputError
from custodes.model import Authority, AuthorityKind, Channel, ChannelKind, VerificationKey
from custodes.platform import ReferencePlatform
from custodes.service import Services
from custodes.service.authorities import (
    add_channel,
    list_authorities,
    register_authority,
    remove_channel,
)
from custodes.service.production import register_recipient
from custodes.settings import load_settings
from custodes.web.app import default_services
from custodes.web.client import (
    AuthorityKey,
    format_private_jwk,
    key_id_of,
    parse_public_jwk,
)
from custodes.web.staff_admin import revoke_authority_key

app = typer.Typer(
    help=(
        "Requesting authorities: register them, their signing keys, their call-back channels "
        "and their age recipients."
    ),
    no_args_is_help=True,
)

DataOpt = Annotated[Path, typer.Option("--data", help="Data directory.")]
ByOpt = Annotated[str, typer.Option("--by", help="The administrator doing it (a staff id).")]


@contextmanager
def deployment_services(data: Path) -> Iterator[Services]:
    """The services of the deployment in ``data``; integrates what was logged on the way out."""
    with reported_errors(), open_deployment(load_settings(data)) as dep:
        services = default_services(dep)
        try:
            yield services
        finally:
            while dep.sequencer.integrate() is not None:
                pass
            if isinstance(services.platform, ReferencePlatform):
                services.platform.close()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _channel(text: str) -> Channel:
    kind, _, address = text.partition(":")
    try:
        return Channel(ChannelKind(kind), address)
    except ValueError:
        raise InputError(
            f"a channel is phone:<number>, email:<address> or portal:<url>, not {text!r}"
        ) from None


@app.command("add")
def add(
    authority_id: Annotated[str, typer.Argument(help="The authority's id, e.g. gb-met.")],
    *,
    name: Annotated[str, typer.Option(help="Its name.")],
    kind: Annotated[AuthorityKind, typer.Option(help="What kind of authority it is.")],
    jurisdiction: Annotated[str, typer.Option(help="ISO 3166 code, e.g. GB or US-CA.")],
    by: ByOpt,
    key: Annotated[Path | None, typer.Option(help="Its Ed25519 public key, as a JWK file.")] = None,
    generate_key: Annotated[
        Path | None,
        typer.Option(help="Generate a key pair; write the private JWK here (mode 0600)."),
    ] = None,
    channel: Annotated[
        list[str] | None, typer.Option(help="A call-back channel, e.g. phone:+44 20 7946 0000.")
    ] = None,
    data: DataOpt = Path("data"),
) -> None:
    """Register an authority with one signing key; prints the key id its requests name."""
    if (key is None) == (generate_key is None):
        fail("usage", "give exactly one of --key and --generate-key", 2)
    if generate_key is not None and generate_key.exists():
        fail("usage", f"{generate_key} exists; a key file is never overwritten", 2)
    with reported_errors():
        if generate_key is not None:
            private = AuthorityKey.generate(authority_id)
            public, keyid = private.public, private.keyid
        else:
            assert key is not None
            public = parse_public_jwk(key.read_text(encoding="utf-8"))
            keyid = f"{authority_id}/{key_id_of(public)}"
        vkey = VerificationKey(keyid.split("/", 1)[1], public)
        channels = tuple(_channel(c) for c in channel or ())
        authority = Authority(authority_id, name, kind, jurisdiction, keys=(vkey,),
                              channels=channels)  # fmt: skip
    with deployment_services(data) as services:
        register_authority(services, authority, by=by)
        if generate_key is not None:
            _write_private(generate_key, format_private_jwk(private))
    console.print(f"registered {authority_id} ({kind.value}, {jurisdiction})")
    if generate_key is not None:
        console.print(f"private key written to {generate_key}")
    console.print(f"key id: {keyid}")


@app.command("list")
def list_(data: DataOpt = Path("data")) -> None:
    """Every registered authority, its standing and its key ids."""
    with deployment_services(data) as services:
        for a in list_authorities(services):
            keys = ", ".join(f"{a.id}/{k.id}" for k in a.keys) or "no keys"
            console.print(f"{a.id}\t{a.kind.value}\t{a.jurisdiction}\t{a.standing.value}\t{keys}")


@app.command("revoke-key")
def revoke(
    keyid: Annotated[str, typer.Argument(help="The key id, <authority id>/<key id>.")],
    by: ByOpt,
    data: DataOpt = Path("data"),
) -> None:
    """Revoke a signing key: requests signed with it are refused from now on."""
    authority_id, sep, key_id = keyid.partition("/")
    if not sep:
        fail("usage", "a key id is <authority id>/<key id>", 2)
    with deployment_services(data) as services:
        revoke_authority_key(services, authority_id, key_id, by=by)
    console.print(f"revoked {keyid}")


AuthorityArg = Annotated[str, typer.Argument(help="The authority's id.")]
ChannelArg = Annotated[
    str, typer.Argument(help="The channel: phone:<number>, email:<address> or portal:<url>.")
]


@app.command("channel-add")
def channel_add(
    authority_id: AuthorityArg, channel: ChannelArg, by: ByOpt, data: DataOpt = Path("data")
) -> None:
    """Register a call-back channel: it counts for emergencies that arrive from now on."""
    with reported_errors():
        parsed = _channel(channel)
    with deployment_services(data) as services:
        add_channel(services, authority_id, parsed, by=by)
    console.print(f"{authority_id}: {parsed.kind.value} channel added")


@app.command("channel-remove")
def channel_remove(
    authority_id: AuthorityArg, channel: ChannelArg, by: ByOpt, data: DataOpt = Path("data")
) -> None:
    """Remove a call-back channel: a call-back on it no longer confirms an emergency."""
    with reported_errors():
        parsed = _channel(channel)
    with deployment_services(data) as services:
        remove_channel(services, authority_id, parsed, by=by)
    console.print(f"{authority_id}: {parsed.kind.value} channel removed")


@app.command("recipient")
def recipient(
    authority_id: Annotated[str, typer.Argument(help="The authority's id.")],
    age_recipient: Annotated[str, typer.Argument(help="Its age X25519 recipient (age1...).")],
    by: ByOpt,
    data: DataOpt = Path("data"),
) -> None:
    """Register the age recipient that productions for the authority are sealed to."""
    with deployment_services(data) as services:
        register_recipient(services, authority_id, age_recipient, by=by)
    console.print(f"productions for {authority_id} are sealed to {age_recipient}")
