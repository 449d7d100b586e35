"""Cached thread pages are never stale: after a post, an edit, a withdrawal or a closure on
one worker, the next read on every other worker shows it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from comments import create_app
from comments.extensions import db
from comments.models import Article, Role, utcnow
from tests.conftest import Api, dispose, listening


@pytest.fixture
def other_worker(app):
    """A second app on the same database: another gunicorn worker, or another machine."""
    second = create_app(dict(app.config))
    yield second
    dispose(second)


def _bodies(client: Api, key: str) -> list:
    thread = client.get(f"/articles/{key}/comments").get_json()

    def walk(nodes):
        for n in nodes:
            yield n["body_html"] or n.get("placeholder")
            yield from walk(n["replies"])

    return list(walk(thread["comments"]))


def test_every_change_is_seen_by_the_other_worker(
    app, other_worker, signed_in, editor: Api, article: str
) -> None:
    reader = signed_in("Reader")
    moderator = signed_in("Moderator", Role.MODERATOR)
    elsewhere = Api(other_worker.test_client())  # an anonymous reader on the other worker
    first = reader.comment(article, "The bypass plan needs more thought.").get_json()["comment"]
    assert _bodies(elsewhere, article) == ["<p>The bypass plan needs more thought.</p>"]
    assert _bodies(elsewhere, article) == ["<p>The bypass plan needs more thought.</p>"]  # cached

    reader.comment(article, "I agree with the council on the bus lanes.")  # post
    assert len(_bodies(elsewhere, article)) == 2

    reader.patch(
        f"/comments/{first['id']}", {"body": "The bypass plan needs more thought, I think."}
    )  # edit
    assert "<p>The bypass plan needs more thought, I think.</p>" in _bodies(elsewhere, article)

    moderator.post(
        f"/moderation/comments/{first['id']}/decision", {"action": "withdraw", "rule": "civil"}
    )  # withdrawal
    assert _bodies(elsewhere, article) == ["<p>I agree with the council on the bus lanes.</p>"]

    editor.post(f"/articles/{article}/close")  # closure
    assert elsewhere.get(f"/articles/{article}/comments").get_json()["article"]["is_open"] is False


def test_automatic_close_shows_without_any_write(app, editor: Api, api: Api) -> None:
    editor.post(
        "/articles",
        {"key": "soon", "title": "S", "url": "https://n.example/s", "auto_close_days": 1},
    )
    before = api.get("/articles/soon/comments")
    assert before.get_json()["article"]["is_open"] is True
    with app.app_context():
        row = db.session.scalar(db.select(Article).where(Article.key == "soon"))
        row.created_at = utcnow() - timedelta(days=2)
        db.session.commit()
    after = api.get("/articles/soon/comments", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.get_json()["article"]["is_open"] is False


def test_reader_sees_own_held_comment_but_cache_never_leaks_it(
    app, signed_in, article: str
) -> None:
    reader, stranger = signed_in("Writer"), signed_in("Stranger")
    moderator = signed_in("Mod", Role.MODERATOR)
    moderator.post(
        f"/moderation/users/{reader.user['id']}/sanctions",
        {"kind": "premoderation", "rule": "civil", "reason": "new"},
    )
    reader.comment(article, "Waiting for a moderator to read this.")
    assert len(reader.get(f"/articles/{article}/comments").get_json()["comments"]) == 1
    assert stranger.get(f"/articles/{article}/comments").get_json()["comments"] == []
    assert Api(app.test_client()).get(f"/articles/{article}/comments").get_json()["comments"] == []


def _thread(client: Api, key: str) -> dict:
    response = client.get(f"/articles/{key}/comments")
    assert response.status_code == 200
    return response.get_json()


def test_a_signed_in_reader_with_no_comment_in_the_thread_is_served_everyones_page(
    app, signed_in, article: str
) -> None:
    """After each change one render serves every reader with nothing of their own in the
    thread, signed in or not; an author still gets their own page, with their text."""
    writer, stranger = signed_in("Writer"), signed_in("Stranger")
    mine = writer.comment(article, "The ring road needs a second bridge.").get_json()["comment"]
    anonymous = _thread(Api(app.test_client()), article)
    assert "body" not in anonymous["comments"][0]

    comment_reads = []

    def reading_comments(conn, cursor, statement, *args) -> None:
        if "FROM comments" in statement:
            comment_reads.append(statement)

    with listening(app, "before_cursor_execute", reading_comments):
        assert _thread(stranger, article) == anonymous
        first = list(comment_reads)
        assert _thread(stranger, article) == anonymous
    # The page came from the cache: the one read of comments looked for the stranger's own.
    assert len(first) == 1 and "comments.author_id" in first[0]
    assert comment_reads == first  # the second read knew the answer for this version

    # The author sees their own text on their comment.
    [own] = _thread(writer, article)["comments"]
    assert own["id"] == mine["id"] and own["body"] == "The ring road needs a second bridge."

    # Once the stranger has a comment here, their pages are their own again.
    theirs = stranger.comment(article, "A second bridge would cost too much.")
    assert theirs.status_code == 201
    shown = {c["id"]: c for c in _thread(stranger, article)["comments"]}
    assert shown[theirs.get_json()["comment"]["id"]]["body"] == (
        "A second bridge would cost too much."
    )
    assert "body" not in shown[mine["id"]]
    assert all("body" not in c for c in _thread(Api(app.test_client()), article)["comments"])


def test_a_reader_who_read_everyones_page_then_posts_a_held_comment_sees_it(
    app, signed_in, article: str
) -> None:
    reader = signed_in("Newcomer")
    moderator = signed_in("Mod", Role.MODERATOR)
    moderator.post(
        f"/moderation/users/{reader.user['id']}/sanctions",
        {"kind": "premoderation", "rule": "civil", "reason": "new"},
    )
    assert _thread(reader, article)["comments"] == []  # everyone's (empty) page
    held = reader.comment(article, "Is the library closing on Sundays?")
    assert held.status_code == 202
    [shown] = _thread(reader, article)["comments"]
    assert shown["status"] == "pending" and shown["body"] == "Is the library closing on Sundays?"
    assert _thread(Api(app.test_client()), article)["comments"] == []
