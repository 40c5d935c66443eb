"""The authority API end to end, on both backends: submit, upload, status, pages, amend,
withdraw, download; idempotency, rate limits, and bad input that changes nothing."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyrage
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Served
from custodes.cli.log import app as log_app
from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.events import parse_event
from custodes.events.leaf import Event
from custodes.model import Authority, AuthorityKind, Staff
from custodes.platform import ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services, screening
from custodes.service.authorities import (
    get_authority,
    register_authority,
    reinstate_authority,
    suspend_authority,
)
from custodes.service.package import open_package
from custodes.service.production import produce, register_recipient
from custodes.service.review import approve, decide
from custodes.service.staff import register_staff
from custodes.settings import load_settings
from custodes.store.demand_tables import demands
from custodes.web.app import create_app
from custodes.web.client import AuthorityKey, RequestSigner, SignedClient
from custodes.web.context import ApiConfig
from support import Clock, run_threads

NOW = datetime(2020, 6, 5, 12, tzinfo=UTC)
BASE = "http://testserver"
PG_ENV = "CUSTODES_TEST_DATABASE_URL"
DOCUMENT = b"%PDF-1.7 search warrant 2:20-mj-0042, signed"


@dataclass
class World:
    app: FastAPI
    services: Services
    clock: Clock
    http: TestClient
    keys: dict[str, AuthorityKey]
    identity: pyrage.x25519.Identity
    deployment: Deployment

    def authority(self, authority_id: str) -> SignedClient:
        return SignedClient(self.http, RequestSigner(self.keys[authority_id], self.clock), BASE)

    def events_since(self, start: int) -> list[Event]:
        ledger = self.services.ledger
        return [parse_event(e) for e in ledger.entries(start, ledger.size())]

    def demand_count(self) -> int:
        with self.services.store.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(demands)).scalar_one())


@pytest.fixture(scope="module")
def world(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("data")
    init_data_dir(data, "api.test/log")
    build_reference_platform(data / "platform.db", accounts=120, region_accounts=10)
    dep: Deployment = open_deployment(load_settings(data, database_url=served.database_url))
    clock = Clock(NOW)
    platform = ReferencePlatform(data / "platform.db")
    services = Services(dep.store, dep.ledger, load_pack(), platform, clock=clock)
    register_staff(services, Staff("admin", frozenset({"admin"}), "IE"), by=None)
    for member in (
        Staff("a1", frozenset({"approver"}), "IE"),
        Staff("a2", frozenset({"approver"}), "DE"),
        Staff("cust", frozenset({"data_custodian"}), "IE"),
    ):
        register_staff(services, member, by="admin")
    keys = {}
    for aid, name, place in (
        ("us-fbi", "FBI", "US"),
        ("gb-met", "Met", "GB"),
        ("us-dea", "DEA", "US"),
    ):
        keys[aid] = AuthorityKey.generate(aid)
        authority = Authority(
            aid, name, AuthorityKind.POLICE, place, keys=(keys[aid].verification_key(),)
        )
        register_authority(services, authority, by="admin")
    identity = pyrage.x25519.Identity.generate()
    register_recipient(services, "us-fbi", str(identity.to_public()), by="admin")
    config = ApiConfig(authority_rate=10_000)
    app = create_app(dep, services=services, config=config, direct=served.direct)
    with TestClient(app) as http:
        yield World(app, services, clock, http, keys, identity, dep)
    platform.close()
    dep.close()


def disclosure(**instrument: str) -> dict[str, Any]:
    return {
        "kind": "disclosure",
        "instrument": {"kind": "search_warrant", "reference": "2:20-mj-0042", **instrument},
        "targets": [{"kind": "account", "id": "u-us-content"}],
        "categories": ["subscriber_info"],
        "offence": {"category": "fraud"},
        "time_range": {"start": "2020-03-01T00:00:00Z", "end": "2020-06-01T00:00:00Z"},
    }


def _upload(client: SignedClient, document: bytes = DOCUMENT) -> str:
    r = client.request("POST", "/v1/documents", content=document)
    assert r.status_code == 201, r.text
    assert r.json() == {"sha256": hashlib.sha256(document).hexdigest(), "size": len(document)}
    return str(r.json()["sha256"])


def _submit(world: World, authority: str = "us-fbi") -> dict[str, Any]:
    client = world.authority(authority)
    sha = _upload(client)
    r = client.post_json("/v1/demands", disclosure(document_sha256=sha))
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_a_signed_demand_is_recorded_screened_and_answered(world: World) -> None:
    start = world.services.ledger.size()
    status = _submit(world)
    assert status["state"] == "in_review" and status["version"] == 1
    assert status["reasons"] == [] and status["productions"] == []
    kinds = [e.kind for e in world.events_since(start)]
    assert kinds == ["demand.received", "demand.screened", "demand.review_opened"]
    received = world.events_since(start)[0]
    assert (
        received.facts["signature"] == "valid" and received.facts["authority_jurisdiction"] == "US"
    )
    again = world.authority("us-fbi").get(f"/v1/demands/{status['id']}")
    assert again.status_code == 200 and again.json() == status | {"log": again.json()["log"]}
    assert status["log"] is None  # the log entries are given by GET /v1/demands/{id}


def test_an_authority_gets_the_log_entries_of_its_demand_and_checks_them(
    world: World, tmp_path: Path
) -> None:
    start = world.services.ledger.size()
    demand_id = _submit(world)["id"]
    world.deployment.sequencer.integrate()  # sign a checkpoint that covers them
    status = world.authority("us-fbi").get(f"/v1/demands/{demand_id}").json()
    kinds = ["demand.received", "demand.screened", "demand.review_opened"]
    assert [e["kind"] for e in status["log"]] == kinds
    assert [e["index"] for e in status["log"]] == [start, start + 1, start + 2]
    for e in status["log"]:
        entry = world.http.get(e["entry"])  # public: no signature needed
        assert entry.status_code == 200
        assert entry.content == world.services.ledger.entries(e["index"], e["index"] + 1)[0]
        assert parse_event(entry.content).demand == demand_id
        (tmp_path / str(e["index"])).write_bytes(entry.content)
        receipt = world.http.get(e["receipt"])
        assert receipt.status_code == 200
        (tmp_path / f"{e['index']}.tlog-proof").write_bytes(receipt.content)
    receipts = [str(tmp_path / f"{e['index']}.tlog-proof") for e in status["log"]]
    checked = CliRunner().invoke(log_app, ["check", *receipts, "--vkey", world.deployment.vkey])
    assert checked.exit_code == 0, checked.output
    assert "3 of 3 receipt(s) verified" in checked.output


def test_the_document_cited_must_have_been_uploaded(world: World) -> None:
    client = world.authority("us-fbi")
    before = world.demand_count()
    r = client.post_json("/v1/demands", disclosure(document_sha256="ab" * 32))
    assert r.status_code == 409 and r.json()["code"] == "document_not_uploaded"
    assert world.demand_count() == before
    other = world.authority("gb-met")  # a document uploaded by someone else does not count
    _upload(other, b"a document of the Met")
    sha = hashlib.sha256(b"a document of the Met").hexdigest()
    r = client.post_json("/v1/demands", disclosure(document_sha256=sha))
    assert r.status_code == 409 and world.demand_count() == before


def test_a_submission_is_screened_with_its_authoritys_volume(world: World) -> None:
    # The volume is read with the cited document, or alone when none is cited.
    window = world.services.pack.tables.limits.volume_window_days
    client = world.authority("us-fbi")
    for cited in (True, False):
        start = world.services.ledger.size()
        body = disclosure(document_sha256=_upload(client)) if cited else disclosure()
        r = client.post_json("/v1/demands", body)
        assert r.status_code == 201, r.text
        [screened] = [e for e in world.events_since(start) if e.kind == "demand.screened"]
        since = world.clock() - timedelta(days=window)
        with world.services.store.read() as conn:
            total = conn.execute(
                sa.select(sa.func.sum(demands.c.target_count)).where(
                    demands.c.authority_id == "us-fbi", demands.c.received_at >= since
                )
            ).scalar_one()
        assert screened.facts["volume"] == total > 1


def test_a_clarification_is_answered_by_an_amendment(world: World) -> None:
    client = world.authority("us-fbi")
    r = client.post_json("/v1/demands", disclosure())
    assert r.status_code == 201 and r.json()["state"] == "clarification_requested"
    assert [x["rule"] for x in r.json()["reasons"]] == ["requester.no_document"]
    assert all(x["reason"] and x["remedy"] for x in r.json()["reasons"])
    demand_id = r.json()["id"]
    sha = _upload(client)
    r = client.post_json(f"/v1/demands/{demand_id}/amendments", disclosure(document_sha256=sha))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "in_review" and r.json()["version"] == 2
    r = client.post_json(f"/v1/demands/{demand_id}/amendments", disclosure(document_sha256=sha))
    assert r.status_code == 409 and r.json()["code"] == "illegal_transition"


def test_an_authority_withdraws_its_demand(world: World) -> None:
    status = _submit(world)
    client = world.authority("us-fbi")
    r = client.post_json(f"/v1/demands/{status['id']}/withdrawal", {"reason": "case closed"})
    assert r.status_code == 200 and r.json()["state"] == "withdrawn"
    r = client.post_json(f"/v1/demands/{status['id']}/withdrawal", {"reason": "again"})
    assert r.status_code == 409


def test_an_authority_sees_only_its_own_demands(world: World) -> None:
    status = _submit(world)
    met = world.authority("gb-met")
    for method, path, body in (
        ("GET", f"/v1/demands/{status['id']}", None),
        ("POST", f"/v1/demands/{status['id']}/withdrawal", {"reason": "not ours"}),
        ("POST", f"/v1/demands/{status['id']}/amendments", disclosure()),
    ):
        content = b"" if body is None else json.dumps(body).encode()
        r = met.request(method, path, content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 404 and r.json()["code"] == "not_found", r.text
    assert all(d["id"] != status["id"] for d in met.get("/v1/demands").json()["items"])


def test_pages_of_demands_are_newest_first_without_repeats(world: World) -> None:
    client = world.authority("us-dea")
    made = []
    for minute in range(5):
        world.clock.now = NOW.replace(minute=minute)
        made.append(_submit(world, "us-dea")["id"])
    world.clock.now = NOW
    seen: list[str] = []
    cursor = None
    while True:
        path = "/v1/demands?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(path).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    r = client.get("/v1/demands?cursor=not-a-cursor")
    assert r.status_code == 400 and r.json()["code"] == "bad_cursor"


def test_a_production_is_downloaded_by_its_authority_only(world: World) -> None:
    status = _submit(world)
    s = world.services
    approve(s, status["id"], by="a1", reason="the warrant is in order")
    approve(s, status["id"], by="a2", reason="the warrant is in order")
    decide(s, status["id"], by="a1", reason="approved")
    made = produce(s, status["id"], by="cust")
    client = world.authority("us-fbi")
    shown = client.get(f"/v1/demands/{status['id']}").json()
    assert shown["state"] == "executed"
    assert [p["id"] for p in shown["productions"]] == [made.id]
    r = client.get(shown["productions"][0]["href"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert hashlib.sha256(r.content).hexdigest() == made.package_sha256
    package = open_package(r.content, str(world.identity))
    assert package.manifest_sha256 == made.manifest_sha256
    r = world.authority("us-dea").get(f"/v1/productions/{made.id}")
    assert r.status_code == 404


def test_a_retry_with_the_same_idempotency_key_is_answered_once(world: World) -> None:
    client = world.authority("us-fbi")
    sha = _upload(client)
    body = disclosure(document_sha256=sha)
    before = world.demand_count()
    first = client.post_json("/v1/demands", body, idempotency_key="retry-1")
    second = client.post_json("/v1/demands", body, idempotency_key="retry-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    assert world.demand_count() == before + 1
    changed = client.post_json(
        "/v1/demands", {**body, "categories": ["content"]}, idempotency_key="retry-1"
    )
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused"
    headers = {"Content-Type": "application/json", "Idempotency-Key": ""}
    bare = client.request("POST", "/v1/demands", content=json.dumps(body).encode(), headers=headers)
    assert bare.status_code == 400 and bare.json()["code"] == "idempotency_key_missing"
    assert world.demand_count() == before + 1


def test_demands_submitted_together_each_keep_their_own_answer(world: World) -> None:
    """Submissions that arrive together are stored in one group commit, their answers kept
    together: a retry of each gets its own answer back, and nothing is stored twice."""
    sha = _upload(world.authority("us-fbi"))
    body = disclosure(document_sha256=sha)
    before = world.demand_count()
    n = 8
    start = threading.Barrier(n)
    first: dict[int, Any] = {}

    def submit(i: int) -> None:
        with TestClient(world.app) as http:
            client = SignedClient(http, RequestSigner(world.keys["us-fbi"], world.clock), BASE)
            start.wait(timeout=10)
            first[i] = client.post_json("/v1/demands", body, idempotency_key=f"together-{i}")

    run_threads(submit, range(n), timeout=60)
    assert sorted(first) == list(range(n))
    assert {r.status_code for r in first.values()} == {201}
    assert len({r.json()["id"] for r in first.values()}) == n
    assert world.demand_count() == before + n
    client = world.authority("us-fbi")
    for i, r in first.items():
        again = client.post_json("/v1/demands", body, idempotency_key=f"together-{i}")
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.json() == r.json() and again.headers["location"] == r.headers["location"]
    assert world.demand_count() == before + n


def _suspending(world: World, monkeypatch: pytest.MonkeyPatch, authority: str) -> None:
    """From now on, judging a demand first suspends ``authority`` if it is active."""
    judge = screening._judge

    def judge_then_suspend(*args: Any, **kwargs: Any) -> Any:
        judged = judge(*args, **kwargs)
        if get_authority(world.services, authority).is_active:
            suspend_authority(world.services, authority, by="admin", reason="an audit")
        return judged

    monkeypatch.setattr(screening, "_judge", judge_then_suspend)


def test_an_answer_given_after_the_one_transaction_failed_is_kept(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The authority is suspended between the admission and the storing of its demand
    (sent with a charset, the request is admitted first and then stored, step by step): the
    one transaction fails, receiving then screening refuse the demand, and a retry with the
    same key gets that answer."""
    client = world.authority("us-dea")
    body = json.dumps(disclosure(document_sha256=_upload(client))).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    _suspending(world, monkeypatch, "us-dea")
    first = client.request(
        "POST", "/v1/demands", content=body, headers=headers, idempotency_key="suspended-1"
    )
    monkeypatch.undo()
    reinstate_authority(world.services, "us-dea", by="admin")
    assert first.status_code == 201 and first.json()["state"] == "refused"
    second = client.request(
        "POST", "/v1/demands", content=body, headers=headers, idempotency_key="suspended-1"
    )
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"


