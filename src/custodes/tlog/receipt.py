"""Receipts: offline-verifiable proofs of inclusion (c2sp.org/tlog-proof, v1).

Grammar (lines end in LF)::

    receipt    = "c2sp.org/tlog-proof@v1" LF
                 ["extra " base64(extra) LF]     ; optional opaque data, not authenticated
                 "index " decimal LF             ; zero-based entry index, no leading zeroes
                 *(base64(hash) LF)              ; inclusion proof, leaf side first, 32 bytes each
                 LF
                 checkpoint-note                 ; the signed checkpoint, verbatim

custodes computes the leaf hash as RFC 9162's ``leaf_hash(entry)`` of the published entry
bytes. Checking a receipt opens the checkpoint note with the given verifiers (every known
signature, cosignatures included, must verify), requires the expected origin and a
signature by the log's own key (a non-cosignature key named after the origin), optionally
a number of witness cosignatures, and then the inclusion proof against the checkpoint.
Parsing refuses texts over :data:`MAX_RECEIPT_SIZE` before looking at them.

>>> from custodes.tlog.checkpoint import Checkpoint, format_checkpoint
>>> from custodes.tlog.hashing import leaf_hash, node_hash
>>> from custodes.tlog.note import generate_key, new_signer, new_verifier, sign_note
>>> skey, vkey = generate_key("example.com/log")
>>> root = node_hash(leaf_hash(b"a"), leaf_hash(b"b"))
>>> note = sign_note(format_checkpoint(Checkpoint("example.com/log", 2, root)), new_signer(skey))
>>> text = format_receipt(Receipt(index=1, proof=(leaf_hash(b"a"),), checkpoint=note))
>>> print(text.split("\\n\\n")[0])
c2sp.org/tlog-proof@v1
index 1
Aippeebat6pa5MPl5F9+l3ESp+Y1k4INvsHsc4ok+Tw=
>>> check_receipt(parse_receipt(text), b"b", [new_verifier(vkey)], "example.com/log").size
2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from custodes.tlog.checkpoint import Checkpoint, parse_checkpoint
from custodes.tlog.cosignature import CosignatureVerifier
from custodes.tlog.encoding import MAX_UINT64, encode_base64, parse_base64, parse_decimal
from custodes.tlog.errors import FormatError, NoteSignatureError, SizeLimitError, WrongOriginError
from custodes.tlog.hashing import HASH_SIZE, leaf_hash
from custodes.tlog.note import MAX_NOTE_SIZE, Verifier, check_text, open_note
from custodes.tlog.proof import MAX_PROOF_HASHES, check_inclusion

__all__ = [
    "MAX_EXTRA_SIZE",
    "MAX_RECEIPT_SIZE",
    "RECEIPT_HEADER",
    "Receipt",
    "check_receipt",
    "format_receipt",
    "parse_receipt",
]

RECEIPT_HEADER = "c2sp.org/tlog-proof@v1"
#: Largest ``extra`` payload (before base64).
MAX_EXTRA_SIZE = 64 * 1024
#: Largest receipt text, checked before parsing.
MAX_RECEIPT_SIZE = 512 * 1024


@dataclass(frozen=True)
class Receipt:
    """A tlog-proof: entry index, inclusion proof, signed checkpoint note, optional extra."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "proof", tuple(self.proof))
        if not 0 <= self.index <= MAX_UINT64:
            raise FormatError(f"receipt index {self.index} is outside 0..2**64-1")
        if len(self.proof) > MAX_PROOF_HASHES:
            raise FormatError(f"receipt proof has more than {MAX_PROOF_HASHES} hashes")
        for i, h in enumerate(self.proof):
            if len(h) != HASH_SIZE:
                raise FormatError(f"receipt proof hash {i} is {len(h)} bytes, not {HASH_SIZE}")
        if not self.checkpoint.endswith(b"\n"):
            raise FormatError("receipt checkpoint note must end in a newline")
        if len(self.checkpoint) > MAX_NOTE_SIZE:
            raise SizeLimitError(f"receipt checkpoint note is over {MAX_NOTE_SIZE} bytes")
        try:
            check_text(self.checkpoint.decode("utf-8"), "receipt checkpoint note")
        except UnicodeDecodeError:
            raise FormatError("receipt checkpoint note is not UTF-8") from None
        if self.extra is not None and not 1 <= len(self.extra) <= MAX_EXTRA_SIZE:
            raise FormatError(f"receipt extra data must be 1..{MAX_EXTRA_SIZE} bytes or absent")


