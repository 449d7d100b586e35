"""Parley: comments under news articles, moderated against the house rules."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import DEFAULT_SECRET_KEY, DEFAULTS, database_uri
from .extensions import csrf, db, migrate


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build a Parley app: config, database, sign-in, API, commands, then moderation."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("PARLEY")
    if test_config is not None:
        app.config.from_mapping(test_config)

    if app.config["ENV"] == "production":
        if app.config["SECRET_KEY"] in (None, "", DEFAULT_SECRET_KEY):
            raise RuntimeError(
                "Refusing to start in production with the default secret key: "
                "set PARLEY_SECRET_KEY (or SECRET_KEY in instance/config.py)."
            )
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True

    @app.before_request
    def _reads_take_no_write_lock() -> None:
        from flask import g, request

        if request.method in ("GET", "HEAD", "OPTIONS"):
            g.parley_writing_token = writing.set(False)

    @app.teardown_request
    def _reset_write_flag(exc: BaseException | None) -> None:
        from flask import g

        token = g.pop("parley_writing_token", None)
        if token is not None:
            writing.reset(token)

    os.makedirs(app.instance_path, exist_ok=True)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(
        app.config.get("DATABASE_URL"), app.instance_path
    )
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})

    from .validation import BoundedIntConverter

    app.url_map.converters["int"] = BoundedIntConverter
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    csrf.init_app(app)

    from . import auth, cache, errors, limits, security

    errors.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    limits.init_app(app)
    cache.init_app(app)

    from . import api, cli, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    cli.init_app(app)

    # Moderation plugs its rules, reports and classifier in; comments never imports it
    # at module level (dependency direction: moderation -> comments).
    import moderation

    moderation.init_app(app)
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL for concurrent readers, enforced foreign keys, and waiting rather than failing
    when another writer holds the lock."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    timeout = int(
        os.environ.get("PARLEY_SQLITE_BUSY_TIMEOUT_MS", DEFAULTS["SQLITE_BUSY_TIMEOUT_MS"])
    )
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={timeout}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # We issue BEGIN ourselves (see _sqlite_begin); pysqlite's implicit transactions would
    # start writes as readers and fail with "database is locked" when upgrading.
    dbapi_connection.isolation_level = None


# Requests that change data take SQLite's write lock when their transaction starts
# (BEGIN IMMEDIATE), so concurrent writers queue on the busy timeout instead of failing when
# a read lock can't be upgraded. Reads (GET, HEAD) use a deferred BEGIN and never block.
writing: ContextVar[bool] = ContextVar("parley_sqlite_writing", default=True)


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn: Any) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing.get() else "BEGIN")
