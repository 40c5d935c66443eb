"""Checkpoints: round trips, the spec's example, and rejection of every non-canonical text."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.tlog import (
    EMPTY_ROOT,
    Checkpoint,
    FormatError,
    SizeLimitError,
    format_checkpoint,
    generate_key,
    new_signer,
    new_verifier,
    open_note,
    parse_checkpoint,
    sign_note,
)

ROOT = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
SPEC_EXAMPLE = f"example.com/behind-the-sofa\n20852163\n{ROOT}\n"


def test_parse_checkpoint_reads_the_spec_example() -> None:
    cp = parse_checkpoint(SPEC_EXAMPLE)
    assert cp == Checkpoint("example.com/behind-the-sofa", 20852163, base64.b64decode(ROOT))
    assert format_checkpoint(cp) == SPEC_EXAMPLE


lines = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    origin=lines,
    size=st.integers(min_value=0, max_value=2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(lines, max_size=3).map(tuple),
)
def test_checkpoints_round_trip(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    cp = Checkpoint(origin, size, root, extensions)
    assert parse_checkpoint(format_checkpoint(cp)) == cp


@pytest.mark.parametrize(
    "text",
    [
        f"example.com/log\n01\n{ROOT}\n",
        f"example.com/log\n+1\n{ROOT}\n",
        f"example.com/log\n-1\n{ROOT}\n",
        f"example.com/log\n 1\n{ROOT}\n",
        f"example.com/log\n1.0\n{ROOT}\n",
        f"example.com/log\n١\n{ROOT}\n",  # an Arabic-Indic digit one
        f"example.com/log\n{2**64}\n{ROOT}\n",
        f"example.com/log\n1\n{ROOT[:-1]}\n",  # padding missing
        f"example.com/log\n1\n{ROOT[:-2]}J=\n",  # non-zero unused bits
        f"example.com/log\n1\n{ROOT} \n",
        f"example.com/log\n1\n{base64.b64encode(b'x' * 31).decode()}\n",  # 31-byte root
        f"example.com/log\n1\n{base64.b64encode(b'x' * 33).decode()}\n",
        f"\n1\n{ROOT}\n",  # empty origin
        f"example.com/log\n1\n{ROOT}",  # no final newline
        f"example.com/log\n1\n{ROOT}\n\n",  # empty extension line
        f"example.com/log\n1\n{ROOT}\n\next\n",
        "example.com/log\n1\n",
        "",
        f"example.com/log\r\n1\n{ROOT}\n",
        f"example.com/\tlog\n1\n{ROOT}\n",
    ],
)
def test_parse_checkpoint_rejects_non_canonical_text(text: str) -> None:
    with pytest.raises(FormatError):
        parse_checkpoint(text)


def test_parse_checkpoint_refuses_oversized_text_before_parsing() -> None:
    with pytest.raises(SizeLimitError):
        parse_checkpoint("x\n" * 200_000)


@pytest.mark.parametrize(
    "fields",
    [
        ("", 0, EMPTY_ROOT, ()),
        ("a\nb", 0, EMPTY_ROOT, ()),
        ("log", -1, EMPTY_ROOT, ()),
        ("log", 2**64, EMPTY_ROOT, ()),
        ("log", 0, EMPTY_ROOT[:31], ()),
        ("log", 0, EMPTY_ROOT, ("",)),
        ("log", 0, EMPTY_ROOT, ("two\nlines",)),
    ],
)
def test_checkpoint_is_valid_by_construction(
    fields: tuple[str, int, bytes, tuple[str, ...]],
) -> None:
    with pytest.raises(FormatError):
        Checkpoint(*fields)


def test_a_signed_checkpoint_opens_and_parses() -> None:
    skey, vkey = generate_key("example.com/log")
    cp = Checkpoint("example.com/log", 5, EMPTY_ROOT)
    note = open_note(sign_note(format_checkpoint(cp), new_signer(skey)), [new_verifier(vkey)])
    assert parse_checkpoint(note.text) == cp
