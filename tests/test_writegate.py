"""SQLite's writers queue at a gate (comments/writegate.py) and are let in as soon as the
last one is done: across threads, across processes, never forever, and never left shut."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

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
