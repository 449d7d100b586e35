"""Each article counts its published comments (all, and top-level) as they change, so that a
thread page, the front page and the editors' desk never count a thread. Every way a comment
can change keeps the counters equal to its comments, and what readers see is built on them."""

from __future__ import annotations

import random

import pytest
from flask import Flask
from sqlalchemy import select, text

from comments import services
from comments.extensions import db
from comments.models import Article, Comment, CommentStatus, Role
from tests.conftest import PASSWORD, Api, selects_during, wrong_counters

# fmt: off
_WORDS = (
    "library", "market", "school", "hospital", "riverbank", "station", "bridge", "museum",
    "harbour", "theatre", "allotments", "bus", "depot", "council", "budget", "parking", "lights",
    "repairs", "timetable", "volunteers", "cleared", "weekend", "cycle", "lane", "safer",
    "consultation", "closes", "figures", "planning", "application", "union", "hours", "saturday",
    "grandfather", "easington", "trust", "car", "park", "works", "food", "bank", "winter",
    "raised", "money", "late", "thursday", "mornings", "petition", "residents", "ward",
    "councillor", "meeting", "minutes", "agenda", "roadworks", "detour", "ferry", "pier",
    "lifeboat", "chapel", "choir", "orchestra", "rugby", "cricket", "pavilion", "cafe", "bakery",
    "butcher",
)
# fmt: on
# Sentences of a few random words each: any two share a word or two, so no post repeats
# (nearly) the reader's last one.
CIVIL = (" ".join(random.Random(i).sample(_WORDS, 12)).capitalize() + "." for i in range(10**6))


@pytest.fixture
def moderator(signed_in) -> Api:
    return signed_in("Moderator", Role.MODERATOR)


def post(client: Api, key: str, parent_id: int | None = None) -> dict:
    response = client.comment(key, next(CIVIL), parent_id)
    assert response.status_code in (201, 202), response.get_json()
    return response.get_json()["comment"]


def seen(api: Api, key: str) -> tuple[int, int]:
    """(comment_count, total_top_level) as a reader's thread page shows them."""
    thread = api.get(f"/articles/{key}/comments").get_json()
    return thread["article"]["comment_count"], thread["total_top_level"]


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_every_change_to_a_comment_keeps_its_threads_counts(
    app: Flask, signed_in, moderator: Api, api: Api, article: str
) -> None:
    """Through the API as people use it: posting, replying, premoderation and approval, an
    edit that holds a comment again, deletion, withdrawal, reinstatement on appeal, readers'
    reports hiding a comment, bulk decisions and an account's erasure. After each step the
    counters equal the comments, and the page shows the right numbers."""
    reader, replier = signed_in("Reader"), signed_in("Replier")
    second = signed_in("Second", Role.MODERATOR)

    def check(published: int, top_level: int) -> None:
        assert wrong_counters(app) == {}
        assert seen(api, article) == (published, top_level)

    first = post(reader, article)
    check(1, 1)
    reply = post(replier, article, first["id"])
    check(2, 1)
    other = post(reader, article)
    check(3, 2)

    # premoderation: held posts count nothing until approved
    premoderation = {"kind": "premoderation", "rule": "civil", "reason": "new"}
    ok(moderator.post(f"/moderation/users/{replier.user['id']}/sanctions", premoderation), 201)
    held = post(replier, article)
    assert held["status"] == "pending"
    check(3, 2)
    ok(moderator.post(f"/moderation/comments/{held['id']}/decision", {"action": "approve"}))
    check(4, 3)
    # ... and an edit by the premoderated author holds it again
    ok(replier.patch(f"/comments/{held['id']}", {"body": "A fresh thought on the timetable."}))
    check(3, 2)

    # the author deletes a reply; a moderator withdraws a top-level comment
    assert replier.delete(f"/comments/{reply['id']}").status_code == 204
    check(2, 2)
    decision = ok(
        moderator.post(
            f"/moderation/comments/{first['id']}/decision", {"action": "withdraw", "rule": "civil"}
        )
    )["decision"]
    check(1, 1)

    # reversed on appeal by another moderator: published again
    appeal = ok(reader.post(f"/decisions/{decision['id']}/appeal", {"statement": "Fair."}), 201)
    ok(second.post(f"/moderation/appeals/{appeal['appeal']['id']}/decision",
                   {"action": "reverse"}))  # fmt: skip
    check(2, 2)

    # three readers' reports hide a comment
    for i in range(3):
        ok(signed_in(f"Reporter{i}").post(f"/comments/{other['id']}/reports", {"rule": "civil"}),
           201)  # fmt: skip
    check(1, 1)

    # bulk: an approval that counts beside an item that fails on its own (no such comment),
    # then two withdrawals at once
    done = ok(moderator.post("/moderation/decisions",
                             {"ids": [other["id"], 10**9], "action": "approve"}))  # fmt: skip
    assert [r["ok"] for r in done["results"]] == [True, False]
    check(2, 2)
    ok(
        moderator.post(
            "/moderation/decisions",
            {"ids": [other["id"], first["id"]], "action": "withdraw", "rule": "civil"},
        )
    )
    check(0, 0)

    # the reader's account goes, with its comments (the site's "remove" setting)
    app.config["DELETED_ACCOUNT_COMMENTS"] = "remove"
    mine = post(reader, article)
    reply_to_mine = post(signed_in("Third"), article, mine["id"])
    check(2, 1)
    ok(reader.request("DELETE", "/me", {"password": PASSWORD}), 204)
    check(1, 1)  # the reply stays, under a placeholder
    assert reply_to_mine["id"] in [
        r["id"]
        for c in api.get(f"/articles/{article}/comments").get_json()["comments"]
        for r in c["replies"]
    ]


