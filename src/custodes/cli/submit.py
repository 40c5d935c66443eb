"""``custodes submit``: send a demand the way an authority's system would.

The demand is a JSON file (see docs/api.md); ``--document`` uploads the instrument document
first and cites its SHA-256. Every request is signed with the authority's private key file
(written by ``custodes authority add --generate-key``) and carries an Idempotency-Key, so a
submission retried after a network failure is recorded once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

from custodes.audit.evidence import EvidenceChecker, keep_receipt
from custodes.audit.policy import MAX_POLICY_SIZE, keys_policy, parse_policy
from custodes.cli.output import console, fail, reported_errors
from custodes.errors import InputError
from custodes.model import MAX_DEMAND_BYTES, read_json
from custodes.tlog import TlogError, parse_receipt
from custodes.web.client import RequestSigner, SignatureAuth, load_key


def _read(path: Path, limit: int) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise InputError(f"{path} is over {limit} bytes")
    return data


def _cite(demand: Any, sha256: str) -> bytes:
    if not isinstance(demand, dict):
        raise InputError("a demand is a JSON object")
    instrument = demand.get("instrument")
    if not isinstance(instrument, dict):
        raise InputError("the demand has no instrument object")
    stated = instrument.get("document_sha256")
    if stated is not None and stated != sha256:
        raise InputError("instrument.document_sha256 is not the SHA-256 of --document")
    instrument["document_sha256"] = sha256
    return json.dumps(demand, ensure_ascii=False).encode()


def _problem(response: httpx.Response) -> NoReturn:
    """Fail with the problem an error response names (its code and detail), in one line."""
    answer = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    fail(str(answer.get("code", "http_error")), str(answer.get("detail", response.text)))


def _post(client: httpx.Client, path: str, body: bytes, media: str, key: str) -> Any:
    headers = {"Content-Type": media, "Idempotency-Key": key}
    response = client.post(path, content=body, headers=headers)
    if response.is_error:
        _problem(response)
    return response.json() if response.content else {}


RECEIPT_WAIT = 30.0
"""Longest wait for a checkpoint that covers the demand's log entries (the log signs one
within a second or so of an event)."""


def _get(client: httpx.Client, path: str) -> httpx.Response:
    """GET ``path``; an error other than 404 (which callers tell apart) fails the command."""
    response = client.get(path)
    if response.is_error and response.status_code != 404:
        _problem(response)
    return response


def _receipt(client: httpx.Client, path: str) -> str:
    """The receipt at ``path``, waiting (up to :data:`RECEIPT_WAIT`) for the checkpoint that
    covers its entry to be signed."""
    deadline, pause = time.monotonic() + RECEIPT_WAIT, 0.1
    while True:
        response = _get(client, path)
        if response.status_code == 200:
            return response.text
        if time.monotonic() + pause > deadline:
            fail("not_found", f"no signed checkpoint covers {path} after {RECEIPT_WAIT:.0f} s")
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def _save_receipts(
    client: httpx.Client, demand_id: str, directory: Path, checker: EvidenceChecker
) -> None:
    """Fetch the demand's log entries and their receipts, check each, and save them as
    ``N`` and ``N.tlog-proof`` in ``directory``."""
    response = _get(client, f"/v1/demands/{demand_id}")
    if response.status_code != 200:
        fail("not_found", f"demand {demand_id} is not found at {client.base_url}")
    saved: list[str] = []
    last = None
    for item in response.json().get("log") or []:
        entry = _get(client, str(item["entry"]))
        if entry.status_code != 200:
            fail("not_found", f"log entry {item['index']} is not served at {item['entry']}")
        receipt = _receipt(client, str(item["receipt"]))
        try:
            checked = checker.check(parse_receipt(receipt), entry.content)
        except TlogError as exc:
            fail("receipt_invalid", f"the receipt of log entry {item['index']} fails: {exc.detail}")
        if checked.index != item["index"]:
            fail(
                "receipt_invalid", f"the receipt is for entry {checked.index}, not {item['index']}"
            )
        directory.mkdir(parents=True, exist_ok=True)
        keep_receipt(directory, checked.index, entry.content, receipt)
        last = checked.checkpoint
        saved.append(f"{checked.index} {item['kind']}")
    if last is not None:
        console.print(
            f"receipts verified against {last.origin} size {last.size}, saved in {directory}: "
            + ", ".join(saved)
        )


def submit(
    file: Annotated[Path, typer.Argument(help="The demand, as JSON.")],
    *,
    key: Annotated[Path, typer.Option(help="The authority's private key (a JWK file).")],
    url: Annotated[str, typer.Option(help="Where custodes serves, e.g. https://custodes.example.")],
    document: Annotated[
        Path | None, typer.Option(help="The instrument document, uploaded first and cited.")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Reuse to retry a submission (default: a fresh one).")
    ] = None,
    receipts: Annotated[
        Path | None,
        typer.Option(
            "--receipts",
            help="Save the receipts of the demand's log entries in this directory (N and "
            "N.tlog-proof), each checked first against --vkey or --policy.",
        ),
    ] = None,
    vkey: Annotated[
        str | None, typer.Option(help="The platform log's verifier key, for --receipts.")
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="A c2sp.org/tlog-policy file, for --receipts (instead of --vkey)."),
    ] = None,
) -> None:
    """Sign and send a demand; prints its id, its state and any reasons given."""
    checker = None
    if receipts is not None:
        if (vkey is None) == (policy is None):
            fail("usage", "--receipts needs one of --vkey and --policy", 2)
        with reported_errors():
            if policy is not None:
                checker = EvidenceChecker(parse_policy(_read(policy, MAX_POLICY_SIZE)))
            else:
                assert vkey is not None
                checker = EvidenceChecker(keys_policy([vkey]))
    with reported_errors():
        signer = RequestSigner(load_key(key))
        body = _read(file, MAX_DEMAND_BYTES)
        demand = read_json(body, limit=MAX_DEMAND_BYTES)
        doc = None if document is None else _read(document, 16 * 1024 * 1024)
        if doc is not None:
            body = _cite(demand, hashlib.sha256(doc).hexdigest())
    base = idempotency_key or secrets.token_urlsafe(18)
    try:
        with httpx.Client(base_url=url, auth=SignatureAuth(signer), timeout=60) as client:
            if doc is not None:
                _post(client, "/v1/documents", doc, "application/octet-stream", base + ".doc")
            status = _post(client, "/v1/demands", body, "application/json", base)
            console.print(f"demand {status['id']}: {status['state']}")
            for reason in status.get("reasons", []):
                console.print(f"  {reason['rule']}: {reason['reason']} ({reason['remedy']})")
            if receipts is not None and checker is not None:
                _save_receipts(client, str(status["id"]), receipts, checker)
    except httpx.HTTPError as exc:
        fail("unreachable", f"{url}: {exc}")
