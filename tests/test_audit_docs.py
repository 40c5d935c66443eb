"""docs/auditing.md keeps up with the code: every violation, error code, option and setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import typer.core
import typer.main

from custodes.audit import errors as audit_errors
from custodes.audit.findings import CODES
from custodes.audit.logcheck import LogVerificationError, MissingFileError
from custodes.cli.audit import audit
from custodes.cli.witness import app as witness_app
from custodes.errors import CustodesError
from custodes.ledger.witnessing import WitnessQuorumError
from custodes.tlog import TlogError
from custodes.witness import errors as witness_errors

DOCS = (Path(__file__).resolve().parents[1] / "docs" / "auditing.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_violation_code_has_a_row(code: str) -> None:
    assert f"| `{code}` |" in DOCS, f"docs/auditing.md has no row for {code}"


def _codes(module: object) -> list[str]:
    return sorted(
        {
            cls.code
            for cls in vars(module).values()
            if isinstance(cls, type)
            and issubclass(cls, TlogError | CustodesError)
            and cls.__module__ == getattr(module, "__name__", None)
        }
    )


@pytest.mark.parametrize(
    "code",
    [
        *_codes(audit_errors),
        *_codes(witness_errors),
        LogVerificationError.code,
        MissingFileError.code,
        WitnessQuorumError.code,
    ],
)
def test_every_error_code_is_explained(code: str) -> None:
    assert f"`{code}`" in DOCS, f"docs/auditing.md does not mention {code}"


def test_every_audit_option_is_documented() -> None:
    app = typer.Typer()
    app.command("audit")(audit)
    app.command("other")(lambda: None)  # two commands make a group with ``audit`` in it
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    for param in group.commands["audit"].params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--"):
                assert f"`{opt}" in DOCS, f"docs/auditing.md lacks {opt}"


def test_every_witness_command_and_setting_is_documented() -> None:
    for info in witness_app.registered_commands:
        assert f"custodes witness {info.name}" in DOCS, info.name
    for setting in ("witness_quorum", "[[witnesses]]", "vkey", "url"):
        assert setting in DOCS
