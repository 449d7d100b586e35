"""The moderation workflows end to end through the API: rules, reports, queues, decisions,
sanctions, closed threads, notices, appeals and the audit log."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest

from comments.extensions import db
from comments.models import Article, Comment, CommentStatus, Role, utcnow
from moderation.models import Decision, Sanction
from tests.conftest import Api, selects_during

_CIVIL = [
    "I think the council should publish the figures before deciding.",
    "The library opening hours on Saturdays have been a great help to my family.",
    "Does anyone know whether the consultation closes at the end of the month?",
    "My grandfather worked down the pit at Easington and would have loved this.",
    "Parking near the market is still difficult on Thursday mornings.",
    "Well done to the volunteers who cleared the riverbank last weekend.",
    "The new cycle lane on the main road feels much safer than before.",
    "I would like to hear what the trade union says about the timetable.",
    "It would help if the article linked to the original planning application.",
    "Our local school has raised a lot of money for the food bank this winter.",
    "The bus from Consett was late three times this week, which is frustrating.",
    "Has the hospital trust said how long the car park works will take?",
]
_next_civil = iter(range(10**6))


def civil() -> str:
    """A different civil sentence each time: one reader repeating herself is refused."""
    return _CIVIL[next(_next_civil) % len(_CIVIL)]


@pytest.fixture
def moderator(signed_in) -> Api:
    return signed_in("Moderator", Role.MODERATOR)


@pytest.fixture
def moderator2(signed_in) -> Api:
    return signed_in("Moderator2", Role.MODERATOR)


@pytest.fixture
def admin(signed_in) -> Api:
    return signed_in("Admin", Role.ADMIN)


def post(client: Api, key: str, body: str | None = None, parent_id: int | None = None) -> dict:
    response = client.comment(key, body or civil(), parent_id)
    assert response.status_code in (201, 202), response.get_json()
    return response.get_json()["comment"]


def audit_actions(app) -> list[str]:
    from comments.audit import AuditEntry

    with app.app_context():
        return [e.action for e in db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.id))]


# ------------------------------------------------------------------------------ rules


def test_default_rules_are_public(api: Api) -> None:
    rules = api.get("/rules").get_json()["rules"]
    codes = [r["code"] for r in rules]
    assert codes == [
        "civil",
        "hate",
        "threats",
        "spam",
        "on-topic",
        "privacy",
        "legal",
        "impersonation",
    ]
    assert all(r["title"] and r["text"] for r in rules)


def test_editor_creates_edits_and_retires_rules(app, editor: Api, reader: Api, api: Api) -> None:
    new = {"code": "no-caps", "title": "Don't shout", "text": "No posts in capitals."}
    assert reader.post("/rules", new).status_code == 403
    created = editor.post("/rules", new)
    assert created.status_code == 201 and created.get_json()["rule"]["code"] == "no-caps"
    assert editor.post("/rules", new).status_code == 409
    edited = editor.patch("/rules/no-caps", {"title": "Please don't shout", "signals": ["spam"]})
    assert edited.get_json()["rule"]["title"] == "Please don't shout"
    assert editor.patch("/rules/no-caps", {"signals": ["nonsense"]}).status_code == 422
    assert editor.patch("/rules/no-caps", {"active": "no"}).status_code == 422
    assert editor.patch("/rules/missing", {"title": "x"}).status_code == 404
    assert editor.patch("/rules/no-caps", {"active": False}).status_code == 200
    assert "no-caps" not in [r["code"] for r in api.get("/rules").get_json()["rules"]]
    assert audit_actions(app)[-3:] == ["rule.create", "rule.edit", "rule.retire"]


# ---------------------------------------------------------------------------- reports


def test_report_once_not_own_not_withdrawn(
    app, reader: Api, signed_in, moderator: Api, article: str
) -> None:
    comment = post(reader, article)
    other = signed_in("Other")
    first = other.post(f"/comments/{comment['id']}/reports", {"rule": "civil", "note": "rude"})
    assert first.status_code == 201
    report = first.get_json()["report"]
    assert report["rule"] == "civil" and report["outcome"] == "open"
    again = other.post(f"/comments/{comment['id']}/reports", {"rule": "spam"})
    assert again.status_code == 200 and again.get_json()["report"]["id"] == report["id"]
    own = reader.post(f"/comments/{comment['id']}/reports", {"rule": "civil"})
    assert own.status_code == 403 and own.get_json()["error"]["code"] == "own_comment"
    third = signed_in("Third")
    unknown = third.post(f"/comments/{comment['id']}/reports", {"rule": "nope"})
    assert unknown.status_code == 422 and unknown.get_json()["error"]["code"] == "unknown_rule"
    long_note = third.post(
        f"/comments/{comment['id']}/reports", {"rule": "civil", "note": "x" * 501}
    )
    assert long_note.status_code == 422
    assert third.post("/comments/99999/reports", {"rule": "civil"}).status_code == 404
    moderator.post(
        f"/moderation/comments/{comment['id']}/decision", {"action": "withdraw", "rule": "civil"}
    )
    late = third.post(f"/comments/{comment['id']}/reports", {"rule": "civil"})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "comment_unavailable"
    outcome = other.get("/me/reports").get_json()["reports"][0]
    assert outcome["outcome"] == "upheld" and outcome["resolved_at"]


def test_three_reports_hide_comment_and_top_the_reported_queue(
    app, reader: Api, signed_in, moderator: Api, api: Api, article: str
) -> None:
    target = post(
        reader, article, "Our MP should answer for the office closure at her next surgery."
    )
    once = post(reader, article, "The bus timetable changes were announced last week.")
    reporters = [signed_in(f"Reporter{i}") for i in range(3)]
    reporters[0].post(f"/comments/{once['id']}/reports", {"rule": "spam"})
    for i, client in enumerate(reporters):
        client.post(f"/comments/{target['id']}/reports", {"rule": "civil", "note": f"n{i}"})
    thread = api.get(f"/articles/{article}/comments").get_json()
    assert [c["id"] for c in thread["comments"]] == [once["id"]]
    queue = moderator.get("/moderation/queue?kind=reported").get_json()
    assert [i["comment"]["id"] for i in queue["items"]] == [target["id"], once["id"]]
    top = queue["items"][0]
    assert top["report_count"] == 3 and top["comment"]["status"] == "pending"
    assert {r["note"] for r in top["reports"]} == {"n0", "n1", "n2"}
    assert top["context"]["article"]["key"] == article
    assert top["author"]["comments"]["pending"] == 1
    # held by readers' reports: not in the pending (held at posting) queue
    pending = moderator.get("/moderation/queue?kind=pending").get_json()
    assert target["id"] not in [i["comment"]["id"] for i in pending["items"]]
    filtered = moderator.get("/moderation/queue?kind=reported&rule=spam").get_json()
    assert [i["comment"]["id"] for i in filtered["items"]] == [once["id"]]
    assert "comment.hide" in audit_actions(app)


# ---------------------------------------------------------------------------- decisions


def _premoderate(moderator: Api, user_id: int) -> None:
    response = moderator.post(
        f"/moderation/users/{user_id}/sanctions",
        {"kind": "premoderation", "rule": "civil", "reason": "new here"},
    )
    assert response.status_code == 201, response.get_json()


def test_premoderated_posts_wait_in_pending_queue_and_approve_publishes(
    reader: Api, moderator: Api, api: Api, article: str
) -> None:
    _premoderate(moderator, reader.user["id"])
    text = civil()
    response = reader.comment(article, text)
    assert response.status_code == 202
    held = response.get_json()["comment"]
    assert held["held_reason"] == "premoderation"
    queue = moderator.get(f"/moderation/queue?kind=pending&article={article}").get_json()
    assert queue["total"] == 1
    item = queue["items"][0]
    assert item["comment"]["id"] == held["id"] and item["comment"]["body"] == text
    assert set(item["scores"]) >= {"insult", "spam"} and item["model_version"]
    assert item["author"]["sanctions"][0]["kind"] == "premoderation"
    decision = moderator.post(f"/moderation/comments/{held['id']}/decision", {"action": "approve"})
    assert decision.status_code == 200 and decision.get_json()["decision"]["action"] == "approve"
    assert [c["id"] for c in api.get(f"/articles/{article}/comments").get_json()["comments"]] == [
        held["id"]
    ]
    again = moderator.post(f"/moderation/comments/{held['id']}/decision", {"action": "approve"})
    assert again.status_code == 409
    assert again.get_json()["current"]["status"] == "published"


def test_queue_item_shows_the_comment_in_context_with_its_reports_and_authors_record(
    reader: Api, signed_in, moderator: Api, article: str
) -> None:
    """Everything a queue item carries, read back from the database: the held reply, its
    article and the comment it answers, the author's record, and readers' reports; and what
    is left when the author or a reporter deletes their account."""
    from tests.conftest import PASSWORD

    parent = post(reader, article, "The bypass consultation closes on Friday, I believe.")
    replier = signed_in("Replier")
    _premoderate(moderator, replier.user["id"])
    text = "It closes on the 14th, according to the council's own page."
    held = replier.comment(article, text, parent["id"]).get_json()["comment"]

    def item_for(kind: str, comment_id: int) -> dict:
        response = moderator.get(f"/moderation/queue?kind={kind}")
        assert response.status_code == 200
        return next(i for i in response.get_json()["items"] if i["comment"]["id"] == comment_id)

    item = item_for("pending", held["id"])
    replier_public = {"id": replier.user["id"], "display_name": "Replier"}
    assert item["comment"] == {**item["comment"], "body": text, "held_reason": "premoderation",
                               "parent_id": parent["id"], "status": "pending", "version": 1,
                               "author": replier_public, "article_key": article}  # fmt: skip
    assert "<p>" in item["comment"]["body_html"] and item["comment"]["edited_at"] is None
    assert item["context"]["article"] == {
        "key": article, "title": "Jobs move from Durham", "url": "https://news.example/d"
    }  # fmt: skip
    reader_public = {"id": reader.user["id"], "display_name": "Reader"}
    shown = item["context"]["parent"]
    assert shown["id"] == parent["id"] and shown["author"] == reader_public
    assert shown["body_html"] == parent["body_html"] and shown["status"] == "published"
    record = item["author"]
    assert record["user"] == replier_public and record["joined_at"].endswith("Z")
    assert record["comments"] == {**record["comments"], "pending": 1, "published": 0}
    [premoderation] = record["decisions"]
    assert premoderation == {**premoderation, "action": "premoderation", "rule": "civil",
                             "moderator": {"id": moderator.user["id"], "display_name": "Moderator"},
                             "user_id": replier.user["id"], "reversed_at": None}  # fmt: skip
    assert item["reports"] == [] and item["report_count"] == 0

    reporters = [signed_in(f"Reporter{i}") for i in range(2)]
    for i, who in enumerate(reporters):
        note = "Name-calling." if i else None
        rule = {"rule": "civil", "note": note}
        assert who.post(f"/comments/{parent['id']}/reports", rule).status_code == 201
    reported = item_for("reported", parent["id"])
    assert reported["report_count"] == 2
    first, second = reported["reports"]
    assert first == {**first, "rule": "civil", "note": None, "outcome": "open",
                     "reporter": {"id": reporters[0].user["id"], "display_name": "Reporter0"}}
    assert second["note"] == "Name-calling." and second["rule_title"] == first["rule_title"]
    assert reported["author"]["user"] == reader_public

    for gone in (replier, reporters[0]):
        assert gone.request("DELETE", "/me", json={"password": PASSWORD}).status_code == 204
    item = item_for("pending", held["id"])
    assert item["comment"]["author"] == {"id": None, "display_name": "[deleted account]"}
    assert item["author"] == {"user": None}
    assert item["comment"]["body"] == text  # kept: the account's removal keeps the comments
    assert [r["reporter"] for r in item_for("reported", parent["id"])["reports"]] == [
        None, {"id": reporters[1].user["id"], "display_name": "Reporter1"}
    ]  # fmt: skip


def test_withdraw_needs_rule_leaves_placeholder_and_keeps_text(
    app, reader: Api, signed_in, moderator: Api, api: Api, article: str
) -> None:
    parent = post(reader, article, "The office paid decent wages for decades.")
    post(signed_in("Replier"), article, "Agreed, my aunt worked there.", parent["id"])
    no_rule = moderator.post(
        f"/moderation/comments/{parent['id']}/decision", {"action": "withdraw"}
    )
    assert no_rule.status_code == 422 and no_rule.get_json()["error"]["code"] == "rule_required"
    done = moderator.post(
        f"/moderation/comments/{parent['id']}/decision",
        {"action": "withdraw", "rule": "civil", "note": "Please keep it civil"},
    )
    assert done.status_code == 200
    decision = done.get_json()["decision"]
    assert decision["rule"] == "civil" and decision["note"] == "Please keep it civil"
    (shown,) = api.get(f"/articles/{article}/comments").get_json()["comments"]
    assert shown["placeholder"] == "This comment was withdrawn by a moderator"
    assert (
        shown["body_html"] is None
        and shown["replies"][0]["body_html"] == "<p>Agreed, my aunt worked there.</p>"
    )
    with app.app_context():
        assert (
            db.session.get(Comment, parent["id"]).body
            == "The office paid decent wages for decades."
        )
    second = moderator.post(
        f"/moderation/comments/{parent['id']}/decision", {"action": "withdraw", "rule": "civil"}
    )
    assert second.status_code == 409
    assert second.get_json()["current"]["status"] == "withdrawn"
    assert reader.get(f"/comments/{parent['id']}").get_json()["comment"]["status"] == "withdrawn"
    assert api.get(f"/comments/{parent['id']}").status_code == 404
    reinstated = moderator.post(
        f"/moderation/comments/{parent['id']}/decision", {"action": "reinstate"}
    )
    assert reinstated.status_code == 200
    assert api.get(f"/comments/{parent['id']}").get_json()["comment"]["status"] == "published"
    # the author is told, with the rule and how to appeal
    notice = reader.get("/me/notices").get_json()["notices"][-1]
    assert "withdrawn" in notice["message"] and "Be civil" in notice["message"]
    assert "Please keep it civil" in notice["message"]
    assert notice["appeal_url"] == f"/api/v1/decisions/{decision['id']}/appeal"


def test_bulk_decisions_report_each_item(reader: Api, moderator: Api, article: str) -> None:
    _premoderate(moderator, reader.user["id"])
    ids = [post(reader, article, f"held {i}")["id"] for i in range(3)]
    moderator.post(f"/moderation/comments/{ids[0]}/decision", {"action": "approve"})
    response = moderator.post(
        "/moderation/decisions", {"ids": [*ids, 99999], "action": "withdraw", "rule": "spam"}
    )
    assert response.status_code == 200
    results = {r["id"]: r for r in response.get_json()["results"]}
    assert results[ids[0]]["ok"] is True  # a published comment can still be withdrawn
    assert results[ids[1]]["ok"] and results[ids[2]]["ok"]
    assert results[99999]["error"]["code"] == "not_found"
    assert (
        moderator.post("/moderation/decisions", {"ids": [], "action": "approve"}).status_code == 422
    )
    assert (
        moderator.post("/moderation/decisions", {"ids": ids, "action": "withdraw"}).status_code
        == 422
    )


def test_two_moderators_deciding_at_once_apply_once(
    app, reader: Api, moderator: Api, moderator2: Api, article: str
) -> None:
    _premoderate(moderator, reader.user["id"])
    held = post(reader, article, "held for the race")
    barrier = threading.Barrier(2)
    results: list[int] = []

    def decide(client: Api, action: dict) -> None:
        # each moderator has the queue open, then both click at once
        (item,) = client.get("/moderation/queue?kind=pending").get_json()["items"]
        barrier.wait()
        response = client.post(
            f"/moderation/comments/{held['id']}/decision",
            {**action, "version": item["comment"]["version"]},
        )
        results.append(response.status_code)
        if response.status_code == 409:
            assert response.get_json()["current"]["status"] in ("published", "withdrawn")

    threads = [
        threading.Thread(target=decide, args=(moderator, {"action": "approve"})),
        threading.Thread(target=decide, args=(moderator2, {"action": "withdraw", "rule": "civil"})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    with app.app_context():
        decisions = db.session.scalars(
            db.select(Decision).where(Decision.comment_id == held["id"])
        ).all()
        assert len(decisions) == 1
    actions = [a for a in audit_actions(app) if a in ("comment.approve", "comment.withdraw")]
    assert len(actions) == 1


# ---------------------------------------------------------------------------- sanctions


def test_suspension_blocks_posting_until_it_ends(
    app, reader: Api, moderator: Api, article: str
) -> None:
    uid = reader.user["id"]
    first = post(reader, article)
    response = moderator.post(
        f"/moderation/users/{uid}/sanctions",
        {"kind": "suspension", "rule": "civil", "reason": "abuse", "days": 1},
    )
    assert response.status_code == 201
    sanction = response.get_json()["sanction"]
    refused = reader.comment(article, civil())
    assert refused.status_code == 403
    error = refused.get_json()
    assert error["error"]["code"] == "suspended" and "abuse" in error["error"]["message"]
    assert error["until"] == sanction["ends_at"]
    assert reader.patch(f"/comments/{first['id']}", {"body": "edit"}).status_code == 403
    # still reads and signs in
    assert reader.get(f"/articles/{article}/comments").status_code == 200
    assert Api(app.test_client()).signin("reader@example.com").status_code == 200
    with app.app_context():
        row = db.session.get(Sanction, sanction["id"])
        row.ends_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert reader.comment(article, civil()).status_code == 201  # expired, no job needed


def test_ban_warning_and_lifting(app, reader: Api, moderator: Api, article: str) -> None:
    uid = reader.user["id"]
    warn = moderator.post(
        f"/moderation/users/{uid}/sanctions", {"kind": "warning", "rule": "civil", "reason": "tone"}
    )
    assert warn.status_code == 201
    assert reader.comment(article, civil()).status_code == 201  # a warning doesn't block
    ban = moderator.post(
        f"/moderation/users/{uid}/sanctions",
        {"kind": "ban", "rule": "hate", "reason": "hate speech"},
    )
    assert reader.comment(article, civil()).status_code == 401  # a ban ends sessions
    assert reader.signin("reader@example.com").status_code == 200  # but may sign in
    refused = reader.comment(article, civil())
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "banned"
    sid = ban.get_json()["sanction"]["id"]
    assert moderator.delete(f"/moderation/sanctions/{sid}").status_code == 200
    assert moderator.delete(f"/moderation/sanctions/{sid}").status_code == 409
    assert reader.comment(article, civil()).status_code == 201
    kinds = [n["kind"] for n in reader.get("/me/notices").get_json()["notices"]]
    assert kinds.count("decision") == 2 and "sanction_lifted" in kinds
    bad = moderator.post(
        f"/moderation/users/{uid}/sanctions", {"kind": "suspension", "rule": "civil", "reason": "x"}
    )
    assert bad.status_code == 422  # a suspension needs days
    assert (
        moderator.post(
            f"/moderation/users/{uid}/sanctions", {"kind": "exile", "rule": "civil", "reason": "x"}
        ).status_code
        == 422
    )
    assert (
        moderator.post(
            "/moderation/users/99999/sanctions", {"kind": "ban", "rule": "civil", "reason": "x"}
        ).status_code
        == 404
    )
    assert {"user.warning", "user.ban", "sanction.lift"} <= set(audit_actions(app))


def test_sanctions_are_looked_up_only_for_authors_who_have_had_one(
    app, reader: Api, moderator: Api, article: str
) -> None:
    """Posting and the queue ask the sanctions table nothing about an author who was never
    sanctioned; once one is (a warning is enough) they do, and the record shows it."""
    from sqlalchemy import event

    statements: list[str] = []

    def capture(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    def asks_about_sanctions(act) -> bool:
        statements.clear()
        act()
        return any("FROM sanctions" in s for s in statements)

    def posts() -> None:
        assert reader.comment(article, civil()).status_code == 201

    def reads_the_queue() -> dict:
        response = moderator.get("/moderation/queue?kind=pending")
        assert response.status_code == 200
        return response.get_json()

    uid = reader.user["id"]
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert not asks_about_sanctions(posts)
        held = post(reader, article)["id"]
        with app.app_context():  # held by the classifier, as most of the pending queue is
            comment = db.session.get(Comment, held)
            comment.status, comment.held_reason = CommentStatus.PENDING, "classifier"
            db.session.commit()
        assert not asks_about_sanctions(reads_the_queue)
        warn = {"kind": "warning", "rule": "civil", "reason": "tone"}
        assert moderator.post(f"/moderation/users/{uid}/sanctions", warn).status_code == 201
        assert asks_about_sanctions(posts)
        assert asks_about_sanctions(reads_the_queue)
        suspend = {"kind": "suspension", "rule": "civil", "reason": "abuse", "days": 1}
        response = moderator.post(f"/moderation/users/{uid}/sanctions", suspend)
        assert reader.comment(article, civil()).get_json()["error"]["code"] == "suspended"
        sid = response.get_json()["sanction"]["id"]
        assert moderator.delete(f"/moderation/sanctions/{sid}").status_code == 200
        assert asks_about_sanctions(posts)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    items = [i for i in reads_the_queue()["items"] if i["comment"]["id"] == held]
    kinds = [s["kind"] for s in items[0]["author"]["sanctions"]]
    assert sorted(kinds) == ["suspension", "warning"]


def test_ladder_suggests_next_step_after_repeated_withdrawals(
    reader: Api, moderator: Api, article: str
) -> None:
    uid = reader.user["id"]
    record = moderator.get(f"/moderation/users/{uid}").get_json()
    assert record["suggested_sanction"] is None
    for _ in range(2):
        c = post(reader, article)
        moderator.post(
            f"/moderation/comments/{c['id']}/decision", {"action": "withdraw", "rule": "civil"}
        )
    record = moderator.get(f"/moderation/users/{uid}").get_json()
    assert record["recent_withdrawals"] == 2 and record["suggested_sanction"] == "warning"
    moderator.post(
        f"/moderation/users/{uid}/sanctions",
        {"kind": "warning", "rule": "civil", "reason": "two withdrawals"},
    )
    assert moderator.get(f"/moderation/users/{uid}").get_json()["suggested_sanction"] == (
        "premoderation"
    )



def test_author_record_counts_and_keeps_the_ten_latest_decisions(
    reader: Api, signed_in, moderator: Api, article: str
) -> None:
    """What the queue shows of each author: comments by status, and only their ten most
    recent decisions, newest first, never another author's."""
    other = signed_in("Other")
    post(other, article)
    withdrawn = post(other, article)
    moderator.post(
        f"/moderation/comments/{withdrawn['id']}/decision", {"action": "withdraw", "rule": "civil"}
    )
    _premoderate(moderator, reader.user["id"])
    ids = [post(reader, article)["id"] for _ in range(12)]
    for cid in ids:
        moderator.post(f"/moderation/comments/{cid}/decision", {"action": "approve"})
    record = moderator.get(f"/moderation/users/{reader.user['id']}").get_json()
    assert record["comments"]["published"] == 12 and record["comments"]["pending"] == 0
    approvals = [d for d in record["decisions"] if d["action"] == "approve"]
    assert [d["comment_id"] for d in approvals] == ids[::-1][: len(approvals)]
    assert len(record["decisions"]) == 10  # 12 approvals and a premoderation: the latest 10
    theirs = moderator.get(f"/moderation/users/{other.user['id']}").get_json()
    assert theirs["comments"] == {**theirs["comments"], "published": 1, "withdrawn": 1}
    assert [d["action"] for d in theirs["decisions"]] == ["withdraw"]

