"""Shared fixtures. Storage tests run on SQLite always and on PostgreSQL when
CUSTODES_TEST_DATABASE_URL is set (CI sets it; in CI its absence is a failure, not a skip)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ENV = "CUSTODES_TEST_DATABASE_URL"


def _pg_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} must be set in CI: PostgreSQL tests may not be skipped")
        return None
    return url


@contextmanager
def _fresh_schema(base: str) -> Iterator[str]:
    """A URL on ``base`` whose search_path is a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _pg_base_or_skip() -> str:
    base = _pg_url()
    if base is None:
        pytest.skip(f"PostgreSQL storage tests need {PG_ENV} (CI sets it)")
    return base


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    with _fresh_schema(_pg_base_or_skip()) as url:
        yield url


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """A URL of a new, empty database on ``backend``: a SQLite file in ``directory``, or a
    fresh PostgreSQL schema (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'custodes.db'}"
        return
    with _fresh_schema(_pg_base_or_skip()) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_backend(request: pytest.FixtureRequest) -> str:
    """Each backend once per test module, for a module's fixtures to make databases on
    (:func:`fresh_database`) when one module needs several."""
    backend: str = request.param
    return backend


@dataclass(frozen=True)
class Served:
    """A database for a module's app, and whether the app serves its busiest routes
    directly (``create_app(direct=...)``)."""

    database_url: str
    direct: bool


@pytest.fixture(scope="module", params=["direct", "routed"])
def served(
    request: pytest.FixtureRequest, module_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """For suites of the authority API: a fresh database on each backend, once for the app
    as served (its busiest routes served directly) and once with FastAPI routing every
    route. The two must answer alike."""
    with fresh_database(module_backend, tmp_path_factory.mktemp("db")) as url:
        yield Served(url, request.param == "direct")


@pytest.fixture(scope="module")
def module_database_url(
    module_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """As ``database_url``, but one database per test module (for suites that build an
    expensive world once and run many requests against it)."""
    with fresh_database(module_backend, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every storage contract test runs once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'custodes.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url
