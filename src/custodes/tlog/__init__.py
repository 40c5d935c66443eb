"""custodes.tlog: a pure transparency-log library (RFC 9162 and the C2SP tlog formats).

It imports only the standard library and ``cryptography``. See docs/log-format.md.
"""

from custodes.tlog.errors import (
    AmbiguousKeyError,
    BadSignatureError,
    FormatError,
    InconsistentTreeError,
    KeyFormatError,
    NoteSignatureError,
    ProofError,
    RangeError,
    SizeLimitError,
    TlogError,
    WrongOriginError,
)
from custodes.tlog.hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash, root_of
from custodes.tlog.proof import (
    MemoryNodeReader,
    NodeReader,
    check_consistency,
    check_inclusion,
    prove_consistency,
    prove_inclusion,
    tree_root,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AmbiguousKeyError",
    "BadSignatureError",
    "FormatError",
    "InconsistentTreeError",
    "KeyFormatError",
    "MemoryNodeReader",
    "NodeReader",
    "NoteSignatureError",
    "ProofError",
    "RangeError",
    "SizeLimitError",
    "TlogError",
    "WrongOriginError",
    "check_consistency",
    "check_inclusion",
    "leaf_hash",
    "node_hash",
    "prove_consistency",
    "prove_inclusion",
    "root_of",
    "tree_root",
]
