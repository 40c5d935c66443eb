"""Merkle tree hashing of RFC 9162 §2.1 (the same as RFC 6962), with SHA-256.

The grammar, for a list of n entries D[n] = {d(0), ..., d(n-1)}::

    MTH({})      = SHA-256()                                   the empty tree
    MTH({d(0)})  = SHA-256(0x00 || d(0))                       a leaf
    MTH(D[n])    = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])) n > 1, where k is the
                                                               largest power of 2 < n

>>> leaf_hash(b"").hex()
'6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'
>>> root_of([leaf_hash(b"a")]) == leaf_hash(b"a")
True
>>> root_of([leaf_hash(b"a"), leaf_hash(b"b")]) == node_hash(leaf_hash(b"a"), leaf_hash(b"b"))
True
>>> root_of([]) == EMPTY_ROOT
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from custodes.tlog.errors import FormatError

__all__ = ["EMPTY_ROOT", "HASH_SIZE", "leaf_hash", "node_hash", "root_of"]

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The hash of one log entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def leaf_hashes(entries: Sequence[bytes]) -> list[bytes]:
    """:func:`leaf_hash` of each entry, in order (one call for a whole bundle)."""
    sha256, prefix = hashlib.sha256, _LEAF_PREFIX
    return [sha256(prefix + e).digest() for e in entries]


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a whole list of leaf hashes (in memory, in O(n))."""
    for h in leaf_hashes:
        if len(h) != HASH_SIZE:
            raise FormatError(f"a leaf hash must be {HASH_SIZE} bytes, not {len(h)}")
    if not leaf_hashes:
        return EMPTY_ROOT
    # Fold the list bottom-up. At each level a lone last node is carried up unchanged,
    # which yields exactly the left-heavy split of RFC 9162.
    level = list(leaf_hashes)
    sha256, prefix = hashlib.sha256, _NODE_PREFIX  # node_hash, inlined: a call per node shows
    while len(level) > 1:
        paired = [
            sha256(prefix + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]
