"""Pooled PostgreSQL connections: tested before use only after sitting idle, and replaced
when the server has dropped them. (SQLite has no server to lose: skipped there.)"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select, text, update

from comments.extensions import db
from comments.models import Role


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


def _prepared(app: Flask) -> set[str]:
    """The statements the pool's connection has prepared on the server, by their text."""
    with app.app_context():
        rows = db.session.execute(text("SELECT statement FROM pg_prepared_statements"))
        found = {statement for (statement,) in rows}
        db.session.rollback()
    return found


def test_a_read_only_request_keeps_the_connections_prepared_statements(
    postgres: Flask, signed_in, article: str
) -> None:
    """psycopg forgets its prepared statements on every rollback, and a read-only request
    ends in one: Parley ends a transaction that only ran SELECTs with COMMIT instead, so a
    connection keeps the statements it has prepared from one request to the next."""
    moderator = signed_in("Moderator", Role.MODERATOR)
    for _ in range(7):  # psycopg prepares a statement on its sixth run
        assert moderator.get("/moderation/queue?kind=pending").status_code == 200
    queue_statements = [s for s in _prepared(postgres) if "FROM comments" in s]
    assert queue_statements, "the queue's statements were not kept between requests"


def test_a_rollback_still_undoes_every_kind_of_write(postgres: Flask, article: str) -> None:
    """Only a transaction of SELECTs is committed in place of its rollback: a write, whether
    the ORM's, Core's or raw SQL's, and a failed statement still roll back."""
    from comments.models import Article

    def title() -> str:
        with postgres.app_context():
            value = db.session.scalar(select(Article.title).where(Article.key == article))
            db.session.rollback()
        return value

    before = title()
    writes = [
        lambda: setattr(db.session.scalar(select(Article).where(Article.key == article)),
                        "title", "changed by the ORM") or db.session.flush(),
        lambda: db.session.execute(update(Article).where(Article.key == article)
                                   .values(title="changed by Core")),
        lambda: db.session.execute(text("UPDATE articles SET title = 'changed by SQL'")),
        lambda: db.session.execute(text("WITH x AS (UPDATE articles SET title = 'by a WITH' "
                                        "RETURNING id) SELECT count(*) FROM x")),
    ]  # fmt: skip
    for write in writes:
        with postgres.app_context():
            db.session.execute(text("SELECT 1"))
            write()
            db.session.rollback()
        assert title() == before
    with postgres.app_context():
        db.session.execute(text("UPDATE articles SET title = 'then an error'"))
        with pytest.raises(Exception, match="division by zero"):
            db.session.execute(text("SELECT 1 / 0"))
        db.session.rollback()
    assert title() == before
