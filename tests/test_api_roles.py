"""Every endpoint for every role, allowed and refused, on both backends.

The table below is the shipped pack's api.cedar read as a legal team would: which roles may
perform each operation. Each staff route is called by one member of every role: a role the
table allows is never refused as unauthenticated or forbidden (it may still meet a state the
route refuses, or a demand that does not exist); every other role is refused ``forbidden`` by
the rule ``<action>.default_deny`` (or the one the case names), before anything changes but
the ``staff_access.denied`` event that records a refused access to user data (the staff access
routes are gone through in depth in test_api_access.py). The authority API is called by an
active authority, a suspended one, a staff member's token and nobody."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyrage
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.model import (
    Authority,
    AuthorityKind,
    DataCategory,
    Demand,
    DemandKind,
    DemandState,
    InstrumentKind,
    LegalInstrument,
    Nondisclosure,
    Offence,
    SignatureStatus,
    Staff,
    Target,
    TargetKind,
    TimeRange,
    new_demand_id,
)
from custodes.platform import ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services
from custodes.service.access import (
    AccessRequest,
    Capability,
    Justification,
    JustificationKind,
    request_access,
)
from custodes.service.authorities import register_authority, suspend_authority
from custodes.service.demands import receive_demand
from custodes.service.review import approve
from custodes.service.screening import screen_demand
from custodes.service.staff import register_staff
from custodes.settings import load_settings
from custodes.web.app import create_app
from custodes.web.client import AuthorityKey, RequestSigner, SignedClient
from custodes.web.context import ApiConfig
from custodes.web.tokens import issue_token

NOW = datetime(2020, 6, 5, 12, tzinfo=UTC)
PG_ENV = "CUSTODES_TEST_DATABASE_URL"
ROLES = tuple(sorted(load_pack().tables.roles))
"""Every role of the default pack: a role added to the pack is tested here at once."""
READERS = {"intake", "reviewer", "approver", "human_rights_reviewer", "legal_counsel",
           "trust_safety", "data_custodian", "auditor"}  # fmt: skip
ALLOWED: dict[str, set[str]] = {
    "demand.read": READERS,
    "demand.intake": {"intake"},
    "demand.screen": {"intake", "reviewer"},
    "emergency.record_callback": {"intake", "reviewer"},
    "demand.approve": {"approver"},
    "demand.sign_off": {"legal_counsel"},
    "demand.refuse": {"reviewer", "approver", "legal_counsel"},
    "demand.request_clarification": {"reviewer"},
    "demand.challenge": {"legal_counsel"},
    "demand.open_review": {"reviewer"},
    "demand.close": {"reviewer"},
    "demand.execute": {"data_custodian"},
    "authority.manage": {"admin"},
    "staff.manage": {"admin"},
    "staff.access": {"support"},  # asked with a support ticket: staff.cedar's staff.user_request
    "(capability holder)": set(),  # the capability presented is another member's
    "staff_access.grant": {"approver"},
    "staff_access.list": {"auditor", "privacy_service"},
    "(own account)": set(ROLES),
}
"""The roles api.cedar lets perform each operation ("own account": anyone authenticated)."""
DOCUMENT = b"%PDF-1.7 a warrant for the role matrix"
AGE = str(pyrage.x25519.Identity.generate().to_public())
KEY = AuthorityKey.generate("xx-key")


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    action: str
    body: dict[str, Any] | None = None
    demand: str | None = None
    """The demand the route needs: ``in_review``, ``ready`` (approvals given), ``gagged``
    (review needs a legal counsel's sign-off), or None (a demand id that does not exist)."""
    raw: bytes | None = None
    rule: str | None = None
    """The rule that refuses a role the table does not allow (``<action>.default_deny``)."""
    capability: bool = False
    """The route needs a capability (held by another member, ``holder``): its id is the path's
    ``{c}``, its token goes in ``Custodes-Capability``."""


REASON = {"reason": "as the case requires"}
CASES: dict[str, Case] = {
    "list demands": Case("GET", "/v1/staff/demands", "demand.read"),
    "one demand": Case("GET", "/v1/staff/demands/d_missing", "demand.read"),
    "upload document": Case("POST", "/v1/staff/documents", "demand.intake", raw=DOCUMENT),
    "record demand": Case("POST", "/v1/staff/demands", "demand.intake", body={
        "authority_id": "us-fbi", "demand": {
            "kind": "preservation", "instrument": {"kind": "preservation_request"},
            "targets": [{"kind": "account", "id": "u-us-content"}],
            "categories": ["subscriber_info"]}}),
    "callback": Case("POST", "/v1/staff/demands/d_missing/callback", "emergency.record_callback",
                     body={"channel": {"kind": "phone", "address": "+1 415 555 0100"}}),
    "screen": Case("POST", "/v1/staff/demands/d_missing/screening", "demand.screen"),
    "approve": Case("POST", "/v1/staff/demands/{d}/approvals", "demand.approve", REASON,
                    "in_review"),
    "sign off": Case("POST", "/v1/staff/demands/{d}/sign-offs", "demand.sign_off",
                     {**REASON, "role": "legal_counsel"}, "gagged"),
    "decide": Case("POST", "/v1/staff/demands/{d}/decision", "demand.approve", REASON, "ready"),
    "narrow": Case("POST", "/v1/staff/demands/{d}/narrowing", "demand.approve",
                   {**REASON, "drop_categories": ["ip_session_logs"]}, "ready"),
    "refuse": Case("POST", "/v1/staff/demands/d_missing/refusal", "demand.refuse", REASON),
    "ask clarification": Case("POST", "/v1/staff/demands/d_missing/clarification-request",
                              "demand.request_clarification", REASON),
    "challenge": Case("POST", "/v1/staff/demands/d_missing/challenge", "demand.challenge",
                      {"grounds": "the gag names no end date"}),
    "resume review": Case("POST", "/v1/staff/demands/d_missing/review", "demand.open_review",
                          REASON),
    "record withdrawal": Case("POST", "/v1/staff/demands/d_missing/withdrawal", "demand.intake",
                              REASON),
    "close": Case("POST", "/v1/staff/demands/d_missing/closure", "demand.close", REASON),
    "produce": Case("POST", "/v1/staff/demands/d_missing/production", "demand.execute", {}),
    "restrict": Case("POST", "/v1/staff/demands/d_missing/restriction", "demand.execute"),
    "preserve": Case("POST", "/v1/staff/demands/d_missing/preservation", "demand.execute"),
    "list authorities": Case("GET", "/v1/staff/authorities", "authority.manage"),
    "one authority": Case("GET", "/v1/staff/authorities/nowhere", "authority.manage"),
    "register authority": Case("POST", "/v1/staff/authorities", "authority.manage", {
        "id": "xx-new", "name": "New", "kind": "court", "jurisdiction": "FR"}),
    "add key": Case("POST", "/v1/staff/authorities/nowhere/keys", "authority.manage", {
        "id": "k2", "ed25519": base64.b64encode(KEY.public).decode()}),
    "revoke key": Case("DELETE", "/v1/staff/authorities/nowhere/keys/k1", "authority.manage"),
    "add channel": Case("POST", "/v1/staff/authorities/nowhere/channels", "authority.manage", {
        "kind": "email", "address": "duty@nowhere.example"}),
    "remove channel": Case("DELETE", "/v1/staff/authorities/nowhere/channels/phone-0123",
                           "authority.manage"),
    "suspend": Case("POST", "/v1/staff/authorities/nowhere/suspension", "authority.manage",
                    REASON),
    "reinstate": Case("POST", "/v1/staff/authorities/nowhere/reinstatement", "authority.manage"),
    "recipient": Case("PUT", "/v1/staff/authorities/nowhere/recipient", "authority.manage",
                      {"recipient": AGE}),
    "list members": Case("GET", "/v1/staff/members", "staff.manage"),
    "one member": Case("GET", "/v1/staff/members/nobody", "staff.manage"),
    "register member": Case("POST", "/v1/staff/members", "staff.manage", {
        "id": "m-new", "roles": ["auditor"], "location": "IE",
        "password": "a long enough password"}),
    "grant role": Case("POST", "/v1/staff/members/target/roles", "staff.manage",
                       {"role": "auditor"}),
    "revoke role": Case("DELETE", "/v1/staff/members/target/roles/support", "staff.manage"),
    "reset credentials": Case("POST", "/v1/staff/members/nobody/credentials", "staff.manage",
                              {"password": "a long enough password"}),
    "ask access": Case("POST", "/v1/staff/capabilities", "staff.access", body={
        "justification": {"kind": "user_request", "reference": "ticket-1"},
        "subjects": [{"kind": "account", "id": "u-us-content"}], "categories": ["content"]}),
    "read": Case("POST", "/v1/staff/reads", "(capability holder)", body={
        "subject": {"kind": "account", "id": "u-us-content"}, "categories": ["content"]},
        rule="capability.holder", capability=True),
    "revoke capability": Case("DELETE", "/v1/staff/capabilities/{c}", "staff_access.grant",
                              capability=True),
    "list accesses": Case("GET", "/v1/staff/subjects/account/u-us-content/accesses",
                          "staff_access.list"),
    "who am i": Case("GET", "/v1/staff/session", "(own account)"),
    "my tokens": Case("GET", "/v1/staff/tokens", "(own account)"),
    "new token": Case("POST", "/v1/staff/tokens", "(own account)", {"label": "matrix"}),
    "drop token": Case("DELETE", "/v1/staff/tokens/cst_000000000000000000000000",
                       "(own account)"),
}  # fmt: skip


@dataclass
class World:
    app: FastAPI
    services: Services
    http: TestClient
    tokens: dict[str, dict[str, str]]
    keys: dict[str, AuthorityKey]
    shared: dict[str, str] = field(default_factory=dict)
    held: Capability | None = None

    def demand(self, needs: str, *, fresh: bool) -> str:
        if not fresh and needs in self.shared:
            return self.shared[needs]
        s = self.services
        demand = Demand(
            id=new_demand_id(), authority_id="us-fbi", kind=DemandKind.DISCLOSURE,
            instrument=LegalInstrument(InstrumentKind.SEARCH_WARRANT, reference="M-1",
                                       document_sha256=hashlib.sha256(DOCUMENT).hexdigest()),
            targets=(Target(TargetKind.ACCOUNT, "u-us-content"),), received_at=NOW,
            categories=(DataCategory.SUBSCRIBER_INFO, DataCategory.IP_SESSION_LOGS),
            time_range=TimeRange(NOW.replace(month=3, day=1, hour=0), NOW.replace(day=1, hour=0)),
            offence=Offence("fraud"),
            nondisclosure=Nondisclosure(None) if needs == "gagged" else None,
        )  # fmt: skip
        receive_demand(s, demand, signature=SignatureStatus.VALID, document=DOCUMENT)
        assert screen_demand(s, demand.id).state is DemandState.IN_REVIEW
        if needs == "ready":
            approve(s, demand.id, by="a1", reason="in order")
            approve(s, demand.id, by="a2", reason="in order")
        if not fresh:
            self.shared[needs] = demand.id
        return demand.id

    def capability(self, *, fresh: bool) -> Capability:
        """A capability held by ``holder`` (fresh for a route that would use it up)."""
        if not fresh and self.held is not None:
            return self.held
        j = Justification(JustificationKind.USER_REQUEST, "ticket-1")
        subjects = (Target(TargetKind.ACCOUNT, "u-us-content"),)
        cap = request_access(
            self.services, AccessRequest("holder", subjects, (DataCategory.CONTENT,), j)
        )
        if not fresh:
            self.held = cap
        return cap


@pytest.fixture(scope="module")
def world(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("data")
    init_data_dir(data, "roles.test/log")
    build_reference_platform(data / "platform.db", accounts=60, region_accounts=5)
    dep: Deployment = open_deployment(load_settings(data, database_url=module_database_url))
    platform = ReferencePlatform(data / "platform.db")
    services = Services(dep.store, dep.ledger, load_pack(), platform, clock=lambda: NOW)
    register_staff(services, Staff("root", frozenset({"admin"}), "IE"), by=None)
    people = [Staff(f"r-{role}", frozenset({role}), "IE") for role in ROLES]
    people += [Staff("a1", frozenset({"approver"}), "IE"),
               Staff("a2", frozenset({"approver"}), "DE"),
               Staff("target", frozenset({"support"}), "IE"),
               Staff("holder", frozenset({"support"}), "IE")]  # fmt: skip
    for member in people:
        register_staff(services, member, by="root")
    keys = {aid: AuthorityKey.generate(aid) for aid in ("us-fbi", "ru-fsb")}
    for aid, place in (("us-fbi", "US"), ("ru-fsb", "RU")):
        authority = Authority(
            aid, aid, AuthorityKind.POLICE, place, keys=(keys[aid].verification_key(),)
        )
        register_authority(services, authority, by="root")
    suspend_authority(services, "ru-fsb", by="root", reason="outside any legal process")
    config = ApiConfig(authority_rate=10_000, staff_rate=10_000)
    tokens = {}
    for role in ROLES:
        new = issue_token(services, config, f"r-{role}", "matrix", timedelta(days=1))
        tokens[role] = {"Authorization": f"Bearer {new.bearer}"}
    app = create_app(dep, services=services, config=config)
    with TestClient(app) as http:
        yield World(app, services, http, tokens, keys)
    platform.close()
    dep.close()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", list(CASES))
def test_every_staff_route_asks_the_pack_for_every_role(world: World, name: str, role: str) -> None:
    case = CASES[name]
    allowed = role in ALLOWED[case.action]
    path = case.path
    headers = {**world.tokens[role], "Idempotency-Key": uuid.uuid4().hex}
    if case.demand is not None:
        path = path.format(d=world.demand(case.demand, fresh=allowed))
    if case.capability:
        cap = world.capability(fresh=allowed)
        path = path.format(c=cap.id)
        headers["Custodes-Capability"] = cap.token
    if case.raw is not None:
        r = world.http.request(case.method, path, content=case.raw, headers=headers)
    else:
        r = world.http.request(case.method, path, json=case.body, headers=headers)
    if allowed:
        assert r.status_code not in (401, 403), r.text
        assert r.status_code < 500
    else:
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "forbidden"
        assert (case.rule or f"{case.action}.default_deny") in r.json()["rules"]


def test_the_table_covers_every_staff_route(world: World) -> None:
    paths = world.app.openapi()["paths"]
    routes = {
        (method.upper(), path) for path, item in paths.items() if path.startswith("/v1/staff/")
        for method in item
    }  # fmt: skip
    covered = {
        (method, path)
        for method, path in routes
        for case in CASES.values()
        if case.method == method
        and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", path), case.path.format(d="d_x", c="c_x"))
    }
    login = {("POST", "/v1/staff/session"), ("DELETE", "/v1/staff/session"),
             ("POST", "/v1/staff/password")}  # fmt: skip
    assert routes - covered == login  # tested in test_api_staff.py


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n].demand is None])
def test_every_staff_route_refuses_an_unauthenticated_caller(world: World, name: str) -> None:
    case = CASES[name]
    path = case.path.format(c="cap_" + "0" * 24)
    r = world.http.request(case.method, path, json=case.body,
                           headers={"Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


AUTHORITY_ROUTES = [
    ("POST", "/v1/documents", DOCUMENT),
    ("POST", "/v1/demands", b'{"kind": "preservation"}'),
    ("GET", "/v1/demands", b""),
    ("GET", "/v1/demands/d_missing", b""),
    ("POST", "/v1/demands/d_missing/amendments", b'{"kind": "preservation"}'),
    ("POST", "/v1/demands/d_missing/withdrawal", b'{"reason": "done"}'),
    ("GET", "/v1/productions/p_missing", b""),
]


@pytest.mark.parametrize("principal", ["authority", "suspended", "staff", "nobody"])
@pytest.mark.parametrize(("method", "path", "body"), AUTHORITY_ROUTES)
def test_every_authority_route_for_every_kind_of_caller(
    world: World, principal: str, method: str, path: str, body: bytes
) -> None:
    headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    if principal in ("authority", "suspended"):
        key = world.keys["us-fbi" if principal == "authority" else "ru-fsb"]
        client = SignedClient(world.http, RequestSigner(key, lambda: NOW), "http://testserver")
        r = client.request(method, path, content=body, headers=headers)
    else:
        if principal == "staff":
            headers.update(world.tokens["admin"])
        r = world.http.request(method, path, content=body, headers=headers)
    if principal == "authority":
        assert r.status_code not in (401, 403) and r.status_code < 500, r.text
    elif principal == "suspended":
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
    else:
        assert r.status_code == 401 and r.json()["code"] == "signature_missing"
