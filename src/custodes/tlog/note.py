"""Signed notes (c2sp.org/signed-note, v1.0.0) with Ed25519 keys.

Grammar (UTF-8; no ASCII control characters other than LF anywhere)::

    note      = text LF 1*signature          ; text is split off at the last blank line
    text      = 1*(*char LF)                 ; ends in LF; may contain blank lines
    signature = "— " name SP base64(key-id || sig) LF
    name      = 1*(char except Unicode space and "+")
    key-id    = SHA-256(name || LF || type || public key)[:4]   ; uint32, big-endian
    vkey      = name "+" hex8(key-id) "+" base64(type || public key)
    skey      = "PRIVATE+KEY+" name "+" hex8(key-id) "+" base64(type || private seed)

Type 0x01 is an Ed25519 signature over the text (RFC 8032). Type 0x04 (timestamped
cosignatures) lives in :mod:`custodes.tlog.cosignature`. Opening follows golang.org/x/mod
``sumdb/note``: a note over :data:`MAX_NOTE_SIZE` bytes or with more than
:data:`MAX_SIGNATURES` signature lines is refused before anything is parsed; signatures from
unknown keys are kept as unverified (an identical line only once); a second signature from
the same known key is dropped unchecked; a known key's failing signature rejects the whole
note; two known keys with the same name and key ID are ambiguous; and a note with no verified
signature is rejected.

>>> skey, vkey = generate_key("example.com/log")
>>> msg = sign_note("hello\\n", new_signer(skey))
>>> msg.decode().startswith("hello\\n\\n— example.com/log ")
True
>>> note = open_note(msg, [new_verifier(vkey)])
>>> (note.text, [s.name for s in note.sigs])
('hello\\n', ['example.com/log'])
>>> open_note(msg, [])
Traceback (most recent call last):
...
custodes.tlog.errors.NoteSignatureError: note has no signature from a known key
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from custodes.tlog.encoding import encode_base64, parse_base64
from custodes.tlog.errors import (
    AmbiguousKeyError,
    BadSignatureError,
    FormatError,
    KeyFormatError,
    NoteSignatureError,
    SizeLimitError,
)

__all__ = [
    "ED25519",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Ed25519Signer",
    "Ed25519Verifier",
    "Note",
    "Signature",
    "Signer",
    "SignerKey",
    "Verifier",
    "VerifierKey",
    "check_name",
    "check_text",
    "format_skey",
    "format_vkey",
    "generate_key",
    "key_hash",
    "new_signer",
    "new_verifier",
    "open_note",
    "parse_skey",
    "parse_vkey",
    "sign_note",
]

logger = logging.getLogger(__name__)

#: Signature type of plain Ed25519 note signatures.
ED25519 = 0x01
#: Largest note accepted, checked before parsing (16 post-quantum signatures fit easily).
MAX_NOTE_SIZE = 256 * 1024
#: Most signature lines accepted in one note (the spec asks for at least 16).
MAX_SIGNATURES = 100

_ED25519_TYPES = frozenset({0x01, 0x04})  # Ed25519 key material: notes and cosignatures
_SIG_PREFIX = "— "
_HEX = frozenset("0123456789abcdef")


class Signer(Protocol):
    """Signs note texts with one key."""

    @property
    def name(self) -> str: ...
    @property
    def key_hash(self) -> int: ...
    def sign(self, msg: bytes) -> bytes:
        """The signature of ``msg`` (without the key ID)."""
        ...


class Verifier(Protocol):
    """Checks note signatures made by one key."""

    @property
    def name(self) -> str: ...
    @property
    def key_hash(self) -> int: ...
    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Whether ``sig`` (without the key ID) is this key's signature of ``msg``."""
        ...


def check_name(name: str) -> None:
    """Raise :class:`FormatError` unless ``name`` is a valid key name."""
    if not name or any(c == "+" or c.isspace() or c < " " for c in name):
        raise FormatError(f"invalid key name {name[:100]!r}: empty, or has a space or '+'")


def check_text(text: str, what: str = "note") -> None:
    """Raise :class:`FormatError` if ``text`` has an ASCII control character other than LF."""
    for c in text:
        if c < " " and c != "\n":
            raise FormatError(f"{what} contains the control character {c!r}")


def key_hash(name: str, key: bytes) -> int:
    """The key ID: the first 4 bytes of SHA-256(name || LF || type || public key), as uint32.

    ``key`` is the public key material with its type byte in front.
    """
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class VerifierKey:
    """A decoded vkey: name, signature type and 32-byte Ed25519 public key."""

    name: str
    key_type: int
    public: bytes

    def __post_init__(self) -> None:
        _check_key_fields(self.name, self.key_type, self.public, "public key")

    @property
    def key_hash(self) -> int:
        return key_hash(self.name, bytes([self.key_type]) + self.public)


