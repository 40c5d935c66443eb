"""The staff access API on both backends: asking for a capability, reading through the
gateway, revoking, and access transparency, for every role, allowed and refused, and with
bad input. Every refusal of an access or a read is in the log; bad input changes nothing."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.events import (
    STAFF_ACCESS_DENIED,
    STAFF_ACCESS_GRANTED,
    STAFF_ACCESS_READ,
    STAFF_ACCESS_REVOKED,
    parse_event,
)
from custodes.model import (
    Authority,
    AuthorityKind,
    DataCategory,
    Demand,
    DemandKind,
    DemandState,
    InstrumentKind,
    LegalInstrument,
    Offence,
    SignatureStatus,
    Staff,
    Target,
    TimeRange,
    new_demand_id,
)
from custodes.platform import FIXTURES, ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services
from custodes.service.authorities import register_authority
from custodes.service.demands import receive_demand
from custodes.service.review import approve, decide
from custodes.service.screening import screen_demand
from custodes.service.staff import register_staff
from custodes.settings import load_settings
from custodes.web.app import create_app
from custodes.web.auth import set_credentials
from custodes.web.context import ApiConfig
from custodes.web.listing import format_cursor
from custodes.web.tokens import issue_token
from support import Clock

NOW = datetime(2020, 6, 5, 12, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
ROLES = tuple(sorted(load_pack().tables.roles))
"""Every role of the default pack: a role added to the pack is tested here at once."""
REQUESTERS = {"intake", "reviewer", "human_rights_reviewer", "legal_counsel", "trust_safety",
              "data_custodian", "support"}  # fmt: skip
"""Roles api.cedar lets ask for access at all (``staff_access.request``)."""
GRANTED = {"user_request": "support", "tos_investigation": "trust_safety",
           "demand": "data_custodian"}  # fmt: skip
"""The one role staff.cedar lets read under each kind of justification."""
LISTERS = {"auditor", "privacy_service"}
SUBJECT = FIXTURES.us_content_user
OTHER = FIXTURES.de_subscriber
SUBSCRIBER = "subscriber_info"
DOCUMENT = b"%PDF-1.7 a warrant for staff access"


@dataclass
class World:
    dep: Deployment
    services: Services
    clock: Clock
    http: TestClient
    tokens: dict[str, dict[str, str]]
    totp: str
    demand_id: str

    def size(self) -> int:
        return self.services.ledger.size()

    def kinds(self, indexes: list[int]) -> list[str]:
        return [parse_event(self.services.ledger.entry(i)).kind for i in indexes]


def _approved_demand(services: Services) -> str:
    demand = Demand(
        id=new_demand_id(), authority_id="us-fbi", kind=DemandKind.DISCLOSURE,
        instrument=LegalInstrument(InstrumentKind.SEARCH_WARRANT, reference="M-7",
                                   document_sha256=hashlib.sha256(DOCUMENT).hexdigest()),
        targets=(SUBJECT,), received_at=NOW,
        categories=(DataCategory.SUBSCRIBER_INFO, DataCategory.IP_SESSION_LOGS),
        time_range=TimeRange(NOW.replace(month=3, day=1, hour=0), NOW.replace(day=1, hour=0)),
        offence=Offence("fraud"),
    )  # fmt: skip
    receive_demand(services, demand, signature=SignatureStatus.VALID, document=DOCUMENT)
    assert screen_demand(services, demand.id).state is DemandState.IN_REVIEW
    approve(services, demand.id, by="a1", reason="in order")
    approve(services, demand.id, by="a2", reason="in order")
    assert decide(services, demand.id, by="a1", reason="approved").state is DemandState.APPROVED
    return demand.id


@pytest.fixture(scope="module")
def world(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("data")
    init_data_dir(data, "access.test/log")
    build_reference_platform(data / "platform.db", accounts=60, region_accounts=5)
    dep = open_deployment(load_settings(data, database_url=module_database_url))
    clock = Clock(NOW)
    platform = ReferencePlatform(data / "platform.db")
    services = Services(dep.store, dep.ledger, load_pack(), platform, clock=clock)
    register_staff(services, Staff("root", frozenset({"admin"}), "IE"), by=None)
    people = [Staff(f"r-{role}", frozenset({role}), "IE") for role in ROLES]
    people += [Staff("a1", frozenset({"approver"}), "IE"),
               Staff("a2", frozenset({"approver"}), "DE"),
               Staff("support-2", frozenset({"support"}), "IE"),
               Staff("ts-cn", frozenset({"trust_safety"}), "CN"),
               Staff("rate", frozenset({"support"}), "IE")]  # fmt: skip
    for member in people:
        register_staff(services, member, by="root")
    register_authority(services, Authority("us-fbi", "FBI", AuthorityKind.POLICE, "US"), by="root")
    config = ApiConfig(staff_rate=100_000)
    tokens = {}
    for member in people:
        new = issue_token(services, config, member.id, "tests", timedelta(days=30))
        tokens[member.id] = {"Authorization": f"Bearer {new.bearer}"}
    totp = set_credentials(services, "r-support", PASSWORD)
    demand_id = _approved_demand(services)
    app = create_app(dep, services=services, config=config)
    with TestClient(app) as http:
        yield World(dep, services, clock, http, tokens, totp, demand_id)
    platform.close()
    dep.close()


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _subject(t: Target) -> dict[str, str]:
    return {"kind": t.kind.value, "id": t.id}


def _reference(world: World, kind: str) -> str:
    return {"demand": world.demand_id, "tos_investigation": "case-88",
            "user_request": "ticket-4711"}[kind]  # fmt: skip


def _ask(world: World, who: str, kind: str | None = "user_request", **body: Any) -> Response:
    body.setdefault("subjects", [_subject(SUBJECT)])
    body.setdefault("categories", [SUBSCRIBER])
    if kind is not None:
        body.setdefault("justification", {"kind": kind, "reference": _reference(world, kind)})
    headers = {**world.tokens[who], **body.pop("headers", _key())}
    return world.http.post("/v1/staff/capabilities", json=body, headers=headers)


def _granted(world: World, who: str = "r-support", kind: str = "user_request", **body: Any) -> Any:
    r = _ask(world, who, kind, **body)
    assert r.status_code == 201, r.text
    return r.json()


def _read(world: World, who: str, token: str, target: Target = SUBJECT, **body: Any) -> Response:
    body.setdefault("subject", _subject(target))
    body.setdefault("categories", [SUBSCRIBER])
    headers = {**world.tokens[who], "Custodes-Capability": token, **body.pop("headers", _key())}
    return world.http.post("/v1/staff/reads", json=body, headers=headers)


def _refused(r: Response, rule: str) -> list[int]:
    """The events of a refusal naming ``rule``."""
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "forbidden" and rule in problem["rules"]
    events: list[int] = problem["events"]
    return events


def _accesses(world: World, subject: Target = SUBJECT, **params: Any) -> Response:
    path = f"/v1/staff/subjects/{subject.kind.value}/{subject.id}/accesses"
    return world.http.get(path, params=params, headers=world.tokens["r-privacy_service"])


# -- asking for access -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(GRANTED))
@pytest.mark.parametrize("role", ROLES)
def test_asking_for_access_for_every_role_and_justification(
    world: World, role: str, kind: str
) -> None:
    start = world.size()
    r = _ask(world, f"r-{role}", kind, categories=[SUBSCRIBER, "ip_session_logs"])
    if GRANTED[kind] == role:
        assert r.status_code == 201, r.text
        cap = r.json()
        assert cap["token"].startswith(cap["id"] + ".") and cap["staff_id"] == f"r-{role}"
        assert cap["subjects"] == [_subject(SUBJECT)]
        assert cap["categories"] == ["ip_session_logs", SUBSCRIBER]
        assert cap["justification"] == kind
        expires = datetime.fromisoformat(cap["expires_at"])
        assert expires - datetime.fromisoformat(cap["issued_at"]) == timedelta(minutes=15)
        assert world.kinds(cap["events"]) == [STAFF_ACCESS_GRANTED]
        read = _read(world, f"r-{role}", cap["token"])
        assert read.status_code == 200, read.text
        assert world.kinds([read.json()["index"]]) == [STAFF_ACCESS_READ]
        return
    events = _refused(r, "staff.access.default_deny")
    assert ("staff_access.request.default_deny" in r.json()["rules"]) == (role not in REQUESTERS)
    assert world.kinds(events) == [STAFF_ACCESS_DENIED]
    assert world.size() == start + 1


def test_an_access_without_justification_is_refused_and_recorded(world: World) -> None:
    start = world.size()
    for body in ({}, {"justification": None}):
        r = _ask(world, "r-support", None, subjects=[_subject(SUBJECT), _subject(OTHER)], **body)
        events = _refused(r, "staff.no_justification")
        assert world.kinds(events) == [STAFF_ACCESS_DENIED] * 2
    assert world.size() == start + 4
    last = _accesses(world, OTHER).json()["items"][-1]
    assert last["kind"] == "denied" and last["justification"] == "none"
    assert last["rules"] == ["staff.no_justification"]


def test_an_access_policy_refuses_names_the_rule_and_is_recorded(world: World) -> None:
    r = _ask(world, "ts-cn", "tos_investigation")
    events = _refused(r, "staff.local_access_only")
    assert "staff located here may read data only" in r.json()["detail"]
    assert world.kinds(events) == [STAFF_ACCESS_DENIED]


def test_an_unknown_subject_is_refused_and_recorded(world: World) -> None:
    ghost = {"kind": "account", "id": "u-nobody-here"}
    events = _refused(_ask(world, "r-support", subjects=[ghost]), "staff.unknown_subject")
    assert world.kinds(events) == [STAFF_ACCESS_DENIED]
    listed = world.http.get("/v1/staff/subjects/account/u-nobody-here/accesses",
                            headers=world.tokens["r-auditor"])  # fmt: skip
    assert [e["rules"] for e in listed.json()["items"]] == [["staff.unknown_subject"]]


def test_a_demand_justifies_only_its_approved_scope(world: World) -> None:
    outside = _ask(world, "r-data_custodian", "demand", categories=["content"])
    _refused(outside, "staff.outside_demand")
    for reference in ("d_unknown", "case/7#" + "x" * 121):
        unknown = _ask(world, "r-data_custodian", None,
                       justification={"kind": "demand", "reference": reference})  # fmt: skip
        _refused(unknown, "staff.demand_not_approved")


BAD_BODIES: dict[str, tuple[dict[str, Any], int, str]] = {
    "subjects not a list": ({"subjects": _subject(SUBJECT)}, 422, "validation"),
    "no subjects": ({"subjects": []}, 422, "validation"),
    "subject id a number": ({"subjects": [{"kind": "account", "id": 7}]}, 422, "validation"),
    "a selector": ({"subjects": [{"kind": "selector", "id": "all free accounts"}]}, 422,
                   "validation"),
    "a subject twice": ({"subjects": [_subject(SUBJECT)] * 2}, 400, "bad_input"),
    "too many subjects": ({"subjects": [{"kind": "account", "id": f"u-{i}"} for i in range(101)]},
                          422, "validation"),
    "unknown category": ({"categories": ["passwords"]}, 422, "validation"),
    "no categories": ({"categories": []}, 422, "validation"),
    "ttl a word": ({"ttl_minutes": "ten"}, 422, "validation"),
    "ttl too long": ({"ttl_minutes": 481}, 422, "validation"),
    "ttl zero": ({"ttl_minutes": 0}, 422, "validation"),
    "unknown justification": ({"justification": {"kind": "curiosity", "reference": "x"}}, 422,
                              "validation"),
    "justification without reference": ({"justification": {"kind": "user_request"}}, 422,
                                        "validation"),
    "reference with a space": ({"justification": {"kind": "user_request", "reference": "t 1"}},
                               422, "validation"),
    "justification a string": ({"justification": "ticket-4711"}, 422, "validation"),
    "unknown field": ({"staff_id": "r-approver"}, 422, "validation"),
    "oversized": ({"justification": {"kind": "user_request", "reference": "t" * 70_000}}, 413,
                  "too_large"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_access_requests_change_nothing(world: World, name: str) -> None:
    body, status, code = BAD_BODIES[name]
    start, before = world.size(), _accesses(world).json()
    r = _ask(world, "r-support", **body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code
    assert world.size() == start and _accesses(world).json() == before


def test_a_body_that_is_not_json_changes_nothing(world: World) -> None:
    start = world.size()
    headers = {**world.tokens["r-support"], **_key(), "Content-Type": "application/json"}
    for raw in (b"{", b"[]", b'"subjects"', b"\xff\xfe"):
        r = world.http.post("/v1/staff/capabilities", content=raw, headers=headers)
        assert r.status_code == 422 and r.json()["code"] == "validation"
        headers = {**headers, **_key()}
    assert world.size() == start


def test_asking_is_idempotent_and_the_token_is_shown_once(world: World) -> None:
    start = world.size()
    key = {"Idempotency-Key": "ask-1"}
    first = _ask(world, "r-support", headers=key)
    assert first.status_code == 201 and world.size() == start + 1
    again = _ask(world, "r-support", headers=key)
    assert again.status_code == 409 and again.json()["code"] == "shown_once"
    other = _ask(world, "r-support", headers=key, categories=["ip_session_logs"])
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    body = {"subjects": [_subject(SUBJECT)], "categories": [SUBSCRIBER]}
    missing = world.http.post(
        "/v1/staff/capabilities", headers=world.tokens["r-support"], json=body
    )
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_missing"
    assert world.size() == start + 1


def test_a_refusal_retried_is_answered_again_not_recorded_again(world: World) -> None:
    key = {"Idempotency-Key": "ask-refused-1"}
    first = _ask(world, "r-auditor", headers=key)
    events = _refused(first, "staff_access.request.default_deny")
    start = world.size()
    again = _ask(world, "r-auditor", headers=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and _refused(again, "staff.access.default_deny") == events
    assert world.size() == start


def test_a_session_asks_and_reads_with_its_csrf_token(world: World) -> None:
    client = TestClient(world.http.app)
    login = {"staff_id": "r-support", "password": PASSWORD,
             "totp": pyotp.TOTP(world.totp).at(world.clock())}  # fmt: skip
    session = client.post("/v1/staff/session", json=login)
    assert session.status_code == 200, session.text
    csrf = session.json()["csrf_token"]
    world.clock.advance(seconds=30)
    body = {"justification": {"kind": "user_request", "reference": "ticket-9"},
            "subjects": [_subject(SUBJECT)], "categories": [SUBSCRIBER]}  # fmt: skip
    start = world.size()
    forged = client.post("/v1/staff/capabilities", json=body, headers=_key())
    assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
    assert world.size() == start
    cap = client.post("/v1/staff/capabilities", json=body, headers={"X-CSRF-Token": csrf, **_key()})
    assert cap.status_code == 201, cap.text
    read_body = {"subject": _subject(SUBJECT), "categories": [SUBSCRIBER]}
    headers = {"Custodes-Capability": cap.json()["token"], **_key()}
    assert client.post("/v1/staff/reads", json=read_body, headers=headers).status_code == 403
    read = client.post("/v1/staff/reads", json=read_body, headers={"X-CSRF-Token": csrf, **headers})
    assert read.status_code == 200 and world.kinds([read.json()["index"]]) == [STAFF_ACCESS_READ]


ROUTES = [
    ("POST", "/v1/staff/capabilities"),
    ("POST", "/v1/staff/reads"),
    ("DELETE", "/v1/staff/capabilities/cap_000000000000000000000000"),
    ("GET", "/v1/staff/subjects/account/u-us-content/accesses"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_an_unauthenticated_caller(
    world: World, method: str, path: str
) -> None:
    start = world.size()
    for headers in ({}, {"Authorization": "Bearer cst_nonsense"}):
        r = world.http.request(method, path, json={}, headers={**headers, **_key()})
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    assert world.size() == start


def test_every_route_counts_against_the_staff_rate_limit(world: World) -> None:
    app = create_app(world.dep, services=world.services, config=ApiConfig(staff_rate=4))
    with TestClient(app) as http:
        for method, path in ROUTES:
            r = http.request(method, path, json={}, headers={**world.tokens["rate"], **_key()})
            assert r.status_code != 429
        r = http.request("POST", "/v1/staff/capabilities", json={},
                         headers={**world.tokens["rate"], **_key()})  # fmt: skip
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) > 0


# -- reading through the gateway -------------------------------------------------------------


def test_each_read_is_an_event_and_a_retry_reads_once(world: World) -> None:
    cap = _granted(world, categories=[SUBSCRIBER, "ip_session_logs"])
    start = world.size()
    key = {"Idempotency-Key": "read-1"}
    first = _read(world, "r-support", cap["token"], headers=key)
    assert first.status_code == 200, first.text
    out = first.json()
    assert out["capability"] == cap["id"] and out["subject"] == _subject(SUBJECT)
    assert out["categories"] == [SUBSCRIBER] and out["index"] == start
    assert world.kinds([out["index"]]) == [STAFF_ACCESS_READ]
    again = _read(world, "r-support", cap["token"], headers=key)
    assert again.json() == out and again.headers["Idempotent-Replayed"] == "true"
    both = _read(world, "r-support", cap["token"], categories=["ip_session_logs", SUBSCRIBER])
    assert both.status_code == 200 and both.json()["index"] == start + 1
    assert world.size() == start + 2
    other = _granted(world)
    reused = _read(world, "r-support", other["token"], headers=key)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


@pytest.mark.parametrize("role", ROLES)
def test_only_the_holder_reads_under_a_capability(world: World, role: str) -> None:
    cap = _granted(world, "support-2")
    start = world.size()
    events = _refused(_read(world, f"r-{role}", cap["token"]), "capability.holder")
    assert world.kinds(events) == [STAFF_ACCESS_DENIED] and world.size() == start + 1
    assert _read(world, "support-2", cap["token"]).status_code == 200


def test_a_read_outside_the_capability_is_refused_and_recorded(world: World) -> None:
    cap = _granted(world)
    outside = {
        "capability.subject": _read(world, "r-support", cap["token"], OTHER),
        "capability.categories": _read(world, "r-support", cap["token"], categories=["content"]),
    }
    for rule, r in outside.items():
        assert world.kinds(_refused(r, rule)) == [STAFF_ACCESS_DENIED]
    items = _accesses(world, OTHER).json()["items"]
    assert items[-1]["kind"] == "denied" and items[-1]["rules"] == ["capability.subject"]


def test_an_expired_capability_reads_nothing(world: World) -> None:
    cap = _granted(world, ttl_minutes=1)
    assert _read(world, "r-support", cap["token"]).status_code == 200
    world.clock.advance(minutes=1)
    events = _refused(_read(world, "r-support", cap["token"]), "capability.expired")
    assert world.kinds(events) == [STAFF_ACCESS_DENIED]


def test_a_token_that_is_not_a_capability_is_refused_and_logs_nothing(world: World) -> None:
    cap = _granted(world)
    cap_id, secret = cap["token"].split(".")
    forged = cap_id + "." + ("A" if secret[0] != "A" else "B") + secret[1:]
    unknown = "cap_" + "0" * 24 + "." + secret
    start = world.size()
    for token in ("nonsense", cap["token"] + "=", forged, unknown, "x" * 128):
        r = _read(world, "r-support", token)
        assert r.status_code == 401 and r.json()["code"] == "bad_capability", token
    for token in ("x" * 129, None):
        headers = {**world.tokens["r-support"], **_key()}
        if token is not None:
            headers["Custodes-Capability"] = token
        body = {"subject": _subject(SUBJECT), "categories": [SUBSCRIBER]}
        r = world.http.post("/v1/staff/reads", headers=headers, json=body)
        assert r.status_code == 422 and r.json()["code"] == "validation"
    assert world.size() == start


@pytest.mark.parametrize(
    "body",
    [
        {"subject": "account:u-us-content"},
        {"subject": {"kind": "selector", "id": "everyone"}},
        {"categories": []},
        {"categories": "subscriber_info"},
        {"categories": ["passwords"]},
        {"extra": True},
    ],
)
def test_a_malformed_read_changes_nothing(world: World, body: dict[str, Any]) -> None:
    cap = _granted(world)
    start = world.size()
    r = _read(world, "r-support", cap["token"], **body)
    assert r.status_code == 422 and r.json()["code"] == "validation"
    assert world.size() == start


# -- revoking --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_revoking_for_every_role(world: World, role: str) -> None:
    cap = _granted(world, "support-2")
    start = world.size()
    r = world.http.delete(f"/v1/staff/capabilities/{cap['id']}", headers=world.tokens[f"r-{role}"])
    if role != "approver":  # api.approver: staff_access.grant
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert r.json()["rules"] == ["staff_access.grant.default_deny"]
        assert world.size() == start
        assert _read(world, "support-2", cap["token"]).status_code == 200
        return
    assert r.status_code == 200, r.text
    assert r.json()["id"] == cap["id"] and world.kinds(r.json()["events"]) == [STAFF_ACCESS_REVOKED]
    _refused(_read(world, "support-2", cap["token"]), "capability.revoked")


def test_the_holder_revokes_once(world: World) -> None:
    cap = _granted(world)
    path = f"/v1/staff/capabilities/{cap['id']}"
    assert _read(world, "r-support", cap["token"]).status_code == 200  # the gateway caches it
    first = world.http.delete(path, headers=world.tokens["r-support"])
    assert first.status_code == 200 and len(first.json()["events"]) == 1
    start = world.size()
    again = world.http.delete(path, headers=world.tokens["r-support"])
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert world.size() == start
    events = _refused(_read(world, "r-support", cap["token"]), "capability.revoked")
    assert world.kinds(events) == [STAFF_ACCESS_DENIED]


def test_revoking_what_is_not_a_capability(world: World) -> None:
    headers = world.tokens["r-approver"]
    missing = world.http.delete("/v1/staff/capabilities/cap_" + "f" * 24, headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    for bad in ("cap_XYZ", "cst_" + "0" * 24, "cap_" + "0" * 25):
        r = world.http.delete(f"/v1/staff/capabilities/{bad}", headers=headers)
        assert r.status_code == 422 and r.json()["code"] == "validation"


def test_a_session_revokes_only_with_its_csrf_token(world: World) -> None:
    cap = _granted(world)
    client = TestClient(world.http.app)
    login = {"staff_id": "r-support", "password": PASSWORD,
             "totp": pyotp.TOTP(world.totp).at(world.clock())}  # fmt: skip
    csrf = client.post("/v1/staff/session", json=login).json()["csrf_token"]
    world.clock.advance(seconds=30)
    path = f"/v1/staff/capabilities/{cap['id']}"
    assert client.delete(path).json()["code"] == "csrf_failed"
    assert client.delete(path, headers={"X-CSRF-Token": csrf}).status_code == 200


# -- access transparency ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_listing_accesses_for_every_role(world: World, role: str) -> None:
    path = f"/v1/staff/subjects/account/{SUBJECT.id}/accesses"
    r = world.http.get(path, headers=world.tokens[f"r-{role}"])
    if role in LISTERS:
        assert r.status_code == 200, r.text
        assert r.json()["items"]
    else:
        assert r.status_code == 403 and r.json()["rules"] == ["staff_access.list.default_deny"]


def test_the_list_says_when_where_what_and_why_but_never_who(world: World) -> None:
    subject = FIXTURES.us_person
    cap = _granted(world, "support-2", subjects=[_subject(subject)], categories=["content"])
    assert (
        _read(world, "support-2", cap["token"], subject, categories=["content"]).status_code == 200
    )
    assert _accesses(world, subject, limit=1).json()["items"][0] == {
        "index": cap["events"][0], "kind": "granted", "at": cap["issued_at"],
        "justification": "user_request", "staff_location": "IE", "categories": ["content"],
        "rules": [],
    }  # fmt: skip
    text = json.dumps(_accesses(world, subject).json())
    assert "support-2" not in text and "ticket-4711" not in text and cap["id"] not in text


def test_the_list_comes_a_page_at_a_time(world: World) -> None:
    subject = FIXTURES.uk_subject
    cap = _granted(world, subjects=[_subject(subject)])
    for _ in range(4):
        assert _read(world, "r-support", cap["token"], subject).status_code == 200
    whole = _accesses(world, subject).json()
    assert [e["kind"] for e in whole["items"]] == ["granted"] + ["read"] * 4
    assert whole["next_cursor"] is None
    items, cursor = [], None
    while True:
        page = _accesses(world, subject, limit=2, **({"cursor": cursor} if cursor else {})).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert items == whole["items"]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"cursor": "not-a-cursor"}, 400, "bad_cursor"),
        ({"cursor": format_cursor({"k": "u-1"})}, 400, "bad_cursor"),
        ({"cursor": format_cursor({"i": "-1"})}, 400, "bad_cursor"),
        ({"cursor": format_cursor({"i": "9" * 20})}, 400, "bad_cursor"),
        ({"cursor": format_cursor({"i": "\u00b2"})}, 400, "bad_cursor"),
        ({"cursor": format_cursor({"i": "\u0663"})}, 400, "bad_cursor"),
        ({"limit": 0}, 422, "validation"),
        ({"limit": 201}, 422, "validation"),
        ({"limit": "many"}, 422, "validation"),
        ({"cursor": "x" * 513}, 422, "validation"),
    ],
)
def test_a_bad_page_request(world: World, params: dict[str, Any], status: int, code: str) -> None:
    r = _accesses(world, **params)
    assert r.status_code == status and r.json()["code"] == code


def test_listing_a_subject_nobody_knows(world: World) -> None:
    headers = world.tokens["r-auditor"]
    r = world.http.get("/v1/staff/subjects/account/u-never-heard-of/accesses", headers=headers)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    never_read = f"/v1/staff/subjects/account/{FIXTURES.emergency_subject.id}/accesses"
    assert world.http.get(never_read, headers=headers).json() == {"items": [], "next_cursor": None}
    for bad in ("selector/all", "account/%20u-1", "user/u-us-person", "account/" + "u" * 129):
        r = world.http.get(f"/v1/staff/subjects/{bad}/accesses", headers=headers)
        assert r.status_code == 422 and r.json()["code"] == "validation", bad
