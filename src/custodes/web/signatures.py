"""RFC 9421 HTTP Message Signatures (Ed25519) and RFC 9530 Content-Digest, as custodes checks
them on every request of the authority API.

An authority signs each request with its registered Ed25519 key::

    Content-Digest: sha-256=:<base64 SHA-256 of the body>:
    Signature-Input: sig1=("@method" "@target-uri" "content-digest");created=1718000000;
                     nonce="<16-128 characters, new for every request>";keyid="<authority>/<key>"
    Signature: sig1=:<base64 Ed25519 signature of the signature base>:

The *signature base* (RFC 9421 §2.5) is one line per covered component, ``"<name>": <value>``,
then ``"@signature-params": <the inner list above, re-serialized>``. Derived components
``@method``, ``@target-uri``, ``@authority``, ``@scheme``, ``@path``, ``@query`` and
``@request-target`` are supported, and any header field without component parameters.

What :func:`verify_request` requires (custodes' profile of RFC 9421), and how it refuses:

==========================================================  =========================
a request that ...                                          is refused with code
==========================================================  =========================
has no ``Signature-Input`` or no ``Signature``              ``signature_missing``
has headers that do not parse, more than one signature,     ``signature_malformed``
an ``alg`` other than ``ed25519``, an unknown parameter
does not cover ``@method``, ``@target-uri`` and             ``signature_incomplete``
``content-digest``, or lacks ``created``, ``keyid`` or
``nonce``, or lacks a covered header
was created more than ``max_age`` ago (or in the future     ``signature_expired``
beyond the clock skew), or whose ``expires`` has passed
names a key nobody registered                               ``unknown_key``
names a key its authority revoked                           ``key_revoked``
carries a signature that does not verify                    ``bad_signature``
has a body whose digest is not the signed Content-Digest    ``digest_mismatch``
==========================================================  =========================

A nonce already seen is ``signature_replayed``: the nonce cache lives in the database (see
:mod:`custodes.web.intake`). :func:`sign_request` is the mirror of :func:`verify_request`.

The RFC's own example (§B.2.6, key ``test-key-ed25519`` of §B.1.4) verifies:

>>> import base64
>>> key = base64.urlsafe_b64decode("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs=")
>>> req = SignedParts("POST", "http://example.com/foo?param=Value&Pet=dog", (
...     ("host", "example.com"), ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
...     ("content-type", "application/json"), ("content-length", "18")))
>>> inputs = parse_signature_input('sig-b26=("date" "@method" "@path" "@authority" '
...     '"content-type" "content-length");created=1618884473;keyid="test-key-ed25519"')
>>> sig = parse_signature("sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9"
...                       "EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:")
>>> check_signature(key, signature_base(req, inputs["sig-b26"]), sig["sig-b26"])
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custodes.errors import SignatureError

from .structured_fields import (
    InnerList,
    Item,
    StructuredFieldError,
    Token,
    format_dictionary,
    format_inner_list,
    parse_dictionary,
)

__all__ = [
    "ACCEPT_SIGNATURE",
    "REQUIRED_COMPONENTS",
    "DigestMismatchError",
    "KeyRevokedError",
    "SignatureExpiredError",
    "SignatureIncompleteError",
    "SignatureInput",
    "SignatureMalformedError",
    "SignatureMissingError",
    "SignatureReplayedError",
    "SignedParts",
    "UnknownKeyError",
    "Verified",
    "check_content_digest",
    "check_signature",
    "format_content_digest",
    "format_signature",
    "format_signature_input",
    "parse_content_digest",
    "parse_signature",
    "parse_signature_input",
    "sign_request",
    "signature_base",
    "verify_request",
]

REQUIRED_COMPONENTS = ("@method", "@target-uri", "content-digest")
ACCEPT_SIGNATURE = (
    'sig1=("@method" "@target-uri" "content-digest");created;nonce;keyid;alg="ed25519"'
)
"""What a refused request is told to send (RFC 9421 §5.1 ``Accept-Signature``)."""
ALG = "ed25519"
_PARAMS = frozenset({"created", "expires", "nonce", "keyid", "alg", "tag"})
_NONCE = re.compile(r"[A-Za-z0-9+/=_.~-]{16,128}")
_KEYID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}/[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_FIELD = re.compile(r"[a-z0-9!#$%&'*+\-.^_`|~]+")


class _Refusal(SignatureError):
    def __init__(self, detail: str, **evidence: object) -> None:
        super().__init__(detail, accept=ACCEPT_SIGNATURE, **evidence)


class SignatureMissingError(_Refusal):
    code = "signature_missing"
    title = "Request not signed"


class SignatureMalformedError(_Refusal):
    code = "signature_malformed"
    title = "Malformed HTTP message signature"


class SignatureIncompleteError(_Refusal):
    code = "signature_incomplete"
    title = "Signature does not cover what it must"


class SignatureExpiredError(_Refusal):
    code = "signature_expired"
    title = "Signature too old, or not yet valid"


class SignatureReplayedError(_Refusal):
    code = "signature_replayed"
    title = "Signature nonce seen before"


class UnknownKeyError(_Refusal):
    code = "unknown_key"
    title = "Signing key not registered"


class KeyRevokedError(_Refusal):
    code = "key_revoked"
    title = "Signing key revoked"


class DigestMismatchError(_Refusal):
    code = "digest_mismatch"
    title = "Body does not match its Content-Digest"


@dataclass(frozen=True)
class SignedParts:
    """What a signature can cover: the method, the absolute target URI and the header fields
    (lowercase names, in order; a name may repeat)."""

    method: str
    target_uri: str
    headers: tuple[tuple[str, str], ...]

    def field(self, name: str) -> str | None:
        """Every line of field ``name``, trimmed and joined with ``", "`` (RFC 9421 §2.1)."""
        values = [v.strip(" \t") for n, v in self.headers if n == name]
        return ", ".join(values) if values else None


@dataclass(frozen=True)
class SignatureInput:
    """One member of ``Signature-Input``: the covered components and the parameters."""

    components: tuple[str, ...]
    created: int | None = None
    expires: int | None = None
    nonce: str | None = None
    keyid: str | None = None
    alg: str | None = None
    tag: str | None = None
    order: tuple[str, ...] = ("created", "expires", "nonce", "keyid", "alg", "tag")
    """The order the parameters are serialized in: as received, when parsed."""

    def inner_list(self) -> InnerList:
        params: list[tuple[str, int | str]] = []
        for name in self.order:
            value = getattr(self, name)
            if value is not None:
                params.append((name, value))
        return InnerList(tuple(Item(c) for c in self.components), tuple(params))


@dataclass(frozen=True)
class Verified:
    """A request whose signature verified: who signed it, with which nonce, until when that
    nonce must be remembered."""

    keyid: str
    nonce: str
    created: datetime
    remember_until: datetime


# -- header fields -------------------------------------------------------------------------


def _parse(text: str, what: str) -> dict[str, Item | InnerList]:
    try:
        return parse_dictionary(text)
    except StructuredFieldError as exc:
        raise SignatureMalformedError(f"{what}: {exc.detail}") from None


def parse_signature_input(text: str) -> dict[str, SignatureInput]:
    """``Signature-Input`` by label."""
    out = {}
    for label, member in _parse(text, "Signature-Input").items():
        if not isinstance(member, InnerList):
            raise SignatureMalformedError(f"Signature-Input {label} is not an inner list")
        components = []
        for item in member.items:
            if not isinstance(item.value, str) or isinstance(item.value, Token) or item.params:
                raise SignatureMalformedError(
                    "covered components are plain strings (no component parameters)"
                )
            components.append(item.value)
        params = dict(member.params)
        unknown = sorted(set(params) - _PARAMS)
        if unknown:
            raise SignatureMalformedError(f"unknown signature parameter {unknown[0]!r}")
        for name in ("created", "expires"):
            if name in params and (
                isinstance(params[name], bool) or not isinstance(params[name], int)
            ):
                raise SignatureMalformedError(f"{name} is an integer")
        for name in ("nonce", "keyid", "alg", "tag"):
            if name in params and (
                not isinstance(params[name], str) or isinstance(params[name], Token)
            ):
                raise SignatureMalformedError(f"{name} is a string")
        out[label] = SignatureInput(
            tuple(components),
            order=tuple(params),
            **params,  # type: ignore[arg-type]
        )
    return out


def format_signature_input(label: str, sig: SignatureInput) -> str:
    return format_dictionary({label: sig.inner_list()})


def parse_signature(text: str) -> dict[str, bytes]:
    """``Signature`` by label."""
    out = {}
    for label, member in _parse(text, "Signature").items():
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise SignatureMalformedError(f"Signature {label} is not a byte sequence")
        out[label] = member.value
    return out


def format_signature(label: str, signature: bytes) -> str:
    return format_dictionary({label: Item(signature)})


def parse_content_digest(text: str) -> dict[str, bytes]:
    """``Content-Digest`` (RFC 9530) by algorithm."""
    out = {}
    for alg, member in _parse(text, "Content-Digest").items():
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise SignatureMalformedError(f"Content-Digest {alg} is not a byte sequence")
        out[alg] = member.value
    return out


def format_content_digest(body: bytes) -> str:
    """``sha-256=:...:`` for ``body``."""
    return format_dictionary({"sha-256": Item(hashlib.sha256(body).digest())})


def check_content_digest(text: str, body: bytes) -> None:
    """Return if ``text`` holds the SHA-256 of ``body`` (and any SHA-512 it holds matches)."""
    digests = parse_content_digest(text)
    if "sha-256" not in digests:
        raise SignatureMalformedError("Content-Digest must carry sha-256")
    expected = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    for alg, make in expected.items():
        if alg in digests and digests[alg] != make(body).digest():
            raise DigestMismatchError(f"the body's {alg} is not the one in Content-Digest")


# -- the signature base --------------------------------------------------------------------


def _derived(parts: SignedParts, name: str) -> str:
    url = urlsplit(parts.target_uri)
    path = url.path or "/"
    host = (url.hostname or "").lower()
    port = url.port
    default = {"http": 80, "https": 443}.get(url.scheme.lower())
    authority = host if port is None or port == default else f"{host}:{port}"
    values = {
        "@method": parts.method.upper(),
        "@target-uri": parts.target_uri,
        "@authority": authority,
        "@scheme": url.scheme.lower(),
        "@path": path,
        "@query": "?" + url.query,
        "@request-target": path + ("?" + url.query if url.query else ""),
    }
    if name not in values:
        raise SignatureMalformedError(f"the derived component {name!r} is not supported")
    return values[name]


def signature_base(parts: SignedParts, sig: SignatureInput) -> bytes:
    """The RFC 9421 §2.5 signature base of ``parts`` under ``sig``."""
    lines = []
    if len(set(sig.components)) != len(sig.components):
        raise SignatureMalformedError("a component is covered twice")
    for name in sig.components:
        if name.startswith("@"):
            value = _derived(parts, name)
        else:
            if not _FIELD.fullmatch(name):
                raise SignatureMalformedError(f"{name!r} is not a lowercase field name")
            field = parts.field(name)
            if field is None:
                raise SignatureIncompleteError(f"the covered field {name!r} is not in the request")
            value = field
        if not value.isascii() or any(c in value for c in "\r\n"):
            raise SignatureMalformedError(f"the value of {name!r} is not one line of ASCII")
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {format_inner_list(sig.inner_list())}')
    return "\n".join(lines).encode("ascii")


def check_signature(public_key: bytes, base: bytes, signature: bytes) -> None:
    """Return if ``signature`` is ``public_key``'s Ed25519 signature of ``base``."""
    try:
        _public_key(public_key).verify(signature, base)
    except (InvalidSignature, ValueError):
        raise SignatureError(
            "the signature does not verify with the registered key", accept=ACCEPT_SIGNATURE
        ) from None


