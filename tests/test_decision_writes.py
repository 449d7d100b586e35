"""What a moderator's decision on a comment writes, row by row, on either database (on
PostgreSQL it is one statement: moderation.services._decision_at_once), and that a decision
on a comment that changed after it was read writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text

from comments.audit import AuditEntry
from comments.extensions import db
from comments.models import Article, Comment, Role
from moderation.models import Decision, Notice, Report
from tests.conftest import Api, listening


@pytest.fixture
def moderator(signed_in) -> Api:
    return signed_in("Moderator", Role.MODERATOR)


def _published(reader: Api, moderator: Api, article: str, body: str) -> dict[str, Any]:
    """A published comment of ``reader``'s (a new reader's first post may be held)."""
    posted = reader.comment(article, body)
    assert posted.status_code in (201, 202), posted.get_json()
    comment = posted.get_json()["comment"]
    if comment["status"] == "pending":
        approved = moderator.post(
            f"/moderation/comments/{comment['id']}/decision", {"action": "approve"}
        )
        assert approved.status_code == 200, approved.get_json()
    return comment


def _report(witness: Api, comment_id: int) -> None:
    reported = witness.post(f"/comments/{comment_id}/reports", {"rule": "civil"})
    assert reported.status_code == 201, reported.get_json()


def _rows(app: Flask, comment_id: int) -> dict[str, Any]:
    """Everything a decision on this comment may have written, read back fresh."""
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        decisions = db.session.scalars(
            select(Decision).where(Decision.comment_id == comment_id).order_by(Decision.id)
        ).all()
        entries = db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target_type == "comment", AuditEntry.target_id == str(comment_id))
            .order_by(AuditEntry.id)
        ).all()
        out = {
            "status": comment.status.value,
            "held_reason": comment.held_reason,
            "version": comment.version,
            "thread_version": db.session.get(Article, comment.article_id).version,
            "decisions": [
                (
                    d.id,
                    d.action.value,
                    d.subject_user_id,
                    d.moderator_id,
                    d.rule.code if d.rule else None,
                    d.note,
                    d.is_automatic,
                )
                for d in decisions
            ],  # fmt: skip
            "reports": [
                (r.outcome.value, r.resolved_at is not None)
                for r in db.session.scalars(select(Report).where(Report.comment_id == comment_id))
            ],
            "notices": [
                (n.user_id, n.kind, n.decision_id, n.message)
                for n in db.session.scalars(
                    select(Notice).where(
                        Notice.decision_id.in_([d.id for d in decisions]) if decisions else False
                    )
                )
            ],
            "entries": [
                (e.action, e.actor_name, e.rule_code, e.reason, e.details) for e in entries
            ],
        }
        db.session.rollback()
    return out


def test_a_withdrawal_writes_the_comment_decision_reports_notice_entry_and_bump(
    app: Flask, reader: Api, signed_in, moderator: Api, article: str
) -> None:
    comment = _published(reader, moderator, article, "The depot closure was announced today.")
    _report(signed_in("Witness"), comment["id"])
    before = _rows(app, comment["id"])
    assert before["reports"] == [("open", False)]

    done = moderator.post(
        f"/moderation/comments/{comment['id']}/decision",
        {"action": "withdraw", "rule": "civil", "note": "Keep it civil, please"},
    )
    assert done.status_code == 200, done.get_json()
    decision = done.get_json()["decision"]
    assert decision["action"] == "withdraw" and decision["rule"] == "civil"

    after = _rows(app, comment["id"])
    assert after["status"] == "withdrawn" and after["held_reason"] is None
    assert after["version"] == before["version"] + 1
    assert after["thread_version"] == before["thread_version"] + 1
    new = after["decisions"][len(before["decisions"]) :]
    assert new == [
        (decision["id"], "withdraw", reader.user["id"], moderator.user["id"], "civil",
         "Keep it civil, please", False)
    ]  # fmt: skip
    assert after["reports"] == [("upheld", True)]
    [(user_id, kind, decision_id, message)] = after["notices"][-1:]
    assert (user_id, kind, decision_id) == (reader.user["id"], "decision", decision["id"])
    assert message.startswith("Your comment was withdrawn under the house rule")
    assert "Keep it civil, please" in message and "appeal" in message
    assert after["entries"][-1] == (
        "comment.withdraw",
        "Moderator",
        "civil",
        "Keep it civil, please",
        {"decision_id": decision["id"], "article": article, "author_id": reader.user["id"]},
    )
    # What the author sees: the same notice, through the API.
    assert reader.get("/me/notices").get_json()["notices"][-1]["message"] == message


def test_an_approval_rejects_open_reports_and_a_reinstatement_leaves_reports_and_notices_be(
    app: Flask, reader: Api, signed_in, moderator: Api, article: str
) -> None:
    comment = _published(reader, moderator, article, "The bypass opens in the spring.")
    _report(signed_in("Witness"), comment["id"])
    approved = moderator.post(
        f"/moderation/comments/{comment['id']}/decision", {"action": "approve"}
    )
    assert approved.status_code == 200, approved.get_json()
    rows = _rows(app, comment["id"])
    assert rows["status"] == "published" and rows["reports"] == [("rejected", True)]
    assert rows["entries"][-1][0] == "comment.approve"
    assert rows["entries"][-1][4]["decision_id"] == approved.get_json()["decision"]["id"]
    notices = len(rows["notices"])

    withdrawn = moderator.post(
        f"/moderation/comments/{comment['id']}/decision", {"action": "withdraw", "rule": "spam"}
    )
    assert withdrawn.status_code == 200
    reinstated = moderator.post(
        f"/moderation/comments/{comment['id']}/decision", {"action": "reinstate"}
    )
    assert reinstated.status_code == 200, reinstated.get_json()
    rows = _rows(app, comment["id"])
    assert rows["status"] == "published"
    assert rows["reports"] == [("rejected", True)]  # nothing left open to resolve
    assert len(rows["notices"]) == notices + 1  # the withdrawal's; a reinstatement tells no one
    assert [e[0] for e in rows["entries"][-2:]] == ["comment.withdraw", "comment.reinstate"]


def test_a_comment_changed_after_the_decision_read_it_is_not_decided_and_nothing_is_written(
    app: Flask, reader: Api, signed_in, moderator: Api, article: str
) -> None:
    """Another moderator's decision lands between this request's read of the comment and
    its write: the conditional UPDATE matches nothing, so no decision, entry, notice,
    report outcome or bump is written, and the moderator sees the winner's state."""
    comment = _published(reader, moderator, article, "The market moves to the square.")
    _report(signed_in("Witness"), comment["id"])
    before = _rows(app, comment["id"])
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    interfered: list[bool] = []

    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        # Just after the request read the moderator with the comment (and before any write).
        if (
            not interfered
            and statement.lstrip().startswith("SELECT users.")
            and ("comments" in statement)
        ):
            interfered.append(True)
            with other.begin() as winner:
                winner.execute(
                    text(
                        "UPDATE comments SET status = 'withdrawn', version = version + 1 "
                        "WHERE id = :id"
                    ),
                    {"id": comment["id"]},
                )

    try:
        with listening(app, "after_cursor_execute", after):
            lost = moderator.post(
                f"/moderation/comments/{comment['id']}/decision",
                {"action": "withdraw", "rule": "civil", "note": "Too late"},
            )
    finally:
        other.dispose()
    assert interfered
    assert lost.status_code == 409, lost.get_json()
    assert lost.get_json()["error"]["code"] == "conflict"
    assert lost.get_json()["current"]["status"] == "withdrawn"
    rows = _rows(app, comment["id"])
    assert rows["version"] == before["version"] + 1  # the other writer's change alone
    for unchanged in ("decisions", "reports", "notices", "entries", "thread_version"):
        assert rows[unchanged] == before[unchanged], unchanged