def test_an_authority_suspended_before_its_demand_is_stored_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A demand is admitted in the transaction that stores it: the authority suspended while
    it was judged is refused on its record as stored then, nothing of the request is kept,
    and its key is free for a retry once the authority is reinstated."""
    client = world.authority("us-dea")
    body = disclosure(document_sha256=_upload(client))
    before, start = world.demand_count(), world.services.ledger.size()
    _suspending(world, monkeypatch, "us-dea")
    first = client.post_json("/v1/demands", body, idempotency_key="suspended-2")
    monkeypatch.undo()
    assert first.status_code == 403 and first.json()["code"] == "forbidden"
    assert world.demand_count() == before
    kinds = [(e.kind, e.facts.get("error_code")) for e in world.events_since(start)]
    assert kinds[-1] == ("request.refused", "forbidden")
    reinstate_authority(world.services, "us-dea", by="admin")
    second = client.post_json("/v1/demands", body, idempotency_key="suspended-2")
    assert second.status_code == 201 and "idempotent-replayed" not in second.headers
    assert world.demand_count() == before + 1


J = "application/json"
BAD_BODIES: list[tuple[str, bytes, str, int, str]] = [
    ("not-json", b"{not json", J, 400, "bad_input"),
    ("wrong-type", json.dumps({**disclosure(), "targets": "u-1"}).encode(), J, 400, "bad_input"),
    ("unknown-field", json.dumps({**disclosure(), "nondisclousre": {}}).encode(), J, 400,
     "bad_input"),
    ("duplicate-key", b'{"kind": "disclosure", "kind": "restriction"}', J, 400, "bad_input"),
    ("bad-enum", json.dumps({**disclosure(), "kind": "everything"}).encode(), J, 400,
     "bad_input"),
    ("not-an-object", b"[1, 2, 3]", J, 400, "bad_input"),
    ("nan", b'{"kind": NaN}', J, 400, "bad_input"),
    ("form", b"kind=disclosure", "application/x-www-form-urlencoded", 415,
     "unsupported_media_type"),
    ("oversized", b'{"x": "' + b"a" * (4 * 1024 * 1024) + b'"}', J, 413, "too_large"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "media", "status", "code"),
    [b[1:] for b in BAD_BODIES],
    ids=[b[0] for b in BAD_BODIES],
)
def test_bad_input_gets_a_problem_and_changes_nothing(
    world: World, body: bytes, media: str, status: int, code: str
) -> None:
    before, start = world.demand_count(), world.services.ledger.size()
    r = world.authority("us-fbi").request(
        "POST", "/v1/demands", content=body, headers={"Content-Type": media}
    )
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code and r.json()["status"] == status
    assert world.demand_count() == before
    [refused] = world.events_since(start)
    assert refused.kind == "request.refused" and refused.facts["error_code"] == code
    assert refused.facts.get("authority_jurisdiction") == (None if status == 413 else "US")


def test_a_body_streamed_past_the_limit_is_refused_before_it_is_read(world: World) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b" " * (1024 * 1024)

    start = world.services.ledger.size()
    r = world.http.post("/v1/documents", content=b"x" * (17 * 1024 * 1024))
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    r = world.http.post(
        "/v1/demands", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    assert [e.facts["error_code"] for e in world.events_since(start)] == ["too_large", "too_large"]


def test_an_authority_over_its_rate_is_told_when_to_retry(world: World) -> None:
    limited = create_app(
        world.app.state.deployment, services=world.services,
        config=replace(ApiConfig(), authority_rate=3),
    )  # fmt: skip
    client = SignedClient(
        TestClient(limited), RequestSigner(world.keys["gb-met"], world.clock), BASE
    )
    world.clock.now = NOW.replace(hour=13)  # a fresh window
    try:
        codes = [client.get("/v1/demands").status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = client.get("/v1/demands")
        assert r.json()["code"] == "rate_limited" and 1 <= int(r.headers["retry-after"]) <= 60
        world.clock.now = NOW.replace(hour=13, minute=1)
        assert client.get("/v1/demands").status_code == 200
    finally:
        world.clock.now = NOW


def test_submissions_over_the_rate_are_refused_and_store_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A submission is counted in the transaction that stores it: the one over the rate is
    refused, and stores nothing. Once the app knows the authority is over its rate, its
    submissions are refused before they are screened, until the window ends."""
    limited = create_app(
        world.app.state.deployment, services=world.services,
        config=replace(ApiConfig(), authority_rate=2),
    )  # fmt: skip
    world.clock.now = NOW.replace(hour=14)  # a fresh window
    try:
        with TestClient(limited) as http:
            client = SignedClient(http, RequestSigner(world.keys["gb-met"], world.clock), BASE)
            before = world.demand_count()
            answers = [client.post_json("/v1/demands", disclosure()) for _ in range(3)]
            assert [r.status_code for r in answers] == [201, 201, 429]
            assert answers[2].json()["code"] == "rate_limited"
            assert world.demand_count() == before + 2
            judged: list[object] = []
            judge = screening._judge

            def counted(*args: Any, **kwargs: Any) -> Any:
                judged.append(args)
                return judge(*args, **kwargs)

            monkeypatch.setattr(screening, "_judge", counted)
            assert client.post_json("/v1/demands", disclosure()).status_code == 429
            assert judged == []
            world.clock.now = NOW.replace(hour=14, minute=1)  # the next window
            assert client.post_json("/v1/demands", disclosure()).status_code == 201
            assert len(judged) == 1
    finally:
        world.clock.now = NOW