# ---------------------------------------------------------------------------- closing


def test_closed_thread_refuses_posts_replies_and_edits(
    app, reader: Api, signed_in, editor: Api, moderator: Api, api: Api, article: str
) -> None:
    comment = post(reader, article)
    assert reader.post(f"/articles/{article}/close").status_code == 403
    closed = editor.post(f"/articles/{article}/close")
    assert closed.status_code == 200 and closed.get_json()["article"]["is_open"] is False
    expected = {
        "error": {"code": "thread_closed", "message": "Comments are closed on this article"}
    }
    assert reader.comment(article, civil()).get_json() == expected
    assert reader.comment(article, civil()).status_code == 403
    assert reader.comment(article, civil(), comment["id"]).status_code == 403
    assert reader.patch(f"/comments/{comment['id']}", {"body": "edit"}).get_json() == expected
    # reading, reporting and moderation go on
    assert len(api.get(f"/articles/{article}/comments").get_json()["comments"]) == 1
    assert (
        signed_in("Other").post(f"/comments/{comment['id']}/reports", {"rule": "civil"}).status_code
        == 201
    )
    assert (
        moderator.post(
            f"/moderation/comments/{comment['id']}/decision", {"action": "approve"}
        ).status_code
        == 200
    )
    assert editor.post(f"/articles/{article}/reopen").get_json()["article"]["is_open"] is True
    assert reader.comment(article, civil()).status_code == 201
    assert audit_actions(app).count("article.close") == 1


