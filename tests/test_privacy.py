"""Readers' data rights: download my data, delete my account."""

from __future__ import annotations

import json

import pytest

from comments.audit import AuditEntry
from comments.extensions import db
from comments.models import Comment, Role, User
from tests.conftest import PASSWORD, Api


@pytest.fixture
def moderator(signed_in) -> Api:
    return signed_in("Moderator", Role.MODERATOR)


def _history(reader: Api, signed_in, moderator: Api, article: str) -> dict:
    kept = reader.comment(article, "The new bus station is a real improvement.").get_json()
    gone = reader.comment(article, "The market should open on Sundays too.").get_json()
    other = signed_in("Other")
    reply = other.comment(article, "I agree about the buses.", kept["comment"]["id"]).get_json()
    reader.post(f"/comments/{reply['comment']['id']}/reports", {"rule": "spam", "note": "x"})
    decision = moderator.post(
        f"/moderation/comments/{gone['comment']['id']}/decision",
        {"action": "withdraw", "rule": "civil"},
    ).get_json()["decision"]
    reader.post(f"/decisions/{decision['id']}/appeal", {"statement": "I was polite."})
    return {
        "kept": kept["comment"]["id"],
        "gone": gone["comment"]["id"],
        "reply": reply["comment"]["id"],
        "decision": decision["id"],
    }


def test_download_my_data(reader: Api, signed_in, moderator: Api, article: str) -> None:
    ids = _history(reader, signed_in, moderator, article)
    response = reader.get("/me/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.data)
    assert data["account"]["email"] == "reader@example.com"
    assert {c["id"]: c["status"] for c in data["comments"]} == {
        ids["kept"]: "published",
        ids["gone"]: "withdrawn",
    }
    assert data["reports"][0]["comment_id"] == ids["reply"]
    assert data["notices"] and data["appeals"][0]["decision_id"] == ids["decision"]
    assert "password_hash" not in json.dumps(data)


def test_delete_account_keeps_threads_readable_and_audit_pseudonymous(
    app, reader: Api, signed_in, moderator: Api, api: Api, article: str
) -> None:
    ids = _history(reader, signed_in, moderator, article)
    uid = reader.user["id"]
    wrong = reader.request("DELETE", "/me", json={"password": "not my password"})
    assert wrong.status_code == 403
    assert reader.request("DELETE", "/me", json={"password": PASSWORD}).status_code == 204
    assert reader.get("/auth/session").get_json()["user"] is None
    assert Api(app.test_client()).signin("reader@example.com").status_code == 401
    (top,) = api.get(f"/articles/{article}/comments").get_json()["comments"]
    assert top["id"] == ids["kept"] and top["author"] == {
        "id": None,
        "display_name": "[deleted account]",
    }
    assert top["replies"][0]["id"] == ids["reply"]
    with app.app_context():
        assert db.session.get(User, uid) is None
        entries = list(db.session.scalars(db.select(AuditEntry)))
        assert not any(e.actor_id == uid for e in entries)
        withdraw = next(e for e in entries if e.action == "comment.withdraw")
        assert withdraw.details["author_id"].startswith("deleted:")
        assert any(
            e.action == "user.delete" and e.target_id.startswith("deleted:") for e in entries
        )
        assert "reader@example.com" not in json.dumps([e.to_json() for e in entries])


@pytest.mark.config(DELETED_ACCOUNT_COMMENTS="remove")
def test_delete_account_can_remove_comments(
    app, reader: Api, signed_in, moderator: Api, api: Api, article: str
) -> None:
    ids = _history(reader, signed_in, moderator, article)
    assert reader.request("DELETE", "/me", json={"password": PASSWORD}).status_code == 204
    (top,) = api.get(f"/articles/{article}/comments").get_json()["comments"]
    assert top["placeholder"] == "This comment was deleted by its author"
    assert top["replies"][0]["id"] == ids["reply"]
    with app.app_context():
        assert db.session.get(Comment, ids["kept"]).body == ""
