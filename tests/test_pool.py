"""Pooled PostgreSQL connections: tested before use only after sitting idle, and replaced
when the server has dropped them. (SQLite has no server to lose: skipped there.)"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, text, update

from comments.extensions import db
from comments.models import Role
from tests.conftest import listening


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
    """psycopg forgets its prepared statements on every rollback. A read-only request opens
    no transaction, so it has none to roll back: a connection keeps the statements it has
    prepared from one request to the next."""
    moderator = signed_in("Moderator", Role.MODERATOR)
    for _ in range(7):  # psycopg prepares a statement on its sixth run
        assert moderator.get("/moderation/queue?kind=pending").status_code == 200
    queue_statements = [s for s in _prepared(postgres) if "FROM comments" in s]
    assert queue_statements, "the queue's statements were not kept between requests"


@contextlib.contextmanager
def _wire(app: Flask, tmp_path: Path) -> Iterator[list[tuple[str, str]]]:
    """What the pool's one connection sends the server meanwhile, read from libpq's protocol
    trace when the block ends: (message, text) for each simple query ("Query", "BEGIN") and
    each statement parsed ("Parse", its SQL)."""
    import psycopg

    path = tmp_path / "wire.trace"
    with app.app_context():
        raw = db.engine.raw_connection()
        pgconn = raw.driver_connection.pgconn
        raw.close()
    messages: list[tuple[str, str]] = []
    with path.open("w") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield messages
        finally:
            pgconn.untrace()  # flushes libpq's buffer
    # One message a line, but the SQL it quotes keeps its own line breaks.
    for entry in re.split(r"\n(?=[FB]\t)", path.read_text()):
        direction, _, kind, body = (entry.split("\t", 3) + ["", "", ""])[:4]
        if direction == "F" and kind in ("Query", "Parse"):
            body = body.strip()
            if kind == "Parse":  # "" "SELECT ..." n types: the SQL only
                body = body.split('" "', 1)[1].rsplit('"', 1)[0]
            messages.append((kind, body.strip('"')))


def _commands(messages: list[tuple[str, str]]) -> list[str]:
    """The transaction control among them: BEGIN, COMMIT, ROLLBACK (psycopg sends these, and
    statements without parameters, as simple queries)."""
    control = ("BEGIN", "COMMIT", "ROLLBACK")
    return [text for kind, text in messages if kind == "Query" and text.upper() in control]


def test_a_read_only_request_opens_no_transaction(
    postgres: Flask, signed_in, article: str, tmp_path: Path
) -> None:
    """Reads run outside a transaction (each SELECT sees the latest committed data, as it
    would inside one under READ COMMITTED): no BEGIN and no COMMIT, two round trips fewer."""
    moderator = signed_in("Moderator", Role.MODERATOR)
    with _wire(postgres, tmp_path) as messages:
        assert moderator.get("/moderation/queue?kind=pending").status_code == 200
    assert any("FROM comments" in text for _, text in messages), "saw none of the request"
    assert _commands(messages) == []


def test_a_post_is_one_statement_committed_as_it_runs(
    postgres: Flask, reader, article: str, tmp_path: Path
) -> None:
    """A post's only write is one INSERT carrying the thread's version bump: it runs as its
    own transaction, with no BEGIN or COMMIT, and is there for everyone at once."""
    from comments.models import Article

    with postgres.app_context():
        version = db.session.scalar(select(Article.version).where(Article.key == article))
    with _wire(postgres, tmp_path) as messages:
        posted = reader.comment(article, "The bypass has been promised since 1998.")
    assert posted.status_code == 201
    writes = [text for kind, text in messages if kind == "Parse" and "INSERT" in text]
    assert len(writes) == 1 and "UPDATE articles SET version" in writes[0]
    assert _commands(messages) == []
    with postgres.app_context():
        row = db.session.execute(select(Article.version).where(Article.key == article)).scalar_one()
        thread = postgres.test_client().get(f"/api/v1/articles/{article}/comments").get_json()
    assert row == version + 1
    assert [c["id"] for c in thread["comments"]] == [posted.get_json()["comment"]["id"]]


def test_a_sanction_is_one_transaction_from_its_first_write_to_its_commit(
    postgres: Flask, signed_in, reader, article: str, tmp_path: Path
) -> None:
    """A request that writes more than once: BEGIN goes out just before the first write, and
    every write after it is inside, up to the COMMIT. (A decision on a comment is one
    statement on PostgreSQL: tests/test_decision_writes.py.)"""
    moderator = signed_in("Moderator", Role.MODERATOR)
    with _wire(postgres, tmp_path) as messages:
        warned = moderator.post(
            f"/moderation/users/{reader.user['id']}/sanctions",
            {"kind": "warning", "rule": "civil", "reason": "Nobody asked the people of Gilesgate."},
        )
    assert warned.status_code == 201, warned.get_json()
    kinds = [
        "BEGIN" if text == "BEGIN" else "COMMIT" if text == "COMMIT" else
        "read" if text.lstrip().upper().startswith("SELECT") else "write"
        for _, text in messages
    ]  # fmt: skip
    first_write = kinds.index("write")
    assert kinds[first_write - 1] == "BEGIN" and kinds.count("BEGIN") == 1
    assert kinds[-1] == "COMMIT" and kinds.count("COMMIT") == 1
    assert kinds.count("write") >= 3  # the sanction, the decision, the audit entry


def test_a_row_lock_opens_the_transaction_and_holds_until_the_commit(
    postgres: Flask, article: str
) -> None:
    """A SELECT ... FOR UPDATE is not a plain read: it begins the transaction, so its lock
    lasts until the commit rather than ending with the statement."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from comments.models import Article

    other = create_engine(postgres.config["SQLALCHEMY_DATABASE_URI"])
    nowait = text("SELECT id FROM articles WHERE key = :key FOR UPDATE NOWAIT")
    try:
        with postgres.app_context():
            db.session.execute(select(Article).where(Article.key == article).with_for_update())
            with other.connect() as conn, pytest.raises(OperationalError, match="lock"):
                conn.execute(nowait, {"key": article})
            db.session.commit()
            with other.connect() as conn:
                assert conn.execute(nowait, {"key": article}).scalar_one()
    finally:
        other.dispose()