def test_thread_closes_automatically_after_n_days(app, reader: Api, editor: Api) -> None:
    editor.post(
        "/articles",
        {"key": "old", "title": "Old", "url": "https://n.example/old", "auto_close_days": 7},
    )
    assert reader.comment("old", civil()).status_code == 201
    with app.app_context():
        row = db.session.scalar(db.select(Article).where(Article.key == "old"))
        row.created_at = utcnow() - timedelta(days=8)
        db.session.commit()
    refused = reader.comment("old", civil())
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "thread_closed"
    assert reader.get("/articles/old").get_json()["article"]["is_open"] is False
    # site default off; per-article override via PATCH
    assert editor.patch("/articles/old", {"auto_close_days": 30}).status_code == 200
    assert reader.comment("old", civil()).status_code == 201
    app.config["AUTO_CLOSE_DAYS"] = 1
    editor.post("/articles", {"key": "site", "title": "S", "url": "https://n.example/s"})
    with app.app_context():
        row = db.session.scalar(db.select(Article).where(Article.key == "site"))
        row.created_at = utcnow() - timedelta(days=2)
        db.session.commit()
    assert reader.comment("site", civil()).status_code == 403


# ---------------------------------------------------------------------------- appeals


def _withdrawn(reader: Api, moderator: Api, article: str) -> tuple[dict, int]:
    comment = post(
        reader, article, "The minister visited Durham last spring and promised more jobs."
    )
    decision = moderator.post(
        f"/moderation/comments/{comment['id']}/decision", {"action": "withdraw", "rule": "civil"}
    ).get_json()["decision"]
    return comment, decision["id"]


