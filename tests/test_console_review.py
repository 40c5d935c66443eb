"""The console's staff pages through plain HTTP (no JavaScript): signing in with a TOTP code,
the queue and its filters, a demand's findings and history, and dual control through the review
forms, with their CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from custodes.cli.demo import build_demo
from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.model import (
    DataCategory,
    Demand,
    DemandKind,
    InstrumentKind,
    LegalInstrument,
    Offence,
    SignatureStatus,
    TimeRange,
    new_demand_id,
)
from custodes.platform import EPOCH, FIXTURES
from custodes.service import Services
from custodes.service.demands import get_demand, history, receive_demand
from custodes.service.screening import screen_demand
from custodes.settings import load_settings
from custodes.web.app import create_app
from custodes.web.auth import set_credentials

PASSWORD = "a long passphrase for the demo"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
STAFF = ("s-appr-dub", "s-appr-sjc", "s-rev-ams", "s-intake-dub")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    data = tmp_path_factory.mktemp("console-review")
    init_data_dir(data, "console.test/log")
    with open_deployment(load_settings(Path(data))) as dep:
        build_demo(dep, events=0, seed=2020)
        yield dep


@pytest.fixture(scope="module")
def app_services(deployment: Deployment) -> Iterator[tuple[TestClient, Services]]:
    app = create_app(deployment)
    services: Services = app.state.services
    for staff in STAFF:
        set_credentials(services, staff, PASSWORD, totp_secret=SECRET)
    with TestClient(app) as anonymous:
        yield anonymous, services


def _login_token(page: str) -> str:
    found = re.search(r'name="login_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def _sign_in(client: TestClient, staff: str, code: str) -> Any:
    form = client.get("/console/login")
    return client.post(
        "/console/login",
        data={"login_token": _login_token(form.text), "staff_id": staff, "password": PASSWORD,
              "totp": code, "next": "/console/"},
        follow_redirects=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def signed_in(
    app_services: tuple[TestClient, Services],
) -> Iterator[Callable[[str], TestClient]]:
    """A client signed in as each staff member (each signs in once: a code is good once)."""
    anonymous, _ = app_services
    clients: dict[str, TestClient] = {}

    def client(staff: str) -> TestClient:
        if staff not in clients:
            c = TestClient(anonymous.app)
            r = _sign_in(c, staff, pyotp.TOTP(SECRET).now())
            assert r.status_code == 303, r.text
            clients[staff] = c
        return clients[staff]

    yield client
    for c in clients.values():
        c.close()


def _fresh_demand(services: Services, *, received: datetime | None = None) -> str:
    """A lawful US warrant for a Californian user's content, screened and in review."""
    warrant = LegalInstrument(InstrumentKind.SEARCH_WARRANT, "3:20-mj-70999", "N.D. Cal.")
    demand = Demand(
        new_demand_id(), "us-ndcal", DemandKind.DISCLOSURE, warrant,
        (FIXTURES.us_content_user, FIXTURES.us_person), received or services.clock(),
        categories=(DataCategory.CONTENT, DataCategory.SUBSCRIBER_INFO),
        time_range=TimeRange(EPOCH - timedelta(days=60), EPOCH), offence=Offence("fraud"),
    )  # fmt: skip
    receive_demand(services, demand, signature=SignatureStatus.VALID, document=b"warrant")
    screen_demand(services, demand.id)
    return demand.id


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def _post(client: TestClient, demand_id: str, action: str, **fields: object) -> Any:
    page = client.get(f"/console/demands/{demand_id}")
    data = {"csrf_token": _csrf(page.text), **fields}
    return client.post(f"/console/demands/{demand_id}/{action}", data=data,
                       follow_redirects=False)  # fmt: skip


def _labelled(html: str) -> None:
    ids = set(re.findall(r'<label for="([^"]+)"', html))
    for control in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        if 'type="hidden"' in control or "hidden>" in control or 'type="checkbox"' in control:
            continue
        ident = re.search(r'id="([^"]+)"', control)
        assert ident is not None and ident.group(1) in ids, control


