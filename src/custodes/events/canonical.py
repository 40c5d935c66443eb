"""RFC 8785 canonical JSON (JCS) for the documents the events write, at the speed of the
standard library's encoder.

Every leaf, every commitment's bound value and every openings document is canonical JSON.
For documents made only of objects whose keys lie in the Basic Multilingual Plane, arrays,
strings that encode to UTF-8 (no lone surrogates), integers within ±(2^53 - 1), booleans and
null, RFC 8785 and ``json.dumps`` with sorted keys, no spaces and non-ASCII kept write the
same bytes: both escape ``"``, ``\\`` and the control characters alike (``\\n`` and its
kin, else ``\\u00XX`` in lower case) and nothing else, and for such keys UTF-16 order is
code point order. :func:`canonical` checks that a document is of that kind and writes it so;
anything else (a float, a larger integer, a key beyond the plane, a lone surrogate) goes to
the ``rfc8785`` package, which also raises what it raises. A test holds the two together
over every code point and over generated documents.

>>> canonical({"b": [1, "é", None], "a": True}).decode()
'{"a":true,"b":[1,"é",null]}'
>>> canonical([0.5]) == rfc8785.dumps([0.5])
True
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

__all__ = ["canonical", "canonical_plain"]

_INT = 2**53 - 1
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True,
                            separators=(",", ":"))  # fmt: skip
_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE: Any = (
    None
    if _make_encoder is None
    else _make_encoder(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )
)
"""The interpreter's C encoder with ``_ENCODER``'s settings, made once: ``JSONEncoder.encode``
makes one for every document (a third of the time of a small one). Without a circularity
check: a circular document fails :func:`canonical`'s walk first, and the events' documents
are built afresh from checked parts."""


def canonical(value: Any) -> bytes:
    """``value`` as RFC 8785 canonical JSON."""
    return canonical_plain(value) if _plain(value) else rfc8785.dumps(value)


def canonical_plain(value: Any) -> bytes:
    """:func:`canonical` of a document its maker knows to be of the kind described above
    (the leaves, commitments and openings the events make, from checked parts), without
    walking it to check that again: the walk cost more than the encoding. A lone surrogate
    still goes to ``rfc8785``, which refuses it its own way."""
    try:
        if _C_ENCODE is None or isinstance(value, str):
            return _ENCODER.encode(value).encode("utf-8")
        return "".join(_C_ENCODE(value, 0)).encode("utf-8")
    except UnicodeEncodeError:
        return rfc8785.dumps(value)


def _plain(value: Any) -> bool:
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_INT <= value <= _INT
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and (k.isascii() or max(k) < "\U00010000") and _plain(v)
            for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return False
