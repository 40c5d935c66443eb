"""Inclusion and consistency proofs of RFC 9162 §2.1.3 and §2.1.4.

A proof is built from the hashes of complete subtrees, read through a :class:`NodeReader`:
``node(level, index)`` is the hash of the 2**level leaves starting at leaf index * 2**level.
For a tree of n leaves, with k the largest power of 2 smaller than n::

    PATH(m, D[n])          = PATH(m, D[0:k]) : MTH(D[k:n])        if m < k
                           = PATH(m - k, D[k:n]) : MTH(D[0:k])    if m >= k
    PATH(0, {d(0)})        = {}

    PROOF(m, D[n])         = SUBPROOF(m, D[n], true)
    SUBPROOF(m, D[m], b)   = {} if b, else {MTH(D[m])}
    SUBPROOF(m, D[n], b)   = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])        if m <= k
                           = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]) if m > k

The checks follow the verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 and are
strict: every hash (leaf, roots, proof elements) must be exactly 32 bytes, the proof must
have exactly the expected length, and sizes and indexes must be in range. A consistency
proof from the empty tree is the empty list, and it checks only when the old root is
SHA-256("") (see docs/log-format.md).

>>> from custodes.tlog.hashing import leaf_hash
>>> reader = MemoryNodeReader([leaf_hash(bytes([i])) for i in range(7)])
>>> root = tree_root(7, reader)
>>> proof = prove_inclusion(3, 7, reader)
>>> len(proof)
3
>>> check_inclusion(proof, 3, 7, leaf_hash(bytes([3])), root)
>>> check_inclusion(proof, 4, 7, leaf_hash(bytes([3])), root)
Traceback (most recent call last):
...
custodes.tlog.errors.ProofError: inclusion proof does not lead to the root
>>> check_consistency(prove_consistency(3, 7, reader), 3, 7, tree_root(3, reader), root)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from custodes.tlog.encoding import MAX_UINT64, encode_base64
from custodes.tlog.errors import FormatError, InconsistentTreeError, ProofError, RangeError
from custodes.tlog.hashing import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = [
    "MAX_PROOF_HASHES",
    "MemoryNodeReader",
    "NodeReader",
    "check_consistency",
    "check_inclusion",
    "prove_consistency",
    "prove_inclusion",
    "tree_root",
]

#: No proof in a tree of fewer than 2**64 leaves needs more hashes than this.
MAX_PROOF_HASHES = 64


class NodeReader(Protocol):
    """Reads hashes of complete subtrees of one tree."""

    def node(self, level: int, index: int) -> bytes:
        """The hash of the 2**level leaves whose first leaf is index * 2**level."""
        ...


class MemoryNodeReader(NodeReader):
    """A :class:`NodeReader` over a list of leaf hashes held in memory (tests, small trees)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        for h in leaf_hashes:
            if len(h) != HASH_SIZE:
                raise FormatError(f"a leaf hash must be {HASH_SIZE} bytes, not {len(h)}")
        self._levels: list[list[bytes]] = [list(leaf_hashes)]
        while len(self._levels[-1]) > 1:
            below = self._levels[-1]
            self._levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    def node(self, level: int, index: int) -> bytes:
        if 0 <= level < len(self._levels) and 0 <= index < len(self._levels[level]):
            return self._levels[level][index]
        raise RangeError(f"no complete subtree at level {level}, index {index}")


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of 2 strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(lo: int, hi: int, reader: NodeReader) -> bytes:
    """MTH(D[lo:hi]) for a range the RFC 9162 recursion produces (lo is aligned)."""
    n = hi - lo
    if n & (n - 1) == 0 and lo % n == 0:
        level = n.bit_length() - 1
        return reader.node(level, lo >> level)
    k = _largest_power_of_two_below(n)
    return node_hash(_range_hash(lo, lo + k, reader), _range_hash(lo + k, hi, reader))


def _check_size(size: int, what: str) -> None:
    if not 0 <= size <= MAX_UINT64:
        raise RangeError(f"{what} {size} is outside 0..2**64-1")


