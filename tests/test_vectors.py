"""Every published vector in ../shared/vectors/, positive and negative, as its own test case.

The README beside the vectors lists their sources. Where the sets disagree, custodes follows
the rules in docs/log-format.md: consistency from size 0 is accepted only with an empty proof
and the old root SHA-256(""), and every hash must be 32 bytes. The few transparency-dev
cases those rules decide differently are listed in ``_OVERRIDDEN`` with the reason.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from custodes.tlog import (
    EMPTY_ROOT,
    BadSignatureError,
    KeyFormatError,
    MemoryNodeReader,
    NoteSignatureError,
    ProofError,
    check_consistency,
    check_inclusion,
    key_hash,
    leaf_hash,
    new_signer,
    new_verifier,
    open_note,
    prove_consistency,
    prove_inclusion,
    root_of,
    sign_note,
    tree_root,
)

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"


def _vectors_dir() -> Path:
    if not (VECTORS / "README.md").is_file():
        pytest.fail(
            f"test vectors not found at {VECTORS}: clone the repository next to a shared/ "
            "folder that holds vectors/ (see shared/vectors/README.md)"
        )
    return VECTORS


def _files(pattern: str) -> list[Path]:
    if not (VECTORS / "README.md").is_file():
        return [VECTORS / "missing"]  # collected as one case that fails with the message above
    found = sorted(VECTORS.glob(pattern))
    assert found, f"no vector files match {pattern}"
    return found


def _id(path: Path) -> str:
    return str(path.relative_to(VECTORS)) if path.is_relative_to(VECTORS) else path.name


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "", validate=True)


def _load(path: Path) -> Any:
    _vectors_dir()
    return json.loads(path.read_text(encoding="utf-8"))


def test_vectors_folder_is_present() -> None:
    assert (_vectors_dir() / "merkle-transparency-dev" / "LICENSE").is_file()


# transparency-dev/merkle -------------------------------------------------------------------

# The reference tree the transparency-dev vectors are built on (hex leaves, from the README).
_TD_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# Cases whose expected outcome the custodes rules decide differently, with the reason.
_OVERRIDDEN = {
    "merkle-transparency-dev/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": (
        "the 'roots' are 12 bytes long; custodes accepts only 32-byte hashes"
    ),
}


@dataclass(frozen=True)
class _Case:
    path: Path
    data: dict[str, Any]

    @property
    def want_error(self) -> bool:
        want = bool(self.data["wantErr"])
        return not want if _id(self.path) in _OVERRIDDEN else want


@pytest.mark.parametrize("path", _files("merkle-transparency-dev/inclusion/**/*.json"), ids=_id)
def test_transparency_dev_inclusion(path: Path) -> None:
    case = _Case(path, _load(path))
    d = case.data
    proof = [_b64(h) for h in d["proof"] or []]
    args = (proof, d["leafIdx"], d["treeSize"], _b64(d["leafHash"]), _b64(d["root"]))
    if case.want_error:
        with pytest.raises(ProofError):
            check_inclusion(*args)
    else:
        check_inclusion(*args)


@pytest.mark.parametrize("path", _files("merkle-transparency-dev/consistency/**/*.json"), ids=_id)
def test_transparency_dev_consistency(path: Path) -> None:
    case = _Case(path, _load(path))
    d = case.data
    proof = [_b64(h) for h in d["proof"] or []]
    args = (proof, d["size1"], d["size2"], _b64(d["root1"]), _b64(d["root2"]))
    if case.want_error:
        with pytest.raises(ProofError):
            check_consistency(*args)
    else:
        check_consistency(*args)


def _td_happy_paths(kind: str) -> list[Path]:
    return [p for p in _files(f"merkle-transparency-dev/{kind}/*/happy-path.json")]


@pytest.mark.parametrize("path", _td_happy_paths("inclusion"), ids=_id)
def test_transparency_dev_inclusion_proofs_are_what_we_produce(path: Path) -> None:
    d = _load(path)
    reader = MemoryNodeReader([leaf_hash(x) for x in _TD_LEAVES])
    assert tree_root(d["treeSize"], reader) == _b64(d["root"])
    proof = prove_inclusion(d["leafIdx"], d["treeSize"], reader)
    assert proof == [_b64(h) for h in d["proof"] or []]


@pytest.mark.parametrize("path", _td_happy_paths("consistency"), ids=_id)
def test_transparency_dev_consistency_proofs_are_what_we_produce(path: Path) -> None:
    d = _load(path)
    reader = MemoryNodeReader([leaf_hash(x) for x in _TD_LEAVES])
    assert tree_root(d["size1"], reader) == _b64(d["root1"])
    assert tree_root(d["size2"], reader) == _b64(d["root2"])
    proof = prove_consistency(d["size1"], d["size2"], reader)
    assert proof == [_b64(h) for h in d["proof"] or []]


# rgdd/CCTV merkle ---------------------------------------------------------------------------


def _cctv(name: str) -> list[dict[str, Any]]:
    data = _load(VECTORS / "merkle-cctv" / name)
    assert isinstance(data, list) and data
    return data


def _cctv_cases(name: str) -> list[tuple[str, int]]:
    if not (VECTORS / "README.md").is_file():
        return [(name, 0)]
    return [(name, i) for i in range(len(_cctv(name)))]


def _cctv_id(case: tuple[str, int]) -> str:
    return f"{case[0].removesuffix('.json')}[{case[1]}]"


def test_cctv_running_roots_match_root_of() -> None:
    tree = _cctv("merkle_tree.json")
    assert len(tree) == 16
    hashes: list[bytes] = []
    for row in tree:
        assert leaf_hash(row["leaf_data"].encode()) == _b64(row["leaf_hash"])
        hashes.append(_b64(row["leaf_hash"]))
        assert root_of(hashes) == _b64(row["root_hash"])
        assert tree_root(len(hashes), MemoryNodeReader(hashes)) == _b64(row["root_hash"])


@pytest.mark.parametrize(
    "case",
    _cctv_cases("inclusion-valid.json") + _cctv_cases("inclusion-invalid.json"),
    ids=_cctv_id,
)
def test_cctv_inclusion(case: tuple[str, int]) -> None:
    name, i = case
    d = _cctv(name)[i]
    args = (
        [_b64(h) for h in d["inclusion_path"]],
        d["leaf_index"],
        d["tree_size"],
        _b64(d["leaf_hash"]),
        _b64(d["root_hash"]),
    )
    if name.endswith("-invalid.json"):
        with pytest.raises(ProofError):
            check_inclusion(*args)
    else:
        check_inclusion(*args)


@pytest.mark.parametrize(
    "case",
    _cctv_cases("consistency-valid.json") + _cctv_cases("consistency-invalid.json"),
    ids=_cctv_id,
)
def test_cctv_consistency(case: tuple[str, int]) -> None:
    name, i = case
    d = _cctv(name)[i]
    args = (
        [_b64(h) for h in d["consistency_path"]],
        d["old_size"],
        d["new_size"],
        _b64(d["old_root"]),
        _b64(d["new_root"]),
    )
    if name.endswith("-invalid.json"):
        with pytest.raises(ProofError):
            check_consistency(*args)
    else:
        check_consistency(*args)


def test_cctv_consistency_from_empty_tree_is_accepted() -> None:
    # The rule custodes follows where the sets disagree (docs/log-format.md).
    new_root = _b64(_cctv("merkle_tree.json")[0]["root_hash"])
    check_consistency([], 0, 1, EMPTY_ROOT, new_root)


# signed-note --------------------------------------------------------------------------------


def _notes() -> dict[str, Any]:
    data = _load(VECTORS / "signed-note" / "vectors.json")
    assert isinstance(data, dict)
    return data


def _note_cases(section: str) -> list[tuple[str, int]]:
    if not (VECTORS / "README.md").is_file():
        return [(section, 0)]
    return [(section, i) for i in range(len(_notes()[section]))]


@pytest.mark.parametrize("case", _note_cases("valid"), ids=_cctv_id)
def test_signed_note_valid(case: tuple[str, int]) -> None:
    v = _notes()["valid"][case[1]]
    verifier = new_verifier(v["vkey"])
    assert verifier.name == v["name"]
    assert verifier.key_hash == int(v["key_hash"], 16)
    note = open_note(v["signed"].encode(), [verifier])
    assert note.text == v["text"]
    assert [(s.name, s.key_hash) for s in note.sigs] == [(v["name"], int(v["key_hash"], 16))]
    assert note.unverified_sigs == ()
    if "skey" in v:
        signer = new_signer(v["skey"])
        assert (signer.name, signer.key_hash) == (verifier.name, verifier.key_hash)
        assert sign_note(v["text"], signer) == v["signed"].encode()
        _, _, b64 = v["vkey"].split("+", 2)
        assert key_hash(v["name"], base64.b64decode(b64)) == int(v["key_hash"], 16)


@pytest.mark.parametrize("case", _note_cases("valid"), ids=_cctv_id)
def test_signed_note_valid_rejects_a_changed_text(case: tuple[str, int]) -> None:
    v = _notes()["valid"][case[1]]
    tampered = v["signed"].replace("is", "IS", 1).encode()
    with pytest.raises(BadSignatureError):
        open_note(tampered, [new_verifier(v["vkey"])])


def test_signed_note_two_signers() -> None:
    two = _notes()["two_signers"]
    peter = new_verifier(two["keys"]["PeterNeumann"])
    enoch = new_verifier(two["keys"]["EnochRoot"])
    note = open_note(two["note"].encode(), [peter])
    assert [s.name for s in note.sigs] == ["PeterNeumann"]
    assert [s.name for s in note.unverified_sigs] == ["EnochRoot"]
    both = open_note(two["note"].encode(), [peter, enoch])
    assert [s.name for s in both.sigs] == ["PeterNeumann", "EnochRoot"]
    assert both.unverified_sigs == ()
    with pytest.raises(NoteSignatureError):
        open_note(two["note"].encode(), [])


@pytest.mark.parametrize("case", _note_cases("invalid_vkeys"), ids=_cctv_id)
def test_signed_note_invalid_vkeys(case: tuple[str, int]) -> None:
    bad = _notes()["invalid_vkeys"][case[1]]
    with pytest.raises(KeyFormatError):
        new_verifier(bad["vkey"])


def _mutations(key: str) -> list[str]:
    prefixes = [key[:i] for i in range(len(key))]
    suffixes = [key[i:] for i in range(1, len(key) + 1)]
    increments = [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return prefixes + suffixes + increments


def test_signed_note_every_prefix_suffix_and_increment_of_a_key_is_rejected() -> None:
    rejected = 0
    for v in _notes()["valid"]:
        for bad in _mutations(v["vkey"]):
            with pytest.raises(KeyFormatError):
                new_verifier(bad)
            rejected += 1
        if "skey" in v:
            for bad in _mutations(v["skey"]):
                with pytest.raises(KeyFormatError):
                    new_signer(bad)
                rejected += 1
    assert rejected > 300
