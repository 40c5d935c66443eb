"""Docs that cannot drift: every CLI command, error code, setting and event kind is documented."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path

import custodes
from custodes.cli import app
from custodes.cli.docgen import cli_markdown
from custodes.errors import CustodesError
from custodes.events import KINDS
from custodes.settings import Settings
from custodes.tlog import TlogError

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _all_docs() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def _codes(cls: type[CustodesError] | type[TlogError]) -> set[str]:
    codes = {cls.code}
    for sub in cls.__subclasses__():
        codes |= _codes(sub)
    return codes


def test_cli_docs_are_generated_from_the_cli() -> None:
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == cli_markdown(app), (
        "docs/cli.md is stale: run `python -m custodes.cli.docgen > docs/cli.md`"
    )


def test_every_error_code_is_documented() -> None:
    for mod in pkgutil.walk_packages(custodes.__path__, "custodes."):
        if ".migrations" not in mod.name and not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    docs = _all_docs()
    codes = _codes(CustodesError) | _codes(TlogError)
    missing = sorted(code for code in codes if f"`{code}`" not in docs)
    assert missing == []


def test_every_setting_is_documented() -> None:
    docs = (DOCS / "configuration.md").read_text(encoding="utf-8")
    internal = {"data_dir"}
    names = {f.name for f in dataclasses.fields(Settings)} - internal
    assert sorted(n for n in names if f"`{n}`" not in docs) == []


def test_every_event_kind_is_documented() -> None:
    docs = _all_docs()
    assert sorted(k for k in KINDS if f"`{k}`" not in docs) == []


def test_readme_shows_the_two_commands_and_links_existing_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    for line in readme.splitlines():
        if "](docs/" in line:
            target = line.split("](", 1)[1].split(")", 1)[0]
            assert (ROOT / target).is_file(), f"README links to missing {target}"