def test_appeal_reversed_by_second_moderator_restores_comment(
    app, reader: Api, signed_in, moderator: Api, moderator2: Api, api: Api, article: str
) -> None:
    comment, decision_id = _withdrawn(reader, moderator, article)
    assert (
        signed_in("Stranger")
        .post(f"/decisions/{decision_id}/appeal", {"statement": "x"})
        .status_code
        == 403
    )
    made = reader.post(f"/decisions/{decision_id}/appeal", {"statement": "It was fair comment"})
    assert made.status_code == 201
    appeal = made.get_json()["appeal"]
    second = reader.post(f"/decisions/{decision_id}/appeal", {"statement": "again"})
    assert second.status_code == 409 and second.get_json()["error"]["code"] == "already_appealed"
    queue = moderator2.get("/moderation/queue?kind=appeals").get_json()
    assert queue["items"][0]["appeal"]["id"] == appeal["id"]
    assert (
        queue["items"][0]["comment"]["body"]
        == "The minister visited Durham last spring and promised more jobs."
    )
    same = moderator.post(
        f"/moderation/appeals/{appeal['id']}/decision", {"action": "reverse", "note": "x"}
    )
    assert same.status_code == 403 and same.get_json()["error"]["code"] == "same_moderator"
    assert (
        reader.post(
            f"/moderation/appeals/{appeal['id']}/decision", {"action": "reverse"}
        ).status_code
        == 403
    )
    done = moderator2.post(
        f"/moderation/appeals/{appeal['id']}/decision",
        {"action": "reverse", "note": "Fair comment on reflection"},
    )
    assert done.status_code == 200 and done.get_json()["appeal"]["status"] == "reversed"
    assert api.get(f"/comments/{comment['id']}").get_json()["comment"]["status"] == "published"
    again = moderator2.post(f"/moderation/appeals/{appeal['id']}/decision", {"action": "uphold"})
    assert again.status_code == 409
    outcome = reader.get("/me/notices").get_json()["notices"][0]
    assert outcome["kind"] == "appeal_outcome" and "reversed" in outcome["message"]
    assert {"appeal.create", "appeal.reversed"} <= set(audit_actions(app))


