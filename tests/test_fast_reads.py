"""The hot read path (comments/fastread.py): anonymous thread reads answered before Flask.

It must answer exactly what Flask would (status, every header, body), never a stale page,
and hand everything it is not sure of to Flask."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comments import create_app
from comments.extensions import db
from tests.conftest import Api, dispose


@pytest.fixture
def flask_only(app: Flask) -> Iterator[Flask]:
    """The same site with the fast path and the page cache off: Flask renders every read."""
    plain = create_app({**app.config, "THREAD_CACHE_ENTRIES": 0})
    assert "parley.fast_reads" not in plain.extensions
    yield plain
    dispose(plain)


@pytest.fixture
def flask_calls(app: Flask) -> list[str]:
    """Every GET or HEAD of a thread that reaches Flask behind the fast path, by path and query."""
    middleware = app.extensions["parley.fast_reads"]
    inner, calls = middleware.wsgi_app, []

    def counting(environ, start_response):
        if environ["REQUEST_METHOD"] in ("GET", "HEAD") and environ["PATH_INFO"].endswith(
            "/comments"
        ):
            calls.append(environ["PATH_INFO"] + "?" + environ.get("QUERY_STRING", ""))
        return inner(environ, start_response)

    middleware.wsgi_app = counting
    return calls


def _thread(app: Flask, signed_in, article: str) -> None:
    reader = signed_in("Reader")
    first = reader.comment(article, "The bypass needs a second look.").get_json()["comment"]
    reader.comment(article, "Agreed, <b>and</b> the bus lanes too.", parent_id=first["id"])
    reader.comment(article, "Another view on the council's plan.")


def _same(fast, slow) -> None:
    assert fast.status == slow.status
    assert list(fast.headers) == list(slow.headers)
    assert fast.data == slow.data


@pytest.mark.parametrize(
    "query", ["", "?per_page=1", "?page=2&per_page=1", "?sort=newest", "?sort=replies&page=1"]
)
def test_replayed_page_is_byte_for_byte_what_flask_sends(
    app, flask_only, flask_calls, signed_in, article: str, query: str
) -> None:
    _thread(app, signed_in, article)
    url = f"/api/v1/articles/{article}/comments{query}"
    fast = app.test_client()
    first = fast.get(url)  # a miss: Flask renders it, the fast path keeps it
    replayed = fast.get(url)  # a hit: Flask is not entered
    assert flask_calls.count(url.split("?")[0] + "?" + query.lstrip("?")) == 1
    slow = flask_only.test_client().get(url)
    assert slow.status_code == 200 and slow.get_json()["comments"]
    _same(first, slow)
    _same(replayed, slow)

    # A revalidation: the same 304, headers included, from the fast path and from Flask.
    etag = {"If-None-Match": replayed.headers["ETag"]}
    fast_304, slow_304 = (
        fast.get(url, headers=etag),
        flask_only.test_client().get(url, headers=etag),
    )
    assert fast_304.status_code == 304 and fast_304.data == b""
    _same(fast_304, slow_304)
    assert len(flask_calls) == 1


def test_allowed_origin_gets_its_cors_headers_from_the_cache(
    app, flask_only, flask_calls, signed_in, article: str
) -> None:
    for site in (app, flask_only):
        site.config["CORS_ORIGINS"] = ["https://www.paper.example"]
    _thread(app, signed_in, article)
    url = f"/api/v1/articles/{article}/comments"
    paper, evil = {"Origin": "https://www.paper.example"}, {"Origin": "https://evil.example"}
    fast = app.test_client()
    for _ in range(2):
        _same(fast.get(url, headers=paper), flask_only.test_client().get(url, headers=paper))
        _same(fast.get(url, headers=evil), flask_only.test_client().get(url, headers=evil))
        _same(fast.get(url), flask_only.test_client().get(url))
    assert fast.get(url, headers=paper).headers["Access-Control-Allow-Origin"] == (
        "https://www.paper.example"
    )
    assert "Access-Control-Allow-Origin" not in fast.get(url, headers=evil).headers
    # One render with the allowed Origin, one without (a refused Origin shares it).
    assert len(flask_calls) == 2


def test_a_change_is_served_at_once_and_old_etags_stop_matching(
    app, flask_calls, signed_in, editor: Api, article: str
) -> None:
    reader = signed_in("Reader")
    reader.comment(article, "First thoughts on the new timetable.")
    anonymous = app.test_client()
    url = f"/api/v1/articles/{article}/comments"
    before = anonymous.get(url)
    assert anonymous.get(url, headers={"If-None-Match": before.headers["ETag"]}).status_code == 304

    reader.comment(article, "Second thoughts, after the meeting.")
    after = anonymous.get(url, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert [c["body_html"] for c in after.get_json()["comments"]] == [
        "<p>First thoughts on the new timetable.</p>",
        "<p>Second thoughts, after the meeting.</p>",
    ]
    editor.post(f"/articles/{article}/close")
    closed = anonymous.get(url, headers={"If-None-Match": after.headers["ETag"]})
    assert closed.status_code == 200 and closed.get_json()["article"]["is_open"] is False


def test_signed_in_readers_and_odd_requests_go_to_flask(
    app, flask_calls, signed_in, article: str
) -> None:
    reader = signed_in("Reader")
    reader.comment(article, "A comment for everyone to read.")
    path = f"/api/v1/articles/{article}/comments"
    anonymous = app.test_client()
    anonymous.get(path)
    anonymous.get(path)
    assert len(flask_calls) == 1

    # A session cookie: Flask decides what this reader may see (their own held comments).
    assert reader.get(f"/articles/{article}/comments").status_code == 200
    assert len(flask_calls) == 2
    # Forms the API accepts or refuses that the fast path leaves to it, and their answers.
    cases = {
        "?page=01": 200,
        "?page=1&page=2": 200,
        "?per_page=0": 400,
        "?per_page=101": 400,
        "?sort=loudest": 400,
        "?colour=red": 200,
        "?page=%C2%B2": 400,  # a superscript two: a digit to str.isdigit, not to int
        "?page=%D9%A3": 200,  # an Arabic-Indic three: int() reads it, so does the API
    }
    for query, status in cases.items():
        response = anonymous.get(path + query)
        assert response.status_code == status, query
        if status == 400:
            assert response.get_json()["error"]["code"] == "invalid_parameter"
    assert len(flask_calls) == 2 + len(cases)
    assert anonymous.head(path).status_code == 200
    missing = anonymous.get("/api/v1/articles/no-such-story/comments")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert len(flask_calls) == 2 + len(cases) + 2


def test_a_dropped_database_connection_is_replaced(app, signed_in, article: str) -> None:
    """PostgreSQL: the fast path's own connection, dropped by the server (a restart, an idle
    timeout), is replaced on the next read, which still answers."""
    from sqlalchemy import text

    if app.extensions["parley.fast_reads"]._engine is None:
        app.test_client().get("/api/v1/articles/none/comments")  # connect lazily, as a worker
    fast = app.extensions["parley.fast_reads"]
    if not fast._dedicated:
        pytest.skip("SQLite: the fast path uses the app's pool, which has no network to lose")
    signed_in("Reader").comment(article, "Still here after the database restarts.")
    anonymous = app.test_client()
    url = f"/api/v1/articles/{article}/comments"
    assert anonymous.get(url).status_code == 200
    before = fast._local.connection.info.backend_pid
    with app.app_context():
        db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": before})
        db.session.commit()
    again = anonymous.get(url)
    assert again.status_code == 200
    assert again.get_json()["comments"][0]["body_html"] == (
        "<p>Still here after the database restarts.</p>"
    )
    assert fast._local.connection.info.backend_pid != before


def test_a_failing_version_lookup_leaves_the_answer_to_flask(
    app, flask_calls, monkeypatch, signed_in, article: str
) -> None:
    signed_in("Reader").comment(article, "Flask answers when the fast path can't.")
    fast = app.extensions["parley.fast_reads"]

    def broken(key: str):
        raise RuntimeError("connection refused")

    monkeypatch.setattr(fast, "_header", broken)
    response = app.test_client().get(f"/api/v1/articles/{article}/comments")
    assert response.status_code == 200 and len(flask_calls) == 1
    assert response.get_json()["comments"][0]["body_html"] == (
        "<p>Flask answers when the fast path can't.</p>"
    )


_WELL_FORMED = st.one_of(
    st.tuples(st.just("page"), st.sampled_from(["1", "2", "3"])),
    st.tuples(st.just("per_page"), st.sampled_from(["1", "2", "20"])),
    st.tuples(st.just("sort"), st.sampled_from(["oldest", "newest", "replies"])),
)
_ANYTHING = st.tuples(
    st.sampled_from(["page", "per_page", "sort", "colour", "PAGE", "page[]"]),
    st.one_of(
        st.sampled_from(["01", "0", "-1", "101", "1000001", "", "²", "٣", "Oldest", "loudest"]),
        st.text(max_size=6),
    ),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(_WELL_FORMED, _WELL_FORMED, _ANYTHING), max_size=3))
def test_any_query_string_gets_the_same_answer_as_from_flask(
    app, flask_only, signed_in, article: str, pairs: list[tuple[str, str]]
) -> None:
    """Whatever a client puts in the query string, the fast path answers exactly as Flask
    would (or leaves it to Flask): same status, headers and body, across many requests to
    one worker, so that an answer kept under too coarse a key would be caught."""
    if not app.extensions.get("test.thread"):
        reader = signed_in("Reader")
        ids = [
            reader.comment(article, text).get_json()["comment"]["id"]
            for text in ("One view of the plan.", "Another view.", "A third, on the buses.")
        ]
        reader.comment(article, "A reply, so sort=replies differs.", parent_id=ids[1])
        app.extensions["test.thread"] = True
    base = f"/api/v1/articles/{article}/comments"
    fast = app.test_client()
    # The plain first page each time too: an answer kept under too coarse a key shows up as
    # another query string getting that page.
    for url in (base, f"{base}?{urlencode(pairs)}", base + "?per_page=2"):
        for _ in range(2):  # the second may be a replay
            _same(fast.get(url), flask_only.test_client().get(url))
