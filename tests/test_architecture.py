"""The import rules of DESIGN.md: arrows point one way, and the auditor is an outsider."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "custodes"

# part -> custodes modules it may import (prefixes); stdlib and third-party are checked separately
ALLOWED: dict[str, tuple[str, ...]] = {
    "tlog": ("custodes.tlog",),
    "audit": ("custodes.tlog", "custodes.audit", "custodes.events"),
    "model": ("custodes.model", "custodes.errors"),
    "events": ("custodes.events", "custodes.errors"),
    "store": ("custodes.store", "custodes.errors", "custodes.migrations"),
    "ledger": ("custodes.ledger", "custodes.store", "custodes.tlog", "custodes.errors"),
    "policy": ("custodes.policy", "custodes.model", "custodes.errors"),
    "platform": ("custodes.platform", "custodes.model", "custodes.errors"),
    "witness": (
        "custodes.witness",
        "custodes.tlog",
        "custodes.errors",
        "custodes.web.problems",
        "custodes.__init__",
    ),
    "service": (
        "custodes.service",
        "custodes.model",
        "custodes.events",
        "custodes.policy",
        "custodes.platform",
        "custodes.ledger",
        "custodes.store",
        "custodes.errors",
        "custodes.tlog",
    ),
}
THIRD_PARTY_ALLOWED: dict[str, tuple[str, ...]] = {
    "tlog": ("cryptography",),
    # cedarpy: the auditor runs the published pack's own Cedar files, which are data
    "audit": ("cryptography", "rfc8785", "cedarpy"),
}


def _module_of(path: Path) -> list[str]:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path) -> list[str]:
    """Absolute names of everything a module imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    package = _module_of(path)
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None
                names.append(node.module)
            else:
                base = package[: len(package) - (node.level - 1)]
                if node.module:
                    names.append(".".join([*base, node.module]))
                else:
                    names += [".".join([*base, a.name]) for a in node.names]
    return names


def _part(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if _part(p) in ALLOWED)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_design(path: Path) -> None:
    import sys

    part = _part(path)
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "custodes":
            assert name == "custodes" or name.startswith(ALLOWED[part]), (
                f"{part} may not import {name}"
            )
        elif part in THIRD_PARTY_ALLOWED and top not in sys.stdlib_module_names:
            assert top in THIRD_PARTY_ALLOWED[part] or top == "__future__", (
                f"{part} may import only the stdlib and {THIRD_PARTY_ALLOWED[part]}, not {name}"
            )


def test_only_service_and_ledger_append() -> None:
    """Only the service layer (and the log's own code) calls the ledger's append."""
    offenders = []
    for path in SRC.rglob("*.py"):
        part = _part(path)
        if part in ("ledger", "service", "deployment"):  # deployment: a docstring example
            continue
        text = path.read_text(encoding="utf-8")
        if ".append_in(" in text or "ledger.append(" in text:
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []
