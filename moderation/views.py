"""Server-rendered pages for moderation: the house rules, reports, my comments, notices and
appeals for readers; the queues, author records, sanctions and audit log for moderators; the
articles and the house rules editor for editors.

Every change goes through ``moderation.services`` (which checks the rules and writes the
audit log); the view commits once. Roles are checked on the server for every staff page and
form, whatever the page shows.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from comments import services as comment_services
from comments import views as pages
from comments.audit import AuditEntry
from comments.errors import ParleyError, not_found
from comments.extensions import db
from comments.limits import configured, limiter, user_or_address
from comments.models import Role, User
from comments.views import form_int, int_arg, page_role, refuse, safe_next

from . import services
from .models import Appeal, Decision, HouseRule, Sanction

bp = Blueprint("moderation_views", __name__, template_folder="templates")

QUEUES = {"pending": "Held for review", "reported": "Reported", "appeals": "Appeals"}
SANCTION_KINDS = ("warning", "premoderation", "suspension", "ban")
NOTE_MAX = 2000


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    # The reader's thread page (in comments) offers a report form with the active rules.
    return {"report_rules": services.active_rules}


def _get(model: Any, ident: int, what: str) -> Any:
    obj = db.session.get(model, ident)
    if obj is None:
        raise not_found(what)
    return obj


def _text(name: str, limit: int = NOTE_MAX) -> str:
    return (request.form.get(name) or "")[:limit]


def _back(default: str, anchor: str | None = None) -> Any:
    """Back to the page the form was on (``next``), else ``default``."""
    target = safe_next(request.form.get("next"), default).split("#")[0]
    return redirect(target + (f"#{anchor}" if anchor else ""))


def _rerender(status: int, default: str) -> Any:
    """Show the page a refused form was sent from again, with the user's text kept.

    The form names that page in ``next``; it is matched against the app's own routes and
    rendered by the same function as its GET, so no typed text is lost.
    """
    target = safe_next(request.form.get("next"), default)
    path, _, query = target.partition("?")
    try:
        endpoint, values = current_app.url_map.bind("localhost").match(path, method="GET")
    except HTTPException:
        endpoint, values = "", {}
    args = MultiDict(parse_qsl(query))
    renderer = _RENDERERS.get(endpoint)
    if renderer is None:
        return redirect(target)
    return renderer(args=args, status=status, **values)


def _render_thread(key: str, args: Any, status: int, template: str) -> Any:
    return pages.render_thread(comment_services.get_article(key), template, status, args)


# --------------------------------------------------------------------------- house rules


@bp.get("/rules")
def rules_page():
    """The house rules, for readers."""
    return render_template("moderation/rules.html", rules=services.active_rules())


# ------------------------------------------------------------------------------ readers


@bp.post("/comments/<int:comment_id>/report")
@limiter.limit(configured("RATELIMIT_REPORT_USER"), key_func=user_or_address)
@page_role()
def report_comment(comment_id: int):
    """Report a comment under a house rule."""
    comment = comment_services.get_comment(comment_id)
    article = comment.article
    values = {"rule": request.form.get("rule") or None, "note": _text("note", 500)}
    default = url_for("views.thread", key=article.key)
    try:
        _, created = services.report_comment(
            current_user, comment, values["rule"], values["note"] or None
        )
        db.session.commit()
    except ParleyError as err:
        return _rerender(refuse(f"report-{comment_id}", values, err), default)
    if created:
        flash("Thank you. Your report has been sent to the moderators.", "success")
    else:
        flash("You have already reported this comment; the moderators have it.", "info")
    return _back(default, f"c{comment_id}")


@bp.get("/me/data")
@page_role()
def my_data(status: int = 200):
    """Download my data, or delete my account."""
    keep = current_app.config["DELETED_ACCOUNT_COMMENTS"] != "remove"
    return render_template("moderation/my_data.html", keep_comments=keep), status


@bp.post("/me/delete")
@page_role()
def delete_my_account():
    """Delete my account (confirmed with the password)."""
    from comments import auth

    from . import privacy

    user = current_user._get_current_object()
    if not auth.verify_password(user.password_hash, request.form.get("password", "")[:1024]):
        err = ParleyError("invalid_credentials", "That password is not right.", 403)
        return my_data(refuse("delete-account", {}, err))
    privacy.delete_account(user)
    db.session.commit()
    auth.logout_user()
    session.clear()
    flash("Your account has been deleted.", "success")
    return redirect(url_for("views.front_page"))


@bp.get("/me/comments")
@page_role()
def my_comments():
    """My comments, newest first, with their status."""
    page = int_arg("page", 1)
    data = services.my_comments(current_user, page, 20)
    return render_template(
        "moderation/my_comments.html",
        data=data,
        pager=pages.pages(page, 20, data["total"]),
    )


@bp.get("/me/reports")
@page_role()
def my_reports():
    """The comments I reported and what became of each report."""
    page = int_arg("page", 1)
    data = services.my_reports(current_user, page, 20)
    return render_template(
        "moderation/my_reports.html", data=data, pager=pages.pages(page, 20, data["total"])
    )


def render_notices(args: Any = None, status: int = 200) -> Any:
    args = request.args if args is None else args
    page = int_arg("page", 1, args=args)
    data = services.notices(current_user, page, 20)
    for notice in data["notices"]:
        notice["text"] = notice["message"]
    return render_template(
        "moderation/notices.html", data=data, pager=pages.pages(page, 20, data["total"])
    ), status


@bp.get("/me/notices")
@page_role()
def my_notices():
    """Decisions about me, with the reasons, and a form to appeal each one."""
    return render_notices()


@bp.post("/me/decisions/<int:decision_id>/appeal")
@page_role()
def appeal(decision_id: int):
    """Appeal a decision that affects me, once, within the window."""
    statement = _text("statement")
    try:
        decision = _get(Decision, decision_id, "decision")
        services.appeal(current_user, decision, statement)
        db.session.commit()
    except ParleyError as err:
        return render_notices(status=refuse(f"appeal-{decision_id}", {"statement": statement}, err))
    flash(
        "Your appeal has been sent. A different moderator will look at it, and you will be "
        "told the outcome here.",
        "success",
    )
    return redirect(url_for("moderation_views.my_notices"))


# ---------------------------------------------------------------------------- moderators


def highlight(body: str, highlights: list[dict[str, Any]]) -> Markup:
    """The raw comment text, escaped, with the classifier's terms wrapped in <mark>.

    Spans index the raw body; overlapping ones are merged so marks never nest or cross.
    """
    spans: list[tuple[int, int, str]] = []
    for h in highlights or []:
        for start, end in h.get("spans") or []:
            if 0 <= start < end <= len(body):
                spans.append((start, end, f"{h['signal']}: {h['term']}"))
    spans.sort()
    merged: list[list[Any]] = []
    for start, end, label in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            if label not in merged[-1][2]:
                merged[-1][2].append(label)
        else:
            merged.append([start, end, [label]])
    out: list[Markup] = []
    pos = 0
    for start, end, labels in merged:
        out.append(escape(body[pos:start]))
        out.append(Markup('<mark title="{}">{}</mark>').format("; ".join(labels), body[start:end]))
        pos = end
    out.append(escape(body[pos:]))
    return Markup("").join(out)


def telling_terms(
    highlights: list[dict[str, Any]], scores: dict[str, float] | None
) -> list[dict[str, Any]]:
    """The terms worth a moderator's eye: those that pushed a signal that scored high (at
    least 0.5; else the highest signal), and strongly enough to matter (a quarter of the
    strongest term's weight, and at least 0.5 log-odds). The rest is noise such as "a"."""
    scores = scores or {}
    relevant = {s for s, v in scores.items() if v >= 0.5}
    if not relevant and scores:
        relevant = {max(scores, key=lambda s: scores[s])}
    strongest: dict[str, float] = {}
    for h in highlights or []:
        strongest[h["signal"]] = max(strongest.get(h["signal"], 0.0), h["weight"])
    return [
        h
        for h in highlights or []
        if (not relevant or h["signal"] in relevant)
        and h["weight"] >= max(0.5, 0.25 * strongest[h["signal"]])
    ]


def _suggested_rule(item: dict[str, Any], rules: list[HouseRule]) -> str | None:
    """The rule to preselect for a withdrawal: the one readers cited most, else the rule
    linked to the highest classifier signal."""
    cited: dict[str, int] = {}
    for report in item.get("reports") or []:
        cited[report["rule"]] = cited.get(report["rule"], 0) + 1
    if cited:
        return max(cited, key=lambda code: cited[code])
    scores = item.get("scores") or {}
    for signal in sorted(scores, key=lambda s: scores[s], reverse=True):
        for rule in rules:
            if signal in (rule.signals or []) and scores[signal] >= 0.5:
                return rule.code
    return None


def _split_suggestion(suggestion: str | None) -> tuple[str | None, int | None]:
    if not suggestion:
        return None, None
    kind, _, days = suggestion.partition(":")
    return kind, int(days) if days.isdigit() else None


def _counts() -> dict[str, int]:
    return services.queue_counts()


def render_queue(kind: str, args: Any = None, status: int = 200) -> Any:
    if kind not in QUEUES:
        raise not_found("queue")
    args = request.args if args is None else args
    page = int_arg("page", 1, args=args)
    per_page = 10
    article = args.get("article") or None
    rule = args.get("rule") or None
    rules = services.active_rules()
    if kind == "appeals":
        data = services.appeals_queue(page, per_page)
    else:
        data = services.queue(kind, article, rule, None, page, per_page)
        for item in data["items"]:
            item["terms"] = telling_terms(item["highlights"], item["scores"])
            item["marked"] = highlight(item["comment"]["body"], item["terms"])
            # One entry per term, naming every signal it pushed: "idiot (insult, offensive)".
            grouped: dict[str, list[str]] = {}
            for h in item["terms"]:
                grouped.setdefault(h["term"], []).append(h["signal"].replace("_", " "))
            item["term_signals"] = grouped
            item["suggested_rule"] = _suggested_rule(item, rules)
    for item in data["items"]:
        kind_, days = _split_suggestion(item["author"].get("suggested_sanction"))
        item["suggested_kind"], item["suggested_days"] = kind_, days
    here = url_for(
        "moderation_views.queue_page",
        kind=kind,
        page=page if page > 1 else None,
        article=article,
        rule=rule,
    )
    return render_template(
        "moderation/queue.html",
        kind=kind,
        queues=QUEUES,
        counts=_counts(),
        data=data,
        rules=rules,
        sanction_kinds=SANCTION_KINDS,
        filters={"article": article or "", "rule": rule or ""},
        pager=pages.pages(page, per_page, data["total"]),
        here=here,
    ), status


@bp.get("/moderation")
@page_role(Role.MODERATOR)
def moderation_home():
    return redirect(url_for("moderation_views.queue_page", kind="pending"))


@bp.get("/moderation/queue/<kind>")
@page_role(Role.MODERATOR)
def queue_page(kind: str):
    """A moderation queue: held comments, reported ones, or appeals, each with its context."""
    return render_queue(kind)


DECISION_DONE = {
    "approve": "Comment #{id} approved and published.",
    "withdraw": "Comment #{id} withdrawn; the author has been told why.",
    "reinstate": "Comment #{id} reinstated.",
}


@bp.post("/moderation/comments/<int:comment_id>/decision")
@page_role(Role.MODERATOR)
def decide(comment_id: int):
    """Approve, withdraw (citing a rule) or reinstate a comment."""
    action = request.form.get("action", "")
    values = {"rule": request.form.get("rule") or None, "note": _text("note")}
    default = url_for("moderation_views.queue_page", kind="pending")
    if action not in DECISION_DONE:
        raise ParleyError("validation_failed", "Unknown decision.", 422, {"action": "unknown"})
    comment = comment_services.get_comment(comment_id)
    try:
        services.decide_comment(
            current_user,
            comment,
            action,
            values["rule"],
            values["note"].strip() or None,
            form_int("version"),
            commit=True,
        )
    except ParleyError as err:
        if err.status == 409:
            # Someone else decided it first: nothing typed matters any more; say what happened.
            db.session.rollback()
            flash(err.message, "error")
            return _back(default)
        return _rerender(refuse(f"{action}-{comment_id}", values, err), default)
    flash(DECISION_DONE[action].format(id=comment_id), "success")
    return _back(default)


def render_user(user_id: int, args: Any = None, status: int = 200) -> Any:
    user = _get(User, user_id, "user")
    record = services.author_record(user_id)
    kind, days = _split_suggestion(record.get("suggested_sanction"))
    return render_template(
        "moderation/user.html",
        user=user,
        record=record,
        suggested_kind=kind,
        suggested_days=days,
        rules=services.active_rules(),
        sanction_kinds=SANCTION_KINDS,
        here=url_for("moderation_views.user_page", user_id=user_id),
    ), status


@bp.get("/moderation/users/<int:user_id>")
@page_role(Role.MODERATOR)
def user_page(user_id: int):
    """A commenter's record, their sanctions, and the form to sanction them."""
    return render_user(user_id)


@bp.post("/moderation/users/<int:user_id>/sanctions")
@page_role(Role.MODERATOR)
def sanction(user_id: int):
    """Warn, premoderate, suspend or ban a commenter, citing a rule and a reason."""
    user = _get(User, user_id, "user")
    values = {
        "kind": request.form.get("kind", ""),
        "rule": request.form.get("rule") or None,
        "reason": _text("reason"),
        "days": request.form.get("days", ""),
    }
    default = url_for("moderation_views.user_page", user_id=user_id)
    try:
        if values["kind"] not in SANCTION_KINDS:
            raise ParleyError(
                "validation_failed", "Choose a kind of sanction.", 422, {"kind": "required"}
            )
        days = form_int("days")
        if values["kind"] in ("warning", "ban"):
            days = None
        rule = services.get_rule(values["rule"])
        services.impose_sanction(
            current_user, user, values["kind"], rule, values["reason"].strip(), days
        )
        db.session.commit()
    except ParleyError as err:
        return _rerender(refuse(f"sanction-{user_id}", values, err), default)
    flash(
        f"{values['kind'].capitalize()} recorded for {user.display_name}; they have been told why.",
        "success",
    )
    return _back(default)


@bp.post("/moderation/sanctions/<int:sanction_id>/lift")
@page_role(Role.MODERATOR)
def lift(sanction_id: int):
    """Lift a sanction early."""
    item = _get(Sanction, sanction_id, "sanction")
    user_id = item.user_id
    try:
        services.lift_sanction(current_user, item, _text("note").strip() or None)
        db.session.commit()
    except ParleyError as err:
        db.session.rollback()
        flash(err.message, "error")
    else:
        flash("Sanction lifted; the user has been told.", "success")
    return _back(url_for("moderation_views.user_page", user_id=user_id))


@bp.post("/moderation/appeals/<int:appeal_id>/decision")
@page_role(Role.MODERATOR)
def decide_appeal(appeal_id: int):
    """Uphold or reverse an appeal (a moderator other than the one who decided)."""
    values = {"action": request.form.get("action", ""), "note": _text("note")}
    default = url_for("moderation_views.queue_page", kind="appeals")
    try:
        if values["action"] not in ("uphold", "reverse"):
            raise ParleyError(
                "validation_failed", "Uphold or reverse.", 422, {"action": "uphold or reverse"}
            )
        item = _get(Appeal, appeal_id, "appeal")
        services.decide_appeal(current_user, item, values["action"], values["note"].strip() or None)
        db.session.commit()
    except ParleyError as err:
        if err.status == 409:
            db.session.rollback()
            flash(err.message, "error")
            return _back(default)
        return _rerender(refuse(f"appeal-decision-{appeal_id}", values, err), default)
    flash(
        "Appeal upheld: the decision stands."
        if values["action"] == "uphold"
        else "Appeal granted: the decision is reversed.",
        "success",
    )
    return _back(default)


@bp.get("/moderation/audit")
@page_role(Role.MODERATOR)
def audit_page():
    """The audit log, newest first, filtered by who acted and what they did."""
    page = int_arg("page", 1)
    per_page = 50
    actor = int_arg("actor", 0, 0) or None
    action = (request.args.get("action") or "").strip() or None
    query = services.audit_query(actor, action)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    entries = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    actors = db.session.execute(
        select(AuditEntry.actor_id, func.max(AuditEntry.actor_name))
        .where(AuditEntry.actor_id.is_not(None))
        .group_by(AuditEntry.actor_id)
        .order_by(func.max(AuditEntry.actor_name))
    ).all()
    actions = list(
        db.session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    )
    return render_template(
        "moderation/audit.html",
        entries=entries,
        actors=actors,
        actions=actions,
        actor=actor,
        action=action or "",
        pager=pages.pages(page, per_page, total),
    )


# ------------------------------------------------------------------------------- editors


def render_articles(args: Any = None, status: int = 200) -> Any:
    args = request.args if args is None else args
    page = int_arg("page", 1, args=args)
    rows, total = pages.articles_with_counts(page, 50)
    return render_template(
        "moderation/articles.html",
        rows=rows,
        pager=pages.pages(page, 50, total),
        site_days=current_app.config["AUTO_CLOSE_DAYS"],
        here=url_for("moderation_views.editor_articles", page=page if page > 1 else None),
    ), status


@bp.get("/editor/articles")
@page_role(Role.EDITOR)
def editor_articles():
    """Articles with their comment counts and state; close, reopen, automatic close."""
    return render_articles()


@bp.post("/editor/articles")
@page_role(Role.EDITOR)
def register_article():
    """Register a story for comments."""
    values = {
        "key": request.form.get("key", ""),
        "title": request.form.get("title", ""),
        "url": request.form.get("url", ""),
        "auto_close_days": request.form.get("auto_close_days", ""),
    }
    try:
        article = comment_services.create_article(
            values["key"],
            values["title"],
            values["url"],
            form_int("auto_close_days"),
            current_user._get_current_object(),
            via="page",
        )
        db.session.commit()
    except ParleyError as err:
        return render_articles(status=refuse("register", values, err))
    flash(f"Registered \u201c{article.title}\u201d; its thread is open.", "success")
    return redirect(url_for("moderation_views.editor_articles"))


@bp.post("/editor/articles/<key>/<any(close, reopen):change>")
@page_role(Role.EDITOR)
def open_or_close(key: str, change: str):
    """Close an article's comments, or reopen them."""
    article = comment_services.get_article(key)
    services.set_thread_open(current_user, article, change == "reopen")
    db.session.commit()
    done = "reopened" if change == "reopen" else "closed"
    flash(f"Comments {done} on \u201c{article.title}\u201d.", "success")
    return _back(url_for("moderation_views.editor_articles"))


@bp.post("/editor/articles/<key>/auto-close")
@page_role(Role.EDITOR)
def auto_close(key: str):
    """Set how many days after registration the thread closes by itself (blank: site default)."""
    article = comment_services.get_article(key)
    values = {"auto_close_days": request.form.get("auto_close_days", "")}
    try:
        services.update_article(
            current_user, article, {"auto_close_days": form_int("auto_close_days")}
        )
        db.session.commit()
    except ParleyError as err:
        return render_articles(status=refuse(f"auto-close-{key}", values, err))
    flash(f"Automatic close saved for \u201c{article.title}\u201d.", "success")
    return _back(url_for("moderation_views.editor_articles"))


def _all_rules() -> list[HouseRule]:
    return list(
        db.session.scalars(
            select(HouseRule).order_by(HouseRule.is_active.desc(), HouseRule.position)
        )
    )


def render_rules_editor(args: Any = None, status: int = 200) -> Any:
    from .scoring import known_signals

    return render_template(
        "moderation/rules_editor.html", rules=_all_rules(), signals=known_signals()
    ), status


@bp.get("/editor/rules")
@page_role(Role.EDITOR)
def editor_rules():
    """The house rules editor: add, edit, retire and restore rules."""
    return render_rules_editor()


def _rule_form() -> dict[str, Any]:
    """The rule form as typed, so a refused one can be shown again."""
    return {
        "code": request.form.get("code", ""),
        "title": _text("title", 200),
        "text": _text("text", 5000),
        "position": request.form.get("position", ""),
        "signals": request.form.getlist("signals"),
    }


def _rule_data(values: dict[str, Any]) -> dict[str, Any]:
    """The service's data for a rule form (the service checks it)."""
    return {
        "title": values["title"],
        "text": values["text"],
        "signals": values["signals"],
        "position": form_int("position"),
    }


@bp.post("/editor/rules")
@page_role(Role.EDITOR)
def create_rule():
    """Add a house rule."""
    values = _rule_form()
    try:
        rule = services.create_rule(current_user, {**_rule_data(values), "code": values["code"]})
        db.session.commit()
    except ParleyError as err:
        return render_rules_editor(status=refuse("new-rule", values, err))
    flash(f"Rule \u201c{rule.title}\u201d added.", "success")
    return redirect(url_for("moderation_views.editor_rules"))


@bp.post("/editor/rules/<code>")
@page_role(Role.EDITOR)
def edit_rule(code: str):
    """Edit a house rule's title, text, position and signals."""
    rule = db.session.scalar(select(HouseRule).where(HouseRule.code == code))
    if rule is None:
        raise not_found("house rule")
    values = _rule_form()
    try:
        services.edit_rule(current_user, rule, _rule_data(values))
        db.session.commit()
    except ParleyError as err:
        return render_rules_editor(status=refuse(f"rule-{code}", values, err))
    flash(f"Rule \u201c{rule.title}\u201d saved.", "success")
    return redirect(url_for("moderation_views.editor_rules") + f"#rule-{code}")


@bp.post("/editor/rules/<code>/<any(retire, restore):change>")
@page_role(Role.EDITOR)
def retire_rule(code: str, change: str):
    """Retire a rule (it stays attached to past decisions) or bring it back."""
    rule = db.session.scalar(select(HouseRule).where(HouseRule.code == code))
    if rule is None:
        raise not_found("house rule")
    services.edit_rule(current_user, rule, {"active": change == "restore"})
    db.session.commit()
    flash(
        f"Rule \u201c{rule.title}\u201d {'retired' if change == 'retire' else 'restored'}.",
        "success",
    )
    return redirect(url_for("moderation_views.editor_rules"))


_RENDERERS: dict[str, Any] = {
    "views.thread": lambda key, args, status: _render_thread(key, args, status, "thread.html"),
    "views.demo": lambda key, args, status: _render_thread(key, args, status, "demo.html"),
    "moderation_views.queue_page": render_queue,
    "moderation_views.user_page": render_user,
    "moderation_views.my_notices": render_notices,
    "moderation_views.editor_articles": render_articles,
}
