"""The staff API on both backends: logging in with a password and a TOTP code, sessions and
their CSRF token, API tokens, rate limits, and a demand from intake to production."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pyrage
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.model import Authority, AuthorityKind, Staff
from custodes.platform import ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services
from custodes.service.authorities import register_authority
from custodes.service.staff import register_staff
from custodes.settings import load_settings
from custodes.store import api_tables
from custodes.store.tables import metadata
from custodes.web.app import create_app
from custodes.web.auth import CSRF_FIELD, current_staff, set_credentials
from custodes.web.client import AuthorityKey, RequestSigner, SignedClient
from custodes.web.context import ApiConfig
from custodes.web.problems import install_problem_handlers
from custodes.web.tokens import issue_token
from support import Clock

NOW = datetime(2020, 6, 5, 12, tzinfo=UTC)
PG_ENV = "CUSTODES_TEST_DATABASE_URL"
PASSWORD = "correct horse battery staple"


@dataclass
class World:
    app: FastAPI
    services: Services
    clock: Clock
    totp: dict[str, str]
    key: AuthorityKey
    module_database_url: str

    def client(self) -> TestClient:
        return TestClient(self.app)

    def code(self, staff_id: str) -> str:
        return str(pyotp.TOTP(self.totp[staff_id]).at(self.clock()))

    def login(self, staff_id: str, client: TestClient | None = None) -> tuple[TestClient, str]:
        client = client or self.client()
        body = {"staff_id": staff_id, "password": PASSWORD, "totp": self.code(staff_id)}
        r = client.post("/v1/staff/session", json=body)
        assert r.status_code == 200, r.text
        self.clock.now += timedelta(seconds=30)  # the next login needs the next TOTP step
        return client, str(r.json()["csrf_token"])

    def bearer(self, staff_id: str) -> dict[str, str]:
        new = issue_token(self.services, ApiConfig(), staff_id, "tests", timedelta(days=1))
        return {"Authorization": f"Bearer {new.bearer}"}


@pytest.fixture(scope="module")
def world(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("data")
    init_data_dir(data, "staff.test/log")
    build_reference_platform(data / "platform.db", accounts=120, region_accounts=10)
    dep: Deployment = open_deployment(load_settings(data, database_url=module_database_url))
    clock = Clock(NOW)
    platform = ReferencePlatform(data / "platform.db")
    services = Services(dep.store, dep.ledger, load_pack(), platform, clock=clock)
    totp = {}
    register_staff(services, Staff("root", frozenset({"admin"}), "IE"), by=None)
    totp["root"] = set_credentials(services, "root", PASSWORD)
    key = AuthorityKey.generate("us-fbi")
    authority = Authority(
        "us-fbi", "FBI", AuthorityKind.POLICE, "US", keys=(key.verification_key(),)
    )
    register_authority(services, authority, by="root")
    app = create_app(dep, services=services, config=ApiConfig(staff_rate=10_000))
    yield World(app, services, clock, totp, key, module_database_url)
    platform.close()
    dep.close()


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def test_login_needs_the_password_and_a_fresh_totp_code(world: World) -> None:
    client = world.client()
    code = world.code("root")
    for staff_id, password, totp in (
        ("root", "wrong password, long enough", code),
        ("root", PASSWORD, "000000" if code != "000000" else "111111"),
        ("nobody", PASSWORD, code),
    ):
        r = client.post("/v1/staff/session", json={"staff_id": staff_id, "password": password,
                                                    "totp": totp})  # fmt: skip
        assert r.status_code == 401 and r.json()["code"] == "login_failed"
        assert r.json()["detail"] == "wrong staff id, password or code"
    client, csrf = world.login("root")
    me = client.get("/v1/staff/session").json()
    assert me["staff"] == {"id": "root", "roles": ["admin"], "location": "IE"}
    assert me["via"] == "session" and me["csrf_token"] == csrf
    world.clock.now -= timedelta(seconds=30)  # the same code again, within its step
    r = world.client().post("/v1/staff/session", json={"staff_id": "root", "password": PASSWORD,
                                                        "totp": world.code("root")})  # fmt: skip
    assert r.status_code == 401 and r.json()["code"] == "login_failed"
    world.clock.now += timedelta(seconds=30)


def test_the_session_cookie_is_httponly_and_strict(world: World) -> None:
    client = world.client()
    body = {"staff_id": "root", "password": PASSWORD, "totp": world.code("root")}
    cookie = client.post("/v1/staff/session", json=body).headers["set-cookie"]
    world.clock.now += timedelta(seconds=30)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


def test_a_session_changes_nothing_without_its_csrf_token(world: World) -> None:
    client, csrf = world.login("root")
    body = {"label": "automation"}
    for headers in (
        {},
        {"X-CSRF-Token": "forged"},
        {"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    ):
        r = client.post("/v1/staff/tokens", json=body, headers={**headers, **_key()})
        assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    assert client.get("/v1/staff/tokens").json() == []
    r = client.post("/v1/staff/tokens", json=body, headers={"X-CSRF-Token": csrf, **_key()})
    assert r.status_code == 201


def test_a_console_form_carries_the_csrf_token_as_a_field(world: World) -> None:
    """The console posts forms: the token comes as the csrf_token field."""
    app = FastAPI()
    app.state.services, app.state.api_config = world.services, ApiConfig(staff_rate=10_000)
    install_problem_handlers(app)

    @app.post("/form")
    async def form(request: Request, staff: Staff = Depends(current_staff)) -> dict[str, str]:  # noqa: B008
        return {"staff": staff.id, "note": str((await request.form()).get("note"))}

    login = world.client()
    _, csrf = world.login("root", login)
    client = TestClient(app)
    client.cookies = login.cookies
    ok = client.post("/form", data={CSRF_FIELD: csrf, "note": "hello"})
    assert ok.status_code == 200 and ok.json() == {"staff": "root", "note": "hello"}
    refused = client.post("/form", data={CSRF_FIELD: "wrong", "note": "hello"})
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"


def test_a_session_ends_idle_at_its_maximum_age_and_at_logout(world: World) -> None:
    client, csrf = world.login("root")
    world.clock.now += timedelta(minutes=31)
    r = client.get("/v1/staff/session")
    assert r.status_code == 401 and r.json()["code"] == "session_expired"
    client, csrf = world.login("root")
    for _ in range(25):  # used every 29 minutes, it still ends after 12 hours
        world.clock.now += timedelta(minutes=29)
        last = client.get("/v1/staff/session")
    assert last.status_code == 401 and last.json()["code"] == "session_expired"
    client, csrf = world.login("root")
    assert client.delete("/v1/staff/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/v1/staff/session").json()["code"] == "unauthenticated"


def test_an_api_token_is_shown_once_acts_as_its_holder_and_can_be_revoked(world: World) -> None:
    client, csrf = world.login("root")
    headers = {"X-CSRF-Token": csrf, "Idempotency-Key": "token-1"}
    first = client.post("/v1/staff/tokens", json={"label": "ci", "ttl_hours": 2}, headers=headers)
    assert first.status_code == 201 and first.json()["token"].startswith("cst_")
    again = client.post("/v1/staff/tokens", json={"label": "ci", "ttl_hours": 2}, headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "shown_once"
    bearer = {"Authorization": f"Bearer {first.json()['token']}"}
    robot = world.client()
    assert robot.get("/v1/staff/session", headers=bearer).json()["via"] == "token"
    listed = robot.get("/v1/staff/tokens", headers=bearer).json()
    assert first.json()["id"] in [t["id"] for t in listed] and all("token" not in t for t in listed)
    world.clock.now += timedelta(hours=3)
    assert robot.get("/v1/staff/session", headers=bearer).status_code == 401
    fresh = world.bearer("root")
    token_id = fresh["Authorization"].split()[1].split(".")[0]
    assert robot.delete(f"/v1/staff/tokens/{token_id}", headers=fresh).status_code == 200
    assert robot.get("/v1/staff/session", headers=fresh).status_code == 401
    for bad in ("Bearer cst_nonsense", "Basic cm9vdDpyb290", "Bearer " + "x" * 500):
        r = robot.get("/v1/staff/session", headers={"Authorization": bad})
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


def test_a_password_is_changed_only_with_the_current_one(world: World) -> None:
    s = world.services
    register_staff(s, Staff("pw", frozenset({"auditor"}), "IE"), by="root")
    world.totp["pw"] = set_credentials(s, "pw", PASSWORD)
    client, csrf = world.login("pw")
    headers = {"X-CSRF-Token": csrf}
    r = client.post("/v1/staff/password", json={"current": "not it at all", "new": "x" * 20},
                    headers={**headers, **_key()})  # fmt: skip
    assert r.status_code == 401 and r.json()["code"] == "login_failed"
    r = client.post("/v1/staff/password", json={"current": PASSWORD, "new": "short"},
                    headers={**headers, **_key()})  # fmt: skip
    assert r.status_code == 400 and r.json()["code"] == "weak_password"
    r = client.post("/v1/staff/password", json={"current": PASSWORD, "new": "a new passphrase"},
                    headers={**headers, **_key()})  # fmt: skip
    assert r.status_code == 204
    body = {"staff_id": "pw", "password": "a new passphrase", "totp": world.code("pw")}
    assert world.client().post("/v1/staff/session", json=body).status_code == 200
    world.clock.now += timedelta(seconds=30)


def test_login_attempts_are_limited_per_staff_id(world: World) -> None:
    limited = create_app(world.app.state.deployment, services=world.services,
                         config=replace(ApiConfig(), login_rate=3))  # fmt: skip
    world.clock.now += timedelta(hours=1)
    body = {"staff_id": "nobody-at-all", "password": "wrong wrong wrong", "totp": "123456"}
    client = TestClient(limited)
    codes = [client.post("/v1/staff/session", json=body).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert client.post("/v1/staff/session", json=body).headers["retry-after"].isdigit()


def test_a_staff_member_over_their_rate_is_told_when_to_retry(world: World) -> None:
    limited = create_app(world.app.state.deployment, services=world.services,
                         config=replace(ApiConfig(), staff_rate=2))  # fmt: skip
    world.clock.now += timedelta(hours=1)
    bearer = world.bearer("root")
    client = TestClient(limited)
    codes = [client.get("/v1/staff/session", headers=bearer).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_a_revoked_role_is_gone_from_every_open_credential(world: World) -> None:
    root = world.bearer("root")
    admin = world.client()
    r = admin.post("/v1/staff/members", headers={**root, **_key()}, json={
        "id": "temp", "roles": ["admin"], "location": "IE", "password": PASSWORD})  # fmt: skip
    assert r.status_code == 201 and r.json()["totp_uri"].startswith("otpauth://totp/")
    temp = world.bearer("temp")
    assert admin.get("/v1/staff/members", headers=temp).status_code == 200
    r = admin.post("/v1/staff/members/temp/roles", json={"role": "auditor"},
                   headers={**root, **_key()})  # fmt: skip
    assert r.json()["roles"] == ["admin", "auditor"]
    assert admin.delete("/v1/staff/members/temp/roles/admin", headers=root).status_code == 200
    r = admin.get("/v1/staff/members", headers=temp)
    assert r.status_code == 403 and r.json()["rules"] == ["staff.manage.default_deny"]


def test_registries_page_by_id(world: World) -> None:
    root, client = world.bearer("root"), world.client()
    for i in range(5):
        register_staff(world.services, Staff(f"page-{i}", frozenset({"auditor"}), "DE"), by="root")
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/staff/members", headers=root, params=params).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) >= 5


def test_a_demand_typed_in_by_intake_goes_from_screening_to_production(world: World) -> None:
    root, client = world.bearer("root"), world.client()
    people = (("in", "intake", "IE"), ("ap1", "approver", "IE"), ("ap2", "approver", "DE"),
              ("cu", "data_custodian", "IE"))  # fmt: skip
    for sid, role, place in people:
        member = {"id": sid, "roles": [role], "location": place, "password": PASSWORD}
        client.post("/v1/staff/members", headers={**root, **_key()}, json=member)
    identity = pyrage.x25519.Identity.generate()
    r = client.put("/v1/staff/authorities/us-fbi/recipient", headers=root,
                   json={"recipient": str(identity.to_public())})  # fmt: skip
    assert r.status_code == 200
    intake, ap1, ap2, cu = (world.bearer(s) for s in ("in", "ap1", "ap2", "cu"))
    document = b"%PDF a warrant that came by post"
    r = client.post("/v1/staff/documents", content=document, headers={**intake, **_key()})
    assert r.status_code == 201
    demand = {"kind": "disclosure", "targets": [{"kind": "account", "id": "u-us-content"}],
              "instrument": {"kind": "search_warrant", "reference": "2:20-mj-7",
                             "document_sha256": hashlib.sha256(document).hexdigest()},
              "categories": ["subscriber_info"], "offence": {"category": "fraud"},
              "time_range": {"start": "2020-03-01T00:00:00Z",
                             "end": "2020-06-01T00:00:00Z"}}  # fmt: skip
    typed = {"authority_id": "us-fbi", "signature": "valid", "demand": demand}
    r = client.post("/v1/staff/demands", headers={**intake, **_key()}, json=typed)
    assert r.status_code == 201 and r.json()["state"] == "received"
    assert r.json()["intake_staff"] == "in"
    path = f"/v1/staff/demands/{r.json()['id']}"
    steps: list[tuple[dict[str, str], str, dict[str, Any] | None, str]] = [
        (intake, "/screening", None, "in_review"),
        (ap1, "/approvals", {"reason": "the warrant is in order"}, "in_review"),
        (ap2, "/approvals", {"reason": "the warrant is in order"}, "in_review"),
        (ap1, "/decision", {"reason": "approved under dual control"}, "approved"),
        (cu, "/production", {}, "executed"),
    ]
    for who, step, body, state in steps:
        r = client.post(path + step, json=body, headers={**who, **_key()})
        assert r.status_code == 200 and r.json()["state"] == state, r.text
    shown = client.get(path, headers=ap1).json()
    assert shown["approvers"] == ["ap1", "ap2"]
    assert [h["kind"] for h in shown["history"]][-3:] == [
        "demand.approved", "production.delivered", "demand.executed"]  # fmt: skip
    authority = SignedClient(client, RequestSigner(world.key, world.clock), "http://testserver")
    package = authority.get(shown["productions"][0]["href"])
    assert package.status_code == 200 and pyrage.decrypt(package.content, [identity])


def test_an_approver_may_not_approve_twice_nor_the_intake_person_at_all(world: World) -> None:
    root, client = world.bearer("root"), world.client()
    for sid, roles in (("both", ["intake", "approver"]), ("twice", ["approver"])):
        member = {"id": sid, "roles": roles, "location": "IE", "password": PASSWORD}
        client.post("/v1/staff/members", headers={**root, **_key()}, json=member)
    both, twice = world.bearer("both"), world.bearer("twice")
    document = b"%PDF a preservation request"
    client.post("/v1/staff/documents", content=document, headers={**both, **_key()})
    demand = {"kind": "preservation", "targets": [{"kind": "account", "id": "u-us-content"}],
              "instrument": {"kind": "preservation_request", "reference": "P-9",
                             "document_sha256": hashlib.sha256(document).hexdigest()},
              "categories": ["subscriber_info"], "offence": {"category": "fraud"}}  # fmt: skip
    typed = {"authority_id": "us-fbi", "signature": "valid", "demand": demand}
    r = client.post("/v1/staff/demands", headers={**both, **_key()}, json=typed)
    path = f"/v1/staff/demands/{r.json()['id']}"
    r = client.post(path + "/screening", headers={**both, **_key()})
    assert r.json()["state"] == "in_review", r.text
    r = client.post(path + "/approvals", json={"reason": "mine"}, headers={**both, **_key()})
    assert r.status_code == 403 and r.json()["rules"] == ["api.approve_own_intake"]
    r = client.post(path + "/approvals", json={"reason": "ok"}, headers={**twice, **_key()})
    assert r.status_code == 200 and r.json()["approvers"] == ["twice"]
    r = client.post(path + "/approvals", json={"reason": "ok"}, headers={**twice, **_key()})
    assert r.status_code == 403 and r.json()["rules"] == ["api.approve_twice"]
    r = client.post(path + "/decision", json={"reason": "go"}, headers={**twice, **_key()})
    assert r.status_code == 403 and r.json()["missing_approvals"] == 1


def test_the_migration_creates_exactly_the_api_tables(world: World) -> None:
    engine = sa.create_engine(world.module_database_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    ours = set(api_tables.__all__)
    assert ours <= {t.name for t in metadata.sorted_tables}
    assert [d for d in diffs if _table_of(d) in ours] == []


def _table_of(diff: Any) -> str | None:
    if isinstance(diff, list):
        return _table_of(diff[0])
    thing = diff[1] if diff[0] not in ("add_column", "remove_column") else None
    if diff[0].startswith("modify_") or thing is None:
        return str(diff[2])
    if isinstance(thing, sa.Table):
        return str(thing.name)
    table = getattr(thing, "table", None)
    return None if table is None else str(table.name)


def test_admins_register_authorities_and_their_keys(world: World) -> None:
    root, client = world.bearer("root"), world.client()
    key = AuthorityKey.generate("de-bka")
    body = {"id": "de-bka", "name": "Bundeskriminalamt", "kind": "police", "jurisdiction": "DE",
            "keys": [{"id": key.verification_key().id,
                      "ed25519": base64.b64encode(key.public).decode()}]}  # fmt: skip
    r = client.post("/v1/staff/authorities", json=body, headers={**root, **_key()})
    assert r.status_code == 201 and r.json()["standing"] == "active"
    r = client.post("/v1/staff/authorities/de-bka/suspension", json={"reason": "audit"},
                    headers={**root, **_key()})  # fmt: skip
    assert r.json()["standing"] == "suspended"
    r = client.post("/v1/staff/authorities/de-bka/reinstatement", headers={**root, **_key()})
    assert r.json()["standing"] == "active"
    r = client.delete(f"/v1/staff/authorities/de-bka/keys/{key.verification_key().id}",
                      headers=root)  # fmt: skip
    assert r.status_code == 200 and r.json()["keys"] == []
    r = client.post("/v1/staff/authorities", json={**body, "id": "x", "jurisdiction": "XX-TOOLONG"},
                    headers={**root, **_key()})  # fmt: skip
    assert r.status_code == 422 and r.json()["code"] == "validation"


def test_admins_add_and_remove_an_authoritys_call_back_channels(world: World) -> None:
    root, client = world.bearer("root"), world.client()
    path = "/v1/staff/authorities/us-fbi/channels"
    mail = {"kind": "email", "address": "duty@fbi.example"}
    once = _key()
    size = world.services.ledger.size()
    r = client.post(path, json=mail, headers={**root, **once})
    assert r.status_code == 201, r.text
    [channel] = r.json()["channels"]
    assert channel["kind"] == "email" and channel["address"] == "duty@fbi.example"
    assert re.fullmatch(r"email-[0-9a-f]{16}", channel["id"])
    assert client.post(path, json=mail, headers={**root, **once}).json() == r.json()
    assert world.services.ledger.size() == size + 1, "a retry is answered, not done again"
    refused = [
        (client.post(path, json=mail, headers={**root, **_key()}), 409, "conflict"),
        (client.post(path, json=mail, headers=root), 400, "idempotency_key_missing"),
        (client.post(path, json={**mail, "kind": "fax"}, headers={**root, **_key()}), 422,
         "validation"),
        (client.post("/v1/staff/authorities/xx-none/channels", json=mail,
                     headers={**root, **_key()}), 404, "not_found"),
        (client.delete(f"{path}/phone-0000000000000000", headers=root), 404, "not_found"),
    ]  # fmt: skip
    for answer, status, code in refused:
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == code
    assert world.services.ledger.size() == size + 1, "a refusal changes nothing"
    r = client.delete(f"{path}/{channel['id']}", headers=root)
    assert r.status_code == 200 and r.json()["channels"] == []
    assert client.delete(f"{path}/{channel['id']}", headers=root).status_code == 404
