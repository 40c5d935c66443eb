"""``custodes staff``: register the platform's staff and give them credentials.

The first person registered in an empty registry needs nobody's permission (that is how a
deployment gets its first administrator); after that ``--by`` names an administrator. The
password is read from standard input (``--password-stdin``) or asked for; the TOTP secret is
printed once, with an ``otpauth://`` URI for an authenticator app.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from custodes.cli.authority import deployment_services
from custodes.cli.output import console, fail, reported_errors
from custodes.model import Staff
from custodes.service.staff import list_staff, register_staff
from custodes.web.auth import check_password, set_credentials, totp_uri

app = typer.Typer(
    help="Staff: register members with their roles and location, and set their credentials.",
    no_args_is_help=True,
)

DataOpt = Annotated[Path, typer.Option("--data", help="Data directory.")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with reported_errors():
        return check_password(password)


def _print_totp(staff_id: str, secret: str) -> None:
    console.print(f"TOTP secret for {staff_id} (shown once): {secret}")
    console.print(f"authenticator URI: {totp_uri(staff_id, secret)}", soft_wrap=True)


@app.command("add")
def add(
    staff_id: Annotated[str, typer.Argument(help="The staff member's id.")],
    *,
    role: Annotated[list[str], typer.Option(help="A role of the policy pack (repeatable).")],
    location: Annotated[str, typer.Option(help="Where they work (ISO 3166, e.g. IE).")],
    by: Annotated[
        str | None,
        typer.Option("--by", help="The administrator doing it (none only for the first)."),
    ] = None,
    password_stdin: StdinOpt = False,
    data: DataOpt = Path("data"),
) -> None:
    """Register a staff member with a password and a fresh TOTP secret."""
    if not role:
        fail("usage", "give at least one --role", 2)
    password = _password(password_stdin)
    with reported_errors():
        member = Staff(staff_id, frozenset(role), location)
    with deployment_services(data) as services:
        register_staff(services, member, by=by)
        secret = set_credentials(services, staff_id, password)
    console.print(f"registered {staff_id} ({', '.join(sorted(role))}, {location})")
    _print_totp(staff_id, secret)


@app.command("credentials")
def credentials(
    staff_id: Annotated[str, typer.Argument(help="The staff member's id.")],
    password_stdin: StdinOpt = False,
    data: DataOpt = Path("data"),
) -> None:
    """Give a registered staff member a new password and a new TOTP secret."""
    password = _password(password_stdin)
    with deployment_services(data) as services:
        secret = set_credentials(services, staff_id, password)
    _print_totp(staff_id, secret)


@app.command("list")
def list_(data: DataOpt = Path("data")) -> None:
    """Every registered staff member, their roles and location."""
    with deployment_services(data) as services:
        for s in list_staff(services):
            console.print(f"{s.id}\t{','.join(sorted(s.roles))}\t{s.location}")
