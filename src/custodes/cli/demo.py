"""``custodes demo``: a deployment that has lived through 2020, the way custodes would have.

The demo builds the reference platform in the data directory, registers the demo world (the
authorities and staff below, which the tests use too), and sends demands through the service
layer exactly as the API and the console would:

* the four 2020 incidents, each refused with the rules that refused it;
* lawful demands approved under dual control: a US search warrant, an EU EPOC (one for a
  subscriber in Berlin, one reaching France through e-Evidence), a UK order under the US–UK
  CLOUD Act agreement (narrowed: it also named a US person), an emergency with its call-back;
* the US warrant carried to the end: a production sealed with age to the court's key, its
  download, and the notice the scheduler sends the user;
* escalations: an undated gag that legal counsel challenges, and a demand over "insulting
  officials" refused after human-rights review;
* the pretext of 2020: a terms-of-service end to a meeting a refused demand named, linked to
  that demand and counted as state-involved;
* attempts dual control stops (the same approver twice, the intake person approving, an
  approver in the requesting state, a decision before the human-rights sign-off).

``--events N`` then fills the log with routine traffic up to N entries. Nothing here appends
to the log except through :mod:`custodes.service`.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pyrage
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.table import Table

from custodes.audit.auditor import audit_log
from custodes.audit.checks import default_checks
from custodes.audit.logcheck import dir_fetcher
from custodes.audit.policy import format_policy, keys_policy
from custodes.cli.output import console, fail, reported_errors
from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.errors import CustodesError
from custodes.model import (
    Authority,
    AuthorityKind,
    Channel,
    ChannelKind,
    DataCategory,
    Demand,
    DemandKind,
    EvidenceRef,
    InstrumentKind,
    LegalInstrument,
    Nondisclosure,
    Offence,
    Restriction,
    RestrictionAction,
    SignatureStatus,
    Staff,
    Target,
    TargetKind,
    TimeRange,
    VerificationKey,
    new_demand_id,
)
from custodes.platform import EPOCH, FIXTURES, ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services
from custodes.service.authorities import register_authority
from custodes.service.demands import get_demand, receive_demand, record_callback
from custodes.service.execution import run_due
from custodes.service.lifecycle import HistoryEntry, history
from custodes.service.package import open_package
from custodes.service.production import download, produce, register_recipient
from custodes.service.review import approve, challenge, decide, refuse, sign_off
from custodes.service.screening import screen_demand
from custodes.service.staff import register_staff
from custodes.service.tos import record_tos_action
from custodes.settings import load_settings
from custodes.web.auth import set_credentials

__all__ = [
    "ADMIN",
    "AUTHORITIES",
    "SFPD_LINE",
    "STAFF",
    "authority_key",
    "build_demo",
    "demo",
    "register_world",
]

ADMIN = "s-admin"
"""The administrator who registers everyone else (registered first, by bootstrap)."""


def authority_key(authority_id: str) -> tuple[Ed25519PrivateKey, VerificationKey]:
    """The demo's Ed25519 key pair for an authority, derived from its id (demo only)."""
    seed = hashlib.sha256(b"custodes demo authority key " + authority_id.encode()).digest()
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private, VerificationKey(f"{authority_id}-2020", private.public_key().public_bytes_raw())


def _authority(ident: str, name: str, kind: AuthorityKind, where: str, *phones: str) -> Authority:
    channels = tuple(Channel(ChannelKind.PHONE, p) for p in phones)
    return Authority(ident, name, kind, where, keys=(authority_key(ident)[1],), channels=channels)


AUTHORITIES = (
    _authority("cn-mps", "PRC Ministry of Public Security", AuthorityKind.POLICE, "CN"),
    _authority("us-ndcal", "US District Court, Northern District of California",
               AuthorityKind.COURT, "US"),
    _authority("de-sta-berlin", "Staatsanwaltschaft Berlin", AuthorityKind.PROSECUTOR, "DE"),
    _authority("gb-met", "Metropolitan Police Service (COPO Act 2019 orders)",
               AuthorityKind.POLICE, "GB"),
    _authority("us-ca-sfpd", "San Francisco Police Department", AuthorityKind.POLICE, "US-CA",
               "+1 415 555 0100"),
)  # fmt: skip
"""The requesting authorities of the demo world. SFPD registered a call-back phone line."""
SFPD_LINE = Channel(ChannelKind.PHONE, "+1 415 555 0100")


