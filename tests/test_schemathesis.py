"""Property-based tests of the whole API from its OpenAPI document (schemathesis): for inputs
that fit the document and inputs that do not, on both backends, no answer is a server error,
every status code and media type is one the document names. Authority requests are signed
as an authority's system would sign them, staff requests carry a token of a member holding
every role, so generated requests reach past authentication. docs/openapi.json is the app's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from custodes.deployment import init_data_dir, open_deployment
from custodes.model import Authority, AuthorityKind, Staff
from custodes.platform import ReferencePlatform, build_reference_platform
from custodes.policy import load_pack
from custodes.service import Services
from custodes.service.authorities import register_authority
from custodes.service.staff import register_staff
from custodes.settings import load_settings
from custodes.web.app import create_app
from custodes.web.client import AuthorityKey, RequestSigner
from custodes.web.context import ApiConfig
from custodes.web.openapi import openapi_text
from custodes.web.tokens import issue_token

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2020, 6, 5, 12, tzinfo=UTC)
PG_ENV = "CUSTODES_TEST_DATABASE_URL"
BASE = "http://testserver"
EXAMPLES = 4
"""Examples per operation and mode: 51 operations x 2 modes x 4 per backend, under a minute."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


@dataclass
class World:
    app: FastAPI
    http: TestClient
    signer: RequestSigner
    bearer: str


@pytest.fixture(scope="module")
def world(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("data")
    init_data_dir(data, "fuzz.test/log")
    build_reference_platform(data / "platform.db", accounts=40, region_accounts=5)
    dep = open_deployment(load_settings(data, database_url=module_database_url))
    platform = ReferencePlatform(data / "platform.db")
    pack = load_pack()
    services = Services(dep.store, dep.ledger, pack, platform, clock=lambda: NOW)
    every_role = frozenset(pack.tables.roles)
    register_staff(services, Staff("fuzz", every_role, "IE"), by=None)
    key = AuthorityKey.generate("us-fbi")
    authority = Authority(
        "us-fbi", "FBI", AuthorityKind.POLICE, "US", keys=(key.verification_key(),)
    )
    register_authority(services, authority, by="fuzz")
    config = ApiConfig(authority_rate=1_000_000, staff_rate=1_000_000, login_rate=1_000_000)
    token = issue_token(services, config, "fuzz", "schemathesis", timedelta(days=1)).bearer
    app = create_app(dep, services=services, config=config)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield World(app, http, RequestSigner(key, lambda: NOW), token)
    platform.close()
    dep.close()


def _send(world: World, case: Any) -> Any:
    """Send ``case`` as a client of its kind would: signed, or with the staff token."""
    kw = case.as_transport_kwargs(base_url=BASE)
    headers = {k: str(v) for k, v in (kw.get("headers") or {}).items()}
    if "json" in kw:
        body = json.dumps(kw["json"]).encode()
    else:
        raw = kw.get("data", b"")
        body = raw.encode() if isinstance(raw, str) else bytes(raw or b"")
    request = httpx.Request(kw["method"], kw["url"], params=kw.get("params"), content=body)
    path = request.url.path
    headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
    if path.startswith("/v1/staff/"):
        headers["Authorization"] = f"Bearer {world.bearer}"
    elif path.startswith("/v1/"):
        headers.update(world.signer.headers_for(kw["method"], str(request.url), body, headers))
    return world.http.request(kw["method"], str(request.url), content=body, headers=headers)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_no_undocumented_answer(world: World, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_dict(world.app.openapi())
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) >= 40
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            response = _send(world, case)
            case.validate_response(response, checks=CHECKS)

        check()


def test_docs_openapi_json_is_the_apps_document(world: World) -> None:
    kept = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert kept == openapi_text(world.app), (
        "docs/openapi.json is stale: run `python -m custodes.web.openapi > docs/openapi.json`"
    )
    served = world.http.get("/openapi.json")
    assert served.status_code == 200 and served.json() == json.loads(kept)