def test_a_comments_change_locks_its_thread_only_for_the_commit(
    postgres: Flask, reader, article: str
) -> None:
    """The thread's version bump is a change's last statement: until the commit, another
    moderator's change on the same story is not kept waiting for the article's row."""
    from sqlalchemy import create_engine

    from comments import services
    from comments.models import Comment, CommentStatus

    posted = reader.comment(article, "The new bus lane starts at the station.").get_json()
    other = create_engine(postgres.config["SQLALCHEMY_DATABASE_URI"])
    version = text("SELECT version FROM articles WHERE key = :key")
    try:
        with postgres.app_context():
            comment = db.session.get(Comment, posted["comment"]["id"])
            withdrawn = CommentStatus.WITHDRAWN
            assert services.transition(comment, (CommentStatus.PUBLISHED,), status=withdrawn)
            with other.connect() as conn:
                locked = conn.execute(text(f"{version.text} FOR UPDATE NOWAIT"), {"key": article})
                before = locked.scalar_one()
                conn.rollback()
            db.session.commit()
        with other.connect() as conn:
            assert conn.execute(version, {"key": article}).scalar_one() == before + 1
    finally:
        other.dispose()


@pytest.mark.config(SQLALCHEMY_ENGINE_OPTIONS={"isolation_level": "SERIALIZABLE"})
def test_an_isolation_level_of_the_operators_choosing_has_psycopg_begin_every_transaction(
    postgres: Flask, signed_in, reader, article: str, tmp_path: Path
) -> None:
    """An isolation_level in SQLALCHEMY_ENGINE_OPTIONS replaces the autocommit default: every
    transaction, a read's included, then begins at its first statement, as psycopg does; a
    read ends in a rollback (which costs psycopg its prepared statements) and a post is
    committed with the rest of its request."""
    moderator = signed_in("Moderator", Role.MODERATOR)
    with _wire(postgres, tmp_path) as messages:
        assert moderator.get("/moderation/queue?kind=pending").status_code == 200
        assert reader.comment(article, "The library keeps its Sunday hours.").status_code == 201
    begun = [text for kind, text in messages if kind == "Query" and text.startswith("BEGIN")]
    assert begun == ["BEGIN ISOLATION LEVEL SERIALIZABLE"] * 2
    assert _commands(messages) == ["ROLLBACK", "COMMIT"]


