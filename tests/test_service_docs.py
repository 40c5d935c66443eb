"""docs/life-of-a-demand.md keeps up with the service: every state, every event kind the
demand use-cases log, and every use-case."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import ModuleType

import pytest

import custodes.events
from custodes.events import KINDS
from custodes.model import DemandState
from custodes.service import (
    authorities,
    clocks,
    demands,
    lifecycle,
    review,
    scope,
    screening,
    staff,
    tos,
)

DOCS = (Path(__file__).resolve().parents[1] / "docs" / "life-of-a-demand.md").read_text(
    encoding="utf-8"
)
MODULES: tuple[ModuleType, ...] = (
    authorities,
    clocks,
    demands,
    lifecycle,
    review,
    scope,
    screening,
    staff,
    tos,
)


def _logged_kinds() -> set[str]:
    """Event kinds the demand use-cases import to log."""
    kinds = set()
    for module in MODULES:
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "custodes.events":
                for alias in node.names:
                    value = getattr(custodes.events, alias.name)
                    if isinstance(value, str) and value in KINDS:
                        kinds.add(value)
    return kinds


def _use_cases() -> set[str]:
    """Public functions that take the services first and work in their own transaction (the
    hooks that work in the caller's, ``conn`` first, are named by hand below)."""
    names = {"mark_executed", "mark_notified", "load_approved_scope", "start_clock", "meet_clock"}
    for module in MODULES:
        for name in module.__all__:
            fn = getattr(module, name)
            if inspect.isfunction(fn) and fn.__module__ == module.__name__:
                params = list(inspect.signature(fn).parameters)
                if params[:1] == ["services"] and "conn" not in params and name != "permit":
                    names.add(name)
    return names


@pytest.mark.parametrize("state", [s.value for s in DemandState])
def test_every_state_is_described(state: str) -> None:
    assert f"`{state}`" in DOCS


@pytest.mark.parametrize("kind", sorted(_logged_kinds()))
def test_every_event_the_use_cases_log_is_named(kind: str) -> None:
    assert f"`{kind}`" in DOCS


@pytest.mark.parametrize("name", sorted(_use_cases()))
def test_every_use_case_is_documented(name: str) -> None:
    assert f"`{name}" in DOCS, f"docs/life-of-a-demand.md does not mention {name}"
