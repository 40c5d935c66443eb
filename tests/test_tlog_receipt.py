"""tlog-proof receipts: text round trips, strict parsing, and every way a check must fail."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.tlog import (
    BadSignatureError,
    Checkpoint,
    FormatError,
    MemoryNodeReader,
    NoteSignatureError,
    ProofError,
    SizeLimitError,
    WrongOriginError,
    format_checkpoint,
    generate_cosigner_key,
    generate_key,
    leaf_hash,
    new_cosignature_verifier,
    new_cosigner,
    new_signer,
    new_verifier,
    prove_inclusion,
    sign_note,
    tree_root,
)
from custodes.tlog.receipt import (
    MAX_RECEIPT_SIZE,
    Receipt,
    check_receipt,
    format_receipt,
    parse_receipt,
)

ORIGIN = "example.com/log"
LOG_SKEY, LOG_VKEY = generate_key(ORIGIN)
W_SKEY, W_VKEY = generate_cosigner_key("witness.example/w1")
ENTRIES = [f"entry {i}".encode() for i in range(11)]
READER = MemoryNodeReader([leaf_hash(e) for e in ENTRIES])
CHECKPOINT = Checkpoint(ORIGIN, len(ENTRIES), tree_root(len(ENTRIES), READER))
NOTE = sign_note(format_checkpoint(CHECKPOINT), new_signer(LOG_SKEY), new_cosigner(W_SKEY))
VERIFIERS = [new_verifier(LOG_VKEY), new_cosignature_verifier(W_VKEY)]


def _receipt(index: int, extra: bytes | None = None, note: bytes = NOTE) -> Receipt:
    proof = tuple(prove_inclusion(index, len(ENTRIES), READER))
    return Receipt(index=index, proof=proof, checkpoint=note, extra=extra)


def test_receipt_text_has_the_spec_layout() -> None:
    r = _receipt(5, extra=b"context")
    text = format_receipt(r)
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(b"context").decode()
    assert lines[2] == "index 5"
    assert lines[3 : 3 + len(r.proof)] == [base64.b64encode(h).decode() for h in r.proof]
    assert lines[3 + len(r.proof)] == ""
    assert text.endswith(NOTE.decode())


@settings(max_examples=50, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(ENTRIES) - 1),
    st.none() | st.binary(min_size=1, max_size=100),
)
def test_receipts_round_trip_and_check(index: int, extra: bytes | None) -> None:
    r = _receipt(index, extra)
    assert parse_receipt(format_receipt(r)) == r
    assert check_receipt(r, ENTRIES[index], VERIFIERS, ORIGIN, min_cosignatures=1) == CHECKPOINT


def test_check_receipt_rejects_another_entry_or_index() -> None:
    r = _receipt(3)
    with pytest.raises(ProofError):
        check_receipt(r, ENTRIES[4], VERIFIERS, ORIGIN)
    with pytest.raises(ProofError):
        check_receipt(Receipt(4, r.proof, NOTE), ENTRIES[3], VERIFIERS, ORIGIN)
    with pytest.raises(ProofError):
        check_receipt(Receipt(11, r.proof, NOTE), ENTRIES[3], VERIFIERS, ORIGIN)


def test_check_receipt_rejects_a_tampered_checkpoint() -> None:
    tampered = NOTE.replace(b"\n11\n", b"\n12\n")
    with pytest.raises(BadSignatureError):
        check_receipt(_receipt(3, note=tampered), ENTRIES[3], VERIFIERS, ORIGIN)


def test_check_receipt_needs_the_log_key_for_the_origin() -> None:
    r = _receipt(3)
    with pytest.raises(WrongOriginError):
        check_receipt(r, ENTRIES[3], VERIFIERS, "example.com/other")
    with pytest.raises(NoteSignatureError):  # only the witness is known
        check_receipt(r, ENTRIES[3], VERIFIERS[1:], ORIGIN)
    imposter_skey, imposter_vkey = generate_key("imposter.example")
    foreign = sign_note(format_checkpoint(CHECKPOINT), new_signer(imposter_skey))
    with pytest.raises(NoteSignatureError, match="log key"):
        check_receipt(_receipt(3, note=foreign), ENTRIES[3], [new_verifier(imposter_vkey)], ORIGIN)


def test_check_receipt_counts_cosignatures() -> None:
    with pytest.raises(NoteSignatureError, match="cosignatures"):
        check_receipt(_receipt(3), ENTRIES[3], VERIFIERS[:1], ORIGIN, min_cosignatures=1)


_GOOD = format_receipt(_receipt(2, extra=b"x"))
_HEAD, _, _TAIL = _GOOD.partition("\n\n")
_LINES = _HEAD.split("\n")


@pytest.mark.parametrize(
    "text",
    [
        _GOOD.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
        _GOOD.replace("index 2", "index 02"),
        _GOOD.replace("index 2", "index +2"),
        _GOOD.replace("index 2", "index  2"),
        _GOOD.replace("index 2", "Index 2"),
        _GOOD.replace("extra eA==", "extra eA"),
        _GOOD.replace("extra eA==", "extra "),
        _GOOD.replace("extra eA==", "extraeA=="),
        "\n".join([_LINES[0], _LINES[2], _LINES[1], *_LINES[3:]]) + "\n\n" + _TAIL,  # order
        "\n".join([_LINES[0], *_LINES[2:]]) + "\n\n" + _TAIL.replace("\n", "\r\n", 1),
        _HEAD + "\n" + base64.b64encode(b"x" * 31).decode() + "\n\n" + _TAIL,  # short hash
        _HEAD + "\n\n",  # no checkpoint
        _HEAD,  # no blank line
        _HEAD.replace(_LINES[3], _LINES[3] + " ") + "\n\n" + _TAIL,
        "\n".join(_LINES[:2]) + "\n\n" + _TAIL,  # no index
        "\n".join([*_LINES, *[_LINES[3]] * 64]) + "\n\n" + _TAIL,  # over 64 hashes
        _GOOD[:-1],  # note without a final newline
        "",
    ],
)
def test_parse_receipt_rejects_malformed_text(text: str) -> None:
    with pytest.raises(FormatError):
        parse_receipt(text)


def test_parse_receipt_checks_size_before_parsing() -> None:
    with pytest.raises(SizeLimitError):
        parse_receipt("x" * (MAX_RECEIPT_SIZE + 1))


def test_a_malformed_checkpoint_note_fails_the_check_with_a_typed_error() -> None:
    r = parse_receipt(_HEAD + "\n\nnot a note\n")
    with pytest.raises(FormatError):
        check_receipt(r, ENTRIES[2], VERIFIERS, ORIGIN)


def test_receipt_is_valid_by_construction() -> None:
    proof = (b"\x00" * 32,)
    for kwargs in [
        {"index": -1, "proof": proof, "checkpoint": NOTE},
        {"index": 0, "proof": (b"\x00" * 31,), "checkpoint": NOTE},
        {"index": 0, "proof": proof * 65, "checkpoint": NOTE},
        {"index": 0, "proof": proof, "checkpoint": NOTE[:-1]},
        {"index": 0, "proof": proof, "checkpoint": b"\xff\n"},
        {"index": 0, "proof": proof, "checkpoint": NOTE, "extra": b""},
    ]:
        with pytest.raises(FormatError):
            Receipt(**kwargs)  # type: ignore[arg-type]


# The example in c2sp.org/tlog-proof (signatures elided there, so it is parsed, not checked).
SPEC_EXAMPLE = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

— example.com/fancylog hI2DJw[...]1roloI=
— witness1.example mJirIklj[...]qY9v2B/5bg==
"""


def test_parse_receipt_reads_the_spec_example() -> None:
    r = parse_receipt(SPEC_EXAMPLE)
    assert r.index == 73894
    assert r.extra is not None and r.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")
    assert len(r.proof) == 5
    assert r.checkpoint.startswith(b"example.com/fancylog\n109482\n")
    assert format_receipt(r) == SPEC_EXAMPLE
    with pytest.raises(FormatError):  # the elided signatures are not base64
        check_receipt(r, b"", VERIFIERS, "example.com/fancylog")