def test_appeal_window_and_admin_override(
    app, reader: Api, moderator: Api, admin: Api, article: str
) -> None:
    _, late_id = _withdrawn(reader, moderator, article)
    with app.app_context():
        db.session.get(Decision, late_id).created_at = utcnow() - timedelta(days=15)
        db.session.commit()
    late = reader.post(f"/decisions/{late_id}/appeal", {"statement": "too late?"})
    assert late.status_code == 403 and late.get_json()["error"]["code"] == "appeal_window_closed"
    # an appeal against a sanction, reversed by an admin, lifts it
    uid = reader.user["id"]
    ban = moderator.post(
        f"/moderation/users/{uid}/sanctions", {"kind": "ban", "rule": "civil", "reason": "x"}
    ).get_json()
    reader.signin("reader@example.com")  # the ban ended the session
    appeal = reader.post(
        f"/decisions/{ban['decision']['id']}/appeal", {"statement": "I was provoked"}
    ).get_json()["appeal"]
    upheld = admin.post(f"/moderation/appeals/{appeal['id']}/decision", {"action": "reverse"})
    assert upheld.status_code == 200
    assert reader.comment(article, civil()).status_code == 201
    assert reader.post("/decisions/99999/appeal", {"statement": "x"}).status_code == 404


# ------------------------------------------------------------------------------ audit


