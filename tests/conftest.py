"""Fixtures: a migrated database per test session, emptied after every test; an app, an
API client that speaks JSON with a CSRF token, and signed-in users of each role.

The database is SQLite unless PARLEY_TEST_DATABASE_URL names another (CI gives PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text

from comments import create_app
from comments.extensions import db
from comments.models import Role, User

PASSWORD = "correct horse battery staple"


def _database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("PARLEY_TEST_DATABASE_URL")
    if url:
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "parley-test.sqlite3")


def _reset_schema(url: str) -> None:
    """Start the session from an empty database, whatever an earlier run left."""
    if not url.startswith("postgres"):
        return
    from comments.config import database_uri

    engine = create_engine(database_uri(url, "."))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def base_config(url: str, tmp_path: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": url,
        "ARGON2_PROFILE": "fast",
        "MODEL_DIR": str(tmp_path / "models"),
        # Limits are tested on their own (tests/test_limits.py); elsewhere one reader posts
        # more than a real one could.
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database built by the Alembic migrations, once per test session."""
    from flask_migrate import upgrade

    url = _database_url(tmp_path_factory)
    _reset_schema(url)
    app = create_app(base_config(url, tmp_path_factory.mktemp("instance")))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


def _empty_tables() -> None:
    tables = [t for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def app(request: pytest.FixtureRequest, database_url: str, tmp_path: Any) -> Iterator[Flask]:
    """A fresh app on an emptied database; ``@pytest.mark.config(KEY=value)`` overrides."""
    config = base_config(database_url, tmp_path)
    marker = request.node.get_closest_marker("config")
    if marker is not None:
        config.update(marker.kwargs)
    app = create_app(config)
    from comments.limits import limiter

    if limiter.enabled:
        limiter.reset()  # counters from an earlier test's app must not carry over
    with app.app_context():
        _empty_tables()
        seed = app.extensions.get("parley.seed")
        if seed is not None:
            seed()
            db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        _empty_tables()
    dispose(app)


def dispose(app: Flask) -> None:
    """Close an app's database connections: its pool's and the fast read path's own."""
    fast = app.extensions.get("parley.fast_reads")
    if fast is not None:
        fast.close()
    with app.app_context():
        db.engine.dispose()


class Api:
    """A test client that talks JSON to /api/v1 the way a newsroom front end does:
    it fetches a CSRF token from the session endpoint and sends it on every change."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token: str | None = None
        self.user: dict[str, Any] | None = None

    def _csrf(self) -> str:
        if self.token is None:
            self.token = self.client.get("/api/v1/auth/session").get_json()["csrf_token"]
        return self.token

    def request(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if method in ("POST", "PATCH", "PUT", "DELETE"):
            headers.setdefault("X-CSRFToken", self._csrf())
        if json is not None:
            kwargs["json"] = json
        response = self.client.open("/api/v1" + path, method=method, headers=headers, **kwargs)
        body = response.get_json(silent=True)
        if isinstance(body, dict) and "csrf_token" in body:
            self.token = body["csrf_token"]
        elif path in ("/auth/signout", "/me") and response.status_code == 204:
            self.token = None  # the session, and its CSRF token, are gone
        return response

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def signup(self, email: str, name: str, password: str = PASSWORD) -> Any:
        response = self.post(
            "/auth/signup", {"email": email, "display_name": name, "password": password}
        )
        if response.status_code == 201:
            self.user = response.get_json()["user"]
        return response

    def signin(self, email: str, password: str = PASSWORD) -> Any:
        response = self.post("/auth/signin", {"email": email, "password": password})
        if response.status_code == 200:
            self.user = response.get_json()["user"]
        return response

    def comment(self, key: str, body: str, parent_id: int | None = None) -> Any:
        payload: dict[str, Any] = {"body": body}
        if parent_id is not None:
            payload["parent_id"] = parent_id
        return self.post(f"/articles/{key}/comments", payload)


@pytest.fixture
def api(app: Flask) -> Api:
    """An anonymous reader's client."""
    return Api(app.test_client())


@pytest.fixture
def make_user(app: Flask):
    """Create an account directly (as `flask users create` does) and return its id."""

    def make(name: str, role: Role = Role.READER, email: str | None = None) -> int:
        from comments import auth

        with app.app_context():
            user = auth.create_user(email or f"{name.lower()}@example.com", name, PASSWORD, role)
            db.session.commit()
            return user.id

    return make


@pytest.fixture
def signed_in(app: Flask, make_user):
    """A client signed in as a new user of the given role."""

    def sign_in(name: str, role: Role = Role.READER) -> Api:
        make_user(name, role)
        client = Api(app.test_client())
        response = client.signin(f"{name.lower()}@example.com")
        assert response.status_code == 200, response.get_json()
        return client

    return sign_in


@pytest.fixture
def reader(signed_in) -> Api:
    return signed_in("Reader")


@pytest.fixture
def editor(signed_in) -> Api:
    return signed_in("Editor", Role.EDITOR)


@pytest.fixture
def article(app: Flask) -> str:
    """A registered, open article; returns its key."""
    from comments import services

    with app.app_context():
        services.create_article("durham-jobs", "Jobs move from Durham", "https://news.example/d")
        db.session.commit()
    return "durham-jobs"


def get_user(app: Flask, user_id: int) -> User:
    with app.app_context():
        return db.session.get(User, user_id)


@contextlib.contextmanager
def listening(app: Flask, event_name: str, listener: Any) -> Iterator[None]:
    """``listener`` on the app's engine for ``event_name`` while the block runs."""
    with app.app_context():
        engine = db.engine
    event.listen(engine, event_name, listener)
    try:
        yield
    finally:
        event.remove(engine, event_name, listener)


def selects_during(app: Flask, action: Any) -> list[str]:
    """Every SELECT the app's engine sends while ``action()`` runs, whitespace folded."""
    statements: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(" ".join(statement.split()))

    with listening(app, "before_cursor_execute", capture):
        action()
    return statements


# Each article's counters against a count of its comments, in plain SQL (not the app's own
# recount statement, which the tests check against this).
_COUNTERS_VS_ROWS = text(
    "SELECT a.key, a.published_count, a.published_top_level_count,"
    " (SELECT count(*) FROM comments c WHERE c.article_id = a.id AND c.status = 'published'),"
    " (SELECT count(*) FROM comments c WHERE c.article_id = a.id AND c.status = 'published'"
    "  AND c.parent_id IS NULL)"
    " FROM articles a ORDER BY a.key"
)


def counters_vs_rows(connection: Any) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
    """Every article's (published, published top-level) as its counters say and as its
    comments are: ``{key: (counters, rows)}``."""
    return {
        key: ((published, top), (rows, top_rows))
        for key, published, top, rows, top_rows in connection.execute(_COUNTERS_VS_ROWS)
    }


def wrong_counters(app: Flask) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
    """The articles whose counters differ from their comments (none, when all is well)."""
    with app.app_context(), db.engine.connect() as conn:
        return {k: v for k, v in counters_vs_rows(conn).items() if v[0] != v[1]}
