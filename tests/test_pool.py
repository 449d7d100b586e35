"""Pooled PostgreSQL connections: tested before use only after sitting idle, and replaced
when the server has dropped them. (SQLite has no server to lose: skipped there.)"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import text

from comments.extensions import db


def _pooled_backend(app: Flask) -> int:
    """The server process behind the pool's one idle connection, after a request used it."""
    with app.app_context():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.commit()
    return pid


def _terminate(app: Flask, pid: int) -> None:
    from sqlalchemy import create_engine

    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with other.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    other.dispose()


@pytest.fixture
def postgres(app: Flask) -> Flask:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite: no server can drop a pooled connection")
    return app


@pytest.mark.config(DATABASE_PING_AFTER_IDLE_S=0)
def test_a_connection_the_server_dropped_while_idle_is_replaced_unseen(
    postgres: Flask, article: str
) -> None:
    client = postgres.test_client()
    before = _pooled_backend(postgres)
    _terminate(postgres, before)
    answer = client.get(f"/api/v1/articles/{article}")
    assert answer.status_code == 200
    assert answer.get_json()["article"]["key"] == article
    assert _pooled_backend(postgres) != before


@pytest.mark.config(DATABASE_PING_AFTER_IDLE_S=3600)
def test_a_connection_used_a_moment_ago_is_not_pinged_and_a_drop_costs_one_request(
    postgres: Flask, article: str
) -> None:
    """The trade for saving a round trip per request: a connection killed between two close
    requests fails the next one with the usual error, and the pool replaces it at once."""
    client = postgres.test_client()
    before = _pooled_backend(postgres)
    _terminate(postgres, before)
    failed = client.get(f"/api/v1/articles/{article}")
    assert failed.status_code == 500
    assert failed.get_json()["error"]["code"] == "internal_error"
    answer = client.get(f"/api/v1/articles/{article}")
    assert answer.status_code == 200
    assert _pooled_backend(postgres) != before
