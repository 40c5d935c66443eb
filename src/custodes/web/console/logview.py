"""The public log pages: the current checkpoint, the latest entries, and one entry with its
proof of inclusion, verified in the visitor's browser.

The server hands over only what anyone could fetch from the published log: the signed
checkpoint note, the entry's bytes, a c2sp.org/tlog-proof receipt (index, inclusion proof,
checkpoint) and the log's verifier key. ``static/logverify.js`` then checks, with WebCrypto,
that the entry hashes into the tree (RFC 9162 §2.1.3.2) and that the checkpoint carries a valid
Ed25519 signature by that key (c2sp.org/signed-note), and the page says *verified* or *failed*
and why: the page does not ask to be trusted. The same receipt is offered as a file, for
``custodes``' own checker or any other tlog-proof verifier.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from custodes.deployment import Deployment
from custodes.errors import InputError
from custodes.events import Event, parse_event
from custodes.ledger import SignedCheckpoint
from custodes.tlog import Receipt, format_receipt

__all__ = [
    "ENTRIES_PER_PAGE",
    "EntryView",
    "LogView",
    "entry_view",
    "log_view",
    "parse_index",
]

ENTRIES_PER_PAGE = 25
_MAX_INDEX_DIGITS = 20


@dataclass(frozen=True)
class EntryView:
    """One published entry: its bytes (as text when they are printable UTF-8, else base64),
    the event they encode (None if they are not an event), and its receipt (None while no
    checkpoint covers it yet)."""

    index: int
    data: bytes
    event: Event | None
    receipt: str | None

    @property
    def text(self) -> str | None:
        try:
            text = self.data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        printable = all(c >= " " and c != "\x7f" for c in text)
        return text if printable else None

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode()


@dataclass(frozen=True)
class LogView:
    """The log page: the latest checkpoint and a page of entries, newest first."""

    checkpoint: SignedCheckpoint | None
    entries: tuple[EntryView, ...]
    older: int | None
    """Where the next (older) page starts (``?before=``), if there is one."""

    @property
    def note(self) -> str:
        return "" if self.checkpoint is None else self.checkpoint.note.decode()


def parse_index(raw: str | None, *, what: str = "entry index") -> int:
    """A log index typed by a person: a plain decimal (``InputError`` otherwise).

    >>> parse_index(" 42 ")
    42
    >>> parse_index("-1")
    Traceback (most recent call last):
    ...
    custodes.errors.InputError: the entry index must be a whole number such as 42
    """
    text = (raw or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_INDEX_DIGITS:
        raise InputError(f"the {what} must be a whole number such as 42")
    return int(text)


def _event(data: bytes) -> Event | None:
    try:
        return parse_event(data)
    except InputError:
        return None


def log_view(dep: Deployment, before: int | None = None) -> LogView:
    """The latest checkpoint and the ``ENTRIES_PER_PAGE`` entries before ``before``."""
    signed = dep.ledger.latest_checkpoint()
    size = 0 if signed is None else signed.checkpoint.size
    end = size if before is None else max(0, min(before, size))
    start = max(0, end - ENTRIES_PER_PAGE)
    rows = dep.ledger.entries(start, end) if end > start else []
    entries = tuple(EntryView(start + i, data, _event(data), None) for i, data in enumerate(rows))[
        ::-1
    ]
    return LogView(signed, entries, start if start > 0 else None)


def entry_view(dep: Deployment, index: int) -> EntryView:
    """Entry ``index`` with its receipt against the latest checkpoint (``NotFoundError`` if
    the log holds no such entry yet)."""
    data = dep.ledger.entry(index)
    signed = dep.ledger.latest_checkpoint()
    receipt = None
    if signed is not None and index < signed.checkpoint.size:
        proof = dep.sequencer.prove(index, signed.checkpoint.size)
        receipt = format_receipt(Receipt(index, tuple(proof.hashes), signed.note))
    return EntryView(index, data, _event(data), receipt)