@dataclass(frozen=True)
class SignerKey:
    """A decoded skey: name, signature type and 32-byte Ed25519 private seed."""

    name: str
    key_type: int
    seed: bytes

    def __post_init__(self) -> None:
        _check_key_fields(self.name, self.key_type, self.seed, "private seed")

    def __repr__(self) -> str:  # never print the seed
        return f"SignerKey(name={self.name!r}, key_type={self.key_type})"

    @property
    def public(self) -> bytes:
        private = Ed25519PrivateKey.from_private_bytes(self.seed)
        return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_hash(self) -> int:
        return key_hash(self.name, bytes([self.key_type]) + self.public)


def _check_key_fields(name: str, key_type: int, key: bytes, what: str) -> None:
    try:
        check_name(name)
    except FormatError as exc:
        raise KeyFormatError(exc.detail) from None
    if key_type not in _ED25519_TYPES:
        raise KeyFormatError(f"unknown key type 0x{key_type:02x}")
    if len(key) != 32:
        raise KeyFormatError(f"an Ed25519 {what} is 32 bytes, not {len(key)}")


def format_vkey(key: VerifierKey) -> str:
    """``name+hex8(key ID)+base64(type || public key)``."""
    material = bytes([key.key_type]) + key.public
    return f"{key.name}+{key.key_hash:08x}+{encode_base64(material)}"


def format_skey(key: SignerKey) -> str:
    """``PRIVATE+KEY+name+hex8(key ID)+base64(type || seed)``."""
    material = bytes([key.key_type]) + key.seed
    return f"PRIVATE+KEY+{key.name}+{key.key_hash:08x}+{encode_base64(material)}"


def _split_key(text: str) -> tuple[str, int, int, bytes]:
    """Split ``name+hash+base64`` into name, key ID, type byte and key material."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("a key has the form name+hash+base64")
    name, hash16, material64 = parts
    if len(hash16) != 8 or not set(hash16) <= _HEX:
        raise KeyFormatError(f"key ID {hash16[:20]!r} is not 8 lowercase hex digits")
    try:
        material = parse_base64(material64, "key material")
    except FormatError as exc:
        raise KeyFormatError(exc.detail) from None
    if not material:
        raise KeyFormatError("key material is empty")
    return name, int(hash16, 16), material[0], material[1:]


def parse_vkey(text: str) -> VerifierKey:
    """Decode a vkey and check its key ID; raises :class:`KeyFormatError`."""
    name, claimed, key_type, public = _split_key(text)
    key = VerifierKey(name, key_type, public)
    if key.key_hash != claimed:
        raise KeyFormatError(f"key ID {claimed:08x} does not match the key of {name!r}")
    return key


def parse_skey(text: str) -> SignerKey:
    """Decode an skey and check its key ID against the derived public key."""
    if not text.startswith("PRIVATE+KEY+"):
        raise KeyFormatError("a signer key starts with PRIVATE+KEY+")
    name, claimed, key_type, seed = _split_key(text.removeprefix("PRIVATE+KEY+"))
    key = SignerKey(name, key_type, seed)
    if key.key_hash != claimed:
        raise KeyFormatError(f"key ID {claimed:08x} does not match the key of {name!r}")
    return key


@dataclass(frozen=True)
class Ed25519Verifier:
    """A :class:`Verifier` for type 0x01 Ed25519 note signatures."""

    name: str
    key_hash: int
    public: bytes

    def verify(self, msg: bytes, sig: bytes) -> bool:
        if len(sig) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(sig, msg)
        except InvalidSignature:
            return False
        return True


class Ed25519Signer:
    """A :class:`Signer` for type 0x01 Ed25519 note signatures."""

    def __init__(self, key: SignerKey) -> None:
        self._name = key.name
        self._key_hash = key.key_hash
        self._private = Ed25519PrivateKey.from_private_bytes(key.seed)

    def __repr__(self) -> str:
        return f"Ed25519Signer(name={self._name!r}, key_hash={self._key_hash:08x})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_hash(self) -> int:
        return self._key_hash

    def sign(self, msg: bytes) -> bytes:
        return self._private.sign(msg)


def generate_key(name: str) -> tuple[str, str]:
    """A new Ed25519 key pair for ``name``, as (skey, vkey) text."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    key = SignerKey(name, ED25519, seed)
    return format_skey(key), format_vkey(VerifierKey(name, ED25519, key.public))


def new_signer(skey: str) -> Signer:
    """The :class:`Signer` for an Ed25519 (type 0x01) skey."""
    key = parse_skey(skey)
    if key.key_type != ED25519:
        raise KeyFormatError(f"not an Ed25519 note key: type 0x{key.key_type:02x}")
    return Ed25519Signer(key)


