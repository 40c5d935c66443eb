"""Regenerate tests/testdata/golden/: a small published custodes log of realistic events.

Run ``.venv/bin/python tests/testdata/make_golden.py`` from the repository root. It builds
300 events (demands disclosed, narrowed, refused, withdrawn, clarified, restricted, preserved,
an emergency, treaty routes, staff access), appends them to a fresh deployment, lets the real
sequencer integrate them at sizes 150 and 300, cosigns both checkpoints with a witness key,
and writes:

    golden/log/              the published log (checkpoint, tiles, entry bundles) at size 300
    golden/checkpoint-150    the cosigned checkpoint at size 150 (for rollback tests)
    golden/policy            a c2sp.org/tlog-policy naming the log and the witness
    golden/disclosure.json   openings of the staff who took in and approved each demand
    golden/log.skey, golden/witness.skey   the (test-only) keys, to forge tampered logs

Keys, salts and times are derived from fixed seeds, so the output is the same every run.
Every demand in it meets its obligations, so an audit at any later time is clean.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden"
ORIGIN = "golden.custodes.example/log"
WITNESS = "witness.custodes.example/w1"
START = datetime(2026, 1, 5, 9, tzinfo=UTC)
STEP = timedelta(minutes=47)
PACK = hashlib.sha256(b"custodes default policy 2024.1").hexdigest()
CONCURRENT = 4

Step = tuple[str, dict[str, Any], dict[str, Any]]  # kind, facts, private
Template = Callable[[str], list[Step]]


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"custodes golden " + label.encode()).digest()


def keys() -> tuple[str, str, str, str]:
    """(log skey, log vkey, witness skey, witness vkey), from fixed seeds."""
    from custodes.tlog import COSIGNATURE_V1
    from custodes.tlog.note import ED25519, SignerKey, VerifierKey, format_skey, format_vkey

    log_key = SignerKey(ORIGIN, ED25519, _seed("log"))
    witness_key = SignerKey(WITNESS, COSIGNATURE_V1, _seed("witness"))
    return (
        format_skey(log_key),
        format_vkey(VerifierKey(ORIGIN, ED25519, log_key.public)),
        format_skey(witness_key),
        format_vkey(VerifierKey(WITNESS, COSIGNATURE_V1, witness_key.public)),
    )


def _staff(n: int) -> str:
    return f"staff-{n:02d}"


def _received(
    kind: str, instrument: str, authority: str, targets: int, intake: int, **facts: Any
) -> Step:
    base = {
        "demand_kind": kind,
        "instrument_kind": instrument,
        "target_count": targets,
        "signature": "valid",
        "authority_jurisdiction": authority,
        "authority_kind": facts.pop("authority_kind", "police"),
    }
    private = {
        "authority": f"authority-{authority.lower()}",
        "staff": _staff(intake),
        "targets": [f"u-{authority.lower()}{i:03d}" for i in range(targets)],
    }
    return "demand.received", base | facts, private


def _approvals(roles: list[str], staff: list[int]) -> list[Step]:
    return [
        ("approval.given", {"role": role}, {"staff": _staff(s)})
        for role, s in zip(roles, staff, strict=True)
    ]


def _screened(
    outcome: str, subjects: list[str], findings: list[dict[str, Any]] | None = None
) -> Step:
    facts = {
        "pack": PACK,
        "outcome": outcome,
        "findings": findings or [],
        "subject_jurisdictions": subjects,
    }
    return "demand.screened", facts, {}


def _disclosure(n: int, authority: str, instrument: str, subjects: list[str]) -> list[Step]:
    cats = ["ip_session_logs", "subscriber_info"] if n % 2 else ["subscriber_info"]
    return [
        _received("disclosure", instrument, authority, 1 + n % 3, n % 5, categories=cats),
        _screened("pass", subjects),
        ("demand.review_opened", {"roles": []}, {"staff": _staff(5 + n % 3)}),
        *_approvals(["approver", "approver"], [5 + n % 3, 8 + n % 3]),
        ("demand.approved", {"pack": PACK, "approvals": 2, "target_count": 1 + n % 3}, {}),
        ("demand.executed", {"pack": PACK, "demand_kind": "disclosure"}, {"staff": _staff(11)}),
        (
            "production.delivered",
            {"categories": cats, "target_count": 1 + n % 3, "record_count": 3 + n},
            {
                "production_sha256": hashlib.sha256(f"p{n}".encode()).hexdigest(),
                "recipient": "age1",
            },
        ),
        ("notice.sent", {"record_count": 1 + n % 3}, {"staff": _staff(11)}),
        ("demand.closed", {"outcome": "pass"}, {"staff": _staff(11)}),
    ]


def _refused(n: int) -> list[Step]:
    outside = [
        {"rule": "jurisdiction.subject_outside", "outcome": "refuse", "target": t} for t in range(3)
    ]
    return [
        _received(
            "disclosure",
            "administrative_request",
            "CN",
            3,
            n % 5,
            categories=["participant_list", "subscriber_info"],
            authority_kind="intelligence",
        ),
        _screened("refuse", ["US"], outside),
        (
            "demand.refused",
            {"rules": ["jurisdiction.subject_outside"], "pack": PACK},
            {"staff": _staff(5)},
        ),
        ("demand.closed", {"outcome": "refuse"}, {"staff": _staff(5)}),
    ]


def _narrowed_with_gag(n: int) -> list[Step]:
    findings: list[dict[str, Any]] = [
        {"rule": "jurisdiction.subject_outside", "outcome": "refuse", "target": 1},
        {"rule": "gag.dated", "outcome": "pass"},
    ]
    return [
        _received(
            "disclosure",
            "court_order",
            "DE",
            2,
            n % 5,
            categories=["subscriber_info"],
            nondisclosure="dated",
        ),
        _screened("escalate", ["DE", "FR"], findings),
        ("demand.review_opened", {"roles": ["legal_counsel"]}, {"staff": _staff(6)}),
        *_approvals(["legal_counsel", "approver", "approver"], [6, 9, 5]),
        (
            "demand.narrowed",
            {"pack": PACK, "approvals": 3, "target_count": 1, "dropped_targets": 1},
            {"targets": ["u-de000"]},
        ),
        ("demand.executed", {"pack": PACK, "demand_kind": "disclosure"}, {"staff": _staff(11)}),
        (
            "production.delivered",
            {"categories": ["subscriber_info"], "target_count": 1, "record_count": 1},
            {
                "production_sha256": hashlib.sha256(f"n{n}".encode()).hexdigest(),
                "recipient": "age1",
            },
        ),
        ("notice.deferred", {"gag_until": "NOTICE_DATE"}, {"staff": _staff(11)}),
        ("notice.sent", {"record_count": 1}, {"staff": _staff(11)}),
        ("demand.closed", {"outcome": "pass"}, {"staff": _staff(11)}),
    ]


def _emergency(n: int) -> list[Step]:
    return [
        _received(
            "emergency_disclosure",
            "emergency_request",
            "US",
            1,
            n % 5,
            categories=["ip_session_logs", "subscriber_info"],
        ),
        (
            "emergency.callback_recorded",
            {"callback": "registered", "channel_kind": "phone"},
            {"staff": _staff(n % 5), "channel": "+1 555 0100"},
        ),
        _screened("pass", ["US"]),
        *_approvals(["approver"], [7]),
        ("demand.approved", {"pack": PACK, "approvals": 1}, {}),
        (
            "demand.executed",
            {"pack": PACK, "demand_kind": "emergency_disclosure"},
            {"staff": _staff(11)},
        ),
        (
            "production.delivered",
            {
                "categories": ["ip_session_logs", "subscriber_info"],
                "target_count": 1,
                "record_count": 4,
            },
            {
                "production_sha256": hashlib.sha256(f"e{n}".encode()).hexdigest(),
                "recipient": "age1",
            },
        ),
        (
            "emergency.follow_up_completed",
            {},
            {"staff": _staff(7), "document_sha256": hashlib.sha256(b"warrant").hexdigest()},
        ),
        ("notice.sent", {"record_count": 1}, {"staff": _staff(11)}),
        ("demand.closed", {"outcome": "pass"}, {"staff": _staff(11)}),
    ]


def _restriction(n: int) -> list[Step]:
    return [
        _received(
            "restriction",
            "court_order",
            "US",
            1,
            n % 5,
            restriction_action="suspend_account",
            territories=["US"],
        ),
        _screened("pass", ["US"]),
        *_approvals(["approver", "approver"], [6, 10]),
        ("demand.approved", {"pack": PACK, "approvals": 2, "target_count": 1}, {}),
        ("demand.executed", {"pack": PACK, "demand_kind": "restriction"}, {"staff": _staff(11)}),
        (
            "restriction.applied",
            {"restriction_action": "suspend_account", "target_count": 1, "territories": ["US"]},
            {"staff": _staff(11), "targets": ["u-us000"]},
        ),
        ("notice.sent", {"record_count": 1}, {"staff": _staff(11)}),
        ("demand.closed", {"outcome": "pass"}, {"staff": _staff(11)}),
    ]


def _preservation(n: int) -> list[Step]:
    return [
        _received("preservation", "preservation_request", "US", 2, n % 5, categories=["content"]),
        _screened("pass", ["US"]),
        *_approvals(["approver", "approver"], [5, 8]),
        ("demand.approved", {"pack": PACK, "approvals": 2, "target_count": 2}, {}),
        ("demand.executed", {"pack": PACK, "demand_kind": "preservation"}, {"staff": _staff(11)}),
        (
            "preservation.placed",
            {"categories": ["content"], "target_count": 2, "due_at": "2026-03-20T00:00:00Z"},
            {"staff": _staff(11), "targets": ["u-us000", "u-us001"]},
        ),
        ("preservation.released", {}, {"staff": _staff(11)}),
        ("demand.closed", {"outcome": "pass"}, {"staff": _staff(11)}),
    ]


def _withdrawn(n: int) -> list[Step]:
    return [
        _received("disclosure", "subpoena", "US", 1, n % 5, categories=["subscriber_info"]),
        _screened("pass", ["US"]),
        ("demand.withdrawn", {}, {"note": "the authority withdrew it"}),
        ("demand.closed", {}, {"staff": _staff(5)}),
    ]


def _clarified(n: int) -> list[Step]:
    scope = [{"rule": "scope.time_range", "outcome": "escalate", "item": "ip_session_logs"}]
    return [
        _received("disclosure", "court_order", "FR", 1, n % 5, categories=["ip_session_logs"]),
        _screened("escalate", ["FR"], scope),
        ("demand.clarification_requested", {"rules": ["scope.time_range"]}, {"staff": _staff(6)}),
        (
            "demand.amended",
            {
                "demand_kind": "disclosure",
                "instrument_kind": "court_order",
                "target_count": 1,
                "signature": "valid",
                "authority_jurisdiction": "FR",
                "categories": ["ip_session_logs"],
            },
            {"staff": _staff(n % 5), "targets": ["u-fr000"]},
        ),
        *_disclosure(n, "FR", "court_order", ["FR"])[1:],
    ]


def _treaty(n: int) -> list[Step]:
    if n % 2:
        return _disclosure(n, "GB", "cloud_act_order", ["FR"])
    steps = _disclosure(n, "BR", "mlat_request", ["US"])
    return steps


TEMPLATES: list[Callable[[int], list[Step]]] = [
    lambda n: _disclosure(n, "US", "subpoena", ["US"]),
    _refused,
    _narrowed_with_gag,
    _emergency,
    _restriction,
    _preservation,
    _withdrawn,
    _clarified,
    _treaty,
    lambda n: _disclosure(n, "DE", "court_order", ["DE"]),
]


def _preamble() -> list[tuple[str | None, Step]]:
    steps: list[tuple[str | None, Step]] = [
        (None, ("policy.activated", {"pack": PACK}, {"staff": _staff(0)})),
    ]
    for code, kind in (
        ("US", "police"),
        ("DE", "court"),
        ("FR", "prosecutor"),
        ("GB", "police"),
        ("BR", "police"),
        ("CN", "intelligence"),
    ):
        steps.append(
            (
                None,
                (
                    "authority.registered",
                    {"authority_jurisdiction": code, "authority_kind": kind},
                    {
                        "authority": f"authority-{code.lower()}",
                        "name": f"{code} agency",
                        "staff": _staff(0),
                    },
                ),
            )
        )
    for s, role in ((5, "approver"), (6, "legal_counsel"), (7, "approver"), (8, "approver")):
        steps.append(
            (
                None,
                ("staff.role_granted", {"role": role}, {"staff": _staff(s), "grantor": _staff(0)}),
            )
        )
    return steps


def _staff_access(n: int) -> list[tuple[str | None, Step]]:
    return [
        (
            None,
            (
                "staff_access.granted",
                {"justification": "abuse_investigation", "pack": PACK},
                {"staff": _staff(12), "grantor": _staff(0), "subject": f"u-{n}"},
            ),
        ),
        (
            None,
            (
                "staff_access.read",
                {"categories": ["subscriber_info"], "record_count": 1},
                {"staff": _staff(12), "subject": f"u-{n}"},
            ),
        ),
        (None, ("staff_access.revoked", {}, {"staff": _staff(12), "subject": f"u-{n}"})),
    ]


def script(total: int = 300) -> list[tuple[str | None, Step]]:
    """The events in log order: (demand id or None, step), interleaving a few demands at once."""
    order = _preamble()
    queues: list[Iterator[tuple[str | None, Step]]] = []
    made = 0
    for round_no in itertools.count():
        if len(order) >= total:
            break
        while len(queues) < CONCURRENT:
            demand = f"d_golden{made:04d}"
            queues.append(iter([(demand, s) for s in TEMPLATES[made % len(TEMPLATES)](made)]))
            made += 1
        for q in list(queues):
            step = next(q, None)
            if step is None:
                queues.remove(q)
            else:
                order.append(step)
        if round_no % 9 == 4:
            order += _staff_access(round_no)
    return order[:total]


def events(total: int = 300) -> tuple[list[bytes], dict[int, dict[str, Any]]]:
    """The leaves, and the disclosed openings (staff of each intake and approval)."""
    from custodes.events import encode_event

    order = script(total)
    times = [START + i * STEP for i in range(len(order))]
    sent_at: dict[str, date] = {}
    for (demand, (kind, _, _)), t in zip(order, times, strict=True):
        if kind == "notice.sent" and demand is not None:
            sent_at[demand] = t.date()
    counter = itertools.count()

    def salt(n: int) -> bytes:
        return _seed(f"salt {next(counter)}")[:n]

    leaves: list[bytes] = []
    disclosed: dict[int, dict[str, Any]] = {}
    for i, ((demand, (kind, template, private)), t) in enumerate(zip(order, times, strict=True)):
        facts = template
        if template.get("gag_until") == "NOTICE_DATE" and demand is not None:
            facts = template | {"gag_until": sent_at[demand].isoformat()}
        leaf, openings = encode_event(
            kind, time=t, demand=demand, facts=facts, private=private, salt=salt
        )
        leaves.append(leaf)
        if kind in ("demand.received", "demand.amended", "approval.given") and "staff" in openings:
            disclosed[i] = {"staff": openings["staff"]}
    return leaves, disclosed


def _cosigned(note: bytes, witness_skey: str, when: datetime) -> bytes:
    from custodes.tlog import new_cosigner, open_note, sign_note
    from custodes.tlog.note import new_verifier

    text = open_note(note, [new_verifier(keys()[1])]).text
    line = sign_note(text, new_cosigner(witness_skey, clock=when.timestamp)).split(b"\n\n")[-1]
    return note + line


def build(out: Path) -> None:
    from custodes.audit.openings import format_disclosure
    from custodes.deployment import init_data_dir, open_deployment
    from custodes.settings import load_settings

    log_skey, log_vkey, witness_skey, witness_vkey = keys()
    leaves, disclosed = events()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        init_data_dir(data, ORIGIN)
        (data / "keys" / "log.skey").write_text(log_skey + "\n")
        (data / "keys" / "log.vkey").write_text(log_vkey + "\n")
        notes = {}
        with open_deployment(load_settings(data)) as dep:
            for size in (150, len(leaves)):
                dep.ledger.append(leaves[dep.ledger.size() : size])
                signed = dep.sequencer.integrate()
                assert signed is not None and signed.checkpoint.size == size
                notes[size] = _cosigned(signed.note, witness_skey, START + size * STEP)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(data / "log", out / "log")
    (out / "log" / "checkpoint").write_bytes(notes[len(leaves)])
    (out / "checkpoint-150").write_bytes(notes[150])
    (out / "policy").write_text(
        f"# the golden test log and its one witness\nlog {log_vkey}\n"
        f"witness w1 {witness_vkey}\nquorum w1\n"
    )
    (out / "disclosure.json").write_bytes(format_disclosure(disclosed))
    (out / "log.skey").write_text(log_skey + "\n")
    (out / "witness.skey").write_text(witness_skey + "\n")


if __name__ == "__main__":
    build(GOLDEN)
    print(f"wrote {GOLDEN}")
