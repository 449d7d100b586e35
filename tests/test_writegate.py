"""SQLite's writers queue at a gate (comments/writegate.py) and are let in as soon as the
last one is done: across threads, across processes, never forever, and never left shut."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text

from comments.extensions import db
from comments.writegate import WriteGate, gate_for
from tests.conftest import Api

ROOT = Path(__file__).resolve().parents[1]


def test_a_waiting_thread_goes_in_when_the_writer_leaves(tmp_path) -> None:
    gate = WriteGate(str(tmp_path / "db.sqlite3"))
    assert gate.acquire(1)
    entered = threading.Event()

    def second_writer() -> None:
        assert gate.acquire(5)
        entered.set()
        gate.release()

    waiting = threading.Thread(target=second_writer)
    waiting.start()
    assert not entered.wait(0.2)  # held: the second writer waits
    left = time.monotonic()
    gate.release()
    assert entered.wait(2)
    waiting.join()
    assert time.monotonic() - left < 0.5  # let in at once, not after a growing sleep


def test_a_writer_waits_no_longer_than_its_timeout(tmp_path) -> None:
    gate = WriteGate(str(tmp_path / "db.sqlite3"))
    assert gate.acquire(1)
    outcome: list[tuple[bool, float]] = []

    def impatient() -> None:
        start = time.monotonic()
        outcome.append((gate.acquire(0.2), time.monotonic() - start))

    worker = threading.Thread(target=impatient)
    worker.start()
    worker.join()
    gate.release()
    ((acquired, waited),) = outcome
    assert not acquired and 0.15 < waited < 2  # it goes on to SQLite's own waiting


def test_another_process_holding_the_gate_is_waited_for(tmp_path) -> None:
    path = str(tmp_path / "db.sqlite3")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from comments.writegate import WriteGate\n"
         f"g = WriteGate({path!r}); assert g.acquire(5)\n"
         "print('held', flush=True); time.sleep(0.6); g.release(); print('left', flush=True)\n"
         "time.sleep(2)\n"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        gate = WriteGate(path)
        start = time.monotonic()
        assert gate.acquire(5)
        waited = time.monotonic() - start
        gate.release()
        assert 0.4 < waited < 3
    finally:
        holder.kill()
        holder.communicate()


def _sqlite_only(app) -> None:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("PostgreSQL has row locks; the gate is for SQLite's single writer")


def test_the_gate_opens_when_a_request_that_wrote_is_over(app, reader: Api, article: str):
    _sqlite_only(app)
    posted = reader.comment(article, "A write that takes the gate and gives it back.")
    assert posted.status_code == 201
    with app.app_context():
        gate = gate_for(db.engine.url.database)
    free: list[bool] = []
    other = threading.Thread(target=lambda: free.append(gate.acquire(0.1)))
    other.start()
    other.join()
    assert free == [True]
    gate.release()


def test_several_writes_on_one_connection_take_the_gate_once(app) -> None:
    """A command that commits several times on one connection holds the gate once and
    gives it back when the connection goes back to the pool."""
    _sqlite_only(app)
    with app.app_context():
        gate = gate_for(db.engine.url.database)
        with db.engine.connect() as connection:
            for n in range(3):
                connection.execute(text("UPDATE articles SET version = version + :n"), {"n": n})
                connection.commit()
            assert gate._depth == 1
    assert gate._owner is None and gate._depth == 0


@contextlib.contextmanager
def _sqlite_statements(app) -> Iterator[list[str]]:
    """Every statement SQLite itself runs on the app's pooled connections meanwhile (the
    driver's BEGIN, COMMIT and ROLLBACK included)."""
    statements: list[str] = []

    def trace(dbapi_connection, record, proxy) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    def untrace(dbapi_connection, record) -> None:
        dbapi_connection.set_trace_callback(None)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "checkout", trace)
    event.listen(engine, "checkin", untrace)
    try:
        yield statements
    finally:
        event.remove(engine, "checkout", trace)
        event.remove(engine, "checkin", untrace)


def _kinds(statements: list[str]) -> list[str]:
    def kind(statement: str) -> str:
        word = statement.lstrip().split(None, 1)[0].upper()
        if word in ("BEGIN", "COMMIT", "ROLLBACK"):
            return statement.strip().upper()
        return "read" if word in ("SELECT", "PRAGMA") else "write"

    return [kind(s) for s in statements]


def test_a_request_that_only_reads_opens_no_transaction(app, reader: Api, article: str):
    """Each SELECT runs on its own, as on PostgreSQL: no BEGIN, no COMMIT, no read lock held
    from one statement to the next. (Signed in, so the read goes through Flask.)"""
    _sqlite_only(app)
    assert reader.comment(article, "Something to read back.").status_code == 201
    with _sqlite_statements(app) as statements:
        thread = reader.get(f"/articles/{article}/comments?per_page=10")
    assert thread.status_code == 200
    assert [c["body_html"] for c in thread.get_json()["comments"]] == [
        "<p>Something to read back.</p>"
    ]
    kinds = _kinds(statements)
    assert "read" in kinds
    assert set(kinds) == {"read"}, kinds


def test_a_post_begins_immediate_just_before_its_first_write_and_commits_once(
    app, reader: Api, article: str
):
    _sqlite_only(app)
    with _sqlite_statements(app) as statements:
        posted = reader.comment(article, "Reads first, then one short write transaction.")
    assert posted.status_code == 201
    kinds = _kinds(statements)
    first_write = kinds.index("write")
    assert kinds[: first_write - 1].count("read") >= 3  # the author, the article, recent posts
    assert set(kinds[: first_write - 1]) == {"read"}
    assert [k for k in kinds if k.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
    assert kinds.index("BEGIN IMMEDIATE") == first_write - 1  # just before it, no earlier
    assert kinds[-1] == "COMMIT" and kinds.count("COMMIT") == 1


def test_a_with_statement_is_inside_the_transaction_and_rolls_back(app, article: str):
    """Only plain reads run on their own: a WITH (which may write) opens the transaction, so
    a rollback undoes it rather than finding it already committed."""
    _sqlite_only(app)
    with app.app_context():
        db.session.execute(
            text(
                "WITH renamed(title) AS (SELECT 'Renamed by a WITH') "
                "UPDATE articles SET title = (SELECT title FROM renamed) WHERE key = :key"
            ),
            {"key": article},
        )
        db.session.rollback()
        title = db.session.execute(
            text("SELECT title FROM articles WHERE key = :key"), {"key": article}
        ).scalar_one()
    assert title != "Renamed by a WITH"
