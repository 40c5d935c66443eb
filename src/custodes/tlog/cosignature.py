"""Witness cosignatures (c2sp.org/tlog-cosignature, cosignature/v1, Ed25519, type 0x04).

A cosignature is a note signature on a checkpoint. The key ID uses signature type 0x04::

    key-id    = SHA-256(name || LF || 0x04 || 32-byte Ed25519 public key)[:4]
    signature = timestamp || ed25519-signature      ; u64 big-endian (< 2**63), then 64 bytes
    message   = "cosignature/v1" LF
                "time " timestamp-decimal LF        ; POSIX seconds, no leading zeroes
                checkpoint-note-text                ; all of it, extension lines included

Keys use the vkey/skey text of c2sp.org/signed-note with type byte 0x04. The message does
not commit to the cosigner's name, so one key must serve one cosigner only.

>>> from custodes.tlog.checkpoint import Checkpoint, format_checkpoint
>>> from custodes.tlog.hashing import EMPTY_ROOT
>>> from custodes.tlog.note import open_note, sign_note
>>> skey, vkey = generate_cosigner_key("witness.example/w1")
>>> text = format_checkpoint(Checkpoint("example.com/log", 0, EMPTY_ROOT))
>>> msg = sign_note(text, new_cosigner(skey, clock=lambda: 1679315147))
>>> note = open_note(msg, [new_cosignature_verifier(vkey)])
>>> cosignature_timestamp(note.sigs[0])
1679315147
>>> print(cosigned_message(text, 1679315147).decode(), end="")
cosignature/v1
time 1679315147
example.com/log
0
47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custodes.tlog.checkpoint import parse_checkpoint
from custodes.tlog.errors import FormatError, KeyFormatError
from custodes.tlog.note import (
    Signature,
    Signer,
    SignerKey,
    Verifier,
    VerifierKey,
    format_skey,
    format_vkey,
    parse_skey,
    parse_vkey,
)

__all__ = [
    "COSIGNATURE_V1",
    "CosignatureSigner",
    "CosignatureVerifier",
    "cosignature_timestamp",
    "cosigned_message",
    "generate_cosigner_key",
    "new_cosignature_verifier",
    "new_cosigner",
]

#: Signature type of timestamped Ed25519 checkpoint cosignatures.
COSIGNATURE_V1 = 0x04
_MAX_TIMESTAMP = 2**63 - 1
_SIGNATURE_SIZE = 8 + 64


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The bytes a cosigner signs for ``checkpoint_text`` at ``timestamp``."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise FormatError(f"cosignature timestamp {timestamp} is outside 0..2**63-1")
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def generate_cosigner_key(name: str) -> tuple[str, str]:
    """A new cosigner key pair for ``name``, as (skey, vkey) text with type 0x04."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    key = SignerKey(name, COSIGNATURE_V1, seed)
    return format_skey(key), format_vkey(VerifierKey(name, COSIGNATURE_V1, key.public))


class CosignatureSigner:
    """A :class:`~custodes.tlog.note.Signer` that cosigns checkpoints with the current time."""

    def __init__(self, key: SignerKey, clock: Callable[[], float] = time.time) -> None:
        self._name = key.name
        self._key_hash = key.key_hash
        self._private = Ed25519PrivateKey.from_private_bytes(key.seed)
        self._clock = clock

    def __repr__(self) -> str:
        return f"CosignatureSigner(name={self._name!r}, key_hash={self._key_hash:08x})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_hash(self) -> int:
        return self._key_hash

    def sign(self, msg: bytes) -> bytes:
        """Cosign the checkpoint note text ``msg``; refuses anything that is not one."""
        try:
            text = msg.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("a cosigned message must be a checkpoint") from None
        parse_checkpoint(text)
        timestamp = int(self._clock())
        signature = self._private.sign(cosigned_message(text, timestamp))
        return timestamp.to_bytes(8, "big") + signature


@dataclass(frozen=True)
class CosignatureVerifier:
    """A :class:`~custodes.tlog.note.Verifier` for cosignature/v1 signatures."""

    name: str
    key_hash: int
    public: bytes

    def verify(self, msg: bytes, sig: bytes) -> bool:
        if len(sig) != _SIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(sig[:8], "big")
        if timestamp > _MAX_TIMESTAMP:
            return False
        try:
            text = msg.decode("utf-8")
        except UnicodeDecodeError:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(
                sig[8:], cosigned_message(text, timestamp)
            )
        except InvalidSignature:
            return False
        return True


def new_cosigner(skey: str, *, clock: Callable[[], float] = time.time) -> Signer:
    """The cosigner for a type 0x04 skey; ``clock`` gives the POSIX time to sign with."""
    key = parse_skey(skey)
    if key.key_type != COSIGNATURE_V1:
        raise KeyFormatError(f"not a cosigner key: type 0x{key.key_type:02x}")
    return CosignatureSigner(key, clock)


def new_cosignature_verifier(vkey: str) -> Verifier:
    """The verifier for a type 0x04 cosigner vkey."""
    key = parse_vkey(vkey)
    if key.key_type != COSIGNATURE_V1:
        raise KeyFormatError(f"not a cosigner key: type 0x{key.key_type:02x}")
    return CosignatureVerifier(key.name, key.key_hash, key.public)


def cosignature_timestamp(sig: Signature) -> int:
    """The POSIX time in a cosignature (call it on a signature that ``open_note`` verified)."""
    raw = sig.raw
    if len(raw) != _SIGNATURE_SIZE:
        raise FormatError(f"a cosignature is {_SIGNATURE_SIZE} bytes, not {len(raw)}")
    timestamp = int.from_bytes(raw[:8], "big")
    if timestamp > _MAX_TIMESTAMP:
        raise FormatError(f"cosignature timestamp {timestamp} is over 2**63-1")
    return timestamp