def test_pages_ask_for_a_sign_in_and_come_back(app_services: tuple[TestClient, Services]) -> None:
    client, _ = app_services
    r = client.get("/console/?kind=restriction", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/%3Fkind%3Drestriction"
    form = client.get(r.headers["location"])
    assert 'name="next" value="/console/?kind=restriction"' in form.text
    _labelled(form.text)
    assert client.get("/console/demands/d_x", follow_redirects=False).status_code == 303


def test_sign_in_refuses_a_wrong_code_and_a_forged_form(
    app_services: tuple[TestClient, Services],
) -> None:
    client, _ = app_services
    wrong = _sign_in(client, "s-intake-dub", "000000")
    assert wrong.status_code == 401 and "Signing in failed" in wrong.text
    assert "custodes_session" not in wrong.cookies
    forged = TestClient(client.app).post(
        "/console/login",
        data={"login_token": "made-up", "staff_id": "s-intake-dub", "password": PASSWORD,
              "totp": pyotp.TOTP(SECRET).now()},
    )  # fmt: skip
    assert forged.status_code == 403 and "form expired" in forged.text


def test_queue_puts_overdue_and_emergencies_first_and_filters(
    signed_in: Callable[[str], TestClient], app_services: tuple[TestClient, Services]
) -> None:
    _, services = app_services
    late = _fresh_demand(services, received=services.clock() - timedelta(days=40))
    client = signed_in("s-rev-ams")
    page = client.get("/console/").text
    order = re.findall(r'href="/console/demands/(d_[0-9a-f]+)"', page)
    assert order[0] == late
    assert "overdue" in page.split(late, 2)[2].split("</tr>", 1)[0]
    assert "emergency" in page.split(f"/console/demands/{order[1]}", 1)[1].split("</tr>", 1)[0]
    _labelled(page)
    german = client.get("/console/?state=all&jurisdiction=DE").text
    assert "Staatsanwaltschaft Berlin" in german and "PRC Ministry" not in german.split("<table")[1]
    prc = client.get("/console/?state=refused&authority=cn-mps&kind=restriction").text
    assert prc.count('href="/console/demands/') == 2
    assert client.get("/console/?state=lost").status_code == 400


def _refused_prc_demand(client: TestClient) -> str:
    page = client.get("/console/?state=refused&authority=cn-mps&kind=disclosure").text
    found: list[str] = re.findall(r'href="/console/demands/(d_[0-9a-f]+)"', page)
    assert found
    return found[0]


def test_demand_page_shows_targets_findings_and_history_with_log_indexes(
    signed_in: Callable[[str], TestClient], app_services: tuple[TestClient, Services]
) -> None:
    _, services = app_services
    client = signed_in("s-rev-ams")
    demand_id = _refused_prc_demand(client)
    page = client.get(f"/console/demands/{demand_id}").text
    record = get_demand(services, demand_id)
    assert record.screening is not None
    for finding in record.screening.findings:
        assert f"<code>{finding.rule_id}</code>" in page
        assert finding.reason.replace("'", "&#39;").replace('"', "&#34;") in page
    for subject in record.screening.subjects.values():
        assert f"<strong>{subject.jurisdiction}</strong>" in page
    for event in history(services, demand_id):
        assert f'<a href="/console/log/{event.index}"' in page
    assert "demand.refused" in page and "refuse" in page


def test_two_approvers_approve_and_one_decides(
    signed_in: Callable[[str], TestClient], app_services: tuple[TestClient, Services]
) -> None:
    _, services = app_services
    demand_id = _fresh_demand(services)
    dub, sjc = signed_in("s-appr-dub"), signed_in("s-appr-sjc")
    r = _post(dub, demand_id, "approve", reason="specific and lawful")
    assert r.status_code == 303
    page = dub.get(r.headers["location"]).text
    assert "Your approval is recorded." in page and "1 of 2: s-appr-dub" in page
    _labelled(page)
    twice = _post(dub, demand_id, "approve", reason="and again")
    assert twice.status_code == 403
    assert "<code>api.approve_twice</code>" in twice.text
    assert _post(sjc, demand_id, "approve", reason="agreed").status_code == 303
    decided = _post(sjc, demand_id, "decide", reason="dual control complete")
    assert decided.status_code == 303
    assert get_demand(services, demand_id).state.value == "approved"
    final = sjc.get(f"/console/demands/{demand_id}").text
    assert "specific and lawful" in final and "dual control complete" in final
    assert "demand.approved" in final


def test_review_forms_need_the_session_csrf_token(
    signed_in: Callable[[str], TestClient], app_services: tuple[TestClient, Services]
) -> None:
    anonymous, services = app_services
    demand_id = _fresh_demand(services)
    before = len(history(services, demand_id))
    dub, ams = signed_in("s-appr-dub"), signed_in("s-rev-ams")
    missing = dub.post(f"/console/demands/{demand_id}/approve", data={"reason": "ok"})
    assert missing.status_code == 403 and "not sent from the console" in missing.text
    other = _csrf(ams.get(f"/console/demands/{demand_id}").text)
    stolen = dub.post(f"/console/demands/{demand_id}/approve",
                      data={"reason": "ok", "csrf_token": other})  # fmt: skip
    assert stolen.status_code == 403
    nobody = anonymous.post(f"/console/demands/{demand_id}/refuse", data={"reason": "x"},
                            follow_redirects=False)  # fmt: skip
    assert nobody.status_code == 303 and "/console/login" in nobody.headers["location"]
    assert len(history(services, demand_id)) == before


def test_refusal_needs_a_reason_and_shows_it(
    signed_in: Callable[[str], TestClient], app_services: tuple[TestClient, Services]
) -> None:
    _, services = app_services
    demand_id = _fresh_demand(services)
    ams = signed_in("s-rev-ams")
    empty = _post(ams, demand_id, "refuse", reason=" ")
    assert empty.status_code == 400 and "a reason is required" in empty.text
    done = _post(ams, demand_id, "refuse", reason="the warrant does not name the second user")
    assert done.status_code == 303
    page = ams.get(f"/console/demands/{demand_id}").text
    assert "The demand is refused." not in page  # the flash shows only after the redirect
    assert "the warrant does not name the second user" in page and "demand.refused" in page


def test_narrowing_drops_a_target_and_shortens_the_period(
    signed_in: Callable[[str], TestClient], app_services: tuple[TestClient, Services]
) -> None:
    _, services = app_services
    demand_id = _fresh_demand(services)
    dub, sjc = signed_in("s-appr-dub"), signed_in("s-appr-sjc")
    _post(dub, demand_id, "approve", reason="the first user is named")
    _post(sjc, demand_id, "approve", reason="agreed")
    r = _post(sjc, demand_id, "narrow", reason="only the named user, only May",
              drop_target=str(FIXTURES.us_person), period_start="2020-05-01T00:00")  # fmt: skip
    assert r.status_code == 303, r.text
    record = get_demand(services, demand_id)
    assert record.state.value == "partly_approved" and record.scope is not None
    assert record.scope.targets == (FIXTURES.us_content_user,)
    assert record.scope.time_range is not None and record.scope.time_range.start.month == 5
    bad = _post(dub, _fresh_demand(services), "narrow", reason="x", drop_target="account:nobody")
    assert bad.status_code == 400