def new_verifier(vkey: str) -> Verifier:
    """The :class:`Verifier` for an Ed25519 (type 0x01) vkey."""
    key = parse_vkey(vkey)
    if key.key_type != ED25519:
        raise KeyFormatError(f"not an Ed25519 note key: type 0x{key.key_type:02x}")
    return Ed25519Verifier(key.name, key.key_hash, key.public)


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: key name, key ID and the base64 after the name."""

    name: str
    key_hash: int
    base64: str

    @property
    def raw(self) -> bytes:
        """The signature bytes after the 4-byte key ID."""
        return parse_base64(self.base64, "signature")[4:]


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the verified signatures and those from unknown keys."""

    text: str
    sigs: tuple[Signature, ...]
    unverified_sigs: tuple[Signature, ...] = ()


def sign_note(text: str, *signers: Signer) -> bytes:
    """Sign ``text`` (ending in LF) with every signer, in order; returns the note bytes."""
    check_text(text)
    if not text.endswith("\n"):
        raise FormatError("note text must end in a newline")
    if not signers:
        raise FormatError("a note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise SizeLimitError(f"more than {MAX_SIGNATURES} signatures")
    body = text.encode("utf-8")
    lines: list[str] = []
    seen: set[tuple[str, int]] = set()
    for signer in signers:
        check_name(signer.name)
        if (signer.name, signer.key_hash) in seen:
            raise FormatError(f"two signers with the key {signer.name}+{signer.key_hash:08x}")
        seen.add((signer.name, signer.key_hash))
        sig = signer.key_hash.to_bytes(4, "big") + signer.sign(body)
        lines.append(f"{_SIG_PREFIX}{signer.name} {encode_base64(sig)}\n")
    msg = body + b"\n" + "".join(lines).encode("utf-8")
    if len(msg) > MAX_NOTE_SIZE:
        raise SizeLimitError(f"signed note of {len(msg)} bytes is over {MAX_NOTE_SIZE}")
    return msg


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(_SIG_PREFIX):
        raise FormatError("a line after the last blank line is not a signature")
    name, sep, b64 = line.removeprefix(_SIG_PREFIX).partition(" ")
    check_name(name)
    if not sep:
        raise FormatError(f"signature line of {name!r} has no signature")
    raw = parse_base64(b64, "signature")
    if len(raw) < 5:
        raise FormatError(f"signature of {name!r} is too short")
    return Signature(name, int.from_bytes(raw[:4], "big"), b64)


def _split_note(msg: bytes) -> tuple[str, list[str]]:
    """Check size and characters, then split a note into its text and signature lines."""
    if len(msg) > MAX_NOTE_SIZE:
        raise SizeLimitError(f"note of {len(msg)} bytes is over {MAX_NOTE_SIZE}")
    try:
        decoded = msg.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("note is not valid UTF-8") from None
    check_text(decoded)
    split = decoded.rfind("\n\n")
    if split < 0:
        raise FormatError("note has no blank line before its signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block or not block.endswith("\n"):
        raise FormatError("note signatures must end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise SizeLimitError(f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    return text, lines


def _lookup(verifiers: Sequence[Verifier]) -> dict[tuple[str, int], list[Verifier]]:
    known: dict[tuple[str, int], list[Verifier]] = {}
    for v in verifiers:
        known.setdefault((v.name, v.key_hash), []).append(v)
    return known


def open_note(msg: bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a signed note and check its signatures against the known ``verifiers``.

    Raises :class:`SizeLimitError` / :class:`FormatError` for malformed notes,
    :class:`BadSignatureError` when a known key's signature fails,
    :class:`AmbiguousKeyError` when two known keys share a name and ID, and
    :class:`NoteSignatureError` when no known key signed the note.
    """
    text, lines = _split_note(msg)
    body = text.encode("utf-8")
    known = _lookup(verifiers)
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    seen_unverified: set[str] = set()
    for line in lines:
        sig = _parse_signature_line(line)
        key = (sig.name, sig.key_hash)
        candidates = known.get(key)
        if candidates is None:
            if line not in seen_unverified:
                seen_unverified.add(line)
                unverified.append(sig)
            continue
        if len(candidates) > 1:
            raise AmbiguousKeyError(
                f"two known keys are named {sig.name}+{sig.key_hash:08x}",
                name=sig.name,
                key_hash=f"{sig.key_hash:08x}",
            )
        if key in seen:
            continue
        seen.add(key)
        if not candidates[0].verify(body, sig.raw):
            raise BadSignatureError(
                f"signature by {sig.name}+{sig.key_hash:08x} does not verify",
                name=sig.name,
                key_hash=f"{sig.key_hash:08x}",
            )
        verified.append(sig)
    if not verified:
        raise NoteSignatureError(
            "note has no signature from a known key",
            signed_by=[f"{s.name}+{s.key_hash:08x}" for s in unverified],
        )
    logger.debug("opened note", extra={"verified": len(verified), "unknown": len(unverified)})
    return Note(text, tuple(verified), tuple(unverified))
