"""Readers' data rights: download everything Parley holds about you, and delete your account.

The account and its personal data go; comments are removed or kept as "[deleted account]"
(site setting DELETED_ACCOUNT_COMMENTS); the audit log keeps its decision records with the
person's id replaced by a pseudonym that can't be turned back into the id.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update

from comments.audit import AuditEntry, record
from comments.extensions import db
from comments.models import Comment, CommentStatus, User, isoformat, utcnow
from comments.services import recount

from .models import Appeal, Decision, Notice, Report, Sanction

DELETED_NAME = "[deleted account]"


def export(user: User) -> dict[str, Any]:
    """Everything held about ``user``: account, comments, reports, notices, appeals, sanctions."""
    comments = db.session.scalars(
        select(Comment).where(Comment.author_id == user.id).order_by(Comment.id)
    )
    reports = db.session.scalars(select(Report).where(Report.reporter_id == user.id))
    notices = db.session.scalars(select(Notice).where(Notice.user_id == user.id))
    appeals = db.session.scalars(select(Appeal).where(Appeal.appellant_id == user.id))
    sanctions = db.session.scalars(select(Sanction).where(Sanction.user_id == user.id))
    return {
        "exported_at": isoformat(utcnow()),
        "account": user.to_private(),
        "comments": [
            {
                "id": c.id,
                "article": c.article.key,
                "parent_id": c.parent_id,
                "status": c.status.value,
                "body": c.body,
                "body_html": c.body_html,
                "created_at": isoformat(c.created_at),
                "edited_at": isoformat(c.edited_at),
                "scores": c.scores,
            }
            for c in comments
        ],
        "reports": [r.to_json() for r in reports],
        "notices": [
            {
                "id": n.id,
                "kind": n.kind,
                "message": n.message,
                "created_at": isoformat(n.created_at),
            }
            for n in notices
        ],
        "appeals": [a.to_json() for a in appeals],
        "sanctions": [s.to_json() for s in sanctions],
    }


def pseudonym(user_id: int) -> str:
    """A stable stand-in for a deleted user's id in the audit log (keyed with the secret)."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"user:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"deleted:{digest[:16]}"


def delete_account(user: User) -> str:
    """Remove the account and its personal data (flushes). Returns the audit pseudonym."""
    uid, alias = user.id, pseudonym(user.id)
    mode = current_app.config["DELETED_ACCOUNT_COMMENTS"]
    comment_ids = list(db.session.scalars(select(Comment.id).where(Comment.author_id == uid)))
    articles = set(
        db.session.scalars(select(Comment.article_id).where(Comment.author_id == uid).distinct())
    )
    if mode == "remove":
        db.session.execute(
            update(Comment)
            .where(Comment.author_id == uid)
            .values(
                status=CommentStatus.DELETED,
                body="",
                body_html="",
                scores=None,
                deleted_at=utcnow(),
                author_id=None,
                version=Comment.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
    else:
        db.session.execute(
            update(Comment)
            .where(Comment.author_id == uid)
            .values(author_id=None, version=Comment.version + 1)
            .execution_options(synchronize_session=False)
        )
    # Many comments at once: their threads' counters are counted again (and bumped).
    recount(articles)
    # Their own records go; records of decisions about them stay, without the link.
    db.session.execute(delete(Notice).where(Notice.user_id == uid))
    db.session.execute(delete(Sanction).where(Sanction.user_id == uid))
    for column in (Report.reporter_id,):
        db.session.execute(update(Report).where(column == uid).values(reporter_id=None))
    db.session.execute(update(Appeal).where(Appeal.appellant_id == uid).values(appellant_id=None))
    db.session.execute(
        update(Decision).where(Decision.subject_user_id == uid).values(subject_user_id=None)
    )
    db.session.execute(
        update(Decision).where(Decision.moderator_id == uid).values(moderator_id=None)
    )
    # The audit log keeps every record, with the id replaced.
    db.session.execute(
        update(AuditEntry).where(AuditEntry.actor_id == uid).values(actor_id=None, actor_name=alias)
    )
    db.session.execute(
        update(AuditEntry)
        .where(AuditEntry.target_type == "user", AuditEntry.target_id == str(uid))
        .values(target_id=alias)
    )
    touched = (
        db.session.scalars(
            select(AuditEntry).where(
                AuditEntry.target_type == "comment",
                AuditEntry.target_id.in_([str(i) for i in comment_ids]),
            )
        )
        if comment_ids
        else []
    )
    for entry in touched:
        details = dict(entry.details or {})
        if details.get("author_id") == uid:
            details["author_id"] = alias
            entry.details = details
    db.session.execute(
        update(Sanction).where(Sanction.moderator_id == uid).values(moderator_id=None)
    )
    db.session.execute(
        update(Sanction).where(Sanction.lifted_by_id == uid).values(lifted_by_id=None)
    )
    db.session.execute(update(Appeal).where(Appeal.decided_by_id == uid).values(decided_by_id=None))
    db.session.flush()
    db.session.expunge(user)
    db.session.execute(delete(User).where(User.id == uid))
    record(None, "user.delete", "user", alias, {"comments": mode, "count": len(comment_ids)})
    db.session.flush()
    return alias