def test_a_suspended_authority_is_refused_and_the_refusal_logged(world: World) -> None:
    s = world.services
    key = AuthorityKey.generate("cn-mps")
    register_authority(
        s, Authority("cn-mps", "MPS", AuthorityKind.POLICE, "CN", keys=(key.verification_key(),)),
        by="admin",
    )  # fmt: skip
    suspend_authority(s, "cn-mps", by="admin", reason="requests outside any legal process")
    start = s.ledger.size()
    client = SignedClient(world.http, RequestSigner(key, world.clock), BASE)
    r = client.post_json("/v1/demands", disclosure())
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert r.json()["rules"] == ["demand.submit.default_deny"]
    [refused] = world.events_since(start)
    assert refused.facts == {"error_code": "forbidden", "authority_jurisdiction": "CN"}


def test_a_request_refused_before_it_ran_leaves_its_key_free(world: World) -> None:
    client = world.authority("us-fbi")
    body = json.dumps(disclosure(document_sha256=_upload(client))).encode()
    wrong = client.request("POST", "/v1/demands", content=body, idempotency_key="free-1",
                           headers={"Content-Type": "text/plain"})  # fmt: skip
    assert wrong.status_code == 415 and wrong.json()["code"] == "unsupported_media_type"
    right = client.request("POST", "/v1/demands", content=body, idempotency_key="free-1",
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert right.status_code == 201 and "idempotent-replayed" not in right.headers
