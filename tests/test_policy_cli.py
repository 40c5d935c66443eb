"""``custodes policy check``: validates the pack, runs its cases, fails loudly."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from custodes.cli.policy import app
from custodes.policy import DEFAULT_PACK, pack_hash


def test_check_passes_on_the_default_pack() -> None:
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert pack_hash(DEFAULT_PACK) in result.output
    assert "all" in result.output and "cases pass" in result.output


def test_check_fails_on_a_failing_case(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, pack)
    rules = pack / "scope.cedar"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace(
            "target_count > Limits", "target_count > 1000 + Limits"
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["check", "--pack", str(pack)])
    assert result.exit_code == 1
    assert "FAIL" in result.output
    assert "no finding rule=scope.target_cap" in result.output


def test_check_fails_on_a_pack_that_does_not_load(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, pack)
    routes = pack / "routes.toml"
    routes.write_text(
        routes.read_text(encoding="utf-8").replace('["GB"]', '["UK"]'), encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["check", "--pack", str(pack)])
    assert result.exit_code == 1
    assert "unknown 'UK'" in result.output
