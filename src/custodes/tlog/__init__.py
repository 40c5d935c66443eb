"""custodes.tlog: a pure transparency-log library (RFC 9162 and the C2SP tlog formats).

It imports only the standard library and ``cryptography``. See docs/log-format.md.
"""

from custodes.tlog.checkpoint import Checkpoint, format_checkpoint, parse_checkpoint
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
from custodes.tlog.note import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Note,
    Signature,
    Signer,
    Verifier,
    generate_key,
    key_hash,
    new_signer,
    new_verifier,
    open_note,
    sign_note,
)
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
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "AmbiguousKeyError",
    "BadSignatureError",
    "Checkpoint",
    "FormatError",
    "InconsistentTreeError",
    "KeyFormatError",
    "MemoryNodeReader",
    "NodeReader",
    "Note",
    "NoteSignatureError",
    "ProofError",
    "RangeError",
    "Signature",
    "Signer",
    "SizeLimitError",
    "TlogError",
    "Verifier",
    "WrongOriginError",
    "check_consistency",
    "check_inclusion",
    "format_checkpoint",
    "generate_key",
    "key_hash",
    "leaf_hash",
    "new_signer",
    "new_verifier",
    "node_hash",
    "open_note",
    "parse_checkpoint",
    "prove_consistency",
    "prove_inclusion",
    "root_of",
    "sign_note",
    "tree_root",
]