def test_a_streamed_select_gets_the_transaction_its_server_side_cursor_needs(
    postgres: Flask, reader, article: str
) -> None:
    """PostgreSQL declares a server-side cursor (yield_per, stream_results) only inside a
    transaction block: such a SELECT begins one, where a plain SELECT would not."""
    from comments.models import Comment

    for i in range(3):
        reader.comment(article, f"Roadworks on the A690, day {i + 1} of many.")
    with postgres.app_context():
        ids = select(Comment.id).order_by(Comment.id)
        for options in ({"yield_per": 2}, {"stream_results": True, "max_row_buffer": 2}):
            assert len(list(db.session.scalars(ids.execution_options(**options)))) == 3
            db.session.rollback()


def test_a_statement_asked_to_run_outside_a_transaction_still_does(postgres: Flask) -> None:
    """VACUUM refuses to run inside a transaction block: an explicit AUTOCOMMIT connection
    must not be handed a BEGIN before it."""
    with (
        postgres.app_context(),
        db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
    ):
        conn.execute(text("VACUUM articles"))


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


def _fast_path_prepared(app: Flask) -> set[str]:
    """What the fast read path's own connection (this thread's) has prepared on the server."""
    fast = app.extensions["parley.fast_reads"]
    rows = fast._local.connection.execute("SELECT statement FROM pg_prepared_statements")
    return {statement for (statement,) in rows}


@pytest.mark.parametrize(
    "prepares",
    [
        pytest.param(True, id="psycopg-default"),
        pytest.param(False, id="never", marks=pytest.mark.config(DATABASE_PREPARE_THRESHOLD=None)),
    ],
)
def test_prepared_statements_follow_the_setting_on_every_connection(
    postgres: Flask, signed_in, article: str, prepares: bool
) -> None:
    """DATABASE_PREPARE_THRESHOLD reaches the pool's connections and the fast read path's
    own: with None (PgBouncer in transaction mode before 1.21) neither prepares anything."""
    moderator = signed_in("Moderator", Role.MODERATOR)
    anonymous = postgres.test_client()
    for _ in range(7):  # psycopg's default prepares a statement on its sixth run
        assert moderator.get("/moderation/queue?kind=pending").status_code == 200
        assert anonymous.get(f"/api/v1/articles/{article}/comments").status_code == 200
    pool = [s for s in _prepared(postgres) if "FROM comments" in s]
    fast = [s for s in _fast_path_prepared(postgres) if "FROM articles" in s]
    assert bool(pool) is prepares
    assert bool(fast) is prepares


@pytest.mark.parametrize(
    ("setting", "bad", "refusal"),
    [
        ("DATABASE_PREPARE_THRESHOLD", bad, "must be a whole number")
        for bad in ("five", -1, 2.5, True)
    ]
    + [
        ("DATABASE_POST_SYNCHRONOUS_COMMIT", bad, "must be one of")
        for bad in ("sometimes", "", None, True)
    ],
)
def test_a_bad_database_setting_stops_the_app_at_start(
    database_url: str, tmp_path: Path, setting: str, bad: object, refusal: str
) -> None:
    from comments import create_app
    from tests.conftest import base_config

    config = {**base_config(database_url, tmp_path), setting: bad}
    with pytest.raises(RuntimeError, match=f"{setting} {refusal}"):
        create_app(config)


# A post that is its request's only write commits as DATABASE_POST_SYNCHRONOUS_COMMIT says
# (default "off": without waiting for the WAL flush); nothing else does, and the setting
# never outlives the post's own statement.


def _post_statements(app: Flask, action) -> list[tuple[str, dict, str]]:
    """Each statement that sets synchronous_commit, its parameters, and what the same
    connection's synchronous_commit is just after it ran."""
    seen: list[tuple[str, dict, str]] = []

    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        if "set_config('synchronous_commit'" in statement:
            setting = cursor.connection.execute("SHOW synchronous_commit").fetchone()[0]
            seen.append((statement, dict(parameters), setting))

    with listening(app, "after_cursor_execute", after):
        action()
    return seen


