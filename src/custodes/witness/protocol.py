"""The c2sp.org/tlog-witness wire format: add-checkpoint requests and the 409 size body.

Grammar of a request body (every line ends in LF)::

    request   = "old " size LF *63(proof-hash LF) LF checkpoint-note
    size      = "0" / %x31-39 *DIGIT          ; the size the client believes the witness has
    proof-hash = base64(32 bytes)             ; a consistency proof from old size to the new

and of the body of a 409 Conflict (``Content-Type: text/x.tlog.size``)::

    conflict  = size LF                        ; the size of the witness's latest checkpoint

A 200 response is one or more note signature lines (cosignatures) of the witness. Parsing is
strict and bounded: the body is refused over :data:`MAX_REQUEST_SIZE` before it is looked at,
a proof has at most 63 hashes, and a proof from size 0 must be empty.

>>> body = format_add_checkpoint(AddCheckpoint(3, (bytes(32),), b"log.example\\n5\\n..."))
>>> print(body.decode().replace("\\n", "|"))
old 3|AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=||log.example|5|...
>>> parse_add_checkpoint(body).old_size
3
>>> parse_size_conflict(format_size_conflict(20852014))
20852014
"""

from __future__ import annotations

from dataclasses import dataclass

from custodes.tlog import HASH_SIZE, MAX_NOTE_SIZE, TlogError
from custodes.tlog.encoding import encode_base64, parse_base64, parse_decimal
from custodes.witness.errors import MalformedRequestError, RequestTooLargeError

__all__ = [
    "MAX_PROOF_LINES",
    "MAX_REQUEST_SIZE",
    "SIZE_CONTENT_TYPE",
    "AddCheckpoint",
    "format_add_checkpoint",
    "format_size_conflict",
    "parse_add_checkpoint",
    "parse_size_conflict",
]

#: The most consistency proof lines a request may carry.
MAX_PROOF_LINES = 63
#: Largest request body: the old size line, 63 proof lines, and the largest note.
MAX_REQUEST_SIZE = 32 + MAX_PROOF_LINES * 46 + 1 + MAX_NOTE_SIZE
#: The media type of a 409 response body.
SIZE_CONTENT_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class AddCheckpoint:
    """An add-checkpoint request: the old size, the proof from it, the signed checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes

    def __post_init__(self) -> None:
        if len(self.proof) > MAX_PROOF_LINES:
            raise MalformedRequestError(f"a proof has at most {MAX_PROOF_LINES} hashes")
        if any(len(h) != HASH_SIZE for h in self.proof):
            raise MalformedRequestError(f"a proof hash is {HASH_SIZE} bytes")
        if self.old_size == 0 and self.proof:
            raise MalformedRequestError("a proof from size 0 must be empty")


def format_add_checkpoint(request: AddCheckpoint) -> bytes:
    """The request body."""
    lines = [f"old {request.old_size}", *(encode_base64(h) for h in request.proof), ""]
    return "".join(line + "\n" for line in lines).encode() + request.checkpoint


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse a request body; raises :class:`MalformedRequestError` (400) or
    :class:`RequestTooLargeError` (413)."""
    if len(body) > MAX_REQUEST_SIZE:
        raise RequestTooLargeError(f"request of {len(body)} bytes is over {MAX_REQUEST_SIZE}")
    head, sep, checkpoint = body.partition(b"\n\n")
    if not sep:
        raise MalformedRequestError("request has no empty line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise MalformedRequestError("request header is not ASCII") from None
    if len(lines) > 1 + MAX_PROOF_LINES:
        raise MalformedRequestError(f"a proof has at most {MAX_PROOF_LINES} hashes")
    if not lines[0].startswith("old "):
        raise MalformedRequestError("request does not start with an old size line")
    try:
        old_size = parse_decimal(lines[0].removeprefix("old "), "old size")
        proof = tuple(parse_base64(line, "proof hash") for line in lines[1:])
    except TlogError as exc:
        raise MalformedRequestError(exc.detail) from None
    return AddCheckpoint(old_size, proof, checkpoint)


def format_size_conflict(size: int) -> bytes:
    """The body of a 409 response: the witness's latest size."""
    return f"{size}\n".encode()


def parse_size_conflict(body: bytes) -> int:
    """The size in a 409 response body."""
    try:
        text = body.decode("ascii")
        if not text.endswith("\n"):
            raise MalformedRequestError("a size body ends in a newline")
        return parse_decimal(text[:-1], "witness size")
    except (UnicodeDecodeError, TlogError) as exc:
        raise MalformedRequestError(f"not a tlog size body: {exc}") from None