def _staff(ident: str, location: str, *roles: str) -> Staff:
    return Staff(ident, frozenset(roles), location)


STAFF = (
    _staff(ADMIN, "IE", "admin"),
    _staff("s-intake-dub", "IE", "intake"),
    _staff("s-ana", "IE", "intake", "approver"),
    _staff("s-liaison-bj", "CN", "intake", "approver", "trust_safety"),
    _staff("s-rev-ams", "NL", "reviewer"),
    _staff("s-appr-dub", "IE", "approver"),
    _staff("s-appr-sjc", "US", "approver"),
    _staff("s-appr-ber", "DE", "approver"),
    _staff("s-hr-gva", "CH", "human_rights_reviewer"),
    _staff("s-counsel-dub", "IE", "legal_counsel"),
    _staff("s-ts-sjc", "US", "trust_safety"),
    _staff("s-cust-dub", "IE", "data_custodian"),
)
"""The platform's staff in the demo world. ``s-liaison-bj`` stands for the 2020 liaison: an
approver located in the requesting state of the PRC's demands."""


def register_world(services: Services) -> None:
    """Register :data:`STAFF` (the administrator first, by bootstrap) and
    :data:`AUTHORITIES`."""
    register_staff(services, STAFF[0], by=None)
    for member in STAFF[1:]:
        register_staff(services, member, by=ADMIN)
    for authority in AUTHORITIES:
        register_authority(services, authority, by=ADMIN)


# -- the scenario --------------------------------------------------------------------------

DOC = "instrument (demo): {}"
_PRC_DOC = LegalInstrument(InstrumentKind.ADMINISTRATIVE_REQUEST, "MPS-2020-0604")
_C = DataCategory


def _days(days: int) -> TimeRange:
    """The ``days`` before the reference platform's "now" (its records end there)."""
    return TimeRange(EPOCH - timedelta(days=days), EPOCH)


def _acct(ident: str) -> Target:
    return Target(TargetKind.ACCOUNT, ident)


@dataclass
class Run:
    """What the demo did, for the tables it prints."""

    services: Services
    people: Mapping[str, str]
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    stopped: list[tuple[str, str, str]] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)

    def attempt(self, who: str, what: str, action: Callable[[], object]) -> None:
        """Try something dual control should stop; remember the rule that stopped it."""
        try:
            action()
        except CustodesError as exc:
            rules = exc.evidence.get("rules")
            self.stopped.append((who, what, ", ".join(rules) if rules else exc.detail))
        else:
            self.stopped.append((who, what, "[red]allowed[/]"))


Step = Callable[[Run, str], object]


def _dual(first: str, second: str, **sign_offs: str) -> Step:
    def step(run: Run, demand_id: str) -> None:
        for role, who in sign_offs.items():
            sign_off(run.services, demand_id, by=who, role=role, reason="reviewed; no concern")
        approve(run.services, demand_id, by=first, reason="lawful, specific, proportionate")
        if second:
            approve(run.services, demand_id, by=second, reason="agreed")
        decide(run.services, demand_id, by=first, reason="dual control complete")

    return step


@dataclass(frozen=True)
class Case:
    """One demand of the scenario: how it is built and sent, and what review does."""

    name: str
    build: Callable[[datetime, Mapping[str, str]], Demand]
    review: tuple[Step, ...] = ()
    intake: str | None = None
    signature: SignatureStatus = SignatureStatus.VALID
    document: bool = True
    callback: bool = False


def _demand(
    authority: str,
    kind: DemandKind,
    instrument: LegalInstrument,
    targets: tuple[Target, ...],
    now: datetime,
    **fields: Any,
) -> Demand:
    return Demand(new_demand_id(), authority, kind, instrument, targets, now, **fields)


