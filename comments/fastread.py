"""The hot read path: anonymous readers' thread pages answered before Flask is entered.

A story that goes viral brings thousands of readers to one thread, nearly all of them
anonymous, asking for the same page. For them a page depends only on the article (its id and
its version, which lives in the database and is bumped by every change to the thread),
whether it is open, the page asked for and, for CORS, an allowed Origin. So this WSGI
middleware, in front of the Flask app, does for such a request only what must be done each
time: one indexed query for the article's version on a pooled connection, then either a 304
for a matching ``If-None-Match`` or the 200 this worker sent for that version before,
replayed byte for byte (status, headers and body exactly as Flask produced them).

Anything it is not sure of goes to Flask untouched: another method or path, a session or
remember-me cookie (a signed-in reader sees their own held comments), an unusual query
string, an unknown article. On a miss the request goes to Flask too, with the article row
already looked up (so the page is rendered from the same version the key names) and without
``If-None-Match``, so Flask renders the page; a 200 is kept for the next reader, and the
conditional is answered here. Staleness is impossible for the same reason as in the page
cache: a change anywhere gives a new version, so an old entry is never asked for again.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.http import parse_etags, unquote_etag

from .cache import PageCache
from .extensions import db
from .models import Article
from .services import PAGE_MAX, SORTS, THREAD_HEADER

THREAD_PATH = re.compile(r"/api/v1/articles/([A-Za-z0-9._~-]{1,200})/comments")
# Dropped from a 200's headers to make the 304 for the same request (as Werkzeug does).
_ENTITY_HEADERS = frozenset({"content-type", "content-length"})
ENVIRON_KEY = "parley.thread_header"


def _canonical_int(value: str) -> bool:
    """ASCII digits without leading zeros ("²" is a digit to str.isdigit, not to int)."""
    return value.isascii() and value.isdigit() and value == str(int(value))


class ThreadHeader(NamedTuple):
    """A ``services.THREAD_HEADER`` row with its values as the ORM would read them, so
    ``Article.accepts_comments`` and the API view take it as they take that row."""

    id: int
    version: int
    is_open: bool
    auto_close_days: int | None
    created_at: Any


class _Entry(NamedTuple):
    etag: str
    headers_200: list[tuple[str, str]]
    headers_304: list[tuple[str, str]]
    body: bytes


class FastThreadReads:
    def __init__(self, app: Flask, wsgi_app: Callable[..., Any]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.per_page_default = int(app.config["PER_PAGE_DEFAULT"])
        self.per_page_max = int(app.config["PER_PAGE_MAX"])
        self.cookie_names = (
            app.config["SESSION_COOKIE_NAME"],
            app.config.get("REMEMBER_COOKIE_NAME", "remember_token"),
        )
        self._entries = PageCache(int(app.config["THREAD_CACHE_ENTRIES"]))
        self._lock = threading.Lock()  # guards _connections
        self._engine: Any = None
        self._dedicated = False
        self._connect_args: Any = None
        self._local = threading.local()
        self._connections: list[Any] = []
        self._sql = ""
        self._positional = True
        self._created_at: Callable[[Any], Any] | None = None

    # ----------------------------------------------------------------- the request

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        params = self._eligible(environ)
        if params is None:
            return self.wsgi_app(environ, start_response)
        try:
            header = self._header(params[0])
        except Exception:  # the database is unwell: Flask answers, with its error document
            header = None
        if header is None:  # unknown article: Flask says so, with its error document
            return self.wsgi_app(environ, start_response)
        is_open = Article.accepts_comments(header, self.app.config["AUTO_CLOSE_DAYS"])
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in self.app.config["CORS_ORIGINS"]:
            origin = None  # a refused Origin gets the same response as none
        key = (params[0], header.id, header.created_at, header.version, is_open, *params[1:],
               origin)  # fmt: skip
        entry = self._entries.get(key)
        if entry is None:
            entry = self._render(environ, header, start_response)
            if not isinstance(entry, _Entry):
                return entry  # Flask's own non-200 answer, already started
            self._entries.put(key, entry)
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match and parse_etags(if_none_match).contains_weak(entry.etag):
            start_response("304 NOT MODIFIED", entry.headers_304)
            return []
        start_response("200 OK", entry.headers_200)
        return [entry.body]

    def _eligible(self, environ: dict[str, Any]) -> tuple[str, int, int, str] | None:
        """(article key, page, per_page, sort) for an anonymous GET of a thread page in the
        canonical form the API documents; None sends the request to Flask."""
        if environ.get("REQUEST_METHOD") != "GET":
            return None
        match = THREAD_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        cookies = environ.get("HTTP_COOKIE")
        if cookies and any(name in cookies for name in self.cookie_names):
            return None
        page, per_page, sort = 1, self.per_page_default, "oldest"
        query = environ.get("QUERY_STRING")
        if query:
            seen = set()
            for name, value in parse_qsl(query, keep_blank_values=True):
                if name in seen:
                    return None
                seen.add(name)
                if name == "sort" and value in SORTS:
                    sort = value
                elif name in ("page", "per_page") and _canonical_int(value):
                    number = int(value)
                    if name == "page" and 1 <= number <= PAGE_MAX:
                        page = number
                    elif name == "per_page" and 1 <= number <= self.per_page_max:
                        per_page = number
                    else:
                        return None
                else:
                    return None
        return match.group(1), page, per_page, sort

    def _header(self, article_key: str) -> ThreadHeader | None:
        """The article's version and open/close columns: one indexed query, outside any
        transaction, on a connection that needs no checkout ritual."""
        if self._engine is None:
            self._prepare()
        if self._dedicated:
            row = self._fetch_dedicated(article_key)
        else:
            connection = self._engine.raw_connection()
            try:
                row = self._fetch(connection, article_key)
            finally:
                connection.close()
        if row is None:
            return None
        created_at = self._created_at(row[4]) if self._created_at else row[4]
        return ThreadHeader(row[0], row[1], bool(row[2]), row[3], created_at)

    def _fetch(self, connection: Any, article_key: str) -> Any:
        cursor = connection.cursor()
        try:
            cursor.execute(self._sql, (article_key,) if self._positional else {"key": article_key})
            return cursor.fetchone()
        finally:
            cursor.close()

    def _fetch_dedicated(self, article_key: str) -> Any:
        """PostgreSQL: each thread keeps one autocommit connection of its own, so a lookup is
        one round trip with no checkout, autocommit switching or reset on return. (It was
        built when the pool pinged on every checkout, ~100 us here, as much as the query;
        the pool now pings only idle connections, and the dedicated connection's remaining
        saving has not been measured again.) A connection the server has dropped fails
        this query and is replaced once before giving up (Flask then answers, or reports
        the outage)."""
        dbapi = self._engine.dialect.loaded_dbapi
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._engine.dialect.connect(*self._connect_args[0],
                                                          **self._connect_args[1])  # fmt: skip
                connection.autocommit = True
                self._local.connection = connection
                with self._lock:
                    self._connections.append(connection)
            try:
                return self._fetch(connection, article_key)
            except (dbapi.OperationalError, dbapi.InterfaceError):
                self._local.connection = None
                connection.close()
                if attempt == 2:
                    raise
        return None  # not reached

    def close(self) -> None:
        """Close the dedicated connections (an app being torn down, as in tests)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def _prepare(self) -> None:
        with self.app.app_context():
            engine = db.engine
        dialect = engine.dialect
        # The statement services.thread_header runs, in this database's SQL and parameter style.
        self._sql = str(THREAD_HEADER.compile(dialect=dialect))
        self._positional = dialect.positional
        column = Article.__table__.c.created_at
        self._created_at = column.type.dialect_impl(dialect).result_processor(dialect, None)
        # SQLite's pooled connections cost nothing to check out (no ping on SQLite).
        self._dedicated = dialect.name == "postgresql"
        # The engine's own connect_args too (the URL alone drops them): the same
        # prepare_threshold as the pool's connections, for PgBouncer's sake among others.
        args, kwargs = dialect.create_connect_args(engine.url)
        extra = self.app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args", {})
        self._connect_args = (args, {**kwargs, **extra})
        self._engine = engine

    # ------------------------------------------------------------------- a miss

    def _render(
        self, environ: dict[str, Any], header: ThreadHeader, start_response: Callable[..., Any]
    ) -> _Entry | Iterable[bytes]:
        """Have Flask render the page for ``header``'s version; keep a 200, pass on the rest."""
        inner = dict(environ)
        inner.pop("HTTP_IF_NONE_MATCH", None)
        inner[ENVIRON_KEY] = header
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: captured.setdefault("written", []).append(data)

        result = self.wsgi_app(inner, capture)
        try:
            body = b"".join([*captured.get("written", []), *result])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = captured["status"], captured["headers"]
        names = {name.lower(): value for name, value in headers}
        if not status.startswith("200 ") or "etag" not in names or "set-cookie" in names:
            start_response(status, headers)
            return [body]
        return _Entry(
            unquote_etag(names["etag"])[0],
            list(headers),
            [(n, v) for n, v in headers if n.lower() not in _ENTITY_HEADERS],
            body,
        )


def init_app(app: Flask) -> None:
    """Put the fast path in front of the app (THREAD_CACHE_ENTRIES = 0 turns it off)."""
    if int(app.config["THREAD_CACHE_ENTRIES"]) > 0:
        middleware = FastThreadReads(app, app.wsgi_app)
        app.extensions["parley.fast_reads"] = middleware
        app.wsgi_app = middleware  # type: ignore[method-assign]
