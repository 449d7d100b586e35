"""Moderation's JSON API under /api/v1: rules, reports, queues, decisions, sanctions,
closing threads, notices, appeals and the audit log. Every staff route is role-checked."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from flask_login import current_user
from sqlalchemy import select

from comments import openapi
from comments import services as comment_services
from comments.api import signed_in
from comments.audit import record
from comments.auth import require_role
from comments.errors import ParleyError, not_found
from comments.extensions import db
from comments.limits import configured, limiter, user_or_address
from comments.models import Role, User
from comments.validation import Field, query_choice, query_int, read_json

from . import services
from .models import Appeal, Decision, HouseRule, Sanction

bp = Blueprint("moderation_api", __name__, url_prefix="/api/v1")

NOTE_MAX = 2000


def _page() -> tuple[int, int]:
    return query_int("page", 1, 1, 1_000_000), query_int(
        "per_page", current_app.config["PER_PAGE_DEFAULT"], 1, current_app.config["PER_PAGE_MAX"]
    )


def _optional_int(name: str) -> int | None:
    from flask import request

    return query_int(name, 0, 1) if request.args.get(name) else None


def _get(model: Any, ident: int, what: str) -> Any:
    obj = db.session.get(model, ident)
    if obj is None:
        raise not_found(what)
    return obj


# ------------------------------------------------------------------------------ rules

NEW_RULE = {
    "code": Field(str, max_length=40),
    "title": Field(str, max_length=200),
    "text": Field(str, max_length=5000),
    "position": Field(int, required=False, nullable=True),
    "signals": Field(list, required=False, nullable=True),
}
EDIT_RULE = {
    "title": Field(str, required=False, max_length=200),
    "text": Field(str, required=False, max_length=5000),
    "position": Field(int, required=False),
    "signals": Field(list, required=False),
    "active": Field(bool, required=False),
}


@bp.get("/rules")
def list_rules():
    """The active house rules: code, title, text."""
    return jsonify(rules=[r.to_json() for r in services.active_rules()])


@bp.post("/rules")
@require_role(Role.EDITOR)
@openapi.body(NEW_RULE)
def create_rule():
    """Add a house rule (editors)."""
    data = read_json(NEW_RULE)
    rule = services.create_rule(current_user, data)
    db.session.commit()
    return jsonify(rule=rule.to_json()), 201


@bp.patch("/rules/<code>")
@require_role(Role.EDITOR)
@openapi.body(EDIT_RULE)
def edit_rule(code: str):
    """Edit a house rule, or retire it with active: false (editors)."""
    rule = db.session.scalar(select(HouseRule).where(HouseRule.code == code))
    if rule is None:
        raise not_found("house rule")
    data = read_json(EDIT_RULE)
    services.edit_rule(current_user, rule, data)
    db.session.commit()
    return jsonify(rule=rule.to_json())


# ---------------------------------------------------------------------------- reports

REPORT = {
    "rule": Field(str, max_length=40),
    "note": Field(str, required=False, nullable=True, max_length=500),
}


@bp.post("/comments/<int:comment_id>/reports")
@limiter.limit(configured("RATELIMIT_REPORT_USER"), key_func=user_or_address)
@openapi.body(REPORT)
def report(comment_id: int):
    """Report a comment that breaks a house rule: 201, or 200 with your earlier report."""
    user = signed_in()
    data = read_json(REPORT)
    comment = comment_services.get_comment(comment_id)
    item, created = services.report_comment(user, comment, data["rule"], data.get("note"))
    db.session.commit()
    return jsonify(report=item.to_json()), 201 if created else 200


# ---------------------------------------------------------------------------- me


@bp.get("/me/notices")
def my_notices():
    """Decisions and sanctions that concern me, with reasons and how to appeal."""
    user = signed_in()
    return jsonify(services.notices(user, *_page()))


@bp.get("/me/reports")
def my_reports():
    """The comments I reported, and what became of each report."""
    user = signed_in()
    return jsonify(services.my_reports(user, *_page()))


@bp.get("/me/comments")
def my_comments():
    """My comments, newest first, with their status (published, pending, withdrawn...)."""
    user = signed_in()
    return jsonify(services.my_comments(user, *_page()))


@bp.get("/me/export")
def export_my_data():
    """Download everything Parley holds about me, as JSON."""
    user = signed_in()
    from . import privacy

    response = jsonify(privacy.export(user))
    response.headers["Content-Disposition"] = "attachment; filename=parley-my-data.json"
    response.headers["Cache-Control"] = "no-store"
    return response


DELETE_ACCOUNT = {"password": Field(str, max_length=1024)}


@bp.delete("/me")
@openapi.body(DELETE_ACCOUNT)
def delete_my_account():
    """Delete my account and personal data (confirm with the password)."""
    from comments import auth

    from . import privacy

    user = signed_in()
    data = read_json(DELETE_ACCOUNT)
    if not auth.verify_password(user.password_hash, data["password"]):
        raise ParleyError(
            "invalid_credentials", "That password is not right.", 403, {"password": "wrong"}
        )
    privacy.delete_account(user)
    db.session.commit()
    auth.logout_user()
    from flask import session

    session.clear()
    return Response(status=204)


# ----------------------------------------------------------------------------- queues

QUEUES = ("pending", "reported", "appeals", "history")


@bp.get("/moderation/queue")
@require_role(Role.MODERATOR)
def queue():
    """A moderation queue: pending, reported, appeals or history; filter by article, rule,
    author."""
    from flask import request

    kind = query_choice("kind", QUEUES, "pending")
    page, per_page = _page()
    article = request.args.get("article") or None
    rule = request.args.get("rule") or None
    author = _optional_int("author")
    if kind == "appeals":
        return jsonify(services.appeals_queue(page, per_page))
    if kind == "history":
        return jsonify(services.history(article, author, page, per_page, rule))
    return jsonify(services.queue(kind, article, rule, author, page, per_page))


@bp.get("/moderation/queue/counts")
@require_role(Role.MODERATOR)
def queue_counts():
    """How many items wait in each queue."""
    return jsonify(counts=services.queue_counts())


DECISION = {
    "action": Field(str, choices=("approve", "withdraw", "reinstate")),
    # The comment's version as the moderator saw it (queue items carry it): a change since
    # then is a 409 rather than a decision about something they didn't see.
    "version": Field(int, required=False, nullable=True),
    "rule": Field(str, required=False, nullable=True, max_length=40),
    "note": Field(str, required=False, nullable=True, max_length=NOTE_MAX),
}


@bp.post("/moderation/comments/<int:comment_id>/decision")
@require_role(Role.MODERATOR)
@openapi.body(DECISION)
def decide(comment_id: int):
    """Approve, withdraw (citing a rule) or reinstate a comment; 409 if already decided."""
    data = read_json(DECISION)
    comment = comment_services.get_comment(comment_id)
    decision = services.decide_comment(
        current_user,
        comment,
        data["action"],
        data.get("rule"),
        data.get("note"),
        data.get("version"),
        commit=True,
    )
    return jsonify(decision=decision.to_json())


BULK = {
    "ids": Field(list),
    "action": Field(str, choices=("approve", "withdraw")),
    "rule": Field(str, required=False, nullable=True, max_length=40),
    "note": Field(str, required=False, nullable=True, max_length=NOTE_MAX),
}


@bp.post("/moderation/decisions")
@require_role(Role.MODERATOR)
@openapi.body(BULK)
def decide_many():
    """Approve or withdraw many comments at once; each succeeds or fails on its own."""
    data = read_json(BULK)
    ids = data["ids"]
    if (
        not ids
        or len(ids) > 100
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    ):
        raise ParleyError(
            "validation_failed", "'ids' is 1 to 100 comment ids.", 422, {"ids": "1 to 100 integers"}
        )
    if data["action"] == "withdraw":
        services.get_rule(data.get("rule"), active=False)
    results = []
    for comment_id in dict.fromkeys(ids):
        try:
            with db.session.begin_nested():
                comment = comment_services.get_comment(comment_id)
                decision = services.decide_comment(
                    current_user, comment, data["action"], data.get("rule"), data.get("note")
                )
            results.append({"id": comment_id, "ok": True, "decision": decision.to_json()})
        except ParleyError as err:
            results.append(
                {
                    "id": comment_id,
                    "ok": False,
                    "error": {"code": err.code, "message": err.message, **err.extra},
                }
            )
    db.session.commit()
    return jsonify(results=results)


# -------------------------------------------------------------------------- sanctions

SANCTION = {
    "kind": Field(str, choices=("warning", "premoderation", "suspension", "ban")),
    "rule": Field(str, max_length=40),
    "reason": Field(str, max_length=NOTE_MAX),
    "days": Field(int, required=False, nullable=True),
}


@bp.get("/moderation/users/<int:user_id>")
@require_role(Role.MODERATOR)
def author_record(user_id: int):
    """A commenter's record: comments, decisions, sanctions and the suggested next step."""
    _get(User, user_id, "user")
    return jsonify(services.author_record(user_id))


