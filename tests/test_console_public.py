"""The console's public pages over the demo deployment: the log, an entry with its proof, and
the transparency figures, as a visitor without JavaScript gets them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from custodes.cli.demo import build_demo
from custodes.cli.log import app as log_app
from custodes.deployment import Deployment, init_data_dir, open_deployment
from custodes.events import parse_event
from custodes.settings import load_settings
from custodes.tlog import check_receipt, new_verifier, parse_receipt
from custodes.web.app import create_app
from custodes.web.console.transparency import quarter_of

ORIGIN = "console.test/log"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    data = tmp_path_factory.mktemp("console-demo")
    init_data_dir(data, ORIGIN)
    with open_deployment(load_settings(Path(data))) as dep:
        build_demo(dep, events=0, seed=2020)
        yield dep


@pytest.fixture(scope="module")
def client(deployment: Deployment) -> Iterator[TestClient]:
    with TestClient(create_app(deployment)) as c:
        yield c


class _Fields(HTMLParser):
    """Textareas and inputs by id, labels by the id they name, script tags."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.labels: set[str] = set()
        self.controls: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[dict[str, str | None]] = []
        self._area: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        if tag in ("input", "textarea", "select") and a.get("type") != "hidden":
            self.controls.append((tag, a))
        if tag == "input" and a.get("id"):
            self.values[str(a["id"])] = a.get("value") or ""
        if tag == "textarea":
            self._area = a.get("id") or a.get("name")
            self.values[str(self._area)] = ""
        if tag == "script":
            self.scripts.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._area = None

    def handle_data(self, data: str) -> None:
        if self._area is not None:
            self.values[self._area] += data


def _fields(html: str) -> _Fields:
    parser = _Fields()
    parser.feed(html)
    return parser


def _assert_accessible(html: str) -> None:
    """Every visible control has a label; no inline script (the CSP would block it)."""
    page = _fields(html)
    for tag, attrs in page.controls:
        if "hidden" in attrs:
            continue
        ident = attrs.get("id")
        assert ident and (ident in page.labels or attrs.get("aria-label")), (tag, attrs)
    assert all(s.get("src") for s in page.scripts)


def test_log_page_shows_the_signed_checkpoint_and_latest_entries(
    client: TestClient, deployment: Deployment
) -> None:
    signed = deployment.ledger.latest_checkpoint()
    assert signed is not None
    r = client.get("/console/log")
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["content-security-policy"]
    page = _fields(r.text)
    assert page.values["note"] == signed.note.decode()
    assert page.values["vkey"] == deployment.vkey
    assert signed.checkpoint.root.hex() in r.text
    newest = signed.checkpoint.size - 1
    assert f'href="/console/log/{newest}"' in r.text
    assert "tos_action.linked" in r.text
    _assert_accessible(r.text)


def test_log_page_pages_back_through_older_entries(client: TestClient) -> None:
    r = client.get("/console/log?before=30")
    assert 'href="/console/log/29"' in r.text and 'href="/console/log/30"' not in r.text
    assert 'href="/console/log?before=5"' in r.text
    assert client.get("/console/log?before=-3").status_code == 400


def test_entry_page_hands_over_a_receipt_that_verifies(
    client: TestClient, deployment: Deployment
) -> None:
    r = client.get("/console/log/7")
    assert r.status_code == 200
    page = _fields(r.text)
    entry = page.values["entry"].encode()
    assert entry == deployment.ledger.entry(7)
    receipt = parse_receipt(page.values["receipt"])
    assert receipt.index == 7
    cp = check_receipt(receipt, entry, [new_verifier(deployment.vkey)], ORIGIN)
    assert cp.size == deployment.ledger.latest_checkpoint().checkpoint.size  # type: ignore[union-attr]
    event = parse_event(entry)
    assert f"<code>{event.kind}</code>" in r.text
    download = client.get("/console/log/7/receipt")
    assert download.headers["content-type"].startswith("text/plain")
    assert download.text == page.values["receipt"]
    assert download.headers["content-disposition"] == 'attachment; filename="7.tlog-proof"'
    _assert_accessible(r.text)