def _incidents() -> tuple[Case, ...]:
    meetings, hosts = FIXTURES.tiananmen_meetings, FIXTURES.tiananmen_hosts
    supplied = (EvidenceRef(hashlib.sha256(b"screenshots").hexdigest(), "sent by the requester"),)
    rows = tuple(FIXTURES.region_account(n) for n in range(23_000))
    restrict = {"offence": Offence("assembly", "commemorating 4 June"), "evidence": supplied,
                "claims_tos_violation": True}  # fmt: skip
    return (
        Case("2020-1 PRC: participants of a US-hosted commemoration", lambda now, _: _demand(
            "cn-mps", DemandKind.DISCLOSURE, _PRC_DOC,
            (meetings[0], Target(TargetKind.SELECTOR, "all participants of m-tam-1")), now,
            categories=(_C.SUBSCRIBER_INFO, _C.IP_SESSION_LOGS, _C.PARTICIPANT_LIST),
            offence=Offence("subversion"))),
        Case("2020-2 PRC: end four commemorations", lambda now, _: _demand(
            "cn-mps", DemandKind.RESTRICTION, _PRC_DOC, meetings, now,
            restriction=Restriction(RestrictionAction.END_MEETING, ("CN",)), **restrict)),
        Case("2020-2 PRC: suspend their hosts", lambda now, _: _demand(
            "cn-mps", DemandKind.RESTRICTION, _PRC_DOC, hosts, now,
            restriction=Restriction(RestrictionAction.SUSPEND_ACCOUNT), **restrict)),
        Case("2020-3 PRC: 23,000 accounts from Guangdong", lambda now, _: _demand(
            "cn-mps", DemandKind.DISCLOSURE, _PRC_DOC, rows, now,
            categories=(_C.SUBSCRIBER_INFO,), offence=Offence("subversion"))),
        Case("2020-4 typed in from a chat message", lambda now, _: _demand(
            "cn-mps", DemandKind.DISCLOSURE, LegalInstrument(InstrumentKind.OTHER),
            (FIXTURES.us_person,), now, categories=(_C.SUBSCRIBER_INFO,)),
            intake="s-liaison-bj", signature=SignatureStatus.MISSING, document=False),
    )  # fmt: skip


def _stop_intake_and_twice(run: Run, demand_id: str) -> None:
    run.attempt(
        "s-ana (recorded it)",
        "approve the EPOC she typed in",
        lambda: approve(run.services, demand_id, by="s-ana", reason="fine"),
    )
    approve(run.services, demand_id, by="s-appr-dub", reason="subscriber data, issuing state")
    twice = "approve the same EPOC a second time"
    run.attempt("s-appr-dub", twice, lambda: approve(run.services, demand_id, by="s-appr-dub",
                                                     reason="and again"))  # fmt: skip
    approve(run.services, demand_id, by="s-appr-ber", reason="agreed")
    decide(run.services, demand_id, by="s-appr-ber", reason="dual control complete")


def _stop_requesting_state(run: Run, demand_id: str) -> None:
    what = "approve a German EPOC reaching France"
    run.attempt("s-appr-ber (in DE)", what,
                lambda: approve(run.services, demand_id, by="s-appr-ber", reason="ok"))  # fmt: skip
    _dual("s-appr-dub", "s-appr-sjc")(run, demand_id)


def _stop_before_sign_off(run: Run, demand_id: str) -> None:
    approve(run.services, demand_id, by="s-appr-dub", reason="looks specific")
    approve(run.services, demand_id, by="s-appr-sjc", reason="agreed")
    run.attempt("s-appr-dub", "decide before the human-rights sign-off",
                lambda: decide(run.services, demand_id, by="s-appr-dub", reason="go"))  # fmt: skip
    why = "human-rights review: criticism of officials is protected expression"
    refuse(run.services, demand_id, by="s-rev-ams", reason=why)


def _challenge_gag(run: Run, demand_id: str) -> None:
    challenge(run.services, demand_id, by="s-counsel-dub",
              grounds="the nondisclosure order names no end date")  # fmt: skip


