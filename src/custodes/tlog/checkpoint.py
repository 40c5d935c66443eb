"""Checkpoints (c2sp.org/tlog-checkpoint, v1.0.0): the signed note body of a tree head.

Grammar of the note text (every line ends in LF)::

    checkpoint = origin LF size LF root LF *(extension LF)
    origin     = 1*char                  ; the log's identity, non-empty
    size       = "0" / %x31-39 *DIGIT     ; tree size, ASCII decimal, no leading zeroes
    root       = base64(32-byte root)     ; canonical, padded standard base64
    extension  = 1*char                  ; opaque, non-empty (custodes writes none)

``char`` is any character but LF and the other ASCII controls. Parsing is strict: it
rejects ``01``, ``+1``, sizes of 2**64 or more, non-canonical base64, roots that are not 32
bytes, empty lines, a missing final newline and texts over the note size limit.

>>> from custodes.tlog.hashing import EMPTY_ROOT
>>> cp = Checkpoint("example.com/log", 0, EMPTY_ROOT)
>>> print(format_checkpoint(cp), end="")
example.com/log
0
47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
>>> parse_checkpoint(format_checkpoint(cp)) == cp
True
>>> parse_checkpoint("example.com/log\\n00\\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\\n")
Traceback (most recent call last):
...
custodes.tlog.errors.FormatError: checkpoint size is not a canonical decimal: '00'
"""

from __future__ import annotations

from dataclasses import dataclass

from custodes.tlog.encoding import MAX_UINT64, encode_base64, parse_base64, parse_decimal
from custodes.tlog.errors import FormatError, SizeLimitError
from custodes.tlog.hashing import HASH_SIZE
from custodes.tlog.note import MAX_NOTE_SIZE, check_text

__all__ = ["Checkpoint", "format_checkpoint", "parse_checkpoint"]


def _check_line(line: str, what: str) -> None:
    if not line:
        raise FormatError(f"checkpoint {what} is empty")
    if "\n" in line:
        raise FormatError(f"checkpoint {what} contains a newline")
    check_text(line, f"checkpoint {what}")


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash and (rarely) extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not 0 <= self.size <= MAX_UINT64:
            raise FormatError(f"checkpoint size {self.size} is outside 0..2**64-1")
        if len(self.root) != HASH_SIZE:
            raise FormatError(f"checkpoint root must be {HASH_SIZE} bytes, not {len(self.root)}")
        for ext in self.extensions:
            _check_line(ext, "extension line")


def format_checkpoint(cp: Checkpoint) -> str:
    """The checkpoint's note text, ending in a newline."""
    lines = [cp.origin, str(cp.size), encode_base64(cp.root), *cp.extensions]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text (without signatures); raises :class:`FormatError`."""
    if len(text) > MAX_NOTE_SIZE:
        raise SizeLimitError(f"checkpoint of {len(text)} characters is over {MAX_NOTE_SIZE}")
    if not text.endswith("\n"):
        raise FormatError("checkpoint must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise FormatError(f"checkpoint has {len(lines)} lines, not at least 3")
    origin, size_line, root_line, *extensions = lines
    for line in lines:
        _check_line(line, "line")
    size = parse_decimal(size_line, "checkpoint size")
    root = parse_base64(root_line, "checkpoint root")
    return Checkpoint(origin, size, root, tuple(extensions))
