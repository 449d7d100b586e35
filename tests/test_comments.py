"""Posting, replying, reading, editing and deleting comments through the JSON API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from comments.extensions import db
from comments.models import Article, Comment, utcnow
from comments.screening import PublishEverything, Screening, register_screener
from tests.conftest import Api, selects_during


@pytest.fixture(autouse=True)
def _comments_alone(app) -> None:
    """These tests are about threads, not judgement: run comments without moderation's
    screener, as a site without the moderation package would (tests/test_screening.py covers
    the classifier's verdicts)."""
    register_screener(app, PublishEverything())


class HoldWord:
    """A screener that holds any post containing 'HOLDME' (stands in for moderation)."""

    def check_author(self, author, article) -> None:
        return None

    def screen(self, body, author, article) -> Screening:
        if "HOLDME" in body:
            return Screening("hold", reason="classifier", scores={"insult": 0.9}, score=0.9)
        return Screening("publish", scores={"insult": 0.01}, score=0.01)


def test_reader_posts_and_replies_and_sees_the_thread(reader: Api, api: Api, article: str) -> None:
    top = reader.comment(article, "Durham will miss those jobs.\n\nA second paragraph.")
    assert top.status_code == 201
    comment = top.get_json()["comment"]
    assert comment["status"] == "published"
    assert comment["body_html"] == "<p>Durham will miss those jobs.</p><p>A second paragraph.</p>"
    assert comment["author"]["display_name"] == "Reader"
    reply = reader.comment(article, "Replying to myself", parent_id=comment["id"])
    assert reply.status_code == 201
    assert reply.get_json()["comment"]["parent_id"] == comment["id"]

    thread = api.get(f"/articles/{article}/comments").get_json()
    assert thread["total_top_level"] == 1
    assert thread["article"]["comment_count"] == 2
    assert thread["comments"][0]["id"] == comment["id"]
    assert thread["comments"][0]["replies"][0]["body_html"] == "<p>Replying to myself</p>"
    assert set(thread["comments"][0]) >= {
        "id",
        "parent_id",
        "author",
        "body_html",
        "status",
        "created_at",
        "edited_at",
        "replies",
    }
    assert api.get(f"/articles/{article}").get_json()["article"]["comment_count"] == 2


def test_body_is_sanitised_on_write(reader: Api, app, article: str) -> None:
    response = reader.comment(
        article,
        "Look <script>alert(1)</script><b>here</b> https://example.com/x. "
        '<a href="javascript:alert(1)" onclick="x()">bad</a>',
    )
    html = response.get_json()["comment"]["body_html"]
    assert "<script" not in html and "alert(1)" not in html and "onclick" not in html
    assert "<b>here</b>" in html
    assert 'href="https://example.com/x"' in html and 'rel="nofollow ugc noopener"' in html
    assert "javascript:" not in html
    with app.app_context():
        stored = db.session.get(Comment, response.get_json()["comment"]["id"])
        assert stored.body_html == html  # stored once, served as stored
        assert "<script>" in stored.body  # what the author wrote is kept for moderators


def test_replies_nest_to_max_depth_then_attach_to_deepest_ancestor(
    reader: Api, app, article: str
) -> None:
    app.config["COMMENT_MAX_DEPTH"] = 3
    parent = reader.comment(article, "level 0").get_json()["comment"]["id"]
    chain = [parent]
    for level in range(1, 6):
        response = reader.comment(article, f"level {level}", parent_id=chain[-1])
        assert response.status_code == 201
        chain.append(response.get_json()["comment"]["id"])
    with app.app_context():
        depths = [db.session.get(Comment, cid).depth for cid in chain]
        parents = [db.session.get(Comment, cid).parent_id for cid in chain]
    assert depths == [0, 1, 2, 3, 3, 3]
    # levels 4 and 5 hang under the level-2 comment, the deepest that may have replies
    assert parents[4] == chain[2] and parents[5] == chain[2]


def test_parent_must_be_in_same_article_and_not_deleted(
    reader: Api, editor: Api, article: str
) -> None:
    editor.post("/articles", {"key": "other", "title": "Other", "url": "https://n.example/o"})
    elsewhere = reader.comment("other", "elsewhere").get_json()["comment"]["id"]
    response = reader.comment(article, "reply", parent_id=elsewhere)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_parent"
    assert reader.comment(article, "reply", parent_id=999999).status_code == 422
    mine = reader.comment(article, "to delete").get_json()["comment"]["id"]
    assert reader.delete(f"/comments/{mine}").status_code == 204
    refused = reader.comment(article, "reply", parent_id=mine)
    assert refused.status_code == 422 and "deleted" in refused.get_json()["error"]["message"]


def test_placeholders_keep_conversation_readable(
    reader: Api, signed_in, api: Api, article: str
) -> None:
    other = signed_in("Other")
    lonely = reader.comment(article, "nobody answers").get_json()["comment"]["id"]
    answered = reader.comment(article, "somebody answers").get_json()["comment"]["id"]
    other.comment(article, "an answer", parent_id=answered)
    assert reader.delete(f"/comments/{lonely}").status_code == 204
    assert reader.delete(f"/comments/{answered}").status_code == 204
    thread = api.get(f"/articles/{article}/comments").get_json()
    assert thread["total_top_level"] == 1
    (placeholder,) = thread["comments"]
    assert placeholder["id"] == answered
    assert placeholder["body_html"] is None and placeholder["author"] is None
    assert placeholder["placeholder"] == "This comment was deleted by its author"
    assert placeholder["replies"][0]["body_html"] == "<p>an answer</p>"
    single = api.get(f"/comments/{answered}").get_json()["comment"]
    assert single["body_html"] is None and single["status"] == "deleted"


def test_held_comment_is_202_and_visible_only_to_its_author(
    app, reader: Api, signed_in, api: Api, article: str
) -> None:
    register_screener(app, HoldWord())
    response = reader.comment(article, "this says HOLDME")
    assert response.status_code == 202
    held = response.get_json()["comment"]
    assert held["status"] == "pending" and held["held_reason"] == "classifier"
    assert api.get(f"/articles/{article}/comments").get_json()["comments"] == []
    own = reader.get(f"/articles/{article}/comments").get_json()["comments"]
    assert [c["id"] for c in own] == [held["id"]]
    assert api.get(f"/comments/{held['id']}").status_code == 404
    assert signed_in("Nosy").get(f"/comments/{held['id']}").status_code == 404
    assert reader.get(f"/comments/{held['id']}").get_json()["comment"]["status"] == "pending"
    with app.app_context():
        stored = db.session.get(Comment, held["id"])
        assert stored.scores == {"insult": 0.9} and stored.score == 0.9


def test_pagination_sorting_and_per_page_bounds(reader: Api, api: Api, article: str) -> None:
    ids = [reader.comment(article, f"comment {i}").get_json()["comment"]["id"] for i in range(5)]
    reader.comment(article, "reply a", parent_id=ids[3])
    reader.comment(article, "reply b", parent_id=ids[3])
    reader.comment(article, "reply c", parent_id=ids[1])
    page1 = api.get(f"/articles/{article}/comments?per_page=2").get_json()
    page3 = api.get(f"/articles/{article}/comments?per_page=2&page=3").get_json()
    assert [c["id"] for c in page1["comments"]] == ids[:2]
    assert [c["id"] for c in page3["comments"]] == ids[4:]
    assert page1["total_top_level"] == 5 and page1["per_page"] == 2 and page3["page"] == 3
    newest = api.get(f"/articles/{article}/comments?sort=newest").get_json()
    assert [c["id"] for c in newest["comments"]] == ids[::-1]
    by_replies = api.get(f"/articles/{article}/comments?sort=replies").get_json()
    assert [c["id"] for c in by_replies["comments"]][:2] == [ids[3], ids[1]]
    for bad in ("per_page=101", "per_page=0", "page=0", "page=abc", "sort=best"):
        response = api.get(f"/articles/{article}/comments?{bad}")
        assert response.status_code == 400, bad
        assert response.get_json()["error"]["code"] == "invalid_parameter"


def test_etag_and_304_until_the_thread_changes(reader: Api, api: Api, article: str) -> None:
    reader.comment(article, "first")
    first = api.get(f"/articles/{article}/comments")
    etag = first.headers["ETag"]
    again = api.get(f"/articles/{article}/comments", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    reader.comment(article, "second")
    changed = api.get(f"/articles/{article}/comments", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert len(changed.get_json()["comments"]) == 2
    # Another page has another tag.
    other_page = api.get(f"/articles/{article}/comments?per_page=1")
    assert other_page.headers["ETag"] != changed.headers["ETag"]


def test_edit_within_window_by_author_only(app, reader: Api, signed_in, article: str) -> None:
    comment = reader.comment(article, "Frist!").get_json()["comment"]
    edited = reader.patch(f"/comments/{comment['id']}", {"body": "First, *properly*"})
    assert edited.status_code == 200
    body = edited.get_json()["comment"]
    assert body["body_html"] == "<p>First, *properly*</p>" and body["edited_at"] is not None
    other = signed_in("Other").patch(f"/comments/{comment['id']}", {"body": "mine now"})
    assert other.status_code == 403 and other.get_json()["error"]["code"] == "not_author"
    with app.app_context():
        stored = db.session.get(Comment, comment["id"])
        stored.created_at = utcnow() - timedelta(minutes=16)
        db.session.commit()
    late = reader.patch(f"/comments/{comment['id']}", {"body": "too late"})
    assert late.status_code == 403 and late.get_json()["error"]["code"] == "edit_window_closed"


def test_delete_is_soft_and_author_only(app, reader: Api, signed_in, api: Api, article: str):
    comment = reader.comment(article, "regret this").get_json()["comment"]
    assert signed_in("Other").delete(f"/comments/{comment['id']}").status_code == 403
    assert api.delete(f"/comments/{comment['id']}").status_code == 401
    assert reader.delete(f"/comments/{comment['id']}").status_code == 204
    assert api.get(f"/articles/{article}/comments").get_json()["comments"] == []
    with app.app_context():
        stored = db.session.get(Comment, comment["id"])
        assert stored.status.value == "deleted" and stored.deleted_at is not None
    edit = reader.patch(f"/comments/{comment['id']}", {"body": "back"})
    assert edit.status_code == 409 and edit.get_json()["error"]["code"] == "comment_not_editable"


def test_articles_registered_by_editors_only(reader: Api, editor: Api, api: Api) -> None:
    payload = {"key": "new-story", "title": "A new story", "url": "https://news.example/new"}
    assert api.post("/articles", payload).status_code == 401
    refused = reader.post("/articles", payload)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    created = editor.post("/articles", payload)
    assert created.status_code == 201
    assert created.get_json()["article"] == {
        **created.get_json()["article"],
        "key": "new-story",
        "is_open": True,
        "comment_count": 0,
    }
    assert editor.post("/articles", payload).status_code == 409
    assert reader.comment("no-such-story", "hello").status_code == 404
    assert api.get("/articles/no-such-story").get_json()["error"]["code"] == "not_found"
    bad = editor.post("/articles", {"key": "a b", "title": "", "url": "ftp://x"})
    assert bad.status_code == 422 and set(bad.get_json()["error"]["fields"]) == {
        "key",
        "title",
        "url",
    }


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"body": ""}, 422, "comment_empty"),
        ({"body": "   \n  "}, 422, "comment_empty"),
        ({"body": "x" * 5001}, 422, "comment_too_long"),
        ({"body": 42}, 422, "validation_failed"),
        ({"body": ["list"]}, 422, "validation_failed"),
        ({"body": True}, 422, "validation_failed"),
        ({}, 422, "validation_failed"),
        ({"body": "ok", "parent_id": "12"}, 422, "validation_failed"),
        ({"body": "ok", "parent_id": True}, 422, "validation_failed"),
        ({"body": "nul \u0000 byte"}, 400, "nul_byte"),
        ({"body": "lone \ud800 surrogate"}, 400, "invalid_text"),
    ],
)
def test_bad_comment_input(reader: Api, app, article: str, payload, status, code) -> None:
    response = reader.post(f"/articles/{article}/comments", payload)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Comment.id))) == 0


