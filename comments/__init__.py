"""Parley: comments under news articles, moderated against the house rules."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import Pool

from . import writegate
from .config import DEFAULT_SECRET_KEY, DEFAULTS, database_uri
from .extensions import csrf, db, migrate
from .sessions import RememberingSessionInterface


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build a Parley app: config, database, sign-in, API, commands, then moderation."""
    app = Flask(__name__, instance_relative_config=True)
    app.session_interface = RememberingSessionInterface()
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

    os.makedirs(app.instance_path, exist_ok=True)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(
        app.config.get("DATABASE_URL"), app.instance_path
    )
    # A pooled PostgreSQL connection may have been closed by the server (restart, idle
    # timeout): one that sat idle is tested on checkout (see _ping_if_idle). A SQLite file
    # can't go away like that.
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    # Checked wherever it is set: a bad value stops a SQLite app too.
    prepare = _prepare_threshold(app.config["DATABASE_PREPARE_THRESHOLD"])
    post_commit = app.config["DATABASE_POST_SYNCHRONOUS_COMMIT"]
    if post_commit not in _SYNCHRONOUS_COMMIT:
        raise RuntimeError(
            "DATABASE_POST_SYNCHRONOUS_COMMIT must be one of "
            f"{', '.join(_SYNCHRONOUS_COMMIT)}; got {post_commit!r}."
        )
    if postgres:
        # BEGIN is sent before a transaction's first write (_postgres_begin_before_first_write).
        options.setdefault("isolation_level", "AUTOCOMMIT")
        options["connect_args"] = {"prepare_threshold": prepare, **options.get("connect_args", {})}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options

    from .validation import BoundedIntConverter

    app.url_map.converters["int"] = BoundedIntConverter
    db.init_app(app)
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            _ping_if_idle(db.engine, float(app.config["DATABASE_PING_AFTER_IDLE_S"]))
            if postgres:
                event.listen(db.engine, "before_cursor_execute", _postgres_begin_before_first_write)
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
    # Last, so it sits in front of everything: anonymous thread reads skip Flask when cached.
    from . import fastread

    fastread.init_app(app)
    return app