def test_a_hidden_top_level_comment_counts_where_it_shows(
    app: Flask, signed_in, moderator: Api, api: Api, article: str
) -> None:
    """The page's count of top-level comments is the counter plus the unpublished ones that
    show: a withdrawn comment with a published reply (a placeholder, to everyone), and a
    held comment (to its author alone)."""
    reader, other = signed_in("Reader"), signed_in("Other")
    withdrawn = post(reader, article)
    post(other, article, withdrawn["id"])
    ok(moderator.post(f"/moderation/comments/{withdrawn['id']}/decision",
                      {"action": "withdraw", "rule": "civil"}))  # fmt: skip
    ok(moderator.post(f"/moderation/users/{reader.user['id']}/sanctions",
                      {"kind": "premoderation", "rule": "civil", "reason": "x"}), 201)  # fmt: skip
    post(reader, article)  # held
    lonely = post(other, article)
    ok(
        moderator.post(
            f"/moderation/comments/{lonely['id']}/decision", {"action": "withdraw", "rule": "civil"}
        )
    )  # no replies: not shown
    assert seen(api, article) == (1, 1)  # the reply; the placeholder over it
    assert reader.get(f"/articles/{article}/comments").get_json()["total_top_level"] == 2
    assert other.get(f"/articles/{article}/comments").get_json()["total_top_level"] == 1
    assert wrong_counters(app) == {}


def test_a_savepoints_rollback_takes_back_its_comments_counts(
    app: Flask, reader: Api, article: str
) -> None:
    """A change undone by its savepoint's rollback (as one failed item of a bulk decision
    is) leaves the counters as they were; the bump that remains only makes pages stale."""
    comment_id = post(reader, article)["id"]
    with app.test_request_context():
        comment = db.session.get(Comment, comment_id)
        version = db.session.scalar(select(Article.version).where(Article.key == article))
        savepoint = db.session.begin_nested()
        assert services.transition(
            comment, (CommentStatus.PUBLISHED,), status=CommentStatus.WITHDRAWN
        )
        savepoint.rollback()
        db.session.commit()
        row = db.session.execute(
            select(Article.version, Article.published_count).where(Article.key == article)
        ).one()
    assert row == (version + 1, 1)
    assert wrong_counters(app) == {}


def test_recount_puts_right_counters_changed_around_parley(
    app: Flask, reader: Api, api: Api, article: str
) -> None:
    post(reader, article)
    post(reader, article)
    with app.app_context():
        services.create_article("untouched", "Another story", "https://news.example/u")
        db.session.execute(text("UPDATE articles SET published_count = 40, "
                                "published_top_level_count = 7"))  # fmt: skip
        db.session.commit()
    assert seen(api, article) == (40, 7)
    result = app.test_cli_runner().invoke(args=["articles", "recount", article])
    assert result.exit_code == 0, result.output
    assert seen(api, article) == (2, 2)  # and the page was rendered again, not replayed
    assert list(wrong_counters(app)) == ["untouched"]
    result = app.test_cli_runner().invoke(args=["articles", "recount"])
    assert result.exit_code == 0 and wrong_counters(app) == {}
    missing = app.test_cli_runner().invoke(args=["articles", "recount", "no-such-story"])
    assert missing.exit_code != 0 and "not_found" in missing.output
    with app.app_context():
        from comments.audit import AuditEntry

        recorded = db.session.scalars(
            select(AuditEntry.target_id).where(AuditEntry.action == "article.recount")
        ).all()
    assert sorted(recorded) == ["*", article]


def test_the_front_page_and_a_thread_page_count_no_thread(
    app: Flask, reader: Api, api: Api, article: str
) -> None:
    """The article list reads the counters: no statement of the front page reads comments,
    and a thread page counts only the thread's unpublished top-level comments."""
    post(reader, article)
    browser = app.test_client()
    front = selects_during(app, lambda: browser.get("/"))
    assert front and not [s for s in front if "comments" in s], front
    assert "1 comment" in browser.get("/").get_data(as_text=True)
    page = selects_during(app, lambda: api.get(f"/articles/{article}/comments"))
    counts = [s for s in page if "count(" in s.lower()]
    assert len(counts) == 1 and "status <> 'published'" in counts[0], counts
