"""Concurrency and crashes against a real gunicorn: many writers into one thread, two
moderators racing over the same queue, and SIGKILL in the middle of a posting load.

Marked slow (they take tens of seconds); `make test` and CI run them on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select, text

from comments.audit import AuditEntry
from comments.extensions import db
from comments.models import Article, Comment, Role
from moderation.models import Decision
from tests.conftest import PASSWORD, wrong_counters
from tests.livesite import Client, Gunicorn

pytestmark = pytest.mark.slow

WRITERS = 8
POSTS_EACH = 1000


def _post_loop(port: int, email: str, key: str, count: int | None, stop: threading.Event,
               acked: list[int], failures: list, tag: str) -> None:
    client = Client(port, timeout=60)
    client.signin(email, PASSWORD)
    n = 0
    while (count is None or n < count) and not stop.is_set():
        body = {"body": f"{tag} writes comment number {n}: the bypass plan needs a rethink."}
        try:
            status, payload, _ = client.request("POST", f"/api/v1/articles/{key}/comments", body)
        # A kill can land after the headers went out and before the body: IncompleteRead.
        except (OSError, http.client.HTTPException) as err:
            if stop.is_set():
                return  # the server was killed mid-request: this one was never acknowledged
            failures.append(("oserror", repr(err)))
            return
        if status in (201, 202):
            acked.append(payload["comment"]["id"])
        else:
            failures.append((status, payload))
        n += 1
    client.close()


def _writers(app, make_user, count: int) -> list[str]:
    emails = []
    for i in range(count):
        make_user(f"Writer{i}")
        emails.append(f"writer{i}@example.com")
    return emails


def test_eight_concurrent_writers_each_comment_stored_once(
    app, make_user, article, database_url, tmp_path
) -> None:
    emails = _writers(app, make_user, WRITERS)
    server = Gunicorn(database_url, tmp_path / "gunicorn.log",
                      DUPLICATE_WINDOW_MINUTES="0").start()
    acked: list[int] = []
    failures: list = []
    stop = threading.Event()
    try:
        threads = [
            threading.Thread(target=_post_loop, args=(server.port, email, article, POSTS_EACH,
                                                      stop, acked, failures, f"W{i}"))
            for i, email in enumerate(emails)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
    finally:
        stop.set()
        server.stop()
    log = (tmp_path / "gunicorn.log").read_text()
    assert failures == []
    assert "database is locked" not in log and "Traceback" not in log
    assert len(acked) == WRITERS * POSTS_EACH
    assert len(set(acked)) == len(acked)
    with app.app_context():
        stored = list(db.session.scalars(select(Comment.id)))
        assert sorted(stored) == sorted(acked)  # every acknowledged comment exactly once
    # eight writers bumping one thread's counters at once: none of the posts lost a count
    assert wrong_counters(app) == {}


def test_two_moderators_racing_decide_each_item_once(
    app, make_user, signed_in, article, database_url, tmp_path
) -> None:
    writer = signed_in("Writer")
    moderator_ids = [make_user("ModA", Role.MODERATOR), make_user("ModB", Role.MODERATOR)]
    writer_id = writer.user["id"]
    # premoderated, so every post waits in the queue
    from tests.conftest import Api

    first = Api(app.test_client())
    first.signin("moda@example.com")
    first.post(f"/moderation/users/{writer_id}/sanctions",
               {"kind": "premoderation", "rule": "civil", "reason": "queue"})
    app.config["DUPLICATE_WINDOW_MINUTES"] = 0
    ids = [writer.comment(article, f"Queued comment {i} about the bus timetable."
                          ).get_json()["comment"]["id"] for i in range(150)]
    server = Gunicorn(database_url, tmp_path / "gunicorn.log").start()
    results: dict[str, Counter] = {}

    loaded = threading.Barrier(2)

    def work(email: str, action: dict) -> None:
        client = Client(server.port)
        client.signin(email, PASSWORD)
        seen: dict[int, int] = {}  # what this moderator's queue showed: id -> version
        for page in (1, 2):
            _, body, _ = client.request(
                "GET", f"/api/v1/moderation/queue?kind=pending&per_page=100&page={page}")
            seen |= {i["comment"]["id"]: i["comment"]["version"] for i in body["items"]}
        loaded.wait()
        counts: Counter = Counter()
        for cid in ids:
            status, _, _ = client.request(
                "POST", f"/api/v1/moderation/comments/{cid}/decision",
                {**action, "version": seen[cid]})
            counts[status] += 1
        results[email] = counts
        client.close()

    try:
        racers = [
            threading.Thread(target=work, args=("moda@example.com", {"action": "approve"})),
            threading.Thread(target=work, args=("modb@example.com",
                                                {"action": "withdraw", "rule": "civil"})),
        ]
        for t in racers:
            t.start()
        for t in racers:
            t.join(timeout=300)
    finally:
        server.stop()
    a, b = results["moda@example.com"], results["modb@example.com"]
    assert set(a) | set(b) <= {200, 409}
    assert a[200] + b[200] == len(ids)  # each item decided exactly once
    with app.app_context():
        decisions = list(db.session.scalars(select(Decision).where(
            Decision.comment_id.in_(ids))))
        assert Counter(d.comment_id for d in decisions) == Counter(ids)
        assert {d.moderator_id for d in decisions} <= set(moderator_ids)
        audit = Counter(db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.in_(("comment.approve", "comment.withdraw")))))
        assert audit["comment.approve"] == a[200] and audit["comment.withdraw"] == b[200]
        statuses = dict(db.session.execute(select(Comment.id, Comment.status)
                                           .where(Comment.id.in_(ids))).all())
        for d in decisions:
            expected = "published" if d.action.value == "approve" else "withdrawn"
            assert statuses[d.comment_id].value == expected
    # the winners' counts, each once, and none of the losers'
    assert wrong_counters(app) == {}


def test_sigkill_mid_load_loses_no_acknowledged_comment(
    app, make_user, article, database_url, tmp_path
) -> None:
    emails = _writers(app, make_user, 4)
    server = Gunicorn(database_url, tmp_path / "gunicorn.log",
                      DUPLICATE_WINDOW_MINUTES="0").start()
    acked: list[int] = []
    failures: list = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_post_loop, args=(server.port, email, article, None, stop,
                                                  acked, failures, f"K{i}"))
        for i, email in enumerate(emails)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    server.kill()  # SIGKILL master and workers while posts are in flight
    for t in threads:
        t.join(timeout=60)
    assert len(acked) >= 200, failures
    assert [f for f in failures if f[0] != "oserror"] == []

    restarted = Gunicorn(database_url, tmp_path / "gunicorn2.log").start()
    try:
        with app.app_context():
            db.session.remove()
            stored = set(db.session.scalars(select(Comment.id)))
            assert set(acked) <= stored  # every acknowledged comment survived
            if db.engine.dialect.name == "sqlite":
                assert db.session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
                assert db.session.execute(text("PRAGMA foreign_key_check")).all() == []
            else:
                orphans = db.session.scalar(
                    select(func.count(Comment.id)).where(
                        Comment.article_id.not_in(select(Article.id))))
                assert orphans == 0
                db.session.execute(text("SELECT count(*) FROM comments"))
        # a comment and its thread's count are one transaction: a kill can't split them
        assert wrong_counters(app) == {}
        client = Client(restarted.port)
        client.signin(emails[0], PASSWORD)
        status, _, _ = client.request("POST", f"/api/v1/articles/{article}/comments",
                                      {"body": "Back after the restart, still working."})
        assert status in (201, 202)
        client.close()
    finally:
        restarted.stop()