def test_receipt_and_entry_downloaded_check_offline(
    client: TestClient, deployment: Deployment, tmp_path: Path
) -> None:
    for part in ("receipt", "entry"):
        r = client.get(f"/console/log/12/{part}")
        assert r.status_code == 200
        name = r.headers["content-disposition"].removeprefix('attachment; filename="')[:-1]
        (tmp_path / name).write_bytes(r.content)
    assert (tmp_path / "12").read_bytes() == deployment.ledger.entry(12)
    checked = CliRunner().invoke(
        log_app, ["check", str(tmp_path / "12.tlog-proof"), "--vkey", deployment.vkey]
    )
    assert checked.exit_code == 0, checked.output
    assert "1 of 1 receipt(s) verified" in checked.output
    assert client.get("/console/log/999999/entry").status_code == 404
    assert client.get("/console/log/x/entry").status_code == 400


def test_entry_page_of_a_demand_event_links_the_demand(client: TestClient) -> None:
    r = client.get("/console/log")
    index = re.search(r'href="/console/log/(\d+)">\1</a></td>\s*<td>[^<]*</td>\s*'
                      r"<td><code>demand.refused", r.text)  # fmt: skip
    assert index is not None
    entry = client.get(f"/console/log/{index.group(1)}").text
    assert re.search(r'href="/console/demands/d_[0-9a-f]+"', entry)


def test_entry_look_up_goes_to_the_entry_or_says_what_is_wrong(client: TestClient) -> None:
    r = client.get("/console/log/entry?index=12", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/log/12"
    bad = client.get("/console/log/entry?index=twelve")
    assert bad.status_code == 400
    assert "must be a whole number" in bad.text and 'role="alert"' in bad.text
    missing = client.get("/console/log/100000")
    assert missing.status_code == 404 and "no log entry 100000" in missing.text
    words = client.get("/console/log/last")
    assert words.status_code == 404 and words.headers["content-type"].startswith("text/html")


def _row(html: str, table: str, name: str) -> list[str]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    row = re.search(rf'<th scope="row">{re.escape(name)}</th>(.*?)</tr>', body, re.S)
    assert row is not None, f"{name} not in {table}"
    return [unescape(c) for c in re.findall(r"<td>(.*?)</td>", row.group(1))]


def test_transparency_page_counts_the_demo_demands_from_the_log(
    client: TestClient, deployment: Deployment
) -> None:
    r = client.get("/console/transparency")
    assert r.status_code == 200
    quarter = quarter_of(datetime.now(UTC))
    assert f'<th scope="col">{quarter}</th>' in r.text
    # 2020's four PRC incidents (five demands) and eight lawful or escalated demands
    assert _row(r.text, "by-country-table", "CN") == ["5"]
    assert _row(r.text, "by-country-table", "DE") == ["<5"]
    assert _row(r.text, "by-country-table", "all demands") == ["13"]
    assert _row(r.text, "by-kind-table", "disclosure") == ["10"]
    # the five PRC demands and the EPOC over insulting officials are refused
    assert _row(r.text, "by-outcome-table", "refused") == ["6"]
    assert _row(r.text, "by-outcome-table", "challenged") == ["<5"]
    assert r.text.count('role="img"') == 3
    assert "<title>" in r.text and "from 1 to 4" in r.text
    size = deployment.ledger.latest_checkpoint().checkpoint.size  # type: ignore[union-attr]
    assert f"<strong>{size}</strong> entries" in r.text


def test_static_files_are_served_and_nothing_else(client: TestClient) -> None:
    css = client.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/console/static/logverify.js")
    assert "rootFromInclusion" in js.text
    assert client.get("/console/static/..%2Fapp.py").status_code == 404
    assert client.get("/console/static/base.html").status_code == 404