@lru_cache(maxsize=1024)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    """A registered key, loaded once: every request of its authority is verified with it
    (``ValueError`` for bytes that are no Ed25519 public key, which is not remembered)."""
    return Ed25519PublicKey.from_public_bytes(raw)


# -- the profile ---------------------------------------------------------------------------


def _only(parts: SignedParts) -> tuple[str, SignatureInput, bytes]:
    inputs, signatures = parts.field("signature-input"), parts.field("signature")
    if inputs is None or signatures is None:
        raise SignatureMissingError("sign the request (RFC 9421): Signature-Input and Signature")
    parsed_inputs, parsed_sigs = parse_signature_input(inputs), parse_signature(signatures)
    if len(parsed_inputs) != 1 or parsed_inputs.keys() != parsed_sigs.keys():
        raise SignatureMalformedError("send exactly one signature, with the same label in both")
    [(label, sig)] = parsed_inputs.items()
    return label, sig, parsed_sigs[label]


def _check_profile(sig: SignatureInput, required: Sequence[str]) -> None:
    missing = [c for c in required if c not in sig.components]
    if missing:
        raise SignatureIncompleteError(f"the signature must cover {', '.join(missing)}")
    absent = [p for p in ("created", "keyid", "nonce") if getattr(sig, p) is None]
    if absent:
        raise SignatureIncompleteError(f"the signature needs the parameters {', '.join(absent)}")
    if sig.alg is not None and sig.alg != ALG:
        raise SignatureMalformedError(f"the only algorithm accepted is {ALG}")
    assert sig.nonce is not None and sig.keyid is not None
    if not _NONCE.fullmatch(sig.nonce):
        raise SignatureMalformedError("a nonce is 16-128 characters of base64 or base64url")
    if not _KEYID.fullmatch(sig.keyid):
        raise UnknownKeyError("a keyid is <authority id>/<key id>")


