"""Answers kept under Idempotency-Keys: one at a time or many in one statement, the same rows,
on both backends; only the keys named are touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from starlette.responses import Response

from custodes.store import open_store
from custodes.store.api_tables import api_idempotency
from custodes.store.fast import CHUNK
from custodes.web.idempotency import keep_answer, keep_answers

_NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _claim(conn: sa.Connection, principal: str, keys: list[str]) -> None:
    conn.execute(
        api_idempotency.insert(),
        [
            {"principal": principal, "key": k, "fingerprint": "f" * 64, "created_at": _NOW,
             "expires_at": _NOW + timedelta(days=1)}
            for k in keys
        ],
    )  # fmt: skip


def _kept(conn: sa.Connection, principal: str) -> dict[str, tuple[object, ...]]:
    t = api_idempotency.c
    rows = conn.execute(
        sa.select(t.key, t.status, t.content_type, t.location, t.body).where(
            t.principal == principal
        )
    ).all()
    return {r.key: (r.status, r.content_type, r.location, None if r.body is None else bytes(r.body))
            for r in rows}  # fmt: skip


def _answers() -> list[Response]:
    return [
        Response(
            b'{"id":"d_1"}',
            201,
            headers={"Location": "/v1/demands/d_1"},
            media_type="application/json",
        ),
        Response(b'{"code":"rate_limited"}', 429, media_type="application/problem+json"),
        Response(b"\x00\xff binary 'quoted' %s", 200, media_type="application/octet-stream"),
    ]


def test_many_answers_kept_in_one_statement_equal_those_kept_one_by_one(
    database_url: str,
) -> None:
    store = open_store(database_url)
    keys = ["k-1", "k-2", "k-3"]
    with store.engine.begin() as conn:
        _claim(conn, "authority:one", keys)
        _claim(conn, "authority:many", [*keys, "k-untouched"])
        _claim(conn, "authority:other", keys)
    with store.engine.begin() as conn:
        for key, response in zip(keys, _answers(), strict=True):
            keep_answer(conn, "authority:one", key, response)
        keep_answers(
            conn,
            [("authority:many", k, r) for k, r in zip(keys, _answers(), strict=True)],
        )
    with store.engine.connect() as conn:
        one, many, other = (_kept(conn, p) for p in ("authority:one", "authority:many",
                                                    "authority:other"))  # fmt: skip
    assert one == {k: many[k] for k in keys}
    assert one["k-1"] == (201, "application/json", "/v1/demands/d_1", b'{"id":"d_1"}')
    assert one["k-3"][1:] == ("application/octet-stream", None, b"\x00\xff binary 'quoted' %s")
    assert many["k-untouched"] == (None, None, None, None)  # a key not named stays claimed
    assert set(other.values()) == {(None, None, None, None)}  # so do another principal's
    store.close()


def test_more_answers_than_one_statement_holds_are_all_kept(database_url: str) -> None:
    store = open_store(database_url)
    keys = [f"k-{i}" for i in range(CHUNK + 3)]
    with store.engine.begin() as conn:
        _claim(conn, "authority:many", keys)
        answers = [("authority:many", k, Response(k.encode(), 201)) for k in keys]
        keep_answers(conn, answers)
    with store.engine.connect() as conn:
        kept = _kept(conn, "authority:many")
    assert {k: (v[0], v[3]) for k, v in kept.items()} == {k: (201, k.encode()) for k in keys}
    store.close()


def test_keeping_nothing_changes_nothing(database_url: str) -> None:
    store = open_store(database_url)
    with store.engine.begin() as conn:
        _claim(conn, "authority:one", ["k-1"])
        keep_answers(conn, [])
    with store.engine.connect() as conn:
        assert _kept(conn, "authority:one") == {"k-1": (None, None, None, None)}
    store.close()
