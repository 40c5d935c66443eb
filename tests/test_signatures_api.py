"""The signature suite through the HTTP API, on both backends: each way a request can be
wrongly signed is refused with its problem code, logged as ``request.refused``, and changes
nothing; replays are caught across two server processes sharing the database."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from conftest import Served
from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.errors import RateLimitError
from custodes.events import parse_event
from custodes.events.leaf import Event
from custodes.ledger import Ledger
from custodes.model import Authority, AuthorityKind, Staff
from custodes.platform import ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services
from custodes.service.authorities import (
    add_key,
    register_authority,
    reinstate_authority,
    stored_record,
    suspend_authority,
)
from custodes.service.staff import register_staff
from custodes.settings import load_settings
from custodes.store import open_store
from custodes.store.api_tables import api_idempotency, api_nonces, api_rate_windows
from custodes.store.demand_tables import demands
from custodes.web.app import create_app
from custodes.web.client import AuthorityKey, RequestSigner
from custodes.web.context import ApiConfig
from custodes.web.idempotency import IdempotentCall
from custodes.web.intake import _admit
from custodes.web.limits import count_many, count_request, window_start
from custodes.web.signatures import SignatureReplayedError, SignedParts, Verified, sign_request
from custodes.web.staff_admin import revoke_authority_key

NOW = datetime(2020, 6, 5, 12, tzinfo=UTC)
URL = "http://testserver/v1/demands"
PG_ENV = "CUSTODES_TEST_DATABASE_URL"
BODY = json.dumps(
    {
        "kind": "preservation",
        "instrument": {"kind": "preservation_request", "reference": "P-1"},
        "targets": [{"kind": "account", "id": "u-us-content"}],
        "categories": ["subscriber_info"],
    }
).encode()
JSON = {"content-type": "application/json"}


@dataclass
class World:
    deployment: Deployment
    services: Services
    http: TestClient
    key: AuthorityKey
    database_url: str

    def send(self, headers: dict[str, str], body: bytes = BODY) -> tuple[int, dict[str, object]]:
        r = self.http.post("/v1/demands", content=body, headers=headers)
        assert r.headers["content-type"].startswith(
            "application/problem+json" if r.status_code >= 400 else "application/json"
        )
        return r.status_code, r.json()

    def events_since(self, start: int) -> list[Event]:
        ledger = self.services.ledger
        return [parse_event(e) for e in ledger.entries(start, ledger.size())]

    def demand_count(self) -> int:
        with self.services.store.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(demands)).scalar_one())


@pytest.fixture(scope="module")
def world(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("data")
    init_data_dir(data, "sig.test/log")
    build_reference_platform(data / "platform.db", accounts=60, region_accounts=5)
    dep = open_deployment(load_settings(data, database_url=served.database_url))
    platform = ReferencePlatform(data / "platform.db")
    services = Services(dep.store, dep.ledger, load_pack(), platform, clock=lambda: NOW)
    register_staff(services, Staff("admin", frozenset({"admin"}), "IE"), by=None)
    key = AuthorityKey.generate("us-fbi")
    authority = Authority(
        "us-fbi", "FBI", AuthorityKind.POLICE, "US", keys=(key.verification_key(),)
    )
    register_authority(services, authority, by="admin")
    config = ApiConfig(authority_rate=10_000)
    app = create_app(dep, services=services, config=config, direct=served.direct)
    with TestClient(app) as http:
        yield World(dep, services, http, key, served.database_url)
    platform.close()
    dep.close()


def _signed(
    world: World,
    *,
    body: bytes = BODY,
    key: Ed25519PrivateKey | None = None,
    keyid: str | None = None,
    created: datetime = NOW,
    expires: datetime | None = None,
    components: tuple[str, ...] = ("@method", "@target-uri", "content-digest"),
) -> dict[str, str]:
    parts = SignedParts("POST", URL, tuple(JSON.items()))
    signed = sign_request(
        parts, body, key=key or world.key.signing_key(), keyid=keyid or world.key.keyid,
        nonce=uuid.uuid4().hex, created=created, expires=expires, components=components,
    )  # fmt: skip
    return {**JSON, "idempotency-key": uuid.uuid4().hex, **dict(signed)}


def _tampered_body(world: World) -> tuple[dict[str, str], bytes]:
    return _signed(world), BODY.replace(b"P-1", b"P-2")


def _tampered_header(world: World) -> tuple[dict[str, str], bytes]:
    forged = BODY.replace(b"P-1", b"P-2")
    headers = _signed(world)
    headers["content-digest"] = _signed(world, body=forged)["content-digest"]
    return headers, forged


REFUSALS: dict[str, tuple[Callable[[World], tuple[dict[str, str], bytes]], str]] = {
    "unsigned": (lambda w: ({**JSON, "idempotency-key": "u"}, BODY), "signature_missing"),
    "tampered-body": (_tampered_body, "digest_mismatch"),
    "tampered-covered-header": (_tampered_header, "bad_signature"),
    "wrong-key": (lambda w: (_signed(w, key=Ed25519PrivateKey.generate()), BODY), "bad_signature"),
    "unknown-key": (lambda w: (_signed(w, keyid="us-fbi/ed25519:nobody"), BODY), "unknown_key"),
    "created-too-long-ago": (
        lambda w: (_signed(w, created=NOW - timedelta(minutes=10)), BODY), "signature_expired"),
    "expires-passed": (
        lambda w: (_signed(w, created=NOW - timedelta(minutes=2), expires=NOW - timedelta(
            minutes=1)), BODY), "signature_expired"),
    "missing-target-uri": (
        lambda w: (_signed(w, components=("@method", "content-digest")), BODY),
        "signature_incomplete"),
    "missing-content-digest": (
        lambda w: (_signed(w, components=("@method", "@target-uri")), BODY),
        "signature_incomplete"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_wrongly_signed_request_is_refused_logged_and_changes_nothing(
    world: World, case: str
) -> None:
    make, code = REFUSALS[case]
    headers, body = make(world)
    before, start = world.demand_count(), world.services.ledger.size()
    status, problem = world.send(headers, body)
    assert (status, problem["code"]) == (401, code)
    assert problem["type"] == f"https://custodes.dev/problems/{code}"
    assert world.demand_count() == before
    [refused] = world.events_since(start)
    assert refused.kind == "request.refused"
    assert refused.facts == {"error_code": code}  # nobody is named by an unverified request


def test_a_well_signed_request_is_accepted(world: World) -> None:
    status, answer = world.send(_signed(world))
    assert status == 201 and answer["state"] in ("in_review", "refused", "clarification_requested")


def test_a_replayed_request_is_refused(world: World) -> None:
    headers = _signed(world)
    assert world.send(headers)[0] == 201
    before, start = world.demand_count(), world.services.ledger.size()
    headers["idempotency-key"] = uuid.uuid4().hex  # even under a new key: the nonce is spent
    status, problem = world.send(headers)
    assert (status, problem["code"]) == (401, "signature_replayed")
    assert world.demand_count() == before
    [refused] = world.events_since(start)
    assert refused.facts == {"error_code": "signature_replayed", "authority_jurisdiction": "US"}


def test_a_replay_through_another_server_process_is_refused(
    world: World,
) -> None:
    """Two apps with stores of their own over one database stand for two processes."""
    other_store = open_store(world.database_url)
    try:
        other = Services(
            other_store, Ledger(other_store), world.services.pack,
            world.services.platform, clock=lambda: NOW,
        )  # fmt: skip
        with TestClient(create_app(world.deployment, services=other)) as second:
            headers = _signed(world)
            assert world.send(headers)[0] == 201
            r = second.post("/v1/demands", content=BODY, headers=headers)
            assert r.status_code == 401 and r.json()["code"] == "signature_replayed"
    finally:
        other_store.close()


def test_a_revoked_key_is_refused_as_revoked(world: World) -> None:
    spare = AuthorityKey.generate("us-fbi")
    add_key(world.services, "us-fbi", spare.verification_key(), by="admin")
    signer = RequestSigner(spare, lambda: NOW)
    headers = {**JSON, "idempotency-key": "k1", **signer.headers_for("POST", URL, BODY, JSON)}
    assert world.send(headers)[0] == 201
    revoke_authority_key(world.services, "us-fbi", spare.verification_key().id, by="admin")
    headers = {**JSON, "idempotency-key": "k2", **signer.headers_for("POST", URL, BODY, JSON)}
    start = world.services.ledger.size()
    status, problem = world.send(headers)
    assert (status, problem["code"]) == (401, "key_revoked")
    assert [e.facts["error_code"] for e in world.events_since(start)] == ["key_revoked"]
    assert world.send(_signed(world))[0] == 201  # the authority's other key still works


def test_an_authority_suspended_through_another_process_is_refused_at_once(
    world: World,
) -> None:
    """The app remembers the authorities it verified requests of; a suspension made through
    another server process is not told to it, yet its next request of that authority is
    refused, spends nothing and is logged; reinstated, the authority is served again."""
    key = AuthorityKey.generate("us-usms")
    register_authority(world.services, Authority("us-usms", "USMS", AuthorityKind.POLICE, "US",
                       keys=(key.verification_key(),)), by="admin")  # fmt: skip
    signer = RequestSigner(key, lambda: NOW)

    def send(idempotency: str) -> tuple[int, dict[str, object], str]:
        headers = {**JSON, "idempotency-key": idempotency,
                   **signer.headers_for("POST", URL, BODY, JSON)}  # fmt: skip
        nonce = headers["signature-input"].split('nonce="')[1].split('"')[0]
        return (*world.send(headers), nonce)

    assert send("usms-1")[0] == 201  # now remembered by the app
    other_store = open_store(world.database_url)
    try:
        other = Services(other_store, Ledger(other_store), world.services.pack,
                         world.services.platform, clock=lambda: NOW)  # fmt: skip
        suspend_authority(other, "us-usms", by="admin", reason="a court's order")
        start, before = world.services.ledger.size(), world.demand_count()
        status, problem, nonce = send("usms-2")
        assert (status, problem["code"]) == (403, "forbidden")
        assert world.demand_count() == before
        with world.services.store.read() as conn:
            spent = conn.execute(
                sa.select(sa.func.count()).select_from(api_nonces)
                .where(api_nonces.c.nonce == nonce)
            ).scalar_one()  # fmt: skip
        assert spent == 0
        [refused] = world.events_since(start)
        assert refused.facts == {"error_code": "forbidden", "authority_jurisdiction": "US"}
        reinstate_authority(other, "us-usms", by="admin")
        assert send("usms-3")[0] == 201
    finally:
        other_store.close()


def test_a_refusal_tells_the_client_what_to_sign(world: World) -> None:
    r = world.http.post("/v1/demands", content=BODY, headers={**JSON, "idempotency-key": "x"})
    assert r.headers["accept-signature"].startswith(
        'sig1=("@method" "@target-uri" "content-digest")'
    )


def _burst(world: World, authority: Authority, nonces: list[str], limit: int) -> list[str]:
    """Every nonce at the gate at once (same authority, a fresh key each); the outcomes."""
    s, config = world.services, ApiConfig(authority_rate=limit)
    barrier = threading.Barrier(len(nonces))
    outcomes: list[str] = []

    def admit(nonce: str) -> None:
        verified = Verified(f"{authority.id}/k", nonce, NOW, NOW + timedelta(minutes=6))
        once = IdempotentCall(s, "authority:" + authority.id, uuid.uuid4().hex, "f" * 64,
                              NOW, NOW + timedelta(hours=1))  # fmt: skip
        barrier.wait()
        try:
            _admit(s, config, verified, authority, once, record=stored_record(authority))
            outcomes.append("admitted" if once.claimed else "unclaimed")
        except (SignatureReplayedError, RateLimitError) as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=admit, args=(n,)) for n in nonces]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_requests_admitted_together_each_get_their_own_answer(world: World) -> None:
    """Many requests at the gate at once, some replaying another's nonce, more than the
    rate allows: the writer admits them together where it can, and each request still gets
    its own answer. Only the admitted ones spend their nonce, count and claim their key."""
    for rounds in range(6):
        authority = Authority(f"burst-{uuid.uuid4().hex[:8]}", "Burst", AuthorityKind.POLICE, "US")
        register_authority(world.services, authority, by="admin")
        nonces = [uuid.uuid4().hex for _ in range(8 if rounds % 2 else 10)]
        if rounds % 2:  # all different, all within the rate
            assert _burst(world, authority, nonces, limit=8) == ["admitted"] * 8
        else:
            outcomes = _burst(world, authority, nonces + nonces[:2], limit=8)
            assert outcomes.count("admitted") == 8
            assert set(outcomes) - {"admitted"} <= {"rate_limited", "signature_replayed"}
        principal = "authority:" + authority.id
        with world.services.store.read() as conn:
            spent = conn.execute(
                sa.select(sa.func.count()).select_from(api_nonces)
                .where(api_nonces.c.key_id == f"{authority.id}/k")
            ).scalar_one()  # fmt: skip
            counted = conn.execute(
                sa.select(api_rate_windows.c.count).where(api_rate_windows.c.bucket == principal)
            ).scalar_one()
            claimed = conn.execute(
                sa.select(sa.func.count()).select_from(api_idempotency)
                .where(api_idempotency.c.principal == principal)
            ).scalar_one()  # fmt: skip
        assert spent == counted == claimed == 8


def test_counting_together_counts_as_one_by_one_and_forgets_old_windows(world: World) -> None:
    """The gate's merged count and a lone count add to the same windows, and a bucket that
    begins a new window forgets its earlier ones either way."""
    s, window, t = world.services, timedelta(minutes=1), api_rate_windows
    alone, together = f"count-{uuid.uuid4().hex[:8]}", f"count-{uuid.uuid4().hex[:8]}"

    def one(now: datetime, limit: int = 9) -> int:
        return s.store.write(lambda c: count_request(c, alone, limit=limit, window=window, now=now))

    def many(buckets: list[str], now: datetime, limit: int = 9) -> bool:
        return s.store.write(lambda c: count_many(c, buckets, limit=limit, window=window, now=now))

    earlier = NOW - timedelta(minutes=5)
    assert (one(earlier), many([together] * 2, earlier)) == (1, True)
    assert (one(NOW), many([together] * 2, NOW)) == (1, True)
    assert one(NOW) == 2
    assert many([alone, together], NOW, limit=2) is False  # counted: the caller rolls back
    with s.store.read() as conn:
        rows = conn.execute(
            sa.select(t.c.bucket, t.c.window, t.c.count).where(t.c.bucket.in_([alone, together]))
        ).all()
    start = window_start(NOW, window)
    assert sorted(map(tuple, rows)) == sorted([(alone, start, 3), (together, start, 3)])