# ---------------------------------------------------------------------- on PostgreSQL


@pytest.fixture
def postgres(app: Flask) -> Flask:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite writes a decision a statement at a time, with no round trips")
    return app


def _statements(app: Flask, action) -> list[tuple[str, str]]:
    """Each statement sent while ``action()`` runs, and whether a transaction was open on
    its connection just after it ran (psycopg's transaction status)."""
    seen: list[tuple[str, str]] = []

    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        status = cursor.connection.info.transaction_status.name
        seen.append((" ".join(statement.split()), status))

    with listening(app, "after_cursor_execute", after):
        action()
    return seen


def test_on_postgresql_a_decision_is_one_statement_committed_as_it_runs(
    postgres: Flask, reader: Api, signed_in, moderator: Api, article: str
) -> None:
    comment = _published(reader, moderator, article, "The new bridge is on time.")
    _report(signed_in("Witness"), comment["id"])
    answers = []
    seen = _statements(
        postgres,
        lambda: answers.append(
            moderator.post(
                f"/moderation/comments/{comment['id']}/decision",
                {"action": "withdraw", "rule": "civil"},
            )
        ),
    )
    assert answers[0].status_code == 200, answers[0].get_json()
    # The moderator read with the comment, the cited rule, then the decision: nothing after.
    [(read, _), (rule, _), (decision, status)] = seen
    assert read.startswith("SELECT users.") and "FROM users LEFT OUTER JOIN comments" in read
    assert rule.startswith("SELECT house_rules.")
    assert decision.startswith("WITH changed AS (UPDATE comments")
    for part in ("INSERT INTO decisions", "INSERT INTO audit_log", "UPDATE reports",
                 "INSERT INTO notices", "UPDATE articles"):  # fmt: skip
        assert part in decision, part
    # No BEGIN went before it and no COMMIT after: it was its own transaction.
    assert status == "IDLE"
    rows = _rows(postgres, comment["id"])
    assert rows["status"] == "withdrawn" and rows["reports"] == [("upheld", True)]


def test_on_postgresql_a_bulk_decision_joins_its_transaction_and_leaves_the_bump_to_it(
    postgres: Flask, reader: Api, signed_in, moderator: Api, article: str
) -> None:
    ids = [
        _published(reader, moderator, article, body)["id"]
        for body in ("The ferry runs again in May.", "Roadworks end on Friday, they say.")
    ]
    before = _rows(postgres, ids[0])["thread_version"]
    answers = []
    seen = _statements(
        postgres,
        lambda: answers.append(
            moderator.post(
                "/moderation/decisions", {"ids": ids, "action": "withdraw", "rule": "spam"}
            )
        ),
    )
    assert answers[0].status_code == 200
    assert all(r["ok"] for r in answers[0].get_json()["results"])
    decisions = [(s, status) for s, status in seen if s.startswith("WITH changed AS")]
    assert len(decisions) == 2
    # Each inside the bulk's transaction, without a bump of its own: the thread is bumped
    # as each item's savepoint ends (comments.services.bump_article_at_commit).
    assert all(status == "INTRANS" and "UPDATE articles" not in s for s, status in decisions)
    bumps = [s for s, _ in seen if s.startswith("UPDATE articles SET version")]
    assert len(bumps) == 2
    assert _rows(postgres, ids[0])["thread_version"] == before + 2
    assert {_rows(postgres, i)["status"] for i in ids} == {"withdrawn"}
