"""Disclosed openings: salts and values the platform opens to an auditor, entry by entry.

Personal fields of events are salted commitments (see :mod:`custodes.events`). To let an
auditor check who took in and who approved a demand without publishing it, the platform gives
the auditor a disclosure file: one JSON object whose members are entry indexes (decimal
strings) and whose values are the openings of that entry, in the format of
:func:`custodes.events.format_openings`::

    {"41": {"staff": {"salt": "<base64url, 32 bytes>", "value": "staff-7"}},
     "44": {"staff": {"salt": "...", "value": "staff-2"}}}

The auditor checks each opening against the published commitment before using it.

>>> from custodes.events import Opening
>>> disclosed = {3: {"staff": Opening(bytes(32), "staff-7")}}
>>> parse_disclosure(format_disclosure(disclosed)) == disclosed
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import rfc8785

from custodes.audit.approvals import Disclosed
from custodes.audit.errors import OpeningsError
from custodes.events import Opening, format_openings, parse_openings

__all__ = ["MAX_DISCLOSURE_SIZE", "format_disclosure", "parse_disclosure"]

#: Largest disclosure file accepted, checked before parsing.
MAX_DISCLOSURE_SIZE = 64 * 1024 * 1024
_MAX_INDEX_DIGITS = 20


def format_disclosure(
    disclosed: Mapping[int, Mapping[str, Opening | tuple[Opening, ...]]],
) -> bytes:
    """The disclosure file for ``disclosed`` (canonical JSON)."""
    doc = {str(i): json.loads(format_openings(o)) for i, o in sorted(disclosed.items())}
    result: bytes = rfc8785.dumps(doc)
    return result


def parse_disclosure(data: bytes) -> Disclosed:
    """Parse a disclosure file; raises :class:`~custodes.audit.errors.OpeningsError`."""
    if len(data) > MAX_DISCLOSURE_SIZE:
        raise OpeningsError(f"disclosure of {len(data)} bytes is over {MAX_DISCLOSURE_SIZE}")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise OpeningsError("the disclosure is not JSON") from None
    if not isinstance(doc, dict):
        raise OpeningsError("the disclosure is a JSON object of entry indexes")
    out: dict[int, Mapping[str, Opening | tuple[Opening, ...]]] = {}
    for key, openings in doc.items():
        if (
            not (key.isascii() and key.isdigit())
            or len(key) > _MAX_INDEX_DIGITS
            or key != str(int(key))
        ):
            raise OpeningsError(f"{key[:30]!r} is not an entry index")
        try:
            out[int(key)] = parse_openings(json.dumps(openings).encode())
        except Exception as exc:  # the events module's own input errors
            raise OpeningsError(f"entry {key}: {exc}") from None
    return out