def tree_root(size: int, reader: NodeReader) -> bytes:
    """The root hash of the first ``size`` leaves."""
    _check_size(size, "tree size")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, reader)


def prove_inclusion(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves, leaf side first."""
    _check_size(size, "tree size")
    if not 0 <= index < size:
        raise RangeError(f"leaf index {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            proof.append(_range_hash(lo + k, hi, reader))
            hi = lo + k
        else:
            proof.append(_range_hash(lo, lo + k, reader))
            lo = lo + k
    proof.reverse()
    return proof


def prove_consistency(old_size: int, new_size: int, reader: NodeReader) -> list[bytes]:
    """The consistency proof from the tree of ``old_size`` leaves to that of ``new_size``."""
    _check_size(new_size, "new tree size")
    if not 0 <= old_size <= new_size:
        raise RangeError(f"old size {old_size} is not between 0 and new size {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    lo, hi, complete = 0, new_size, True
    m = old_size
    while m != hi - lo:
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            proof.append(_range_hash(lo + k, hi, reader))
            hi = lo + k
        else:
            proof.append(_range_hash(lo, lo + k, reader))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        proof.append(_range_hash(lo, hi, reader))
    proof.reverse()
    return proof


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, not {len(value)}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    if len(proof) > MAX_PROOF_HASHES:
        raise ProofError(f"proof has {len(proof)} hashes, more than {MAX_PROOF_HASHES}")
    for i, h in enumerate(proof):
        _check_hash(h, f"proof hash {i}")


def check_inclusion(
    proof: Sequence[bytes], index: int, size: int, leaf: bytes, root: bytes
) -> None:
    """Check that ``leaf`` (a leaf hash) is at ``index`` in the tree of ``size`` with ``root``.

    Returns None or raises :class:`ProofError`.
    """
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root hash")
    _check_proof_hashes(proof)
    if not 0 <= index < size <= MAX_UINT64:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long", proof_length=len(proof))
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn & 1 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is too short", proof_length=len(proof))
    if r != root:
        raise ProofError(
            "inclusion proof does not lead to the root",
            index=index,
            size=size,
            root=encode_base64(root),
            computed=encode_base64(r),
        )


def _consistency_roots(
    proof: Sequence[bytes], old_size: int, new_size: int, old_root: bytes
) -> tuple[bytes, bytes]:
    """The old and new roots a consistency proof leads to (RFC 9162 §2.1.4.2, 0 < m < n)."""
    if not proof:
        raise ProofError("consistency proof is empty")
    hashes = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is a complete subtree of the new one
        hashes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long", proof_length=len(proof))
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn & 1 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is too short", proof_length=len(proof))
    return fr, sr


def check_consistency(
    proof: Sequence[bytes], old_size: int, new_size: int, old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree (``new_size``, ``new_root``) extends (``old_size``, ``old_root``).

    Returns None, raises :class:`ProofError` for a malformed proof or impossible sizes, and
    :class:`InconsistentTreeError` (holding both tree heads and the proof) when a
    well-formed proof does not link the two roots.
    """
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    _check_proof_hashes(proof)
    if not 0 <= old_size <= new_size <= MAX_UINT64:
        raise ProofError(f"old size {old_size} is not between 0 and new size {new_size}")

    def inconsistent(detail: str) -> InconsistentTreeError:
        return InconsistentTreeError(
            detail,
            old_size=old_size,
            new_size=new_size,
            old_root=encode_base64(old_root),
            new_root=encode_base64(new_root),
            proof=[encode_base64(h) for h in proof],
        )

    if old_size in (0, new_size):
        if proof:
            raise ProofError(f"consistency proof from size {old_size} must be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise inconsistent("the root of the empty tree must be SHA-256 of nothing")
        if old_size == new_size and old_root != new_root:
            raise inconsistent(f"two different roots for the same size {old_size}")
        return
    fr, sr = _consistency_roots(proof, old_size, new_size, old_root)
    if fr != old_root:
        raise inconsistent("consistency proof does not lead to the old root")
    if sr != new_root:
        raise inconsistent("consistency proof does not lead to the new root")
