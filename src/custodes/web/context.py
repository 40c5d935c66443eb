"""What every route of the web layer is handed: the services, the API's limits, and the
staff access gateway.

:func:`custodes.web.app.create_app` keeps them on ``app.state``; routes and dependencies reach
them through :func:`services_of`, :func:`config_of` and :func:`gateway_of`, never through
globals. There is one :class:`~custodes.service.gateway.AccessGateway` per app, so that its
cache of capabilities serves every request.

Limits can be changed without code through the environment (read once, at start-up, by
:meth:`ApiConfig.from_env`)::

    CUSTODES_API_AUTHORITY_RATE=120   signed requests per authority per minute
    CUSTODES_API_STAFF_RATE=600       requests per staff member per minute

>>> ApiConfig.from_env({"CUSTODES_API_AUTHORITY_RATE": "30"}).authority_rate
30
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import HTTPConnection

from custodes.errors import ConfigError
from custodes.service import Services
from custodes.service.gateway import AccessGateway

__all__ = ["ApiConfig", "config_of", "gateway_of", "services_of"]

_ENV = {
    "CUSTODES_API_AUTHORITY_RATE": "authority_rate",
    "CUSTODES_API_STAFF_RATE": "staff_rate",
}


@dataclass(frozen=True)
class ApiConfig:
    """Limits and lifetimes of the API; the defaults suit a production deployment."""

    authority_rate: int = 120
    """Signed requests each authority may make per :attr:`rate_window`."""
    staff_rate: int = 600
    """Requests each staff member may make per :attr:`rate_window`."""
    login_rate: int = 10
    """Login attempts per staff id per :attr:`login_window` (right or wrong)."""
    rate_window: timedelta = timedelta(minutes=1)
    login_window: timedelta = timedelta(minutes=15)
    signature_max_age: timedelta = timedelta(minutes=5)
    """How old a signature's ``created`` may be; its nonce is remembered this long."""
    clock_skew: timedelta = timedelta(seconds=30)
    """How far a signer's clock may run ahead of ours."""
    session_idle: timedelta = timedelta(minutes=30)
    session_max: timedelta = timedelta(hours=12)
    token_max_ttl: timedelta = timedelta(days=90)
    idempotency_ttl: timedelta = timedelta(hours=24)
    """How long the outcome of a POST is kept for a retry with the same Idempotency-Key."""
    json_limit: int = 64 * 1024
    """Largest JSON body of any request other than a demand (bytes)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiConfig:
        env = os.environ if env is None else env
        rates: dict[str, int] = {}
        for name, attr in _ENV.items():
            raw = env.get(name)
            if raw is None:
                continue
            if not raw.isdigit() or not 0 < int(raw) <= 10_000_000:
                raise ConfigError(f"{name} must be a positive whole number, not {raw!r}")
            rates[attr] = int(raw)
        return cls(**rates)  # type: ignore[arg-type]


def services_of(conn: HTTPConnection) -> Services:
    """The services of the app serving ``conn``."""
    services: Services = conn.app.state.services
    return services


def config_of(conn: HTTPConnection) -> ApiConfig:
    """The API limits of the app serving ``conn``."""
    config: ApiConfig = conn.app.state.api_config
    return config


def gateway_of(conn: HTTPConnection) -> AccessGateway:
    """The staff access gateway of the app serving ``conn``."""
    gateway: AccessGateway = conn.app.state.gateway
    return gateway
