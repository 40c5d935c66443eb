"""RFC 9421 signatures, RFC 9530 digests and RFC 8941 structured fields, as custodes checks them:
the RFC's own example, interoperability with an independent implementation, and every way a
request is refused."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import CustodesError, InputError, SignatureError
from custodes.web import structured_fields
from custodes.web.client import (
    AuthorityKey,
    RequestSigner,
    format_private_jwk,
    format_public_jwk,
    key_id_of,
    parse_private_jwk,
    parse_public_jwk,
)
from custodes.web.signatures import (
    SignatureInput,
    SignedParts,
    UnknownKeyError,
    check_signature,
    format_content_digest,
    format_signature,
    format_signature_input,
    parse_content_digest,
    parse_signature,
    parse_signature_input,
    sign_request,
    signature_base,
    verify_request,
)
from custodes.web.structured_fields import (
    InnerList,
    Item,
    StructuredFieldError,
    format_dictionary,
    parse_dictionary,
)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
URL = "https://custodes.example/v1/demands"
BODY = b'{"kind": "disclosure"}'
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = AuthorityKey("gb-met/k1", bytes(range(32))).public
KEYID = "gb-met/k1"


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- the RFC's example ---------------------------------------------------------------------

B26_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPp"
    "BKRCw==:"
)
B26_REQUEST = SignedParts(
    "POST",
    "http://example.com/foo?param=Value&Pet=dog",
    (
        ("host", "example.com"),
        ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("content-type", "application/json"),
        ("content-length", "18"),
    ),
)
B14_PRIVATE = _b64url("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU")
B14_PUBLIC = _b64url("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs")


def test_rfc9421_b26_signature_base_and_signature() -> None:
    sig = parse_signature_input(B26_INPUT)["sig-b26"]
    base = signature_base(B26_REQUEST, sig)
    assert base.decode().splitlines() == [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@authority": example.com',
        '"content-type": application/json',
        '"content-length": 18',
        '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
        '"content-length");created=1618884473;keyid="test-key-ed25519"',
    ]
    signature = parse_signature(B26_SIGNATURE)["sig-b26"]
    check_signature(B14_PUBLIC, base, signature)
    # Ed25519 is deterministic: signing the base again gives the RFC's bytes
    assert Ed25519PrivateKey.from_private_bytes(B14_PRIVATE).sign(base) == signature
    assert format_signature_input("sig-b26", sig) == B26_INPUT
    assert format_signature("sig-b26", signature) == B26_SIGNATURE


def test_rfc9421_b26_fails_once_a_covered_field_changes() -> None:
    sig = parse_signature_input(B26_INPUT)["sig-b26"]
    signature = parse_signature(B26_SIGNATURE)["sig-b26"]
    changed = SignedParts(
        B26_REQUEST.method,
        B26_REQUEST.target_uri,
        tuple((n, "19" if n == "content-length" else v) for n, v in B26_REQUEST.headers),
    )
    with pytest.raises(SignatureError):
        check_signature(B14_PUBLIC, signature_base(changed, sig), signature)


def test_rfc8037_key_and_rfc7638_thumbprint() -> None:
    """RFC 8037 appendix A.1-A.3: the example key, its public half and its thumbprint."""
    d = _b64url("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
    key = AuthorityKey("x/y", d)
    assert key.public == _b64url("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    assert key_id_of(key.public) == "ed25519:kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_key_files_round_trip_and_refuse_mismatched_halves() -> None:
    key = AuthorityKey.generate("us-fbi")
    assert parse_private_jwk(format_private_jwk(key)) == key
    assert parse_public_jwk(format_public_jwk(key)) == key.public
    assert key.verification_key().id == key_id_of(key.public)
    other = AuthorityKey.generate("us-fbi")
    forged = format_private_jwk(key).replace(
        base64.urlsafe_b64encode(key.public).decode().rstrip("="),
        base64.urlsafe_b64encode(other.public).decode().rstrip("="),
    )
    with pytest.raises(InputError):
        parse_private_jwk(forged)
    for bad in ("{}", "[]", '{"kty": "RSA"}', "not json"):
        with pytest.raises(InputError):
            parse_private_jwk(bad)


# -- structured fields ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'sig1=("@method" "content-digest");created=1;keyid="a/b";nonce="x"',
        "sha-256=:AAAA:, sha-512=:AAAAAAAA:",
        'a, b=?0;x=1, c=tok/en, d="q\\"uote", e=-12, f;y',
        "sig=();created=0",
    ],
)
def test_structured_fields_round_trip(text: str) -> None:
    assert format_dictionary(parse_dictionary(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a=1,",
        "a=1, a=2",
        "A=1",
        "a=1.5",
        "a=1234567890123456",
        'a="unterminated',
        'a="bad \\escape"',
        "a=:not base64!:",
        "a=(1 2",
        "a=(1 2)x",
        'a="caf\u00e9"',
        "a==1",
        "a=?2",
        "a=1 b=2",
    ],
)
def test_structured_fields_refuse_what_rfc8941_does_not_allow(text: str) -> None:
    with pytest.raises(StructuredFieldError):
        parse_dictionary(text)


_CHARS = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
_KEYS = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,6}", fullmatch=True)
_VALUES = st.one_of(_CHARS, st.integers(-(10**15) + 1, 10**15 - 1), st.binary(max_size=12),
                    st.booleans())  # fmt: skip
_MEMBERS = st.one_of(
    st.builds(Item, st.binary(max_size=40)),
    st.builds(
        InnerList,
        st.lists(st.builds(Item, _CHARS), max_size=5).map(tuple),
        st.lists(st.tuples(_KEYS, _VALUES), max_size=5).map(tuple),
    ),
)
_EDITS = st.lists(st.tuples(st.integers(0, 400), st.sampled_from(' ;=,()":\\a1-.?')),
                  max_size=3)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(_KEYS, _MEMBERS, _EDITS, st.booleans())
def test_the_quick_reading_of_a_field_is_the_full_one(
    key: str, member: Item | InnerList, edits: list[tuple[int, str]], cut: bool
) -> None:
    """Every signed request's fields are read by a pattern first: whatever it accepts,
    canonical or edited, it reads exactly as the full RFC 8941 parser does."""
    text = format_dictionary({key: member})
    for where, char in edits:
        at = where % (len(text) + 1)
        text = text[:at] + (text[at + 1 :] if cut else char + text[at:])
    quick = structured_fields._quick(text)
    try:
        full: object = structured_fields._dictionary(text)
    except StructuredFieldError:
        full = None
    if quick is not None:
        assert quick == full
    if full is None:
        with pytest.raises(StructuredFieldError):
            parse_dictionary(text)
    else:
        assert parse_dictionary(text) == full


def test_a_signed_requests_fields_take_the_quick_reading() -> None:
    fields = dict(_headers())
    for name in ("signature-input", "signature", "content-digest"):
        assert structured_fields._quick(fields[name]) is not None, name


def test_content_digest_round_trip() -> None:
    header = format_content_digest(BODY)
    assert parse_content_digest(header) == {"sha-256": hashlib.sha256(BODY).digest()}


# -- custodes' profile ---------------------------------------------------------------------


def _headers(**kw: object) -> tuple[tuple[str, str], ...]:
    options: dict[str, object] = {
        "key": KEY,
        "keyid": KEYID,
        "nonce": "n-" + secrets.token_hex(8),
        "created": NOW,
    }
    options.update(kw)
    parts = SignedParts("POST", URL, (("content-type", "application/json"),))
    extra = sign_request(parts, BODY, **options)  # type: ignore[arg-type]
    return (*parts.headers, *extra)


def _verify(
    headers: tuple[tuple[str, str], ...],
    body: bytes = BODY,
    url: str = URL,
    key_of: Callable[[str], bytes] | None = None,
    now: datetime = NOW,
) -> object:
    parts = SignedParts("POST", url, headers)
    return verify_request(parts, body, key_of=key_of or (lambda _: PUBLIC), now=now)


def _code(headers: tuple[tuple[str, str], ...], **kw: object) -> str:
    with pytest.raises(CustodesError) as err:
        _verify(headers, **kw)  # type: ignore[arg-type]
    return err.value.code


def _replace(
    headers: tuple[tuple[str, str], ...], name: str, value: str | None
) -> tuple[tuple[str, str], ...]:
    kept = tuple((n, v) for n, v in headers if n != name)
    return kept if value is None else (*kept, (name, value))


def test_a_good_signature_verifies_and_names_its_nonce() -> None:
    verified = _verify(_headers(nonce="nonce-0123456789abcdef"))
    assert verified.keyid == KEYID and verified.nonce == "nonce-0123456789abcdef"  # type: ignore[attr-defined]
    assert verified.remember_until > NOW + timedelta(minutes=5)  # type: ignore[attr-defined]


def test_a_tampered_body_is_a_digest_mismatch() -> None:
    assert _code(_headers(), body=BODY + b" ") == "digest_mismatch"


def test_a_tampered_covered_header_fails_the_signature() -> None:
    headers = _replace(_headers(), "content-digest", format_content_digest(BODY + b" "))
    assert _code(headers, body=BODY + b" ") == "bad_signature"


def test_a_request_sent_elsewhere_fails_the_signature() -> None:
    assert _code(_headers(), url=URL.replace("demands", "documents")) == "bad_signature"


def test_the_wrong_key_fails_the_signature() -> None:
    other = Ed25519PrivateKey.generate()
    assert _code(_headers(key=other)) == "bad_signature"


@pytest.mark.parametrize(
    ("created", "expires"),
    [
        (NOW - timedelta(minutes=6), None),
        (NOW + timedelta(minutes=2), None),
        (NOW - timedelta(minutes=2), NOW - timedelta(minutes=1)),
    ],
    ids=["too-old", "from-the-future", "expires-passed"],
)
def test_an_expired_signature_is_refused(created: datetime, expires: datetime | None) -> None:
    assert _code(_headers(created=created, expires=expires)) == "signature_expired"


@pytest.mark.parametrize(
    "components",
    [("@method", "content-digest"), ("@method", "@target-uri"), ("@target-uri", "content-digest")],
)
def test_a_signature_missing_a_required_component_is_incomplete(
    components: tuple[str, ...],
) -> None:
    assert _code(_headers(components=components)) == "signature_incomplete"


@pytest.mark.parametrize("param", ["created", "nonce", "keyid"])
def test_a_signature_missing_a_parameter_is_incomplete(param: str) -> None:
    headers = _headers()
    text = dict(headers)["signature-input"]
    sig = parse_signature_input(text)["sig1"]
    kept = tuple(p for p in sig.order if p != param)
    without = format_signature_input("sig1", SignatureInput(sig.components, **{
        p: getattr(sig, p) for p in kept}, order=kept))  # fmt: skip
    assert _code(_replace(headers, "signature-input", without)) == "signature_incomplete"


def test_an_unsigned_request_is_refused_as_missing() -> None:
    headers = _replace(_replace(_headers(), "signature", None), "signature-input", None)
    assert _code(headers) == "signature_missing"
    assert _code(_replace(_headers(), "signature", None)) == "signature_missing"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("signature-input", 'sig1=("@method");created=x'),
        ("signature-input", "sig1=:AAAA:"),
        ("signature", 'sig1="not bytes"'),
        ("signature", "sig2=:AAAA:"),
    ],
)
def test_malformed_signature_headers_are_refused(name: str, value: str) -> None:
    assert _code(_replace(_headers(), name, value)) == "signature_malformed"


def test_two_signatures_are_refused() -> None:
    headers = _headers()
    d = dict(headers)
    two_inputs = d["signature-input"] + ", " + d["signature-input"].replace("sig1=", "sig2=")
    two_sigs = d["signature"] + ", " + d["signature"].replace("sig1=", "sig2=")
    headers = _replace(_replace(headers, "signature-input", two_inputs), "signature", two_sigs)
    assert _code(headers) == "signature_malformed"


def test_another_algorithm_is_refused() -> None:
    headers = _headers()
    text = dict(headers)["signature-input"].replace('alg="ed25519"', 'alg="rsa-pss-sha512"')
    assert _code(_replace(headers, "signature-input", text)) == "signature_malformed"


def test_an_unknown_key_is_refused() -> None:
    def nobody(keyid: str) -> bytes:
        raise UnknownKeyError(f"no key {keyid}")

    assert _code(_headers(), key_of=nobody) == "unknown_key"
    assert _code(_headers(keyid="no-slash")) == "unknown_key"


def test_a_covered_header_absent_from_the_request_is_incomplete() -> None:
    parts = SignedParts("POST", URL, (("date", "Sat, 01 Jun 2024 12:00:00 GMT"),))
    components = ("@method", "@target-uri", "content-digest", "date")
    signed = sign_request(
        parts, BODY, key=KEY, keyid=KEYID, nonce="n" * 16, created=NOW, components=components
    )
    assert _verify((*parts.headers, *signed)).keyid == KEYID  # type: ignore[attr-defined]
    assert _code(signed) == "signature_incomplete"


# -- interoperability with http-message-signatures -----------------------------------------


class _Keys(HTTPSignatureKeyResolver):
    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return KEY

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        return KEY.public_key()


def test_custodes_accepts_what_the_independent_signer_signs() -> None:
    signer = RequestSigner(AuthorityKey(KEYID, bytes(range(32))), clock=lambda: NOW)
    headers = signer.headers_for("POST", URL, BODY, {"content-type": "application/json"})
    parts = (("content-type", "application/json"), *headers.items())
    assert _verify(parts).keyid == KEYID  # type: ignore[attr-defined]


def test_the_independent_verifier_accepts_what_custodes_signs() -> None:
    headers = _headers(created=datetime.now(UTC))
    request = httpx.Request("POST", URL, content=BODY, headers=list(headers))
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=_Keys())
    [result] = verifier.verify(
        request, body=BODY, require_components=("@method", "@target-uri", "content-digest")
    )
    assert result.parameters["keyid"] == KEYID


@settings(max_examples=40, deadline=None)
@given(body=st.binary(max_size=256), flip=st.integers(min_value=0, max_value=2047))
def test_any_change_to_a_signed_body_is_caught(body: bytes, flip: int) -> None:
    parts = SignedParts("POST", URL, ())
    headers = sign_request(parts, body, key=KEY, keyid=KEYID, nonce="n" * 16, created=NOW)
    verify_request(SignedParts("POST", URL, headers), body, key_of=lambda _: PUBLIC, now=NOW)
    if body:
        changed = bytearray(body)
        changed[flip % len(body)] ^= 1 << (flip % 8)
        with pytest.raises(CustodesError) as err:
            verify_request(
                SignedParts("POST", URL, headers), bytes(changed), key_of=lambda _: PUBLIC, now=NOW
            )
        assert err.value.code == "digest_mismatch"
