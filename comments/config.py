"""Configuration: defaults here, then ``instance/config.py``, then ``PARLEY_*`` environment
variables, then the ``test_config`` given to ``create_app``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULT_SECRET_KEY = "dev-insecure-change-me"

DEFAULTS: dict[str, Any] = {
    # "development" or "production"; production refuses the default secret key and sets
    # Secure cookies.
    "ENV": "development",
    "SECRET_KEY": DEFAULT_SECRET_KEY,
    "DATABASE_URL": None,  # None: a SQLite file in the instance folder
    "SQLITE_BUSY_TIMEOUT_MS": 5000,
    # A pooled PostgreSQL connection idle this long is tested (SELECT 1) before it is used;
    # one used since is not (a ping on every checkout was a round trip on every request).
    "DATABASE_PING_AFTER_IDLE_S": 10.0,
    # PostgreSQL: psycopg prepares a statement on the server once a connection has run it
    # this many times (psycopg's own default, 5); None: never. Behind PgBouncer in transaction
    # pooling mode, None unless PgBouncer is 1.21 or newer with max_prepared_statements set.
    "DATABASE_PREPARE_THRESHOLD": 5,
    # PostgreSQL: a post that is its request's only write (one statement, its own
    # transaction) commits without waiting for the server to flush its WAL to disk ("off"),
    # as every SQLite commit already does under synchronous=NORMAL: a crash of the database
    # server or its machine may lose the last fraction of a second of posts (up to three
    # times wal_writer_delay), never half of one. Decisions, reports, accounts and the audit
    # log always wait. "on" (or "local", "remote_write", "remote_apply"): posts wait too.
    "DATABASE_POST_SYNCHRONOUS_COMMIT": "off",
    # Request bodies larger than this are refused with 413 before they are read.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "COMMENT_MAX_LENGTH": 5000,
    "COMMENT_MAX_DEPTH": 6,
    "EDIT_WINDOW_MINUTES": 15,
    "PER_PAGE_DEFAULT": 20,
    "PER_PAGE_MAX": 100,
    # Rendered thread pages kept per worker (keyed on the article's version; 0: off).
    "THREAD_CACHE_ENTRIES": 2048,
    # Days after registration that an article's comments close; None: never (per-article
    # override on the article).
    "AUTO_CLOSE_DAYS": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "parley_session",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
    "WTF_CSRF_HEADERS": ["X-CSRFToken", "X-CSRF-Token"],
    "JSON_SORT_KEYS": False,
    # Abuse limits (Flask-Limiter syntax). Counters in Redis when REDIS_URL is set.
    "REDIS_URL": None,
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_HEADERS_ENABLED": True,
    "RATELIMIT_KEY_PREFIX": "parley",
    "RATELIMIT_POST_USER": "5/minute;60/day",
    "RATELIMIT_POST_NEW_USER": "2/minute;20/day",  # accounts younger than a day
    "RATELIMIT_POST_IP": "30/minute;600/day",
    "RATELIMIT_REPORT_USER": "10/minute;100/day",
    "RATELIMIT_SIGNIN_IP": "20/minute;200/day",
    "RATELIMIT_SIGNIN_ACCOUNT": "5/minute;50/day",
    "RATELIMIT_SIGNUP_IP": "5/hour;20/day",
    # How many reverse proxies in front of Parley may set X-Forwarded-For (0: none).
    "PROXY_FIX_X_FOR": 0,
    # The same or nearly the same text from one user within this many minutes is refused.
    "DUPLICATE_WINDOW_MINUTES": 10,
    # Newsroom origins allowed to frame Parley's pages and to call the API with cookies.
    "FRAME_ANCESTORS": [],
    "CORS_ORIGINS": [],
    "ARGON2_PROFILE": "default",
}


def database_uri(url: str | None, instance_path: str) -> str:
    """The SQLAlchemy URI: PostgreSQL goes through psycopg 3, the default is a SQLite file."""
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "parley.sqlite3")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