def test_audit_log_is_filterable_and_exportable_by_admin_only(
    app, reader: Api, moderator: Api, admin: Api, article: str
) -> None:
    comment = post(reader, article)
    moderator.post(
        f"/moderation/comments/{comment['id']}/decision",
        {"action": "withdraw", "rule": "spam", "note": '=HYPERLINK("x")'},
    )
    entries = moderator.get("/moderation/audit?action=comment").get_json()["entries"]
    assert entries[0]["action"] == "comment.withdraw"
    assert entries[0]["actor"]["display_name"] == "Moderator"
    assert entries[0]["target"] == {"type": "comment", "id": str(comment["id"])}
    assert entries[0]["rule"] == "spam"
    mine = moderator.get(f"/moderation/audit?actor={moderator.user['id']}").get_json()
    assert mine["total"] >= 1
    assert reader.get("/moderation/audit").status_code == 403
    assert moderator.get("/moderation/audit.csv").status_code == 403
    csv = admin.get("/moderation/audit.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "comment.withdraw" in csv.get_data(as_text=True)
    assert "'=HYPERLINK" in csv.get_data(as_text=True)  # formula neutralised
    for method in ("PUT", "PATCH", "DELETE"):
        assert admin.request(method, "/moderation/audit").status_code == 405


def test_role_change_by_admin_is_audited(app, reader: Api, editor: Api, admin: Api) -> None:
    uid = reader.user["id"]
    assert editor.post(f"/admin/users/{uid}/role", {"role": "moderator"}).status_code == 403
    changed = admin.post(f"/admin/users/{uid}/role", {"role": "moderator"})
    assert changed.get_json()["user"]["role"] == "moderator"
    assert reader.get("/moderation/queue").status_code == 200
    assert "user.role" in audit_actions(app)


def test_rules_page_lists_active_rules_escaped(app, editor: Api) -> None:
    editor.post("/rules", {"code": "x", "title": "<script>alert(1)</script>", "text": "T"})
    page = app.test_client().get("/rules")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Be civil: attack arguments, not people" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html


def test_queue_counts(reader: Api, signed_in, moderator: Api, article: str) -> None:
    _premoderate(moderator, reader.user["id"])
    post(reader, article)
    post(reader, article)
    other = signed_in("Other")
    published = post(other, article)
    reader.post(f"/comments/{published['id']}/reports", {"rule": "spam"})
    counts = moderator.get("/moderation/queue/counts").get_json()["counts"]
    assert counts == {"pending": 2, "reported": 1, "appeals": 0}



def test_queue_count_stops_at_the_cap(
    app, monkeypatch, reader: Api, moderator: Api, article: str
) -> None:
    """A backlog is counted up to COUNT_CAP and shown as "N+", not counted to the end."""
    from moderation import services as moderation_services

    monkeypatch.setattr(moderation_services, "COUNT_CAP", 3)
    _premoderate(moderator, reader.user["id"])
    for _ in range(2):
        post(reader, article)
    exact = moderator.get("/moderation/queue?kind=pending").get_json()
    assert (exact["total"], exact["total_capped"]) == (2, False)
    for _ in range(2):
        post(reader, article)
    capped = moderator.get("/moderation/queue?kind=pending&per_page=1").get_json()
    assert (capped["total"], capped["total_capped"], len(capped["items"])) == (3, True, 1)
    assert moderator.get("/moderation/queue/counts").get_json()["counts"]["pending"] == 3
    page = moderator.client.get("/moderation/queue/pending").get_data(as_text=True)
    assert "3+ items waiting." in page


def test_a_queue_page_carries_its_count_and_asks_for_reports_only_where_there_are_some(
    app, reader: Api, moderator: Api, make_user, article: str
) -> None:
    """The page's select brings the (capped) count and each item's number of open reports:
    no separate count, and the reports query runs only for items that have open reports (on
    PostgreSQL each statement is a round trip). What the moderator sees is unchanged."""
    from sqlalchemy import event

    from moderation.models import HouseRule, Report, ReportOutcome

    _premoderate(moderator, reader.user["id"])
    held = [post(reader, article)["id"] for _ in range(3)]
    other = make_user("Witness")
    with app.app_context():
        rule = db.session.scalar(db.select(HouseRule.id).where(HouseRule.code == "civil"))
        # An open report on the second (a comment reported, then edited and held) and an
        # old, settled one on the third.
        db.session.add(Report(comment_id=held[1], reporter_id=other, rule_id=rule, note="rude"))
        db.session.add(
            Report(comment_id=held[2], reporter_id=other, rule_id=rule,
                   outcome=ReportOutcome.REJECTED, resolved_at=utcnow())
        )  # fmt: skip
        db.session.commit()

    statements: list[str] = []

    def capture(conn, cursor, statement, *args) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEP")):
            statements.append(statement)

    def page(query: str = "") -> dict:
        statements.clear()
        response = moderator.get("/moderation/queue?kind=pending" + query)
        assert response.status_code == 200
        return response.get_json()

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        shown = page()
        # the moderator, the page (with its count and report counts), the author's counts by
        # status, recent decisions and sanctions (premoderation is one), the one item's reports
        assert len(statements) == 6, statements
        assert sum(s.lstrip().startswith("SELECT reports.") for s in statements) == 1
        past_the_end = page("&page=9")
    finally:
        event.remove(engine, "before_cursor_execute", capture)

    assert [i["comment"]["id"] for i in shown["items"]] == held
    assert [i["report_count"] for i in shown["items"]] == [0, 1, 0]
    [report] = shown["items"][1]["reports"]
    assert report == {**report, "rule": "civil", "note": "rude", "outcome": "open",
                      "reporter": {"id": other, "display_name": "Witness"}}  # fmt: skip
    assert (shown["total"], shown["total_capped"]) == (3, False)
    # a page past the end has no rows to carry the count: it is asked for on its own
    assert past_the_end["items"] == [] and past_the_end["total"] == 3

    with app.app_context():
        db.session.execute(
            db.update(Report).values(outcome=ReportOutcome.REJECTED, resolved_at=utcnow())
        )
        db.session.commit()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        settled = page()
        assert len(statements) == 5, statements  # no item has an open report: no reports query
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert [i["report_count"] for i in settled["items"]] == [0, 0, 0]


def test_history_filters_by_article_rule_and_author(
    reader: Api, signed_in, moderator: Api, editor: Api, article: str
) -> None:
    editor.post("/articles", {"key": "other", "title": "Other", "url": "https://n.example/o"})
    other = signed_in("Other")
    a = post(reader, article)
    b = post(other, "other")
    c = post(other, article)
    moderator.post(
        f"/moderation/comments/{a['id']}/decision", {"action": "withdraw", "rule": "civil"}
    )
    moderator.post(
        f"/moderation/comments/{b['id']}/decision", {"action": "withdraw", "rule": "spam"}
    )
    moderator.post(
        f"/moderation/comments/{c['id']}/decision", {"action": "withdraw", "rule": "spam"}
    )

    def ids(query: str) -> set[int]:
        items = moderator.get(f"/moderation/queue?kind=history&{query}").get_json()["items"]
        return {d["comment_id"] for d in items}

    assert ids("") == {a["id"], b["id"], c["id"]}
    assert ids(f"article={article}") == {a["id"], c["id"]}
    assert ids("rule=spam") == {b["id"], c["id"]}
    assert ids(f"author={other.user['id']}&rule=spam&article=other") == {b["id"]}


# A decision and a report read their comment with the signed-in user (comments/auth.py,
# WITH_USER): one statement, and the view finds the comment without reading it again.


def _loads_by_id(statements: list[str]) -> list[str]:
    """Reads of a comment by its id alone (what get_comment would send), and reads of a
    user with a comment."""
    return [
        s
        for s in statements
        if re.search(r"FROM comments\b.* WHERE comments\.id = \S+$", s)
        or ("FROM users" in s and "JOIN comments" in s)
    ]


def test_a_decision_reads_its_comment_with_the_moderator(
    app, reader: Api, moderator: Api, article: str
) -> None:
    comment = post(reader, article)
    answers: list = []
    reads = selects_during(
        app,
        lambda: answers.append(
            moderator.post(
                f"/moderation/comments/{comment['id']}/decision",
                {"action": "withdraw", "rule": "civil"},
            )
        ),
    )
    assert answers[0].status_code == 200, answers[0].get_json()
    assert answers[0].get_json()["decision"]["action"] == "withdraw"
    [read] = _loads_by_id(reads)
    assert "FROM users" in read and "JOIN comments" in read
    assert reader.get(f"/comments/{comment['id']}").get_json()["comment"]["status"] == "withdrawn"
    missing = moderator.post("/moderation/comments/999999/decision", {"action": "approve"})
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    # A reader is refused before anything is decided, whatever was read with them.
    refused = reader.post(f"/moderation/comments/{comment['id']}/decision", {"action": "approve"})
    assert refused.status_code == 403
    assert reader.get(f"/comments/{comment['id']}").get_json()["comment"]["status"] == "withdrawn"


def test_a_report_reads_its_comment_with_the_reporter(
    app, reader: Api, signed_in, article: str
) -> None:
    comment = post(reader, article)
    witness = signed_in("Witness")
    answers: list = []
    reads = selects_during(
        app,
        lambda: answers.append(
            witness.post(f"/comments/{comment['id']}/reports", {"rule": "civil"})
        ),
    )
    assert answers[0].status_code == 201, answers[0].get_json()
    assert answers[0].get_json()["report"]["rule"] == "civil"
    [read] = _loads_by_id(reads)
    assert "FROM users" in read and "JOIN comments" in read
    missing = witness.post("/comments/999999/reports", {"rule": "civil"})
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
