"""The console in real Chromium, against a real server on 127.0.0.1 over a demo deployment.

A person signs in with a TOTP code (by keyboard alone), two approvers approve a demand and one
records the decision, a reviewer reads a refusal's rules and refuses a demand in writing, and
the proof of an event is checked in the page with WebCrypto, then fails once a proof hash or
the entry is altered. The page's verifier is also run over the published Merkle and
signed-note test vectors. Screenshots go to ``artifacts/browser/`` (their paths are printed).

Chromium is Debian's (``/usr/bin/chromium``, or ``CUSTODES_CHROMIUM``); ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

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

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "browser"
VECTORS = ROOT.parent / "shared" / "vectors"
CHROMIUM = os.environ.get("CUSTODES_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip
PASSWORD = "a long passphrase for the demo"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
STAFF = ("s-appr-dub", "s-appr-sjc", "s-rev-ams", "s-counsel-dub", "s-hr-gva")
"""Each signs in once per run: a TOTP code is good once."""


class World:
    """The running server and what the tests need to reach behind it."""

    def __init__(self, dep: Deployment, services: Services, url: str) -> None:
        self.dep, self.services, self.url = dep, services, url

    def fresh_demand(self) -> str:
        """A lawful US warrant for a Californian user's content, screened and in review."""
        warrant = LegalInstrument(InstrumentKind.SEARCH_WARRANT, "3:20-mj-71234", "N.D. Cal.")
        demand = Demand(
            new_demand_id(), "us-ndcal", DemandKind.DISCLOSURE, warrant,
            (FIXTURES.us_content_user,), self.services.clock(),
            categories=(DataCategory.CONTENT,), offence=Offence("fraud"),
            time_range=TimeRange(EPOCH - timedelta(days=30), EPOCH),
        )  # fmt: skip
        receive_demand(self.services, demand, signature=SignatureStatus.VALID, document=b"w")
        screen_demand(self.services, demand.id)
        return demand.id


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("browser-demo")
    init_data_dir(data, "browser.test/log")
    with open_deployment(load_settings(Path(data))) as dep:
        build_demo(dep, events=0, seed=2020)
        app = create_app(dep)
        services: Services = app.state.services
        for staff in STAFF:
            set_credentials(services, staff, PASSWORD, totp_secret=SECRET)
        dep.start()
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="console-server", daemon=True)
        thread.start()
        for _ in range(200):  # bounded: the server starts in well under a second
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "the console server did not start"
        try:
            yield World(dep, services, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's `chromium` package "
            "(.ci/run does) or point CUSTODES_CHROMIUM at a Chromium binary"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    yield ctx
    ctx.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def _sign_in(page: Page, world: World, staff: str) -> None:
    page.goto(f"{world.url}/console/")
    page.get_by_label("Staff id").fill(staff)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authenticator code").fill(pyotp.TOTP(SECRET).now())
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {staff}")).to_be_visible()


def test_sign_in_with_a_totp_code_by_keyboard(context: BrowserContext, world: World) -> None:
    page = context.new_page()
    page.goto(f"{world.url}/console/")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    _shot(page, "01-sign-in")
    page.keyboard.type("s-counsel-dub")  # the staff id field has focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(pyotp.TOTP(SECRET).now())
    page.keyboard.press("Enter")
    expect(page.get_by_text("Signed in as s-counsel-dub")).to_be_visible()
    expect(page.get_by_role("heading", name="Demands")).to_be_visible()
    _shot(page, "02-queue")


def test_two_approvers_approve_and_the_second_decides(browser: Browser, world: World) -> None:
    demand_id = world.fresh_demand()
    first, second = browser.new_context(), browser.new_context()
    try:
        a, b = first.new_page(), second.new_page()
        _sign_in(a, world, "s-appr-dub")
        a.get_by_role("link", name=demand_id).click()
        expect(a.get_by_role("heading", name=re.compile(demand_id))).to_be_visible()
        a.get_by_label("Why it is lawful, specific and proportionate").fill(
            "names one account; content within 30 days; fraud"
        )
        a.get_by_role("button", name="Approve", exact=True).click()
        expect(a.get_by_text("Your approval is recorded.")).to_be_visible()
        expect(a.get_by_text("1 of 2: s-appr-dub")).to_be_visible()
        _shot(a, "03-first-approval")

        _sign_in(b, world, "s-appr-sjc")
        b.goto(f"{world.url}/console/demands/{demand_id}")
        b.get_by_label("Why it is lawful, specific and proportionate").fill("agreed")
        b.get_by_role("button", name="Approve", exact=True).click()
        expect(b.get_by_text("2 of 2: s-appr-dub, s-appr-sjc")).to_be_visible()
        b.get_by_label("Reason for the decision").fill("dual control complete")
        b.get_by_role("button", name="Record the approval", exact=True).click()
        expect(b.get_by_text("The decision is recorded: approved.")).to_be_visible()
        expect(b.locator("h1 .badge")).to_have_text("approved")
        _shot(b, "04-approved")
    finally:
        first.close()
        second.close()
    assert get_demand(world.services, demand_id).state.value == "approved"


def test_a_refusal_shows_its_rules_and_reasons(context: BrowserContext, world: World) -> None:
    page = context.new_page()
    _sign_in(page, world, "s-rev-ams")
    page.get_by_label("State").select_option("refused")
    page.get_by_label("Authority").select_option("cn-mps")
    page.get_by_label("Kind").select_option("restriction")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(2)
    rows.first.get_by_role("link").click()
    findings = page.locator("table.findings tr.finding")
    refusing = findings.filter(has=page.locator(".badge.refuse"))
    expect(refusing.first).to_be_visible()
    assert refusing.count() >= 2
    expect(page.get_by_role("cell", name="demand.refused")).to_be_visible()
    _shot(page, "05-refusal-reasons")

    demand_id = world.fresh_demand()
    page.goto(f"{world.url}/console/demands/{demand_id}")
    page.get_by_label("Reasons for refusing").fill("the warrant names a closed account")
    page.get_by_role("button", name="Refuse", exact=True).click()
    expect(page.get_by_text("The demand is refused.")).to_be_visible()
    expect(page.get_by_role("cell", name="the warrant names a closed account")).to_be_visible()


def _wait_covered(world: World, index: int) -> None:
    """Until a signed checkpoint covers log entry ``index`` (the sequencer runs alongside)."""
    assert world.dep.sequencer.wait_for(index, timeout=30), f"entry {index} never integrated"


def test_an_events_proof_verifies_in_the_page_and_fails_when_altered(
    context: BrowserContext, world: World
) -> None:
    demand_id = world.fresh_demand()
    index = history(world.services, demand_id)[-1].index
    _wait_covered(world, index)
    page = context.new_page()
    _sign_in(page, world, "s-hr-gva")
    page.goto(f"{world.url}/console/demands/{demand_id}")
    page.get_by_role("link", name=f"log entry {index}: check its proof").click()
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-state", "verified")
    expect(verdict).to_contain_text(f"entry {index} is in the log's signed tree")
    _shot(page, "06-proof-verified")

    receipt = page.get_by_label(re.compile("^Receipt"))
    original = receipt.input_value()
    lines = original.split("\n")
    hash_line = 2  # header, index, then the proof hashes
    flipped = ("B" if lines[hash_line][0] == "A" else "A") + lines[hash_line][1:]
    receipt.fill("\n".join([*lines[:hash_line], flipped, *lines[hash_line + 1 :]]))
    page.get_by_role("button", name="Verify in this browser").click()
    expect(verdict).to_have_attribute("data-state", "failed")
    expect(verdict).to_contain_text("another root")
    _shot(page, "07-proof-altered")

    receipt.fill(original)
    entry = page.get_by_label("The entry, exactly as published")
    entry.fill(entry.input_value().replace('"kind":"', '"kind":"x'))
    page.get_by_role("button", name="Verify in this browser").click()
    expect(verdict).to_have_attribute("data-state", "failed")

    entry.fill(entry.input_value().replace('"kind":"x', '"kind":"'))
    page.get_by_role("button", name="Verify in this browser").click()
    expect(verdict).to_have_attribute("data-state", "verified")


def test_the_log_page_is_readable_without_javascript(browser: Browser, world: World) -> None:
    ctx = browser.new_context(java_script_enabled=False)
    try:
        page = ctx.new_page()
        page.goto(f"{world.url}/console/log")
        expect(page.locator("#verdict")).to_have_attribute("data-state", "unchecked")
        expect(page.locator("#verdict")).to_contain_text("checking needs JavaScript")
        expect(
            page.get_by_role("button", name="Check the signature in this browser")
        ).to_be_hidden()
        page.get_by_label("Entry index").fill("3")
        page.get_by_role("button", name="Show its proof").click()
        expect(page.get_by_role("heading", name="Log entry 3")).to_be_visible()
        expect(page.get_by_role("link", name="Download the receipt")).to_be_visible()
        expect(page.get_by_role("link", name="Download the entry")).to_have_attribute(
            "href", "/console/log/3/entry"
        )
    finally:
        ctx.close()


def _vectors(name: str) -> Any:
    path = VECTORS / name
    assert path.is_file(), f"test vectors not found at {path} (see shared/vectors/README.md)"
    return json.loads(path.read_text(encoding="utf-8"))


_RUN_INCLUSION = """async (cases) => {
  const b64 = (s) => custodesLog.decodeBase64(s, "vector");
  const out = [];
  for (const c of cases) {
    try {
      await custodesLog.checkInclusion(BigInt(c.leaf_index), BigInt(c.tree_size),
        b64(c.leaf_hash), c.inclusion_path.map(b64), b64(c.root_hash));
      out.push(true);
    } catch (e) { out.push(false); }
  }
  return out;
}"""

_RUN_NOTES = """async ([vectors]) => {
  const out = [];
  for (const v of vectors.valid) {
    const key = await custodesLog.parseVkey(v.vkey);
    const opened = await custodesLog.openNote(v.signed, key, []);
    out.push(opened.text === v.text);
    const bad = v.signed.replace(v.text, v.text.replace(/.$/s, "!\\n"));
    try { await custodesLog.openNote(bad, key, []); out.push(false); } catch (e) { out.push(true); }
  }
  for (const v of vectors.invalid_vkeys) {
    try { await custodesLog.parseVkey(v.vkey); out.push(false); } catch (e) { out.push(true); }
  }
  const peter = await custodesLog.parseVkey(vectors.two_signers.keys.PeterNeumann);
  const enoch = await custodesLog.parseVkey(vectors.two_signers.keys.EnochRoot);
  out.push((await custodesLog.openNote(vectors.two_signers.note, peter, [])).text.length > 0);
  out.push((await custodesLog.openNote(vectors.two_signers.note, enoch, [])).text.length > 0);
  return out;
}"""


def test_the_pages_verifier_passes_the_published_vectors(
    context: BrowserContext, world: World
) -> None:
    page = context.new_page()
    page.goto(f"{world.url}/console/log")
    expect(page.locator("#verdict")).to_have_attribute("data-state", "verified")
    valid = _vectors("merkle-cctv/inclusion-valid.json")
    invalid = _vectors("merkle-cctv/inclusion-invalid.json")
    assert page.evaluate(_RUN_INCLUSION, valid) == [True] * len(valid)
    assert page.evaluate(_RUN_INCLUSION, invalid) == [False] * len(invalid)
    notes = _vectors("signed-note/vectors.json")
    assert all(page.evaluate(_RUN_NOTES, [notes]))