def _check_time(sig: SignatureInput, now: datetime, max_age: timedelta, skew: timedelta) -> None:
    assert sig.created is not None
    try:
        created = datetime.fromtimestamp(sig.created, UTC)
        expires = None if sig.expires is None else datetime.fromtimestamp(sig.expires, UTC)
    except (OverflowError, OSError, ValueError):
        raise SignatureMalformedError("created and expires are Unix times") from None
    if created > now + skew:
        raise SignatureExpiredError("the signature was created in the future; check the clock")
    if created + max_age < now - skew:
        raise SignatureExpiredError(
            f"the signature is more than {int(max_age.total_seconds())} seconds old"
        )
    if expires is not None and expires < now - skew:
        raise SignatureExpiredError("the signature's expires time has passed")


def verify_request(
    parts: SignedParts,
    body: bytes,
    *,
    key_of: Callable[[str], bytes],
    now: datetime,
    max_age: timedelta = timedelta(minutes=5),
    skew: timedelta = timedelta(seconds=30),
    required: Sequence[str] = REQUIRED_COMPONENTS,
) -> Verified:
    """Check a request against custodes' profile (see the module). ``key_of(keyid)`` gives the
    registered Ed25519 public key or raises ``UnknownKeyError`` / ``KeyRevokedError``."""
    _, sig, signature = _only(parts)
    _check_profile(sig, required)
    _check_time(sig, now, max_age, skew)
    assert sig.keyid is not None and sig.nonce is not None and sig.created is not None
    public_key = key_of(sig.keyid)
    check_signature(public_key, signature_base(parts, sig), signature)
    digest = parts.field("content-digest")
    if digest is None:  # pragma: no cover - covered components are present by now
        raise SignatureIncompleteError("Content-Digest is missing")
    check_content_digest(digest, body)
    created = datetime.fromtimestamp(sig.created, UTC)
    return Verified(sig.keyid, sig.nonce, created, created + max_age + skew)


def sign_request(
    parts: SignedParts,
    body: bytes,
    *,
    key: Ed25519PrivateKey,
    keyid: str,
    nonce: str,
    created: datetime,
    expires: datetime | None = None,
    components: Sequence[str] = REQUIRED_COMPONENTS,
    label: str = "sig1",
) -> tuple[tuple[str, str], ...]:
    """The headers that sign ``parts`` (with ``body``): ``content-digest``,
    ``signature-input`` and ``signature``; add them to the request as they are."""
    digest = format_content_digest(body)
    signed = SignedParts(
        parts.method, parts.target_uri, (*parts.headers, ("content-digest", digest))
    )
    sig = SignatureInput(
        tuple(components),
        created=int(created.timestamp()),
        expires=None if expires is None else int(expires.timestamp()),
        nonce=nonce,
        keyid=keyid,
        alg=ALG,
    )
    signature = key.sign(signature_base(signed, sig))
    return (
        ("content-digest", digest),
        ("signature-input", format_signature_input(label, sig)),
        ("signature", format_signature(label, signature)),
    )