def _lawful() -> tuple[Case, ...]:
    warrant = LegalInstrument(InstrumentKind.SEARCH_WARRANT, "3:20-mj-70412", "N.D. Cal.")
    epoc = LegalInstrument(InstrumentKind.EPOC, "EPOC-2020-BER-17", "Amtsgericht Tiergarten")
    copo = LegalInstrument(InstrumentKind.CLOUD_ACT_ORDER, "OPO-2020-031", "Westminster M.C.")
    emergency = LegalInstrument(InstrumentKind.EMERGENCY_REQUEST, "SFPD-EDR-2020-88")
    subpoena = LegalInstrument(InstrumentKind.SUBPOENA, "GJ-2020-1142", "N.D. Cal.")
    return (
        Case("US court: search warrant for a US user's content", lambda now, _: _demand(
            "us-ndcal", DemandKind.DISCLOSURE, warrant, (FIXTURES.us_content_user,), now,
            categories=(_C.CONTENT,), time_range=_days(90), offence=Offence("fraud")),
            review=(_dual("s-appr-sjc", "s-appr-dub"),)),
        Case("Berlin: EPOC for a subscriber in Berlin", lambda now, _: _demand(
            "de-sta-berlin", DemandKind.DISCLOSURE, epoc, (FIXTURES.de_subscriber,), now,
            categories=(_C.SUBSCRIBER_INFO,), offence=Offence("fraud")),
            intake="s-ana", review=(_stop_intake_and_twice,)),
        Case("Berlin: EPOC reaching a subscriber in France", lambda now, people: _demand(
            "de-sta-berlin", DemandKind.DISCLOSURE, epoc, (_acct(people["fr"]),), now,
            categories=(_C.SUBSCRIBER_INFO,), offence=Offence("cybercrime")),
            review=(_stop_requesting_state,)),
        Case("UK: CLOUD Act order for a UK subject (and a US person)", lambda now, _: _demand(
            "gb-met", DemandKind.DISCLOSURE, copo, (FIXTURES.uk_subject, FIXTURES.us_person),
            now, categories=(_C.CONTENT, _C.IP_SESSION_LOGS), time_range=_days(60),
            offence=Offence("drug_trafficking")),
            review=(_dual("s-appr-dub", "s-appr-ber"),)),
        Case("SFPD: emergency, threat to life (call-back recorded)", lambda now, _: _demand(
            "us-ca-sfpd", DemandKind.EMERGENCY_DISCLOSURE, emergency,
            (FIXTURES.emergency_subject,), now,
            categories=(_C.SUBSCRIBER_INFO, _C.IP_SESSION_LOGS), time_range=_days(2),
            offence=Offence("threat_to_life")),
            callback=True, review=(_dual("s-appr-sjc", ""),)),
        Case("US court: subpoena with a gag and no end date", lambda now, _: _demand(
            "us-ndcal", DemandKind.DISCLOSURE, subpoena, (FIXTURES.us_person,), now,
            categories=(_C.SUBSCRIBER_INFO,), offence=Offence("fraud"),
            nondisclosure=Nondisclosure(None)),
            review=(_challenge_gag,)),
        Case("US court: search warrant, waiting for review in the console", lambda now, _:
            _demand("us-ndcal", DemandKind.DISCLOSURE, warrant, (FIXTURES.us_content_user,),
            now, categories=(_C.SUBSCRIBER_INFO, _C.CONTENT), time_range=_days(30),
            offence=Offence("fraud"))),
        Case("Berlin: EPOC over 'insulting officials'", lambda now, _: _demand(
            "de-sta-berlin", DemandKind.DISCLOSURE, epoc, (FIXTURES.de_subscriber,), now,
            categories=(_C.SUBSCRIBER_INFO,), offence=Offence("insulting_officials"),
            nondisclosure=Nondisclosure(date(2021, 6, 4))),
            review=(_stop_before_sign_off,)),
    )  # fmt: skip


def _run_case(run: Run, case: Case) -> None:
    services = run.services
    demand = case.build(services.clock(), run.people)
    document = DOC.format(case.name).encode() if case.document else None
    receive_demand(services, demand, signature=case.signature, intake=case.intake,
                   document=document)  # fmt: skip
    if case.callback:
        record_callback(services, demand.id, SFPD_LINE, by="s-intake-dub")
    screen_demand(services, demand.id, by="s-rev-ams")
    for step in case.review:
        step(run, demand.id)
    run.ids[case.name] = demand.id
    final = get_demand(services, demand.id)
    assert final.screening is not None
    rules = ", ".join(final.screening.verdict(final.demand).rules) or "-"
    note = ""
    if final.scope is not None and final.scope.dropped_targets:
        note = f"{len(final.scope.dropped_targets)} of {len(demand.targets)} target(s) dropped"
    run.rows.append((case.name, final.state.value, rules, note))


def _pretext(run: Run) -> None:
    """2020's pretext: a "terms-of-service" end to a meeting a refused demand named."""
    outcome = record_tos_action(run.services, FIXTURES.tiananmen_meetings[0],
                                RestrictionAction.END_MEETING, by="s-liaison-bj",
                                reason="reported for a terms-of-service breach")  # fmt: skip
    state = "state-involved" if outcome.state_involved else "ordinary"
    run.rows.append(("ToS action: end meeting m-tam-1", state, "tos_action.linked",
                     f"linked to {len(outcome.linked)} PRC demand(s)"))  # fmt: skip


WARRANT = "US court: search warrant for a US user's content"
"""The lawful case the demo carries all the way: production, download, notice."""


