"""Signed notes: signing, opening, the spec's limits and the golang sumdb/note key rules."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.tlog import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    AmbiguousKeyError,
    BadSignatureError,
    FormatError,
    KeyFormatError,
    NoteSignatureError,
    SizeLimitError,
    generate_key,
    new_signer,
    new_verifier,
    open_note,
    sign_note,
)
from custodes.tlog.note import (
    SignerKey,
    VerifierKey,
    format_skey,
    format_vkey,
    parse_skey,
    parse_vkey,
)

SKEY, VKEY = generate_key("example.com/log")
OTHER_SKEY, OTHER_VKEY = generate_key("witness.example/w1")


def _sig_line(name: str, key_id: int, sig: bytes = b"\x00" * 64) -> bytes:
    raw = key_id.to_bytes(4, "big") + sig
    return f"— {name} {base64.b64encode(raw).decode()}\n".encode()


def test_sign_and_open_round_trip_with_two_signers() -> None:
    msg = sign_note("a\nb\n", new_signer(SKEY), new_signer(OTHER_SKEY))
    note = open_note(msg, [new_verifier(VKEY), new_verifier(OTHER_VKEY)])
    assert note.text == "a\nb\n"
    assert [s.name for s in note.sigs] == ["example.com/log", "witness.example/w1"]
    assert len(note.sigs[0].raw) == 64


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(blacklist_categories=["Cs", "Cc"]) | st.just("\n")))
def test_any_valid_text_round_trips(body: str) -> None:
    text = body + "\n"
    note = open_note(sign_note(text, new_signer(SKEY)), [new_verifier(VKEY)])
    assert note.text == text


@pytest.mark.parametrize("text", ["a\n\nb\n", "\n", "a\n\n", "— x AAAA\n"])
def test_text_may_hold_blank_lines_and_look_like_signatures(text: str) -> None:
    note = open_note(sign_note(text, new_signer(SKEY)), [new_verifier(VKEY)])
    assert note.text == text


@pytest.mark.parametrize("text", ["", "no newline", "tab\there\n", "cr\r\n", "nul\x00\n"])
def test_sign_note_rejects_bad_text(text: str) -> None:
    with pytest.raises(FormatError):
        sign_note(text, new_signer(SKEY))


def test_sign_note_needs_distinct_signers() -> None:
    with pytest.raises(FormatError):
        sign_note("a\n")
    with pytest.raises(FormatError):
        sign_note("a\n", new_signer(SKEY), new_signer(SKEY))


def test_sign_note_refuses_a_note_it_could_not_open() -> None:
    with pytest.raises(SizeLimitError):
        sign_note("x" * MAX_NOTE_SIZE + "\n", new_signer(SKEY))


_GOOD = sign_note("hello\n", new_signer(SKEY))


@pytest.mark.parametrize(
    "msg",
    [
        b"hello\n",  # no signature block
        b"hello\n\n",  # empty signature block
        _GOOD[:-1],  # no final newline
        _GOOD + b"\n",  # blank line inside the signature block
        _GOOD.replace(b"\xe2\x80\x94 ", b"- "),  # not an em dash
        _GOOD.replace(b"log ", b"log  "),  # two spaces
        _GOOD.replace(b"example.com/log ", b"example.com+log "),  # '+' in name
        _GOOD.replace(b"\xe2\x80\x94 example.com/log", b"\xe2\x80\x94 "),  # empty name
        _GOOD.replace(b"=\n", b"\n"),  # base64 without its padding
        _GOOD[: _GOOD.index(b"log ") + 4] + b"AAAAAA==\n",  # key ID and one byte short
        b"hel\xfflo\n" + _GOOD[6:],  # not UTF-8
        b"hel\x07lo\n" + _GOOD[6:],  # a control character
    ],
)
def test_open_note_rejects_malformed_notes(msg: bytes) -> None:
    with pytest.raises(FormatError):
        open_note(msg, [new_verifier(VKEY)])


def test_open_note_checks_size_before_parsing() -> None:
    with pytest.raises(SizeLimitError):
        open_note(b"\xff" * (MAX_NOTE_SIZE + 1), [new_verifier(VKEY)])


def test_open_note_accepts_16_signatures_and_refuses_too_many() -> None:
    unknown = b"".join(_sig_line(f"w{i}.example", i) for i in range(15))
    note = open_note(_GOOD + unknown, [new_verifier(VKEY)])
    assert len(note.sigs) + len(note.unverified_sigs) == 16
    many = b"".join(_sig_line(f"w{i}.example", i) for i in range(MAX_SIGNATURES))
    with pytest.raises(SizeLimitError):
        open_note(_GOOD + many, [new_verifier(VKEY)])


def test_unknown_keys_are_kept_unverified_once() -> None:
    verifier = new_verifier(VKEY)
    same_name = _sig_line("example.com/log", verifier.key_hash ^ 1)
    same_id = _sig_line("example.com/other", verifier.key_hash)
    note = open_note(_GOOD + same_name + same_id + same_id, [verifier])
    assert [s.name for s in note.sigs] == ["example.com/log"]
    assert [(s.name, s.key_hash) for s in note.unverified_sigs] == [
        ("example.com/log", verifier.key_hash ^ 1),
        ("example.com/other", verifier.key_hash),
    ]


def test_a_failing_known_signature_rejects_the_note() -> None:
    verifier = new_verifier(VKEY)
    forged = b"hello\n\n" + _sig_line(verifier.name, verifier.key_hash)
    with pytest.raises(BadSignatureError) as info:
        open_note(forged + _GOOD[7:], [verifier])
    assert info.value.evidence["name"] == "example.com/log"


def test_a_repeated_signature_by_a_known_key_is_dropped() -> None:
    verifier = new_verifier(VKEY)
    repeated = _GOOD + _sig_line(verifier.name, verifier.key_hash)
    note = open_note(repeated, [verifier])
    assert len(note.sigs) == 1


def test_two_known_keys_with_one_name_and_id_are_ambiguous() -> None:
    verifier = new_verifier(VKEY)
    with pytest.raises(AmbiguousKeyError):
        open_note(_GOOD, [verifier, verifier])


def test_a_note_without_a_known_signature_is_rejected() -> None:
    with pytest.raises(NoteSignatureError) as info:
        open_note(_GOOD, [new_verifier(OTHER_VKEY)])
    assert info.value.evidence["signed_by"] == [
        f"example.com/log+{new_verifier(VKEY).key_hash:08x}"
    ]


def test_keys_round_trip_through_their_text_form() -> None:
    skey, vkey = parse_skey(SKEY), parse_vkey(VKEY)
    assert format_skey(skey) == SKEY
    assert format_vkey(vkey) == VKEY
    assert skey.public == vkey.public
    assert skey.seed.hex() not in repr(skey)
    assert SKEY.split("+", 4)[4] not in repr(skey) + repr(new_signer(SKEY))


# From the signed-note vectors (golang.org/x/mod sumdb/note tests).
PETER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


@pytest.mark.parametrize(
    "bad",
    [
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case ID
        "PeterNeumann+0c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # 9 digits
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",  # padding
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # truncated
        "PeterNeumann+c74f20a3+ ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # a space
        "PeterNeumann+c74f20a3+",  # no key material
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_parse_vkey_rejects_non_canonical_keys(bad: str) -> None:
    assert format_vkey(parse_vkey(PETER)) == PETER
    with pytest.raises(KeyFormatError):
        parse_vkey(bad)


def test_key_objects_refuse_bad_fields() -> None:
    with pytest.raises(KeyFormatError):
        VerifierKey("a b", 1, b"\x00" * 32)
    with pytest.raises(KeyFormatError):
        VerifierKey("a", 2, b"\x00" * 32)
    with pytest.raises(KeyFormatError):
        SignerKey("a", 1, b"\x00" * 31)
    with pytest.raises(KeyFormatError):
        generate_key("has space")


def test_note_keys_refuse_cosignature_keys() -> None:
    key = SignerKey("w.example", 0x04, b"\x01" * 32)
    with pytest.raises(KeyFormatError):
        new_signer(format_skey(key))
    with pytest.raises(KeyFormatError):
        new_verifier(format_vkey(VerifierKey("w.example", 0x04, key.public)))
    with pytest.raises(KeyFormatError):
        new_signer("PRIVATE+KEY+" + VKEY)
