"""Untrusted input of any shape gets a typed TlogError, never a bare ValueError or IndexError.

Each parser is fed random input and random one-byte corruptions of valid input; the only
outcomes allowed are a parsed, valid object or a :class:`TlogError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.tlog import (
    EMPTY_ROOT,
    Checkpoint,
    MemoryNodeReader,
    Receipt,
    TlogError,
    check_consistency,
    check_inclusion,
    check_receipt,
    format_bundle,
    format_checkpoint,
    format_receipt,
    generate_cosigner_key,
    generate_key,
    leaf_hash,
    new_cosignature_verifier,
    new_cosigner,
    new_signer,
    new_verifier,
    open_note,
    parse_bundle,
    parse_checkpoint,
    parse_receipt,
    parse_tile_path,
    prove_inclusion,
    sign_note,
    tree_root,
)
from custodes.tlog.note import parse_skey, parse_vkey

SKEY, VKEY = generate_key("example.com/log")
W_SKEY, W_VKEY = generate_cosigner_key("witness.example")
VERIFIERS = [new_verifier(VKEY), new_cosignature_verifier(W_VKEY)]
HASHES = [leaf_hash(bytes([i])) for i in range(5)]
READER = MemoryNodeReader(HASHES)
CHECKPOINT_TEXT = format_checkpoint(Checkpoint("example.com/log", 5, tree_root(5, READER)))
NOTE = sign_note(CHECKPOINT_TEXT, new_signer(SKEY), new_cosigner(W_SKEY))
RECEIPT = format_receipt(Receipt(3, tuple(prove_inclusion(3, 5, READER)), NOTE, b"extra"))
BUNDLE = format_bundle([b"a", b"", b"ccc"])


def _only_typed_errors(parse: Callable[[], Any]) -> None:
    with contextlib.suppress(TlogError):
        parse()


def _corrupt(data: bytes, position: int, value: int) -> bytes:
    i = position % len(data)
    return data[:i] + bytes([value]) + data[i + 1 :]


corruptions = st.tuples(st.integers(min_value=0, max_value=10_000), st.integers(0, 255))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), corruptions)
def test_open_note_raises_only_typed_errors(junk: bytes, corruption: tuple[int, int]) -> None:
    _only_typed_errors(lambda: open_note(junk, VERIFIERS))
    _only_typed_errors(lambda: open_note(_corrupt(NOTE, *corruption), VERIFIERS))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), corruptions)
def test_parse_checkpoint_raises_only_typed_errors(junk: str, corruption: tuple[int, int]) -> None:
    _only_typed_errors(lambda: parse_checkpoint(junk))
    bad = _corrupt(CHECKPOINT_TEXT.encode(), *corruption).decode("utf-8", "replace")
    _only_typed_errors(lambda: parse_checkpoint(bad))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), corruptions)
def test_receipts_raise_only_typed_errors(junk: str, corruption: tuple[int, int]) -> None:
    _only_typed_errors(lambda: parse_receipt(junk))
    bad = _corrupt(RECEIPT.encode(), *corruption).decode("utf-8", "replace")
    _only_typed_errors(
        lambda: check_receipt(parse_receipt(bad), bytes([3]), VERIFIERS, "example.com/log")
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.binary(max_size=300), st.integers(-2, 300), corruptions)
def test_tiles_and_bundles_raise_only_typed_errors(
    path: str, junk: bytes, width: int, corruption: tuple[int, int]
) -> None:
    _only_typed_errors(lambda: parse_tile_path(path))
    _only_typed_errors(lambda: parse_tile_path("tile/" + path))
    _only_typed_errors(lambda: parse_bundle(junk, width))
    _only_typed_errors(lambda: parse_bundle(_corrupt(BUNDLE, *corruption), 3))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120), corruptions)
def test_keys_raise_only_typed_errors(junk: str, corruption: tuple[int, int]) -> None:
    _only_typed_errors(lambda: parse_vkey(junk))
    _only_typed_errors(lambda: parse_skey(junk))
    for key in (VKEY, SKEY, W_VKEY, W_SKEY):
        bad = _corrupt(key.encode(), *corruption).decode("utf-8", "replace")
        _only_typed_errors(partial(parse_vkey, bad))
        _only_typed_errors(partial(parse_skey, bad))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=40), max_size=70),
    st.integers(-3, 2**65),
    st.integers(-3, 2**65),
    st.binary(max_size=40),
    st.binary(max_size=40),
)
def test_proof_checks_raise_only_typed_errors(
    proof: list[bytes], a: int, b: int, h1: bytes, h2: bytes
) -> None:
    _only_typed_errors(lambda: check_inclusion(proof, a, b, h1, h2))
    _only_typed_errors(lambda: check_consistency(proof, a, b, h1, h2))
    _only_typed_errors(lambda: check_consistency(proof, a, b, EMPTY_ROOT, h2))
