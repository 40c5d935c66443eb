"""cosignature/v1: witness cosignatures on checkpoints, with the spec's example values."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodes.tlog import (
    EMPTY_ROOT,
    BadSignatureError,
    Checkpoint,
    FormatError,
    KeyFormatError,
    format_checkpoint,
    generate_key,
    new_signer,
    new_verifier,
    open_note,
    parse_checkpoint,
    sign_note,
)
from custodes.tlog.cosignature import (
    cosignature_timestamp,
    cosigned_message,
    generate_cosigner_key,
    new_cosignature_verifier,
    new_cosigner,
)
from custodes.tlog.note import Signature, SignerKey, format_skey, parse_skey, parse_vkey

# From c2sp.org/tlog-cosignature: the example checkpoint, its witness line and message.
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SPEC_COSIGNATURE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SPEC_MESSAGE = "cosignature/v1\ntime 1679315147\n" + SPEC_CHECKPOINT

LOG_SKEY, LOG_VKEY = generate_key("example.com/behind-the-sofa")
W_SKEY, W_VKEY = generate_cosigner_key("witness.example/w1")
TEXT = format_checkpoint(Checkpoint("example.com/log", 3, EMPTY_ROOT))


def test_cosigned_message_matches_the_spec_example() -> None:
    assert cosigned_message(SPEC_CHECKPOINT, 1679315147) == SPEC_MESSAGE.encode()


def test_spec_cosignature_line_carries_its_key_id_and_timestamp() -> None:
    logged = sign_note(SPEC_CHECKPOINT, new_signer(LOG_SKEY)) + SPEC_COSIGNATURE.encode()
    note = open_note(logged, [new_verifier(LOG_VKEY)])
    assert parse_checkpoint(note.text).size == 20852163
    [witness] = note.unverified_sigs
    assert (witness.name, witness.key_hash) == ("witness.example.com/w1", 0x8D66CF3F)
    assert cosignature_timestamp(witness) == 1679315147


def test_cosignatures_round_trip_with_their_timestamp() -> None:
    msg = sign_note(TEXT, new_signer(LOG_SKEY), new_cosigner(W_SKEY, clock=lambda: 1700000000.7))
    note = open_note(msg, [new_verifier(LOG_VKEY), new_cosignature_verifier(W_VKEY)])
    assert [s.name for s in note.sigs] == ["example.com/behind-the-sofa", "witness.example/w1"]
    assert cosignature_timestamp(note.sigs[1]) == 1700000000


def test_a_cosignature_alone_opens_the_note() -> None:
    msg = sign_note(TEXT, new_cosigner(W_SKEY))
    note = open_note(msg, [new_cosignature_verifier(W_VKEY)])
    assert len(note.sigs[0].raw) == 72


def test_a_cosignature_does_not_verify_after_the_timestamp_changes() -> None:
    msg = sign_note(TEXT, new_cosigner(W_SKEY, clock=lambda: 1000))
    verifier = new_cosignature_verifier(W_VKEY)
    sig = open_note(msg, [verifier]).sigs[0]
    raw = sig.raw
    later = (1001).to_bytes(8, "big") + raw[8:]
    assert not verifier.verify(TEXT.encode(), later)
    assert not verifier.verify(TEXT.encode(), raw[:-1])
    assert not verifier.verify(TEXT.replace("3", "4").encode(), raw)
    assert not verifier.verify(b"\xff", raw)
    assert verifier.verify(TEXT.encode(), raw)
    tampered = msg.replace(b"\n3\n", b"\n4\n")
    with pytest.raises(BadSignatureError):
        open_note(tampered, [verifier])


def test_timestamps_of_2_to_the_63_are_refused() -> None:
    key = parse_skey(W_SKEY)
    private = Ed25519PrivateKey.from_private_bytes(key.seed)
    ts = 2**63
    forged = ts.to_bytes(8, "big") + private.sign(f"cosignature/v1\ntime {ts}\n{TEXT}".encode())
    assert not new_cosignature_verifier(W_VKEY).verify(TEXT.encode(), forged)
    with pytest.raises(FormatError):
        cosigned_message(TEXT, ts)
    line = Signature("w", key.key_hash, base64.b64encode(b"\x00" * 4 + forged).decode())
    with pytest.raises(FormatError):
        cosignature_timestamp(line)
    with pytest.raises(FormatError):
        cosignature_timestamp(Signature("w", 0, base64.b64encode(b"\x00" * 70).decode()))


def test_a_cosigner_signs_only_checkpoints() -> None:
    with pytest.raises(FormatError):
        sign_note("not a checkpoint\n", new_cosigner(W_SKEY))
    with pytest.raises(FormatError):
        new_cosigner(W_SKEY).sign(b"\xff\n")


def test_note_and_cosignature_key_types_do_not_mix() -> None:
    with pytest.raises(KeyFormatError):
        new_cosigner(LOG_SKEY)
    with pytest.raises(KeyFormatError):
        new_cosignature_verifier(LOG_VKEY)
    with pytest.raises(KeyFormatError):
        new_verifier(W_VKEY)
    with pytest.raises(KeyFormatError):
        new_signer(W_SKEY)
    seed = parse_skey(W_SKEY).seed
    as_note_key = SignerKey("witness.example/w1", 0x01, seed)
    assert as_note_key.key_hash != parse_vkey(W_VKEY).key_hash
    assert new_signer(format_skey(as_note_key)).key_hash != new_cosigner(W_SKEY).key_hash


def test_cosigner_keys_reject_every_prefix() -> None:
    for i in range(len(W_VKEY)):
        with pytest.raises(KeyFormatError):
            new_cosignature_verifier(W_VKEY[:i])
    for i in range(len(W_SKEY)):
        with pytest.raises(KeyFormatError):
            new_cosigner(W_SKEY[:i])
