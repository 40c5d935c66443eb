"""The OpenAPI document: what FastAPI derives from the routes, plus what it cannot know.

Added to FastAPI's document:

* the schemas the routes refer to but FastAPI does not generate (``Problem``, and the bodies
  the authority API reads itself);
* how each route authenticates: ``httpSignature`` (RFC 9421, the authority API) or
  ``bearerToken`` / ``sessionCookie`` (the staff API);
* the ``Idempotency-Key`` header every POST takes (except logging in).

The same document is kept in ``docs/openapi.json``; ``python -m custodes.web.openapi >
docs/openapi.json`` rewrites it, and a test fails when the two differ.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .schemas import component_schemas

__all__ = ["SECURITY_SCHEMES", "build_openapi", "main", "openapi_text"]

SECURITY_SCHEMES: dict[str, Any] = {
    "httpSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "Signature",
        "description": (
            "RFC 9421 HTTP Message Signature (Ed25519) with Signature-Input covering "
            '("@method" "@target-uri" "content-digest") and the parameters created, nonce '
            "and keyid (<authority id>/<key id>); Content-Digest (RFC 9530, sha-256) of the body."
        ),
    },
    "bearerToken": {"type": "http", "scheme": "bearer", "description": "a staff API token"},
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "custodes_session",
        "description": "a console session; unsafe methods also send X-CSRF-Token",
    },
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "new for each request; a retry with the same key is answered once",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_NO_KEY = {("post", "/v1/staff/session")}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (see the module)."""
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    for name, value in component_schemas().items():
        components.setdefault("schemas", {}).setdefault(name, value)
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if path.startswith("/v1/staff/"):
                operation["security"] = [{"bearerToken": []}, {"sessionCookie": []}]
            elif path.startswith("/v1/"):
                operation["security"] = [{"httpSignature": []}]
            if method == "post" and (method, path) not in _NO_KEY:
                operation.setdefault("parameters", []).insert(0, IDEMPOTENCY_KEY)
    schema["paths"][("/v1/staff/session")]["post"]["security"] = []
    return schema


def openapi_text(app: FastAPI) -> str:
    """The document as kept in docs/openapi.json."""
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Print the OpenAPI document of an app over a throwaway deployment."""
    from custodes.deployment import init_data_dir, open_deployment
    from custodes.platform import build_reference_platform
    from custodes.settings import load_settings

    from .app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        init_data_dir(data, "openapi.custodes.example/log")
        build_reference_platform(data / "platform.db", accounts=10, region_accounts=1)
        with open_deployment(load_settings(data)) as dep:
            app = create_app(dep)
            sys.stdout.write(openapi_text(app))
            app.state.services.platform.close()


if __name__ == "__main__":
    main()
