"""custodes.tlog: a pure transparency-log library (RFC 9162 and the C2SP tlog formats).

It imports only the standard library and ``cryptography``; docs/log-format.md describes the
formats and the rules chosen. Each module documents the grammar it implements:

- :mod:`~custodes.tlog.hashing` and :mod:`~custodes.tlog.proof`: Merkle tree hashes, proofs
- :mod:`~custodes.tlog.note` and :mod:`~custodes.tlog.checkpoint`: signed tree heads
- :mod:`~custodes.tlog.tiles`: published tiles and entry bundles
- :mod:`~custodes.tlog.cosignature`: witness cosignatures
- :mod:`~custodes.tlog.receipt`: offline proofs of inclusion

>>> skey, vkey = generate_key("example.com/log")
>>> entries = [b"first", b"second", b"third"]
>>> root = root_of([leaf_hash(e) for e in entries])
>>> note = sign_note(format_checkpoint(Checkpoint("example.com/log", 3, root)), new_signer(skey))
>>> proof = prove_inclusion(2, 3, MemoryNodeReader([leaf_hash(e) for e in entries]))
>>> receipt = parse_receipt(format_receipt(Receipt(2, tuple(proof), note)))
>>> check_receipt(receipt, b"third", [new_verifier(vkey)], "example.com/log").size
3
"""

from custodes.tlog.checkpoint import Checkpoint, format_checkpoint, parse_checkpoint
from custodes.tlog.cosignature import (
    COSIGNATURE_V1,
    cosignature_timestamp,
    generate_cosigner_key,
    new_cosignature_verifier,
    new_cosigner,
)
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
from custodes.tlog.hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root_of,
)
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
from custodes.tlog.receipt import Receipt, check_receipt, format_receipt, parse_receipt
from custodes.tlog.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    TileNodeReader,
    bundle_tile,
    bundles_for_size,
    format_bundle,
    format_tile_path,
    new_tiles,
    parse_bundle,
    parse_tile_path,
    tiles_for_size,
)

__all__ = [
    "COSIGNATURE_V1",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "TILE_HEIGHT",
    "TILE_WIDTH",
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
    "Receipt",
    "Signature",
    "Signer",
    "SizeLimitError",
    "Tile",
    "TileNodeReader",
    "TlogError",
    "Verifier",
    "WrongOriginError",
    "bundle_tile",
    "bundles_for_size",
    "check_consistency",
    "check_inclusion",
    "check_receipt",
    "cosignature_timestamp",
    "format_bundle",
    "format_checkpoint",
    "format_receipt",
    "format_tile_path",
    "generate_cosigner_key",
    "generate_key",
    "key_hash",
    "leaf_hash",
    "leaf_hashes",
    "new_cosignature_verifier",
    "new_cosigner",
    "new_signer",
    "new_tiles",
    "new_verifier",
    "node_hash",
    "open_note",
    "parse_bundle",
    "parse_checkpoint",
    "parse_receipt",
    "parse_tile_path",
    "prove_consistency",
    "prove_inclusion",
    "root_of",
    "sign_note",
    "tiles_for_size",
    "tree_root",
]
