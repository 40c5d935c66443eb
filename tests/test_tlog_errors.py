"""The tlog error tree: stable, unique codes, documented, with evidence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from custodes.tlog import errors
from custodes.tlog.errors import TlogError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "log-format.md"


def _error_classes() -> list[type[TlogError]]:
    found = [TlogError]
    queue = [TlogError]
    while queue:
        for sub in queue.pop().__subclasses__():
            if sub.__module__ == errors.__name__:
                found.append(sub)
                queue.append(sub)
    return found


def test_every_error_has_a_unique_snake_case_code() -> None:
    codes = [cls.code for cls in _error_classes()]
    assert len(codes) == len(set(codes)) >= 11
    for code in codes:
        assert re.fullmatch(r"tlog_[a-z_]+", code), code


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_is_documented_with_its_status(cls: type[TlogError]) -> None:
    row = f"| `{cls.code}` | `{cls.__name__}` | {cls.status} |"
    assert row in DOCS.read_text(encoding="utf-8"), f"docs/log-format.md lacks: {row}"


def test_errors_carry_detail_and_evidence() -> None:
    err = errors.InconsistentTreeError("fork", old_size=1, proof=["AA=="])
    assert str(err) == "fork"
    assert err.detail == "fork"
    assert err.evidence == {"old_size": 1, "proof": ["AA=="]}
    assert isinstance(err, errors.ProofError)
    assert isinstance(errors.SizeLimitError("x"), errors.FormatError)
    assert isinstance(errors.KeyFormatError("x"), errors.FormatError)