@bp.post("/moderation/users/<int:user_id>/sanctions")
@require_role(Role.MODERATOR)
@openapi.body(SANCTION)
def sanction(user_id: int):
    """Warn, premoderate, suspend (days) or ban a commenter, citing a rule and a reason."""
    data = read_json(SANCTION)
    user = _get(User, user_id, "user")
    days = data.get("days")
    rule = services.get_rule(data["rule"])
    item, decision = services.impose_sanction(
        current_user, user, data["kind"], rule, data["reason"].strip(), days
    )
    db.session.commit()
    return jsonify(sanction=item.to_json(), decision=decision.to_json()), 201


@bp.delete("/moderation/sanctions/<int:sanction_id>")
@require_role(Role.MODERATOR)
def lift(sanction_id: int):
    """Lift a sanction early."""
    item = _get(Sanction, sanction_id, "sanction")
    services.lift_sanction(current_user, item)
    db.session.commit()
    return jsonify(sanction=item.to_json())


# ---------------------------------------------------------------------------- articles

EDIT_ARTICLE = {
    "title": Field(str, required=False, max_length=300),
    "url": Field(str, required=False, max_length=2000),
    "auto_close_days": Field(int, required=False, nullable=True),
}


@bp.post("/articles/<key>/close")
@require_role(Role.EDITOR)
def close(key: str):
    """Close an article's comments."""
    article = services.set_thread_open(current_user, comment_services.get_article(key), False)
    db.session.commit()
    return jsonify(article=comment_services.article_json(article))


