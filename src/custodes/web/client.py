"""The authority's side of the API: its key file, and an httpx auth that signs every request.

An authority's signing key is kept as an RFC 8037 private JWK (``kty`` ``OKP``, ``crv``
``Ed25519``), whose ``kid`` is the key id custodes knows it by: ``<authority id>/<key id>``,
where the key id is ``ed25519:`` followed by the key's RFC 7638 thumbprint. ``custodes
authority add --generate-key FILE`` writes such a file; :func:`load_key` reads it.

:class:`RequestSigner` signs each request as :mod:`custodes.web.signatures` requires (using
the independent ``http-message-signatures`` implementation of RFC 9421, so that every signed
request this client sends is also a test that the two agree)::

    with httpx.Client(base_url=url, auth=SignatureAuth(RequestSigner(load_key(path)))) as c:
        c.post("/v1/demands", content=body, headers={"Content-Type": "application/json",
                                                     "Idempotency-Key": key})

>>> key = AuthorityKey.generate("gb-met")
>>> key.keyid.startswith("gb-met/ed25519:"), parse_private_jwk(format_private_jwk(key)) == key
(True, True)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

from custodes.errors import InputError
from custodes.model import VerificationKey

from .signatures import REQUIRED_COMPONENTS

__all__ = [
    "AuthorityKey",
    "RequestSigner",
    "SignatureAuth",
    "SignedClient",
    "format_private_jwk",
    "format_public_jwk",
    "key_id_of",
    "load_key",
    "parse_private_jwk",
    "parse_public_jwk",
]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or len(text) != 43:
        raise InputError(f"{what} is 32 bytes in base64url (43 characters)")
    try:
        return base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        raise InputError(f"{what} is not base64url") from None


def key_id_of(public: bytes) -> str:
    """``ed25519:`` and the RFC 7638 JWK thumbprint of an Ed25519 public key."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(public)}, separators=(",", ":")
    )
    return "ed25519:" + _b64url(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True)
class AuthorityKey:
    """An authority's private signing key and the keyid requests name it by."""

    keyid: str
    private: bytes

    @classmethod
    def generate(cls, authority_id: str) -> AuthorityKey:
        seed = secrets.token_bytes(32)
        public = _public(seed)
        return cls(f"{authority_id}/{key_id_of(public)}", seed)

    @property
    def public(self) -> bytes:
        return _public(self.private)

    @property
    def authority_id(self) -> str:
        return self.keyid.split("/", 1)[0]

    def verification_key(self) -> VerificationKey:
        """The public half, as the authority registry holds it."""
        return VerificationKey(self.keyid.split("/", 1)[1], self.public)

    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.private)


def _public(seed: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def format_private_jwk(key: AuthorityKey) -> str:
    jwk = {"kty": "OKP", "crv": "Ed25519", "kid": key.keyid, "x": _b64url(key.public),
           "d": _b64url(key.private)}  # fmt: skip
    return json.dumps(jwk, indent=2) + "\n"


def parse_private_jwk(text: str) -> AuthorityKey:
    """An Ed25519 private JWK with its ``kid``; ``InputError`` for anything else."""
    try:
        jwk = json.loads(text)
    except json.JSONDecodeError:
        raise InputError("a key file is a JSON Web Key") from None
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InputError("the key is not an Ed25519 JWK (kty OKP, crv Ed25519)")
    seed = _unb64url(jwk.get("d"), "d")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or "/" not in kid:
        raise InputError("the JWK needs a kid of the form <authority id>/<key id>")
    key = AuthorityKey(kid, seed)
    if "x" in jwk and _unb64url(jwk["x"], "x") != key.public:
        raise InputError("the JWK's x is not the public key of its d")
    return key


def format_public_jwk(key: AuthorityKey) -> str:
    jwk = {"kty": "OKP", "crv": "Ed25519", "kid": key.keyid, "x": _b64url(key.public)}
    return json.dumps(jwk, indent=2) + "\n"


def parse_public_jwk(text: str) -> bytes:
    """The raw public key of an Ed25519 public (or private) JWK."""
    try:
        jwk = json.loads(text)
    except json.JSONDecodeError:
        raise InputError("a public key file is a JSON Web Key") from None
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InputError("the key is not an Ed25519 JWK (kty OKP, crv Ed25519)")
    return _unb64url(jwk.get("x"), "x")


def load_key(path: Path) -> AuthorityKey:
    """Read a private key file written by ``custodes authority add --generate-key``."""
    try:
        return parse_private_jwk(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


class _Resolver(HTTPSignatureKeyResolver):
    def __init__(self, key: AuthorityKey) -> None:
        self.key = key

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return self.key.signing_key()

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        return self.key.signing_key().public_key()


class RequestSigner:
    """Signs requests (RFC 9421, Ed25519) with ``key``, a fresh nonce and a Content-Digest.
    ``clock`` gives the ``created`` time (the default is the system's)."""

    def __init__(
        self, key: AuthorityKey, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.key = key
        self.clock = clock
        self._signer = HTTPMessageSigner(
            signature_algorithm=algorithms.ED25519, key_resolver=_Resolver(key)
        )

    def sign(self, request: httpx.Request) -> None:
        """Add ``Content-Digest``, ``Signature-Input`` and ``Signature`` to ``request``."""
        self._signer.sign(
            request,
            key_id=self.key.keyid,
            created=self.clock(),
            nonce=secrets.token_urlsafe(24),
            label="sig1",
            covered_component_ids=REQUIRED_COMPONENTS,
            body=request.content,
        )

    def headers_for(
        self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The signature headers of a request to the absolute ``url`` (for any HTTP client)."""
        request = httpx.Request(method, url, content=body, headers=dict(headers or {}))
        self.sign(request)
        names = ("content-digest", "signature-input", "signature")
        return {name: request.headers[name] for name in names}


class SignatureAuth(httpx.Auth):
    """An httpx auth that signs every request with a :class:`RequestSigner`."""

    requires_request_body = True

    def __init__(self, signer: RequestSigner) -> None:
        self.signer = signer

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.signer.sign(request)
        yield request


class SignedClient:
    """Signs each request sent through ``client``: any HTTP client with httpx's ``request``
    method (httpx's own, or Starlette's test client). ``base_url`` is the absolute URL the
    server sees itself at (the signature covers the whole target URI)."""

    def __init__(self, client: Any, signer: RequestSigner, base_url: str) -> None:
        self.client = client
        self.signer = signer
        self.base_url = base_url.rstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes = b"",
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        sent = dict(headers or {})
        if idempotency_key is not None:
            sent["Idempotency-Key"] = idempotency_key
        elif method == "POST" and "Idempotency-Key" not in sent:
            sent["Idempotency-Key"] = secrets.token_urlsafe(12)
        sent.update(self.signer.headers_for(method, self.base_url + path, content, sent))
        return self.client.request(method, path, content=content, headers=sent)

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post_json(self, path: str, value: Any, *, idempotency_key: str | None = None) -> Any:
        body = json.dumps(value).encode()
        headers = {"Content-Type": "application/json"}
        return self.request(
            "POST", path, content=body, headers=headers, idempotency_key=idempotency_key
        )
