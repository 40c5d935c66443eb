"""RFC 8941 Structured Field Values: the subset HTTP Message Signatures and Content-Digest use.

Dictionaries whose members are items or inner lists, with parameters; bare items are integers,
strings, tokens, byte sequences and booleans (decimals are refused: no header custodes reads
uses them). Parsing is strict, as RFC 8941 §4.2 asks: anything that does not parse is an
error, never a guess, and a dictionary that names one key twice is refused (RFC 8941 keeps the
last; a signature verifier must not have to choose).

::

    sf-dictionary  = dict-member *( OWS "," OWS dict-member )
    dict-member    = key ( parameters / ( "=" member-value ) )
    member-value   = sf-item / inner-list
    inner-list     = "(" *SP [ sf-item *( 1*SP sf-item ) *SP ] ")" parameters
    parameters     = *( ";" *SP key [ "=" bare-item ] )
    key            = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )

>>> d = parse_dictionary('sig1=("@method" "content-digest");created=1618884473;keyid="k"')
>>> d["sig1"].items[0].value, dict(d["sig1"].params)["created"]
('@method', 1618884473)
>>> format_dictionary(d)
'sig1=("@method" "content-digest");created=1618884473;keyid="k"'
>>> parse_dictionary("sha-256=:AAAA:")["sha-256"].value
b'\\x00\\x00\\x00'
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from custodes.errors import InputError

__all__ = [
    "BareItem",
    "InnerList",
    "Item",
    "Params",
    "StructuredFieldError",
    "Token",
    "format_dictionary",
    "format_inner_list",
    "format_item",
    "parse_dictionary",
]

MAX_FIELD = 8192
"""Longest field value parsed (signature headers are a few hundred bytes)."""


class StructuredFieldError(InputError):
    """A header that should be an RFC 8941 structured field does not parse."""

    code = "bad_structured_field"
    title = "Malformed structured header field"


class Token(str):
    """An RFC 8941 token (serialized bare, unlike a string)."""

    __slots__ = ()


BareItem = int | str | bytes | bool
Params = tuple[tuple[str, BareItem], ...]


@dataclass(frozen=True)
class Item:
    value: BareItem
    params: Params = ()


@dataclass(frozen=True)
class InnerList:
    items: tuple[Item, ...]
    params: Params = ()


_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_INT = re.compile(r"-?[0-9]{1,15}")
_B64 = re.compile(r"[A-Za-z0-9+/=]*")


class _Reader:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_FIELD:
            raise StructuredFieldError(f"a structured field is at most {MAX_FIELD} characters")
        if not text.isascii():
            raise StructuredFieldError("a structured field is ASCII")
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self, pattern: re.Pattern[str], what: str) -> str:
        match = pattern.match(self.text, self.pos)
        if match is None or not match.group():
            raise StructuredFieldError(f"expected {what} at position {self.pos}")
        self.pos = match.end()
        return match.group()

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise StructuredFieldError(f"expected {char!r} at position {self.pos}")
        self.pos += 1

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1

    def done(self) -> bool:
        return self.pos >= len(self.text)


def _bare_item(r: _Reader) -> BareItem:
    c = r.peek()
    if c == '"':
        return _string(r)
    if c == ":":
        r.expect(":")
        encoded = r.take(_B64, "base64") if r.peek() != ":" else ""
        r.expect(":")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise StructuredFieldError("a byte sequence is not valid base64") from None
    if c == "?":
        r.expect("?")
        flag = r.peek()
        if flag not in ("0", "1"):
            raise StructuredFieldError("a boolean is ?0 or ?1")
        r.pos += 1
        return flag == "1"
    if c == "-" or c.isdigit():
        number = r.take(_INT, "an integer of at most 15 digits")
        if r.peek() == ".":
            raise StructuredFieldError("decimals are not accepted here")
        return int(number)
    return Token(r.take(_TOKEN, "a bare item"))


def _string(r: _Reader) -> str:
    r.expect('"')
    out: list[str] = []
    while True:
        c = r.peek()
        if c == "":
            raise StructuredFieldError("a string is not closed")
        r.pos += 1
        if c == '"':
            return "".join(out)
        if c == "\\":
            escaped = r.peek()
            if escaped not in ('"', "\\"):
                raise StructuredFieldError('a string escapes only \\ and "')
            r.pos += 1
            out.append(escaped)
        elif " " <= c <= "~":
            out.append(c)
        else:
            raise StructuredFieldError("a string holds printable ASCII only")


def _params(r: _Reader) -> Params:
    params: list[tuple[str, BareItem]] = []
    while r.peek() == ";":
        r.pos += 1
        r.skip(" ")
        key = r.take(_KEY, "a parameter key")
        value: BareItem = True
        if r.peek() == "=":
            r.pos += 1
            value = _bare_item(r)
        params = [(k, v) for k, v in params if k != key]
        params.append((key, value))
    return tuple(params)


def _item(r: _Reader) -> Item:
    value = _bare_item(r)
    return Item(value, _params(r))


def _inner_list(r: _Reader) -> InnerList:
    r.expect("(")
    items: list[Item] = []
    while True:
        r.skip(" ")
        if r.peek() == ")":
            r.pos += 1
            return InnerList(tuple(items), _params(r))
        items.append(_item(r))
        if r.peek() not in (" ", ")"):
            raise StructuredFieldError(f"expected a space or ')' at position {r.pos}")


def parse_dictionary(text: str) -> dict[str, Item | InnerList]:
    """An RFC 8941 dictionary; ``StructuredFieldError`` if it does not parse or repeats a key."""
    quick = _quick(text)
    return quick if quick is not None else _dictionary(text)


def _dictionary(text: str) -> dict[str, Item | InnerList]:
    r = _Reader(text)
    r.skip(" ")
    out: dict[str, Item | InnerList] = {}
    while not r.done():
        key = r.take(_KEY, "a dictionary key")
        if key in out:
            raise StructuredFieldError(f"the key {key!r} appears twice")
        if r.peek() == "=":
            r.pos += 1
            out[key] = _inner_list(r) if r.peek() == "(" else _item(r)
        else:
            out[key] = Item(True, _params(r))
        r.skip(" \t")
        if r.done():
            break
        r.expect(",")
        r.skip(" \t")
        if r.done():
            raise StructuredFieldError("a dictionary does not end with ','")
    if not out:
        raise StructuredFieldError("the dictionary is empty")
    return out


_CHARS = r"[ !#-\[\]-~]*"
_QUICK_BYTES = re.compile(rf"({_KEY.pattern})=:({_B64.pattern}):")
_QUICK_LIST = re.compile(
    rf'({_KEY.pattern})=\(((?:"{_CHARS}"(?: "{_CHARS}")*)?)\)'
    rf'((?:;{_KEY.pattern}=(?:{_INT.pattern}|"{_CHARS}"))*)'
)
_QUICK_PARAM = re.compile(rf';({_KEY.pattern})=(?:({_INT.pattern})|"({_CHARS})")')
_QUICK_ITEM = re.compile(rf'"({_CHARS})"')


def _quick(text: str) -> dict[str, Item | InnerList] | None:
    """The dictionary every signed request sends, read with one pattern each: one member,
    with no spaces around it, that is a byte sequence (``Signature``, ``Content-Digest``) or
    an inner list of strings without escapes with integer or string parameters, no key
    twice (``Signature-Input``). None for anything else, which the full parser reads (and
    says what is wrong with): what this accepts, it reads as the full parser does."""
    if len(text) > MAX_FIELD:
        return None
    match = _QUICK_BYTES.fullmatch(text)
    if match is not None:
        try:
            value = base64.b64decode(match[2], validate=True)
        except (binascii.Error, ValueError):
            return None
        return {match[1]: Item(value)}
    match = _QUICK_LIST.fullmatch(text)
    if match is None:
        return None
    items = tuple(Item(v) for v in _QUICK_ITEM.findall(match[2]))
    params: list[tuple[str, BareItem]] = [
        (key, int(number) if number else string)
        for key, number, string in _QUICK_PARAM.findall(match[3])
    ]
    if len({key for key, _ in params}) != len(params):
        return None
    return {match[1]: InnerList(items, tuple(params))}


def _format_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if not -(10**15) < value < 10**15:
            raise StructuredFieldError("an integer has at most 15 digits")
        return str(value)
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode() + ":"
    if isinstance(value, Token):
        if not _TOKEN.fullmatch(value):
            raise StructuredFieldError(f"{value!r} is not a token")
        return str(value)
    if not all(" " <= c <= "~" for c in value):
        raise StructuredFieldError("a string holds printable ASCII only")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format_params(params: Params) -> str:
    out = []
    for key, value in params:
        if not _KEY.fullmatch(key):
            raise StructuredFieldError(f"{key!r} is not a parameter key")
        out.append(f";{key}" if value is True else f";{key}={_format_bare(value)}")
    return "".join(out)


def format_item(item: Item) -> str:
    return _format_bare(item.value) + _format_params(item.params)


def format_inner_list(inner: InnerList) -> str:
    return "(" + " ".join(format_item(i) for i in inner.items) + ")" + _format_params(inner.params)


def format_dictionary(members: dict[str, Item | InnerList]) -> str:
    """The canonical serialization (RFC 8941 §4.1) of a dictionary."""
    out = []
    for key, member in members.items():
        if not _KEY.fullmatch(key):
            raise StructuredFieldError(f"{key!r} is not a dictionary key")
        if isinstance(member, InnerList):
            out.append(f"{key}={format_inner_list(member)}")
        elif member.value is True:
            out.append(key + _format_params(member.params))
        else:
            out.append(f"{key}={format_item(member)}")
    return ", ".join(out)