def test_5000_characters_after_trimming_is_allowed(reader: Api, article: str) -> None:
    assert reader.comment(article, "  " + "y" * 5000 + "\n ").status_code == 201


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_json"),
        (b'["a", "list"]', "application/json", 400, "malformed_json"),
        (b'{"body": "caf\xe9"}', "application/json", 400, "invalid_utf8"),
        (b'{"body": "hi"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"body": "' + b"z" * 200_000 + b'"}', "application/json", 413, "body_too_large"),
    ],
)
def test_malformed_requests(reader: Api, article: str, data, content_type, status, code) -> None:
    response = reader.request(
        "POST", f"/articles/{article}/comments", data=data, content_type=content_type
    )
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_unknown_ids_and_methods(api: Api, reader: Api) -> None:
    assert api.get("/comments/424242").get_json()["error"]["code"] == "not_found"
    assert reader.patch("/comments/424242", {"body": "x"}).status_code == 404
    assert reader.delete("/comments/424242").status_code == 404
    wrong = api.request("PUT", "/auth/session")
    assert wrong.status_code == 405 and wrong.get_json()["error"]["code"] == "method_not_allowed"
    assert api.get("/no/such/route").status_code == 404


def test_openapi_lists_every_api_route(api: Api, app) -> None:
    spec = api.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = rule.rule[len("/api/v1") :].replace("<int:", "{").replace("<", "{")
            path = path.replace(">", "}")
            assert path in spec["paths"], path
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert method.lower() in spec["paths"][path]
    post = spec["paths"]["/articles/{key}/comments"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["required"] == ["body"]


def test_a_post_bumps_the_article_version_and_counters_and_changes_nothing_else(
    app, reader: Api, article: str
) -> None:
    """Posting marks the thread changed (one version up), counts the published comment, and
    leaves the rest of the article as it was: on PostgreSQL the bump rides in the comment's
    INSERT statement."""
    from comments.models import Article

    def article_row() -> dict:
        with app.app_context():
            found = db.session.scalar(db.select(Article).where(Article.key == article))
            return {c.key: getattr(found, c.key) for c in Article.__table__.columns}

    before = article_row()
    assert reader.comment(article, "One more view on the budget.").status_code == 201
    after = article_row()
    assert after["version"] == before["version"] + 1
    assert after["published_count"] == before["published_count"] + 1
    assert after["published_top_level_count"] == before["published_top_level_count"] + 1
    moved = ("version", "published_count", "published_top_level_count")
    assert {**after, **{k: before[k] for k in moved}} == before


def test_a_transition_leaves_the_loaded_comment_as_the_database_has_it(
    app, reader: Api, article: str
) -> None:
    """transition() doesn't read the row back: the loaded comment must hold exactly what
    was written (every column, the version one up), and a stale one must refuse and then
    show the current state. The thread's version moves with a change, and only then."""
    from sqlalchemy.orm.attributes import set_committed_value

    from comments import services
    from comments.models import CommentStatus

    posted = reader.comment(article, "The ferry timetable changes again in May.").get_json()
    columns = [c.key for c in Comment.__table__.columns]

    def row() -> dict:
        with app.app_context():
            return {
                k: getattr(db.session.get(Comment, posted["comment"]["id"]), k) for k in columns
            }

    def thread_version() -> int:
        with app.app_context():
            return db.session.get(Comment, posted["comment"]["id"]).article.version

    before = thread_version()
    with app.app_context():
        comment = db.session.get(Comment, posted["comment"]["id"])
        seen = comment.version
        changed = services.transition(
            comment,
            (CommentStatus.PUBLISHED,),
            body="Edited",
            body_html="<p>Edited</p>",
            edited_at=utcnow(),
            status=CommentStatus.PENDING,
            held_reason="reports",
            scores={"insult": 0.5},
            explanation=[{"signal": "insult", "terms": []}],
        )
        assert changed
        in_memory = {k: getattr(comment, k) for k in columns}
        db.session.commit()
    assert in_memory == row()
    assert in_memory["version"] == seen + 1
    assert thread_version() == before + 1  # cached pages and ETags of the thread are stale

    with app.app_context():
        stale = db.session.get(Comment, posted["comment"]["id"])
        # as if loaded before someone else's change: its version is one behind the row's
        set_committed_value(stale, "version", stale.version - 1)
        assert not services.transition(
            stale, (CommentStatus.PENDING,), status=CommentStatus.DELETED
        )
        assert stale.version == seen + 1 and stale.status == CommentStatus.PENDING
        db.session.commit()
    assert row()["status"] == CommentStatus.PENDING
    assert thread_version() == before + 1  # a refused change leaves the thread as it was


def test_a_changes_thread_bump_commits_with_it_and_rolls_back_with_it(
    app, reader: Api, article: str
) -> None:
    """transition() bumps the thread's version at the commit (bump_article_at_commit): a
    rollback drops the bump with the change, and a savepoint rolled back on the way (a
    duplicate report, say) does not drop the bump of a change made before it."""
    from comments import services
    from comments.models import CommentStatus

    posted = reader.comment(article, "The harbour wall needs repairs before winter.").get_json()
    cid = posted["comment"]["id"]

    def state() -> tuple[CommentStatus, int]:
        with app.app_context():
            comment = db.session.get(Comment, cid)
            return comment.status, comment.article.version

    _, version = state()
    held = CommentStatus.PENDING
    with app.app_context():
        comment = db.session.get(Comment, cid)
        assert services.transition(comment, (CommentStatus.PUBLISHED,), status=held)
        db.session.rollback()
        db.session.commit()  # the next transaction of the same session has nothing to bump
    assert state() == (CommentStatus.PUBLISHED, version)

    with app.app_context():
        comment = db.session.get(Comment, cid)
        assert services.transition(comment, (CommentStatus.PUBLISHED,), status=held)
        savepoint = db.session.begin_nested()
        inside = db.text("UPDATE comments SET body = 'inside' WHERE id = :id")
        db.session.execute(inside, {"id": cid})
        savepoint.rollback()
        db.session.commit()
    assert state() == (CommentStatus.PENDING, version + 1)


def test_a_failure_after_the_write_leaves_the_post_whole_or_not_at_all(
    app, reader: Api, article: str, monkeypatch
) -> None:
    """A failure after the comment row is written must not leave it behind half-done: on
    SQLite the row and the thread's version bump roll back together. On PostgreSQL they are
    one statement, committed as it runs, so a failure after it leaves the comment whole:
    posted and the thread's version moved on, never one without the other."""
    from sqlalchemy.exc import OperationalError

    from comments import services

    def broken(comment: Comment) -> None:
        # Called once the comment row is written (and the article bumped, on PostgreSQL).
        raise OperationalError("UPDATE articles", {}, Exception("disk I/O error"))

    def stored() -> tuple[int, int]:
        with app.app_context():
            count = db.session.scalar(db.select(db.func.count(Comment.id)))
            version = db.session.scalar(db.select(Article.version).where(Article.key == article))
        return count, version

    _, version = stored()
    monkeypatch.setattr(services, "make_transient_to_detached", broken)
    response = reader.comment(article, "This will not be stored")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        assert stored() == (1, version + 1)
    else:
        assert stored() == (0, version)


def test_ids_beyond_the_database_range_are_refused_cleanly(reader: Api, article: str) -> None:
    huge = 2**63
    assert reader.get(f"/comments/{huge}").status_code == 404
    response = reader.comment(article, "Replying to a very large id.", parent_id=huge)
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["parent_id"].startswith("Must be between")
    assert reader.get(f"/articles/{article}/comments?page={huge}").status_code == 400


# A post reads its author, its article and the author's recent posts (for the repeat
# check) in one statement (comments/services.py, read_poster).


def _reads_article(statement: str) -> bool:
    return "FROM articles" in statement or "JOIN articles" in statement


@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "rate-limited"])
def test_a_post_reads_its_author_and_article_together(
    app, reader: Api, article: str, limited: bool
) -> None:
    """Whoever asks for the signed-in user first (the rate limiter when limits are on, or
    the view) reads the article and the recent posts with it: one statement, and neither
    is read again."""
    app.config["RATELIMIT_ENABLED"] = limited
    first = "The bus station needs a better roof before winter comes."
    assert reader.comment(article, first).status_code == 201
    posted: list = []
    reads = selects_during(
        app, lambda: posted.append(reader.comment(article, "Read together, posted once."))
    )
    assert posted[0].status_code == 201
    assert posted[0].get_json()["comment"]["body_html"] == "<p>Read together, posted once.</p>"
    together = [s for s in reads if "FROM users" in s and "JOIN articles" in s]
    assert len(together) == 1, reads
    assert [s for s in reads if _reads_article(s) or "comments.body" in s] == together
    # The recent posts it read still refuse a repeat of the first.
    again = reader.comment(article, first.upper() + "!!")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "duplicate_comment"


def test_a_signed_in_post_to_no_such_article_is_404(reader: Api, article: str) -> None:
    """(A closed thread's refusal, read the same way: tests/test_moderation.py.)"""
    missing = reader.comment("no-such-story", "Where does this go?")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert reader.comment(article, "This one has a home.").status_code == 201


def test_an_ended_session_cannot_post_and_reads_no_article_for_it(
    app, make_user, article: str
) -> None:
    make_user("Sam")
    laptop, phone = Api(app.test_client()), Api(app.test_client())
    assert laptop.signin("sam@example.com").status_code == 200
    assert phone.signin("sam@example.com").status_code == 200
    assert laptop.post("/auth/signout").status_code == 204  # ends the phone's session too
    refused = phone.comment(article, "Am I still signed in?")
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "auth_required"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Comment)) == 0