def _end_to_end(run: Run) -> list[HistoryEntry]:
    """Execute the approved US warrant: the custodian produces the data sealed to the court's
    age key, the court downloads and opens it, and the scheduler tells the user."""
    services = run.services
    demand_id = run.ids[WARRANT]
    identity = pyrage.x25519.Identity.generate()
    register_recipient(services, "us-ndcal", str(identity.to_public()), by=ADMIN)
    made = produce(services, demand_id, by="s-cust-dub")
    sealed = download(services, made.id, authority_id="us-ndcal")
    package = open_package(sealed, str(identity))
    assert package.manifest_sha256 == made.manifest_sha256
    run_due(services)
    return history(services, demand_id)


def _print_end_to_end(entries: list[HistoryEntry]) -> None:
    table = Table(title=f"{WARRANT}, end to end")
    for column in ("log index", "event", "who", "note"):
        table.add_column(column)
    for e in entries:
        table.add_row(str(e.index), e.kind, e.staff or "", e.note or "")
    console.print(table)


def _ids(platform_db: Path, sql: str) -> list[str]:
    with sqlite3.connect(platform_db) as db:
        return [str(r[0]) for r in db.execute(sql)]


def routine_traffic(services: Services, platform_db: Path, size: int) -> int:
    """Fill the log to ``size`` entries: lawful subpoenas for US subscribers through dual
    control (six events each), then single terms-of-service removals of content, so that
    the size comes out exact. Returns how many subpoenas were sent."""
    people = _ids(platform_db, "SELECT id FROM accounts WHERE jurisdiction LIKE 'US%' AND "
                  "data_region = 'US' AND id NOT LIKE 'u-us-%' AND id NOT LIKE 'u-tam-%' "
                  "ORDER BY id")  # fmt: skip
    items = _ids(platform_db, "SELECT id FROM content WHERE id NOT LIKE 'c-us-%' ORDER BY id")
    subpoena = LegalInstrument(InstrumentKind.SUBPOENA, "GJ-routine", "N.D. Cal.")
    sent = 0
    while services.ledger.size() + 6 <= size:
        demand = _demand("us-ndcal", DemandKind.DISCLOSURE, subpoena,
                         (_acct(people[sent % len(people)]),), services.clock(),
                         categories=(_C.SUBSCRIBER_INFO,), offence=Offence("fraud"))  # fmt: skip
        receive_demand(services, demand, signature=SignatureStatus.VALID, document=b"subpoena")
        screen_demand(services, demand.id)
        _dual("s-appr-dub", "s-appr-sjc")(Run(services, {}), demand.id)
        sent += 1
    for n in range(max(0, size - services.ledger.size())):
        record_tos_action(services, Target(TargetKind.CONTENT, items[n % len(items)]),
                          RestrictionAction.REMOVE_CONTENT, by="s-ts-sjc",
                          reason="spam, removed under the terms of service")  # fmt: skip
    return sent


DEMO_PASSWORD = "custodes demo passphrase"  # noqa: S105 - published on purpose
"""The demo staff's password (a demo data directory is for trying custodes, nothing else)."""
CONSOLE_STAFF = ("s-rev-ams", "s-appr-dub", "s-appr-sjc", "s-hr-gva", "s-counsel-dub")


def demo_credentials(services: Services, seed: int) -> list[tuple[str, str]]:
    """Give the console's demo staff the demo password and a TOTP secret derived from the
    seed; returns (staff id, TOTP secret) pairs."""
    out = []
    for staff_id in CONSOLE_STAFF:
        digest = hashlib.sha256(f"custodes demo {seed} {staff_id}".encode()).digest()
        secret = base64.b32encode(digest).decode().rstrip("=")[:32]
        out.append((staff_id, set_credentials(services, staff_id, DEMO_PASSWORD,
                                              totp_secret=secret)))  # fmt: skip
    return out


def _print_credentials(credentials: list[tuple[str, str]]) -> None:
    table = Table(title=f"Console sign-in (password: {DEMO_PASSWORD!r})")
    for column in ("staff", "roles", "TOTP secret (add to an authenticator app)"):
        table.add_column(column)
    roles = {m.id: ", ".join(sorted(m.roles)) for m in STAFF}
    for staff_id, secret in credentials:
        table.add_row(staff_id, roles[staff_id], secret)
    console.print(table)