@bp.post("/articles/<key>/reopen")
@require_role(Role.EDITOR)
def reopen(key: str):
    """Reopen an article's comments."""
    article = services.set_thread_open(current_user, comment_services.get_article(key), True)
    db.session.commit()
    return jsonify(article=comment_services.article_json(article))


@bp.patch("/articles/<key>")
@require_role(Role.EDITOR)
@openapi.body(EDIT_ARTICLE)
def edit_article(key: str):
    """Edit an article's title, URL or automatic close (days after registration)."""
    data = read_json(EDIT_ARTICLE)
    article = services.update_article(current_user, comment_services.get_article(key), data)
    db.session.commit()
    return jsonify(article=comment_services.article_json(article))


# ----------------------------------------------------------------------------- appeals

APPEAL = {"statement": Field(str, max_length=2000)}
APPEAL_DECISION = {
    "action": Field(str, choices=("uphold", "reverse")),
    "note": Field(str, required=False, nullable=True, max_length=NOTE_MAX),
}


@bp.post("/decisions/<int:decision_id>/appeal")
@openapi.body(APPEAL)
def appeal(decision_id: int):
    """Appeal a decision that affects you, once, within 14 days."""
    user = signed_in()
    data = read_json(APPEAL)
    decision = _get(Decision, decision_id, "decision")
    item = services.appeal(user, decision, data["statement"])
    db.session.commit()
    return jsonify(appeal=item.to_json()), 201


@bp.post("/moderation/appeals/<int:appeal_id>/decision")
@require_role(Role.MODERATOR)
@openapi.body(APPEAL_DECISION)
def decide_appeal(appeal_id: int):
    """Uphold or reverse an appeal (a moderator other than the decision's)."""
    data = read_json(APPEAL_DECISION)
    item = _get(Appeal, appeal_id, "appeal")
    services.decide_appeal(current_user, item, data["action"], data.get("note"))
    db.session.commit()
    return jsonify(appeal=item.to_json())


# -------------------------------------------------------------------------------- audit


def _audit_filters() -> Any:
    from flask import request

    return services.audit_query(
        _optional_int("actor"),
        request.args.get("action") or None,
        request.args.get("target_type") or None,
        request.args.get("target_id") or None,
    )


@bp.get("/moderation/audit")
@require_role(Role.MODERATOR)
def audit():
    """The audit log, newest first; filter by actor, action, target."""
    page, per_page = _page()
    entries, total = services.page_of(_audit_filters(), page, per_page)
    return jsonify(
        entries=[e.to_json() for e in entries], page=page, per_page=per_page, total=total
    )


@bp.get("/moderation/audit.csv")
@require_role(Role.ADMIN)
def audit_csv():
    """The audit log as CSV (admins)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "id",
            "at",
            "actor_id",
            "actor",
            "action",
            "target_type",
            "target_id",
            "rule",
            "reason",
            "details",
        ]
    )
    for e in db.session.scalars(_audit_filters()):
        row = e.to_json()
        writer.writerow(
            [
                e.id,
                row["at"],
                e.actor_id or "",
                _csv_safe(e.actor_name),
                e.action,
                e.target_type,
                _csv_safe(e.target_id),
                e.rule_code or "",
                _csv_safe(e.reason or ""),
                _csv_safe(json.dumps(e.details or {})),
            ]
        )
    record(current_user, "audit.export", "audit_log", "csv")
    db.session.commit()
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=parley-audit.csv"},
    )


def _csv_safe(value: str) -> str:
    # Don't let a spreadsheet run a formula someone typed into a reason.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


# -------------------------------------------------------------------------------- roles

ROLE = {"role": Field(str, choices=tuple(r.value for r in Role))}


@bp.post("/admin/users/<int:user_id>/role")
@require_role(Role.ADMIN)
@openapi.body(ROLE)
def set_role(user_id: int):
    """Change a user's role (admins)."""
    data = read_json(ROLE)
    user = _get(User, user_id, "user")
    before = user.role.value
    if user.id == current_user.id:
        raise ParleyError("own_account", "You can't change your own role.", 403)
    user.role = Role(data["role"])
    record(current_user, "user.role", "user", user.id, {"from": before, "to": data["role"]})
    db.session.commit()
    return jsonify(user=user.to_private())
