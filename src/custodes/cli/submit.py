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
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from custodes.cli.output import console, fail, reported_errors
from custodes.errors import InputError
from custodes.model import MAX_DEMAND_BYTES, read_json
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


def _post(client: httpx.Client, path: str, body: bytes, media: str, key: str) -> Any:
    headers = {"Content-Type": media, "Idempotency-Key": key}
    response = client.post(path, content=body, headers=headers)
    answer = response.json() if response.content else {}
    if response.is_error:
        fail(str(answer.get("code", "http_error")), str(answer.get("detail", response.text)))
    return answer


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
) -> None:
    """Sign and send a demand; prints its id, its state and any reasons given."""
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
    except httpx.HTTPError as exc:
        fail("unreachable", f"{url}: {exc}")
    console.print(f"demand {status['id']}: {status['state']}")
    for reason in status.get("reasons", []):
        console.print(f"  {reason['rule']}: {reason['reason']} ({reason['remedy']})")