def _print(run: Run, dep: Deployment, sent: int) -> None:
    table = Table(title="Demands, as custodes handled them")
    for column in ("demand", "outcome", "rules that refused or escalated", "note"):
        table.add_column(column)
    colours = {"refused": "red", "approved": "green", "partly_approved": "green"}
    for name, state, rules, note in run.rows:
        table.add_row(name, f"[{colours.get(state, 'yellow')}]{state}[/]", rules, note)
    console.print(table)
    stopped = Table(title="Stopped by dual control")
    for column in ("who", "tried to", "rule"):
        stopped.add_column(column)
    for row in run.stopped:
        stopped.add_row(*row)
    console.print(stopped)
    if sent:
        console.print(f"routine traffic: {sent} subpoena(s) approved under dual control")
    signed = dep.ledger.latest_checkpoint()
    assert signed is not None
    console.print(
        f"demo log at {dep.settings.log_dir}: size {signed.checkpoint.size}, "
        f"root {signed.checkpoint.root.hex()}"
    )


@contextmanager
def demo_services(dep: Deployment, platform_db: Path) -> Iterator[Services]:
    """Services over ``dep`` and the reference platform in ``platform_db``."""
    with ReferencePlatform(platform_db) as platform:
        yield Services(dep.store, dep.ledger, load_pack(), platform)


def build_demo(dep: Deployment, events: int, seed: int) -> None:
    """Build the reference platform, run the scenario and routine traffic, publish."""
    platform_db = dep.settings.data_dir / "platform.db"
    build_reference_platform(platform_db, seed=seed)
    fr = _ids(platform_db, "SELECT id FROM accounts WHERE jurisdiction = 'FR' AND "
              "data_region = 'IE' ORDER BY id LIMIT 1")  # fmt: skip
    with demo_services(dep, platform_db) as services:
        register_world(services)
        run = Run(services, {"fr": fr[0]})
        for case in (*_incidents(), *_lawful()):
            _run_case(run, case)
        _pretext(run)
        lawful_case = _end_to_end(run)
        sent = routine_traffic(services, platform_db, events)
        credentials = demo_credentials(services, seed)
    while dep.sequencer.integrate() is not None:
        pass
    _print(run, dep, sent)
    _print_end_to_end(lawful_case)
    _print_credentials(credentials)
    _print_outside_view(dep)


AUDIT_POLICY = "audit.policy"
"""The demo's c2sp.org/tlog-policy file, in its data directory, for outside checks."""


def _print_outside_view(dep: Deployment) -> None:
    """Audit the published log as an outsider would, and say how to do it again: the demo's
    own tlog-policy (its log's key; a real deployment's also names witnesses and a quorum),
    the audit's verdict, and the commands that check and report from the published files."""
    trust = keys_policy([dep.vkey])
    policy = dep.settings.data_dir / AUDIT_POLICY
    policy.write_bytes(format_policy(trust))
    report = audit_log(dir_fetcher(dep.settings.log_dir), trust, checks=default_checks({}, None))
    verdict = (
        "[bold green]clean[/]"
        if report.clean
        else f"[bold red]{len(report.findings)} violation(s)[/]"
    )
    console.print(
        f"Audited from the published files alone: {verdict}, {report.events} events, "
        f"{report.tiles_checked} tile(s), as anyone can:"
    )
    log_dir, year = dep.settings.log_dir, EPOCH.year
    for line in (
        f"custodes audit {log_dir} --policy {policy}",
        f"custodes report {log_dir} --period {year} --policy {policy} --out report",
    ):
        console.print(f"  {line}", markup=False, soft_wrap=True)


def demo(
    data: Annotated[Path, typer.Option("--data", help="Demo data directory.")] = Path("demo-data"),
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve it afterwards.")] = True,
    events: Annotated[
        int, typer.Option(help="Fill the log with routine traffic up to this many entries.", min=0)
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the reference platform's data.")] = 2020,
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 8000,
) -> None:
    """Build a demo deployment (fresh each time): 2020's demands, as custodes handles them."""
    with reported_errors():
        if data.exists():
            if not (data / "custodes.toml").is_file():
                fail("usage", f"{data} exists and is not a custodes data directory")
            shutil.rmtree(data)
        init_data_dir(data, "demo.custodes.example/log")
        with open_deployment(load_settings(data)) as dep:
            build_demo(dep, events, seed)
    if serve:
        from custodes.cli import serve as serve_cmd

        serve_cmd(data=data, port=port)