def format_receipt(r: Receipt) -> str:
    """The receipt's text form (a ``.tlog-proof`` file)."""
    lines = [RECEIPT_HEADER]
    if r.extra is not None:
        lines.append(f"extra {encode_base64(r.extra)}")
    lines.append(f"index {r.index}")
    lines.extend(encode_base64(h) for h in r.proof)
    return "\n".join(lines) + "\n\n" + r.checkpoint.decode("utf-8")


def _field(line: str, name: str) -> str:
    prefix = name + " "
    if not line.startswith(prefix):
        raise FormatError(f"receipt line {line[:40]!r} is not '{name} ...'")
    return line.removeprefix(prefix)


def parse_receipt(text: str) -> Receipt:
    """Parse a receipt's text; raises :class:`FormatError` or :class:`SizeLimitError`."""
    if len(text) > MAX_RECEIPT_SIZE:
        raise SizeLimitError(f"receipt of {len(text)} characters is over {MAX_RECEIPT_SIZE}")
    check_text(text, "receipt")
    head, blank, note = text.partition("\n\n")
    if not blank or not note:
        raise FormatError("receipt has no blank line followed by a checkpoint")
    lines = head.split("\n")
    if lines[0] != RECEIPT_HEADER:
        raise FormatError(f"receipt does not start with {RECEIPT_HEADER}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra"):
        extra = parse_base64(_field(rest[0], "extra"), "receipt extra data")
        rest = rest[1:]
    if not rest:
        raise FormatError("receipt has no index line")
    index = parse_decimal(_field(rest[0], "index"), "receipt index")
    hashes = rest[1:]
    if len(hashes) > MAX_PROOF_HASHES:
        raise FormatError(f"receipt proof has more than {MAX_PROOF_HASHES} hashes")
    proof = tuple(parse_base64(h, f"receipt proof hash {i}") for i, h in enumerate(hashes))
    return Receipt(index=index, proof=proof, checkpoint=note.encode("utf-8"), extra=extra)


def check_receipt(
    r: Receipt,
    entry: bytes,
    verifiers: Sequence[Verifier],
    origin: str,
    *,
    min_cosignatures: int = 0,
) -> Checkpoint:
    """Check that ``entry`` is in the log ``origin`` as the receipt says; returns its checkpoint.

    ``verifiers`` holds the log's key and any witness cosigner keys. Raises
    :class:`NoteSignatureError` (and subclasses) for signature or origin problems,
    :class:`FormatError` for a malformed checkpoint and :class:`ProofError` when the
    inclusion proof fails.
    """
    note = open_note(r.checkpoint, verifiers)
    cp = parse_checkpoint(note.text)
    if cp.origin != origin:
        raise WrongOriginError(
            f"checkpoint is from {cp.origin!r}, not {origin!r}", expected=origin, got=cp.origin
        )
    known = {(v.name, v.key_hash): v for v in verifiers}
    signers = [known[(s.name, s.key_hash)] for s in note.sigs]
    cosigners = [v for v in signers if isinstance(v, CosignatureVerifier)]
    if not any(v.name == origin and not isinstance(v, CosignatureVerifier) for v in signers):
        raise NoteSignatureError(
            f"checkpoint is not signed by a log key named {origin!r}",
            verified=[s.name for s in note.sigs],
        )
    if len(cosigners) < min_cosignatures:
        raise NoteSignatureError(
            f"checkpoint has {len(cosigners)} known cosignatures, {min_cosignatures} required",
            cosigned_by=[v.name for v in cosigners],
        )
    check_inclusion(r.proof, r.index, cp.size, leaf_hash(entry), cp.root)
    return cp
