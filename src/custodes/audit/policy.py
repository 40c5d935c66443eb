"""Auditor trust policies (c2sp.org/tlog-policy): which logs, which witnesses, what quorum.

Grammar (one item per line; items separated by spaces or tabs; ``#`` starts a comment line;
blank lines are ignored; names are opaque octets)::

    policy  = *(log / witness / group / comment / blank) quorum *(...)
    log     = "log" WS vkey [WS url]              ; the key's name is the log's origin
    witness = "witness" WS name WS vkey [WS url]  ; vkey of signature type 0x04 (cosignature/v1)
    group   = "group" WS name WS k 1*(WS name)    ; k = "all" / "any" / decimal 1..n
    quorum  = "quorum" WS name                    ; a witness, a group, or "none"

A group or the quorum may only name witnesses and groups defined on earlier lines, a member
at most once per group; ``none`` is predefined and may only be the quorum. Witnesses and
groups share one namespace. Two logs, or two witnesses, wrapping the same public key are
refused. Only octets 0x09, 0x0A, 0x20-0x7E and 0x80-0xFF may appear. A checkpoint is valid
under a policy when one of its logs signed it and the quorum is met by valid cosignatures.

>>> from custodes.tlog import generate_cosigner_key, generate_key
>>> _, log_vkey = generate_key("example.com/log")
>>> _, w1 = generate_cosigner_key("w1.example")
>>> _, w2 = generate_cosigner_key("w2.example")
>>> text = f"log {log_vkey}\\nwitness A {w1}\\nwitness B {w2}\\ngroup AB any A B\\nquorum AB\\n"
>>> policy = parse_policy(text.encode())
>>> (policy.quorum, [w.name for w in policy.witnesses], policy.groups[0].required)
('AB', ['A', 'B'], 1)
>>> parse_policy(format_policy(policy)) == policy
True
>>> has_quorum(policy, {"B"}), has_quorum(policy, set())
(True, False)
>>> parse_policy(b"quorum X\\n")
Traceback (most recent call last):
...
custodes.audit.errors.PolicyError: line 1: quorum names 'X', which is not defined above it
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from custodes.audit.errors import PolicyError
from custodes.audit.findings import Finding
from custodes.audit.logcheck import MAX_CHECKPOINT_SIZE
from custodes.tlog import (
    COSIGNATURE_V1,
    BadSignatureError,
    Checkpoint,
    FormatError,
    NoteSignatureError,
    TlogError,
    Verifier,
    new_cosignature_verifier,
    new_verifier,
    open_note,
    parse_checkpoint,
)
from custodes.tlog.encoding import parse_decimal
from custodes.tlog.note import ED25519, parse_vkey

__all__ = [
    "MAX_POLICY_SIZE",
    "NONE",
    "Policy",
    "PolicyGroup",
    "PolicyLog",
    "PolicyWitness",
    "VerifiedCheckpoint",
    "format_policy",
    "has_quorum",
    "keys_policy",
    "parse_policy",
    "verify_checkpoint",
]

#: Largest policy file accepted, checked before parsing.
MAX_POLICY_SIZE = 64 * 1024
#: Most logs, witnesses or groups in one policy (the spec asks for at least 32).
MAX_ITEMS = 256
#: The predefined quorum that needs no cosignature.
NONE = "none"

_WS = re.compile(rb"[ \t]+")
_BAD_OCTET = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class PolicyLog:
    """A log the policy accepts: its vkey (type 0x01, named after its origin), maybe a URL."""

    vkey: str
    url: str | None = None

    def __post_init__(self) -> None:
        _check_key(self.vkey, ED25519, "log")

    @property
    def origin(self) -> str:
        return self.vkey.split("+", 1)[0]


@dataclass(frozen=True)
class PolicyWitness:
    """A named witness: its cosignature/v1 vkey (type 0x04), maybe a submission URL."""

    name: str
    vkey: str
    url: str | None = None

    def __post_init__(self) -> None:
        _check_key(self.vkey, COSIGNATURE_V1, "witness")


@dataclass(frozen=True)
class PolicyGroup:
    """A group witnesses a checkpoint when ``required`` of its members did."""

    name: str
    threshold: str  # "all", "any" or a decimal, as written
    members: tuple[str, ...]

    @property
    def required(self) -> int:
        if self.threshold == "all":
            return len(self.members)
        if self.threshold == "any":
            return 1
        return int(self.threshold)


@dataclass(frozen=True)
class Policy:
    """A parsed policy: logs, witnesses, groups (in definition order) and the quorum."""

    logs: tuple[PolicyLog, ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: tuple[PolicyGroup, ...]
    quorum: str


def keys_policy(vkeys: Iterable[str]) -> Policy:
    """The policy a bare log key stands for: it trusts the logs ``vkeys`` name, with no
    witnesses (quorum none)."""
    return Policy(tuple(PolicyLog(vkey) for vkey in vkeys), (), (), NONE)


def _check_key(vkey: str, key_type: int, what: str) -> bytes:
    try:
        key = parse_vkey(vkey)
    except TlogError as exc:
        raise PolicyError(f"{what} key: {exc.detail}") from None
    if key.key_type != key_type:
        raise PolicyError(f"{what} key {vkey[:60]!r} has signature type 0x{key.key_type:02x}")
    return key.public


class _Parser:
    def __init__(self) -> None:
        self.logs: list[PolicyLog] = []
        self.witnesses: list[PolicyWitness] = []
        self.groups: list[PolicyGroup] = []
        self.names: set[str] = set()
        self.public: set[bytes] = set()
        self.quorum: str | None = None

    def key(self, vkey: str, key_type: int, what: str) -> None:
        public = _check_key(vkey, key_type, what)
        if public in self.public:
            raise PolicyError(f"two {what}s share the public key of {vkey[:60]!r}")
        self.public.add(public)

    def define(self, name: str) -> None:
        if name == NONE or name in self.names:
            raise PolicyError(f"the name {name!r} is reserved or already defined")
        if len(self.names) >= 2 * MAX_ITEMS:
            raise PolicyError(f"more than {MAX_ITEMS} witnesses or groups")
        self.names.add(name)

    def line(self, words: list[str]) -> None:
        keyword, args = words[0], words[1:]
        if keyword == "log" and len(args) in (1, 2):
            self.key(args[0], ED25519, "log")
            if len(self.logs) >= MAX_ITEMS:
                raise PolicyError(f"more than {MAX_ITEMS} logs")
            self.logs.append(PolicyLog(args[0], args[1] if len(args) == 2 else None))
        elif keyword == "witness" and len(args) in (2, 3):
            self.key(args[1], COSIGNATURE_V1, "witness")
            self.define(args[0])
            self.witnesses.append(PolicyWitness(args[0], args[1], args[2] if args[2:] else None))
        elif keyword == "group" and len(args) >= 3:
            self.group(args[0], args[1], args[2:])
        elif keyword == "quorum" and len(args) == 1:
            if self.quorum is not None:
                raise PolicyError("a policy has exactly one quorum line")
            if args[0] != NONE and args[0] not in self.names:
                raise PolicyError(f"quorum names {args[0]!r}, which is not defined above it")
            self.quorum = args[0]
        else:
            raise PolicyError(f"not a log, witness, group or quorum line: {keyword[:40]!r}")

    def group(self, name: str, threshold: str, members: list[str]) -> None:
        for m in members:
            if m == NONE or m not in self.names:
                raise PolicyError(f"group {name!r} names {m!r}, which is not defined above it")
        if len(set(members)) != len(members):
            raise PolicyError(f"group {name!r} lists a member twice")
        if threshold not in ("all", "any"):
            try:
                k = parse_decimal(threshold, "group threshold")
            except FormatError as exc:
                raise PolicyError(exc.detail) from None
            if not 1 <= k <= len(members):
                raise PolicyError(f"group {name!r} needs 1..{len(members)} members, not {k}")
        self.define(name)
        self.groups.append(PolicyGroup(name, threshold, tuple(members)))


def parse_policy(data: bytes) -> Policy:
    """Parse a policy file; raises :class:`~custodes.audit.errors.PolicyError`."""
    if len(data) > MAX_POLICY_SIZE:
        raise PolicyError(f"policy of {len(data)} bytes is over {MAX_POLICY_SIZE}")
    bad = _BAD_OCTET.search(data)
    if bad is not None:
        raise PolicyError(f"policy holds the control character {bad.group()!r}")
    parser = _Parser()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        words = [w.decode("utf-8", "surrogateescape") for w in _WS.split(raw.strip(b" \t"))]
        if words == [""] or words[0].startswith("#"):
            continue
        try:
            parser.line(words)
        except PolicyError as exc:
            raise PolicyError(f"line {number}: {exc.detail}", line=number) from None
    if parser.quorum is None:
        raise PolicyError("the policy has no quorum line")
    return Policy(tuple(parser.logs), tuple(parser.witnesses), tuple(parser.groups), parser.quorum)


def format_policy(policy: Policy) -> bytes:
    """The policy as a file: logs, witnesses, groups in order, then the quorum."""
    lines = [" ".join(["log", p.vkey, *([p.url] if p.url else [])]) for p in policy.logs]
    lines += [
        " ".join(["witness", w.name, w.vkey, *([w.url] if w.url else [])]) for w in policy.witnesses
    ]
    lines += [" ".join(["group", g.name, g.threshold, *g.members]) for g in policy.groups]
    lines.append(f"quorum {policy.quorum}")
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


def has_quorum(policy: Policy, cosigned: Collection[str]) -> bool:
    """Whether witnesses named ``cosigned`` satisfy the policy's quorum."""
    if policy.quorum == NONE:
        return True
    met = {w.name for w in policy.witnesses if w.name in cosigned}
    for group in policy.groups:  # definition order: members are decided before their group
        if sum(m in met for m in group.members) >= group.required:
            met.add(group.name)
    return policy.quorum in met


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint a log of the policy signed, and the witnesses whose cosignatures verify."""

    checkpoint: Checkpoint
    note: bytes
    cosigners: tuple[str, ...]


def _open_log_signature(note: bytes, policy: Policy) -> tuple[Checkpoint | None, Finding | None]:
    def unverified(detail: str) -> tuple[None, Finding]:
        return None, Finding("checkpoint_unverified", detail)

    if len(note) > MAX_CHECKPOINT_SIZE:
        return unverified(f"checkpoint of {len(note)} bytes is over {MAX_CHECKPOINT_SIZE}")
    verifiers: Sequence[Verifier] = [new_verifier(log.vkey) for log in policy.logs]
    try:
        opened = open_note(note, verifiers)
        cp = parse_checkpoint(opened.text)
    except TlogError as exc:
        return unverified(f"checkpoint: {exc.detail}")
    signers = {sig.name for sig in opened.sigs}
    if cp.origin not in signers:
        return unverified(f"checkpoint of {cp.origin!r} is signed only by {sorted(signers)}")
    return cp, None


def verify_checkpoint(
    note: bytes, policy: Policy
) -> tuple[VerifiedCheckpoint | None, list[Finding]]:
    """Check a checkpoint note against ``policy``.

    Returns the verified checkpoint (None if no log of the policy signed it) and the findings:
    ``checkpoint_unverified``, ``witness_cosignature`` and ``witness_quorum``.
    """
    if not policy.logs:
        raise PolicyError("the policy names no log, so no checkpoint can verify")
    cp, failed = _open_log_signature(note, policy)
    if cp is None:
        return None, [failed] if failed else []
    findings: list[Finding] = []
    cosigners: list[str] = []
    for witness in policy.witnesses:
        try:
            open_note(note, [new_cosignature_verifier(witness.vkey)])
        except BadSignatureError:
            findings.append(
                Finding(
                    "witness_cosignature",
                    f"the cosignature of witness {witness.name} does not verify",
                    evidence={"witness": witness.name},
                )
            )
            continue
        except NoteSignatureError:
            continue
        cosigners.append(witness.name)
    if not has_quorum(policy, cosigners):
        findings.append(
            Finding(
                "witness_quorum",
                f"quorum {policy.quorum} is not met: cosigned by {sorted(cosigners) or 'nobody'}",
                evidence={"quorum": policy.quorum, "cosigners": sorted(cosigners)},
            )
        )
    return VerifiedCheckpoint(cp, note, tuple(cosigners)), findings
