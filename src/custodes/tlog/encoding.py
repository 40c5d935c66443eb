"""The two text encodings every C2SP format here shares, parsed strictly.

* base64: the standard alphabet of RFC 4648 §4, with padding. Only the canonical encoding
  is accepted: no whitespace, no missing or extra padding, and the unused low bits of the
  last character must be zero (so each byte string has exactly one accepted encoding).
* decimal: ``0 | [1-9][0-9]*`` in ASCII: no sign, no leading zeroes, no spaces, no
  Unicode digits.

>>> parse_base64("AAE=", "example")
b'\\x00\\x01'
>>> parse_base64("AAF=", "example")
Traceback (most recent call last):
...
custodes.tlog.errors.FormatError: example is not canonical base64
>>> parse_decimal("0120", "size")
Traceback (most recent call last):
...
custodes.tlog.errors.FormatError: size is not a canonical decimal: '0120'
"""

from __future__ import annotations

import base64
import binascii
import re

from custodes.tlog.errors import FormatError

__all__ = ["MAX_UINT64", "encode_base64", "parse_base64", "parse_decimal"]

MAX_UINT64 = 2**64 - 1

_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_MAX_DECIMAL_DIGITS = 20


def encode_base64(data: bytes) -> str:
    """Standard, padded base64 of ``data``."""
    return base64.b64encode(data).decode("ascii")


def parse_base64(text: str, what: str) -> bytes:
    """Decode canonical standard base64, or raise :class:`FormatError` naming ``what``."""
    if not _BASE64.fullmatch(text):
        raise FormatError(f"{what} is not canonical base64", value=text[:100])
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:  # unreachable after the pattern check; kept as a guard
        raise FormatError(f"{what} is not canonical base64", value=text[:100]) from exc
    if encode_base64(data) != text:
        raise FormatError(f"{what} is not canonical base64", value=text[:100])
    return data


def parse_decimal(text: str, what: str, maximum: int = MAX_UINT64) -> int:
    """Parse a canonical ASCII decimal no larger than ``maximum``."""
    if len(text) > _MAX_DECIMAL_DIGITS or not _DECIMAL.fullmatch(text):
        raise FormatError(f"{what} is not a canonical decimal: {text[:40]!r}")
    value = int(text)
    if value > maximum:
        raise FormatError(f"{what} {value} is over the limit {maximum}")
    return value