@pytest.mark.parametrize(
    "setting",
    [
        pytest.param("off", id="default"),
        pytest.param(
            "on", id="on", marks=pytest.mark.config(DATABASE_POST_SYNCHRONOUS_COMMIT="on")
        ),
    ],
)
def test_a_post_commits_as_configured_and_leaves_the_connection_as_it_was(
    postgres: Flask, reader, article: str, setting: str
) -> None:
    answers: list = []
    seen = _post_statements(
        postgres, lambda: answers.append(reader.comment(article, "Counted in, at once."))
    )
    assert answers[0].status_code == 201
    [(statement, params, after)] = seen
    assert " ".join(statement.split()).startswith("WITH bump AS (UPDATE articles")
    assert "INSERT INTO comments" in statement
    assert params["post_synchronous_commit"] == setting
    # Transaction-local: gone when the post's own transaction committed.
    assert after == "on"
    with postgres.app_context():
        assert db.session.execute(text("SHOW synchronous_commit")).scalar_one() == "on"


def test_the_post_statement_really_applies_the_setting(postgres: Flask, reader, article: str):
    """The set_config in the post's statement runs: PostgreSQL refuses a value it doesn't
    know (create_app refuses one first; here it is changed behind its back), and the post
    is not stored."""
    postgres.config["DATABASE_POST_SYNCHRONOUS_COMMIT"] = "sometimes"
    refused = reader.comment(article, "Will this one be stored?")
    assert refused.status_code == 500
    assert refused.get_json()["error"]["code"] == "internal_error"
    postgres.config["DATABASE_POST_SYNCHRONOUS_COMMIT"] = "off"
    with postgres.app_context():
        bodies = db.session.scalars(text("SELECT body FROM comments")).all()
    assert bodies == []
    assert reader.comment(article, "This one is.").status_code == 201


def test_decisions_and_reports_wait_for_the_disk(postgres: Flask, reader, signed_in, article):
    """Only a post alone in its request commits asynchronously: a report and a moderator's
    decision (with their audit entries) never set synchronous_commit."""
    posted = reader.comment(article, "A comment to report and decide.").get_json()["comment"]
    witness = signed_in("Witness")
    moderator = signed_in("Moderator", Role.MODERATOR)

    def report_and_decide() -> None:
        # (A new reader's first post is held: the moderator approves it, then it is reported.)
        decided = moderator.post(
            f"/moderation/comments/{posted['id']}/decision", {"action": "approve"}
        )
        assert decided.status_code == 200, decided.get_json()
        reported = witness.post(f"/comments/{posted['id']}/reports", {"rule": "civil"})
        assert reported.status_code == 201, reported.get_json()

    assert _post_statements(postgres, report_and_decide) == []


def test_a_queue_page_sends_the_same_statements_whatever_its_authors(
    postgres: Flask, signed_in, article: str
) -> None:
    """The author records' id lists are one array parameter (= ANY), not an IN list
    rendered for each page: the statement text is the same for one author or two, so
    psycopg prepares each statement once."""
    moderator = signed_in("Moderator", Role.MODERATOR)

    def held_from(name: str) -> None:
        author = signed_in(name)
        moderator.post(
            f"/moderation/users/{author.user['id']}/sanctions",
            {"kind": "premoderation", "rule": "civil", "reason": "new here"},
        )
        assert author.comment(article, f"{name} asks about the bus timetable.").status_code == 202

    def page_statements() -> list[str]:
        sent: list[str] = []

        def capture(conn, cursor, statement, *rest) -> None:
            sent.append(statement)

        with listening(postgres, "before_cursor_execute", capture):
            items = moderator.get("/moderation/queue?kind=pending").get_json()["items"]
        return [len({i["author"]["user"]["id"] for i in items}), *sent]

    held_from("First")
    one = page_statements()
    held_from("Second")
    two = page_statements()
    assert (one[0], two[0]) == (1, 2)
    assert one[1:] == two[1:]
    assert any("= ANY" in statement for statement in one[1:])