def _prepare_threshold(value: Any) -> int | None:
    """DATABASE_PREPARE_THRESHOLD as psycopg takes it: a count of runs, or None for never.
    Anything else stops the app at start, not at its first query."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise RuntimeError(
        "DATABASE_PREPARE_THRESHOLD must be a whole number of runs (0 or more), or null for "
        f"never; got {value!r}."
    )


# PostgreSQL's values for synchronous_commit (DATABASE_POST_SYNCHRONOUS_COMMIT).
_SYNCHRONOUS_COMMIT = ("off", "local", "remote_write", "on", "remote_apply")


def _busy_timeout_ms() -> int:
    return int(os.environ.get("PARLEY_SQLITE_BUSY_TIMEOUT_MS", DEFAULTS["SQLITE_BUSY_TIMEOUT_MS"]))


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL for concurrent readers, enforced foreign keys, and waiting rather than failing
    when another writer holds the lock."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    timeout = _busy_timeout_ms()
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={timeout}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # Autocommit at the driver: we issue BEGIN IMMEDIATE ourselves, before a transaction's
    # first write (see _sqlite_take_write_lock); pysqlite's implicit transactions would start
    # writes as readers and fail with "database is locked" when upgrading.
    dbapi_connection.isolation_level = None


# SQLite allows one writer at a time, and a writer that waits sleeps in growing steps (up to
# 100 ms), so the write lock must be held as briefly as possible. As on PostgreSQL (below),
# a transaction's reads run on their own, each SELECT its own snapshot, so a request that
# only reads sends no BEGIN and no COMMIT; just before the first statement that is not a
# read, BEGIN IMMEDIATE opens the transaction, waiting for the lock up front rather than
# failing to upgrade a read lock ("database is locked"). The lock is then held only from
# the first write to the commit: a post's sanitising and scoring happen before it. Reads
# before that point each see the latest commit, as under PostgreSQL's READ COMMITTED; state
# changes are conditional UPDATEs, so nothing is decided on stale data. Anything but a
# plain read opens the transaction (a WITH, which may write, and SAVEPOINT among them), so
# nothing is ever committed on its own by accident.
_READS = ("SELECT", "PRAGMA", "EXPLAIN")


@event.listens_for(Engine, "before_cursor_execute")
def _sqlite_take_write_lock(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    driver = getattr(cursor, "connection", None)
    if type(driver).__module__ != "sqlite3" or driver.in_transaction:
        return
    if statement.lstrip()[:7].upper().startswith(_READS):
        return
    options = context.execution_options if context is not None else {}
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # asked to run outside a transaction (VACUUM)
    # Queue behind this file's other writers, woken when the last one is done (see
    # writegate.py), rather than in SQLite's growing sleeps.
    # (A connection that wrote before without going back to the pool still holds it.)
    gate = writegate.gate_for(conn.engine.url.database)
    held = conn.info.get("parley_write_gate") is not None
    if gate is not None and not held and gate.acquire(_busy_timeout_ms() / 1000):
        conn.info["parley_write_gate"] = gate
    cursor.execute("BEGIN IMMEDIATE")


# PostgreSQL: BEGIN goes out just before a transaction's first write, not before its first
# statement. The app's connections are in autocommit mode (engine option, see create_app), so
# the SELECTs before that point each run on their own: under READ COMMITTED each statement
# sees the latest committed data anyway, inside a transaction or not, so they see exactly
# what they would have. A request that only reads sends no BEGIN and no COMMIT (two round
# trips of its eight or so), and psycopg, which forgets every prepared statement on
# ROLLBACK, keeps them from one request to the next. From the first write on, everything up
# to the commit or rollback is one transaction, as before; psycopg's commit() and rollback()
# send COMMIT or ROLLBACK when one is open, and nothing otherwise.
# A statement executed with execution option parley_own_transaction (posting a comment: one
# INSERT with the thread's version bump in a WITH) runs as its own transaction when nothing
# was written before it: no BEGIN, no COMMIT.
_PG_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open
_ROW_LOCKS = (" FOR UPDATE", " FOR NO KEY UPDATE", " FOR SHARE", " FOR KEY SHARE")


@functools.lru_cache(maxsize=4096)
def _plain_read(statement: str) -> bool:
    """A SELECT that neither locks (rows, or advisory locks) nor writes (SELECT INTO); a
    WITH, which may modify data, and anything else opens the transaction (as does a SELECT
    read through a server-side cursor: see below)."""
    if statement.lstrip()[:6].upper() != "SELECT":
        return False
    upper = statement.upper()
    return not any(lock in upper for lock in _ROW_LOCKS) and not (
        "ADVISORY" in upper or " INTO " in upper
    )


def _postgres_begin_before_first_write(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    driver = cursor.connection
    if not driver.autocommit or driver.pgconn.transaction_status != _PG_IDLE:
        return  # psycopg begins transactions itself (another isolation level), or one is open
    options = context.execution_options if context is not None else {}
    if options.get("isolation_level") == "AUTOCOMMIT" or options.get("parley_own_transaction"):
        return  # asked to run outside a transaction (VACUUM, CREATE INDEX CONCURRENTLY)
    # A server-side cursor (stream_results, yield_per) lives only inside a transaction.
    if options.get("stream_results") or not _plain_read(statement):
        # On the connection, not the cursor, which may be a server-side one. Not prepared:
        # a simple query, as psycopg sends its own BEGIN.
        driver.execute("BEGIN", prepare=False)


def _ping_if_idle(engine: Engine, idle_s: float) -> None:
    """Test a pooled connection before use only if it sat idle for ``idle_s`` seconds.

    pool_pre_ping tests every checkout: a round trip on every request. Connections that a
    server drops (a restart, an idle timeout, a failover) are nearly always ones that sat
    unused; a connection that dies between two close requests fails that request, which
    the client may retry, and the pool replaces it (SQLAlchemy invalidates a connection on
    a disconnect error)."""

    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["parley_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("parley_idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return  # new, or used a moment ago
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:
            # The pool discards this connection and checks out another (up to 3 tries).
            raise DisconnectionError("pooled connection failed its ping") from exc


@event.listens_for(Pool, "checkin")
def _sqlite_open_write_gate(dbapi_connection: Any, connection_record: Any) -> None:
    """The transaction is over (committed or rolled back): let the next writer in."""
    gate = connection_record.info.pop("parley_write_gate", None) if connection_record else None
    if gate is not None:
        gate.release()
