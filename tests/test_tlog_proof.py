"""Merkle hashing and proofs: against the RFC 9162 definitions, and tamper properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.tlog import (
    EMPTY_ROOT,
    FormatError,
    InconsistentTreeError,
    MemoryNodeReader,
    ProofError,
    RangeError,
    check_consistency,
    check_inclusion,
    leaf_hash,
    leaf_hashes,
    node_hash,
    prove_consistency,
    prove_inclusion,
    root_of,
    tree_root,
)


def _mth(hashes: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 §2.1.1 writes it (recursive split at the largest 2**k < n)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _inclusion_shape(index: int, size: int) -> list[bool]:
    """Which side each proof hash goes on, from the recursive PATH of RFC 9162 §2.1.3.1."""
    shape, lo, hi = [], 0, size
    while hi - lo > 1:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        shape.append(index < lo + k)
        lo, hi = (lo, lo + k) if index < lo + k else (lo + k, hi)
    return shape


def _consistency_shape(old: int, new: int) -> tuple[list[bool], bool]:
    """The decisions of the recursive SUBPROOF of RFC 9162 §2.1.4.1."""
    shape, m, n, complete = [], old, new, True
    while m != n:
        k = 1 << ((n - 1).bit_length() - 1)
        shape.append(m <= k)
        if m <= k:
            n = k
        else:
            m, n, complete = m - k, n - k, False
    return shape, complete


def _flip(data: bytes, bit: int) -> bytes:
    i = (bit // 8) % len(data)
    return data[:i] + bytes([data[i] ^ (1 << (bit % 8))]) + data[i + 1 :]


def test_leaf_and_node_hash_use_the_rfc_prefixes() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 100])
def test_root_of_and_tree_root_match_the_rfc_definition(n: int) -> None:
    hashes = _leaves(n)
    assert root_of(hashes) == _mth(hashes)
    assert tree_root(n, MemoryNodeReader(hashes)) == _mth(hashes)
    for size in range(n + 1):
        assert tree_root(size, MemoryNodeReader(hashes)) == _mth(hashes[:size])


def test_root_of_rejects_short_leaf_hashes() -> None:
    with pytest.raises(FormatError):
        root_of([b"short"])
    with pytest.raises(FormatError):
        MemoryNodeReader([b"short"])


def test_memory_node_reader_refuses_incomplete_subtrees() -> None:
    reader = MemoryNodeReader(_leaves(3))
    assert reader.node(1, 0) == node_hash(*_leaves(2))
    with pytest.raises(RangeError):
        reader.node(1, 1)
    with pytest.raises(RangeError):
        reader.node(0, 3)


def test_prove_inclusion_rejects_an_index_outside_the_tree() -> None:
    reader = MemoryNodeReader(_leaves(4))
    with pytest.raises(RangeError):
        prove_inclusion(4, 4, reader)
    with pytest.raises(RangeError):
        prove_inclusion(-1, 4, reader)


def test_prove_consistency_rejects_shrinking_trees() -> None:
    reader = MemoryNodeReader(_leaves(4))
    with pytest.raises(RangeError):
        prove_consistency(4, 3, reader)


def test_consistency_from_the_empty_tree_needs_the_empty_root_and_no_proof() -> None:
    root1 = root_of(_leaves(1))
    assert prove_consistency(0, 1, MemoryNodeReader(_leaves(1))) == []
    check_consistency([], 0, 1, EMPTY_ROOT, root1)
    check_consistency([], 0, 0, EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(InconsistentTreeError):
        check_consistency([], 0, 1, root1, root1)
    with pytest.raises(InconsistentTreeError):
        check_consistency([], 0, 0, EMPTY_ROOT, root1)
    with pytest.raises(ProofError):
        check_consistency([EMPTY_ROOT], 0, 1, EMPTY_ROOT, root1)


def test_check_consistency_rejects_swapped_roots() -> None:
    hashes = _leaves(7)
    reader = MemoryNodeReader(hashes)
    proof = prove_consistency(3, 7, reader)
    with pytest.raises(InconsistentTreeError) as info:
        check_consistency(proof, 3, 7, root_of(hashes), root_of(hashes[:3]))
    evidence = info.value.evidence
    assert (evidence["old_size"], evidence["new_size"]) == (3, 7)
    assert len(evidence["proof"]) == len(proof)


def test_checks_reject_hashes_that_are_not_32_bytes() -> None:
    hashes = _leaves(2)
    root = root_of(hashes)
    with pytest.raises(ProofError):
        check_inclusion([hashes[1]], 0, 2, hashes[0], root + b"\x00")
    with pytest.raises(ProofError):
        check_inclusion([hashes[1][:31]], 0, 2, hashes[0], root)
    with pytest.raises(ProofError):
        check_consistency([], 2, 2, root[:12], root[:12])


def test_checks_reject_overlong_proofs_before_hashing() -> None:
    with pytest.raises(ProofError, match="more than"):
        check_inclusion([EMPTY_ROOT] * 65, 0, 2**64 - 1, EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(ProofError):
        check_inclusion([], 0, 2**64, EMPTY_ROOT, EMPTY_ROOT)


trees = st.integers(min_value=1, max_value=300).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n - 1))
)


@settings(max_examples=200, deadline=None)
@given(trees, st.data())
def test_inclusion_proofs_verify_and_any_bit_flip_fails(
    case: tuple[int, int], data: st.DataObject
) -> None:
    size, index = case
    hashes = _leaves(size)
    reader = MemoryNodeReader(hashes)
    root = tree_root(size, reader)
    proof = prove_inclusion(index, size, reader)
    check_inclusion(proof, index, size, hashes[index], root)

    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    with pytest.raises(ProofError):
        check_inclusion(proof, index, size, hashes[index], _flip(root, bit))
    with pytest.raises(ProofError):
        check_inclusion(proof, index, size, _flip(hashes[index], bit), root)
    if proof:
        i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
        tampered = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
        with pytest.raises(ProofError):
            check_inclusion(tampered, index, size, hashes[index], root)
    size_bit = data.draw(st.integers(min_value=0, max_value=12), label="size bit")
    with pytest.raises(ProofError):
        check_inclusion(proof, index ^ (1 << size_bit), size, hashes[index], root)
    # RFC 9162 roots do not commit to the tree size: a proof also checks for another size
    # whose path has exactly the same shape. That is why a checkpoint signs size and root
    # together; any other size must fail.
    other = size ^ (1 << size_bit)
    if index < other and _inclusion_shape(index, other) == _inclusion_shape(index, size):
        check_inclusion(proof, index, other, hashes[index], root)
    else:
        with pytest.raises(ProofError):
            check_inclusion(proof, index, other, hashes[index], root)


sizes = st.integers(min_value=0, max_value=300).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@settings(max_examples=200, deadline=None)
@given(sizes, st.data())
def test_consistency_proofs_verify_and_any_bit_flip_fails(
    case: tuple[int, int], data: st.DataObject
) -> None:
    old, new = case
    hashes = _leaves(new)
    reader = MemoryNodeReader(hashes)
    old_root, new_root = tree_root(old, reader), tree_root(new, reader)
    proof = prove_consistency(old, new, reader)
    check_consistency(proof, old, new, old_root, new_root)

    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    with pytest.raises(ProofError):
        check_consistency(proof, old, new, _flip(old_root, bit), new_root)
    if old == 0 and new > 0:  # the empty tree is a prefix of every tree
        check_consistency(proof, old, new, old_root, _flip(new_root, bit))
    else:
        with pytest.raises(ProofError):
            check_consistency(proof, old, new, old_root, _flip(new_root, bit))
    if proof:
        i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
        tampered = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
        with pytest.raises(ProofError):
            check_consistency(tampered, old, new, old_root, new_root)
    size_bit = data.draw(st.integers(min_value=0, max_value=12), label="size bit")
    with pytest.raises(ProofError):
        check_consistency(proof, old ^ (1 << size_bit), new, old_root, new_root)
    # As for inclusion, the new size is bound only through the path shape (see above); from
    # the empty tree, every new size is consistent.
    other = new ^ (1 << size_bit)
    if (old == 0 and other > 0) or (
        0 < old < other and _consistency_shape(old, other) == _consistency_shape(old, new)
    ):
        check_consistency(proof, old, other, old_root, new_root)
    else:
        with pytest.raises(ProofError):
            check_consistency(proof, old, other, old_root, new_root)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=300))
def test_inclusion_proof_lengths_match_the_tree_shape(size: int) -> None:
    reader = MemoryNodeReader(_leaves(size))
    for index in {0, size // 2, size - 1}:
        proof = prove_inclusion(index, size, reader)
        assert len(proof) <= (size - 1).bit_length()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=70))
def test_the_bulk_hashes_equal_the_definitions(entries: list[bytes]) -> None:
    """The whole-bundle leaf hashing and the inlined folding of ``root_of`` give what the
    one-at-a-time definitions give (RFC 9162 section 2.1.1)."""
    hashes = leaf_hashes(entries)
    assert hashes == [leaf_hash(e) for e in entries]
    assert root_of(hashes) == _mth(hashes)
