"""Operations that enforce the house rules: report, decide, sanction, close a thread, appeal.

Each one checks its rules, changes the data, writes the audit log and flushes; the caller
commits once. The acting user is always passed in.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from flask import current_app, g
from sqlalchemy import (
    JSON,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm.attributes import set_committed_value

from comments import services as comment_services
from comments.audit import AuditEntry, entry_values, record
from comments.errors import ParleyError, not_found
from comments.extensions import db
from comments.models import (
    Article,
    Comment,
    CommentStatus,
    Role,
    User,
    isoformat,
    public_user,
    utcnow,
)
from comments.sanitize import to_plain_text
from comments.services import among_ids

from . import policy
from .models import (
    APPEALABLE,
    Action,
    Appeal,
    AppealStatus,
    Decision,
    HouseRule,
    Notice,
    Report,
    ReportOutcome,
    Sanction,
    SanctionKind,
    decision_json,
    report_json,
)

APPEAL_WINDOW = timedelta(days=14)

# ------------------------------------------------------------------------------- rules


def active_rules() -> list[HouseRule]:
    return list(
        db.session.scalars(
            select(HouseRule).where(HouseRule.is_active.is_(True)).order_by(HouseRule.position)
        )
    )


def get_rule(code: str | None, *, required: bool = True, active: bool = True) -> HouseRule | None:
    """The rule with this code; refuses an unknown (or, for new acts, retired) rule."""
    if code is None:
        if required:
            raise ParleyError("rule_required", "Cite the house rule.", 422, {"rule": "required"})
        return None
    rule = db.session.scalar(select(HouseRule).where(HouseRule.code == code))
    if rule is None or (active and not rule.is_active):
        raise ParleyError(
            "unknown_rule", f"There is no house rule {code!r}.", 422, {"rule": "unknown rule"}
        )
    return rule


def linked_signals() -> list[str]:
    """Every classifier signal linked to an active rule.

    Asked on every post, so each worker keeps the answer for RULES_CACHE_SECONDS; a rule
    edit on another worker takes effect here within that time (immediately on this one).
    """
    cached = current_app.extensions.get("parley.linked_signals")
    now = time.monotonic()
    if cached is not None and now - cached[0] < current_app.config["RULES_CACHE_SECONDS"]:
        return cached[1]
    seen: list[str] = []
    for rule in active_rules():
        for signal in rule.signals or []:
            if signal not in seen:
                seen.append(signal)
    current_app.extensions["parley.linked_signals"] = (now, seen)
    return seen


def _forget_linked_signals() -> None:
    current_app.extensions.pop("parley.linked_signals", None)


def _check_rule_text(data: dict[str, Any], *, creating: bool) -> None:
    """A rule needs a title and a text; an edit may leave them out but not blank them."""
    problems = {
        name: "required"
        for name in ("title", "text")
        if (creating or data.get(name) is not None) and not (data.get(name) or "").strip()
    }
    if problems:
        raise ParleyError("validation_failed", "Give the rule a title and a text.", 422, problems)


def create_rule(editor: User, data: dict[str, Any]) -> HouseRule:
    _check_rule_text(data, creating=True)
    code = data["code"].strip().lower()
    if not code or not all(ch.isalnum() or ch in "-_" for ch in code):
        raise ParleyError(
            "validation_failed",
            "A code is letters, digits, - and _.",
            422,
            {"code": "letters, digits, - and _"},
        )
    if db.session.scalar(select(HouseRule.id).where(HouseRule.code == code)) is not None:
        raise ParleyError("rule_exists", f"A rule {code!r} exists.", 409)
    position = data.get("position")
    if position is None:
        position = (db.session.scalar(select(func.max(HouseRule.position))) or 0) + 10
    rule = HouseRule(
        code=code,
        title=data["title"].strip(),
        text=data["text"].strip(),
        position=position,
        signals=_check_signals(data.get("signals") or []),
        is_active=True,
        updated_at=utcnow(),
    )
    db.session.add(rule)
    db.session.flush()
    _forget_linked_signals()
    record(editor, "rule.create", "rule", code, rule.to_json())
    return rule


def _check_signals(signals: list[Any]) -> list[str]:
    from .scoring import known_signals

    known = known_signals()
    bad = [s for s in signals if not isinstance(s, str) or s not in known]
    if bad:
        raise ParleyError(
            "validation_failed",
            "Unknown classifier signal.",
            422,
            {"signals": "one of " + ", ".join(known)},
        )
    return list(dict.fromkeys(signals))


def edit_rule(editor: User, rule: HouseRule, data: dict[str, Any]) -> HouseRule:
    _check_rule_text(data, creating=False)
    before = rule.to_json()
    if data.get("title") is not None:
        rule.title = data["title"].strip()
    if data.get("text") is not None:
        rule.text = data["text"].strip()
    if data.get("position") is not None:
        rule.position = data["position"]
    if data.get("signals") is not None:
        rule.signals = _check_signals(data["signals"])
    if data.get("active") is not None:
        rule.is_active = data["active"]
    rule.updated_at = utcnow()
    db.session.flush()
    _forget_linked_signals()
    after = rule.to_json()
    action = "rule.retire" if before["active"] and not after["active"] else "rule.edit"
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    record(editor, action, "rule", rule.code, changed)
    return rule


# ------------------------------------------------------------------------------ sanctions


# Built once (checked on every post): constructing a select costs more than running it.
_IN_FORCE = (
    Sanction.user_id == bindparam("user_id"),
    Sanction.kind != SanctionKind.WARNING,
    Sanction.lifted_at.is_(None),
    or_(Sanction.ends_at.is_(None), Sanction.ends_at > bindparam("now")),
)
_ACTIVE_SANCTION_IDS = select(Sanction.id).where(*_IN_FORCE)
_SANCTIONS_BY_ID = select(Sanction).where(Sanction.id.in_(bindparam("ids", expanding=True)))


def active_sanctions(user_id: int) -> list[Sanction]:
    """Sanctions in force now; expiry is checked here, when the user acts (no job needed)."""
    cache = g.setdefault("parley_active_sanctions", {})
    if user_id not in cache:
        # Nearly every poster has none: ask for ids first (a plain row query), and load
        # Sanction objects only for the few who do.
        ids = (
            db.session.connection()
            .scalars(_ACTIVE_SANCTION_IDS, {"user_id": user_id, "now": utcnow()})
            .all()
        )
        cache[user_id] = list(db.session.scalars(_SANCTIONS_BY_ID, {"ids": ids})) if ids else []
    return cache[user_id]


def _forget_sanctions(user_id: int | None) -> None:
    g.setdefault("parley_active_sanctions", {}).pop(user_id, None)


def _sanctions_on(user: User) -> list[Sanction]:
    """The user's sanctions in force; none, without a query, for an account that has never
    had a sanction (User.has_sanctions)."""
    return active_sanctions(user.id) if user.has_sanctions else []


def check_may_post(user: User) -> None:
    """Refuse a banned or suspended user with the reason and, for a suspension, its end."""
    for sanction in _sanctions_on(user):
        if sanction.kind == SanctionKind.BAN:
            raise ParleyError(
                "banned",
                f"You have been banned from commenting ({sanction.rule.title}): {sanction.reason}",
                403,
                extra={"sanction": sanction.to_json()},
            )
    for sanction in _sanctions_on(user):
        if sanction.kind == SanctionKind.SUSPENSION:
            raise ParleyError(
                "suspended",
                f"You are suspended from commenting until {isoformat(sanction.ends_at)} "
                f"({sanction.rule.title}): {sanction.reason}",
                403,
                extra={"sanction": sanction.to_json(), "until": isoformat(sanction.ends_at)},
            )


def is_premoderated(user: User) -> bool:
    return any(s.kind == SanctionKind.PREMODERATION for s in _sanctions_on(user))


def impose_sanction(
    moderator: User, user: User, kind: str, rule: HouseRule, reason: str, days: int | None
) -> tuple[Sanction, Decision]:
    """Warn, premoderate, suspend or ban a commenter; they are told why and may appeal."""
    kind_ = SanctionKind(kind)
    reason = reason.strip()
    if not reason:
        raise ParleyError("validation_failed", "Give a reason.", 422, {"reason": "required"})
    if days is not None and not 1 <= days <= 3650:
        raise ParleyError("validation_failed", "1 to 3650 days.", 422, {"days": "1 to 3650"})
    if user.id == moderator.id:
        raise ParleyError("own_account", "You can't sanction yourself.", 403)
    if user.has_role(Role.MODERATOR) and not moderator.has_role(Role.ADMIN):
        raise ParleyError("forbidden", "Only an admin can sanction staff.", 403)
    ends_at = None
    if kind_ == SanctionKind.SUSPENSION:
        if days is None:
            raise ParleyError(
                "validation_failed",
                "A suspension needs a number of days.",
                422,
                {"days": "required for a suspension"},
            )
        ends_at = utcnow() + timedelta(days=days)
    elif days is not None and kind_ == SanctionKind.PREMODERATION:
        ends_at = utcnow() + timedelta(days=days)
    sanction = Sanction(
        user_id=user.id,
        kind=kind_,
        rule_id=rule.id,
        reason=reason,
        moderator_id=moderator.id,
        created_at=utcnow(),
        ends_at=ends_at,
    )
    db.session.add(sanction)
    user.has_sanctions = True
    db.session.flush()
    decision = _decide(
        Action(kind_.value), moderator, rule, reason, subject=user, sanction=sanction
    )
    _forget_sanctions(user.id)
    if kind_ == SanctionKind.BAN:
        # A ban ends every session; the user may still sign in to read and appeal.
        from comments.auth import end_other_sessions

        end_other_sessions(user)
    record(
        moderator,
        f"user.{kind_.value}",
        "user",
        user.id,
        {"sanction_id": sanction.id, "ends_at": isoformat(ends_at), "decision_id": decision.id},
        rule_code=rule.code,
        reason=reason,
    )
    return sanction, decision


def lift_sanction(moderator: User, sanction: Sanction, note: str | None = None) -> Sanction:
    """End a sanction early; the user is told."""
    if sanction.lifted_at is not None or not sanction.is_active():
        raise ParleyError(
            "sanction_not_active",
            "This sanction is no longer in force.",
            409,
            extra={"sanction": sanction.to_json()},
        )
    result = db.session.execute(
        update(Sanction)
        .where(Sanction.id == sanction.id, Sanction.lifted_at.is_(None))
        .values(lifted_at=utcnow(), lifted_by_id=moderator.id)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(sanction)
    if result.rowcount != 1:
        raise ParleyError("sanction_not_active", "This sanction was just lifted.", 409)
    decision = _decide(
        Action.LIFT,
        moderator,
        sanction.rule,
        note,
        subject_id=sanction.user_id,
        sanction=sanction,
        notify=False,
    )
    _notify(
        sanction.user_id,
        "sanction_lifted",
        decision,
        f"Your {sanction.kind.value} has been lifted early." + (f" {note}" if note else ""),
    )
    _forget_sanctions(sanction.user_id)
    record(
        moderator,
        "sanction.lift",
        "sanction",
        sanction.id,
        {"user_id": sanction.user_id, "kind": sanction.kind.value},
        reason=note,
    )
    return sanction


# ------------------------------------------------------------------------------ decisions


def _notify(
    user_id: int | None,
    kind: str,
    decision: Decision | None,
    message: str,
    appeal: Appeal | None = None,
) -> None:
    if user_id is None:
        return
    db.session.add(
        Notice(
            user_id=user_id,
            kind=kind,
            decision_id=decision.id if decision else None,
            appeal_id=appeal.id if appeal else None,
            message=message,
            created_at=utcnow(),
        )
    )


def _statement(decision: Decision) -> str:
    """A statement of reasons: what was decided, under which rule, by whom, how to appeal."""
    return _statement_of(decision.action, decision.rule, decision.is_automatic, decision.note)


def _statement_of(
    action: Action, rule: HouseRule | None, is_automatic: bool, note: str | None
) -> str:
    what = {
        Action.WITHDRAW: "Your comment was withdrawn",
        Action.WARNING: "You have been warned",
        Action.PREMODERATION: "Your comments will be reviewed before they are published",
        Action.SUSPENSION: "You have been suspended from commenting",
        Action.BAN: "You have been banned from commenting",
    }.get(action, f"A moderator decided: {action.value}")
    parts = [what]
    if rule is not None:
        parts.append(f"under the house rule \u201c{rule.title}\u201d")
    text = " ".join(parts) + "."
    text += " This was an automatic decision." if is_automatic else " A moderator decided this."
    if note:
        text += f" Moderator's note: {note}"
    text += f" You can appeal once within {APPEAL_WINDOW.days} days."
    return text


_INSERT_DECISION = insert(Decision.__table__)


def _decide(
    action: Action,
    moderator: User | None,
    rule: HouseRule | None,
    note: str | None,
    *,
    comment: Comment | None = None,
    subject: User | None = None,
    subject_id: int | None = None,
    sanction: Sanction | None = None,
    notify: bool = True,
) -> Decision:
    """Write a decision: one Core INSERT, and the row joins the session as a new comment's
    does (comment_services.adopt_inserted)."""
    session = db.session
    session.flush()  # the sanction or anything else it refers to exists first
    values = _decision_values(action, moderator, rule, note, comment, subject, subject_id, sanction)
    result = session.connection().execute(_INSERT_DECISION, values)
    decision = _adopt_decision(values, result.inserted_primary_key[0], rule, moderator)
    if notify and action in APPEALABLE:
        _notify(decision.subject_user_id, "decision", decision, _statement(decision))
    return decision


def _adopt_decision(
    values: dict[str, Any], decision_id: int, rule: HouseRule | None, moderator: User | None
) -> Decision:
    """The decision just inserted, in the session, with its rule and moderator as loaded
    (so that answering with it reads neither again)."""
    decision = comment_services.adopt_inserted(Decision, values, decision_id)
    set_committed_value(decision, "rule", rule)
    set_committed_value(decision, "moderator", moderator)
    return decision


def _decision_values(
    action: Action,
    moderator: User | None,
    rule: HouseRule | None,
    note: str | None,
    comment: Comment | None = None,
    subject: User | None = None,
    subject_id: int | None = None,
    sanction: Sanction | None = None,
) -> dict[str, Any]:
    """A decision's columns but its id."""
    return {
        "action": action,
        "comment_id": comment.id if comment else None,
        "subject_user_id": subject.id
        if subject
        else (subject_id if subject_id else (comment.author_id if comment else None)),
        "moderator_id": moderator.id if moderator else None,
        "rule_id": rule.id if rule else None,
        "sanction_id": sanction.id if sanction else None,
        "note": note,
        "is_automatic": moderator is None,
        "reversed_at": None,
        "created_at": utcnow(),
    }


# Which states each decision applies to.
_FROM = {
    Action.APPROVE: (CommentStatus.PENDING, CommentStatus.PUBLISHED),
    Action.WITHDRAW: (CommentStatus.PENDING, CommentStatus.PUBLISHED),
    Action.REINSTATE: (CommentStatus.WITHDRAWN,),
}


def _conflict(comment: Comment, message: str) -> ParleyError:
    db.session.refresh(comment)
    return ParleyError(
        "conflict",
        message,
        409,
        extra={
            "current": {
                "comment_id": comment.id,
                "status": comment.status.value,
                "open_reports": open_report_count(comment.id),
            }
        },
    )


def _open_reports_of(comment_id: Any) -> Any:
    """The count of a comment's open reports, for a comment id or a correlated column.
    count(*): the (outcome, comment_id) index answers it alone, without the table's rows."""
    return select(func.count()).select_from(Report).where(
        Report.comment_id == comment_id, Report.outcome == ReportOutcome.OPEN
    )


def open_report_count(comment_id: int) -> int:
    return db.session.scalar(_open_reports_of(comment_id)) or 0


_REPORTS = Report.__table__
# Close a comment's open reports with the moderator's outcome (Core: no Report is loaded).
_RESOLVE_REPORTS = (
    update(_REPORTS)
    .where(
        _REPORTS.c.comment_id == bindparam("of_comment"),
        _REPORTS.c.outcome == ReportOutcome.OPEN,
    )
    .values(outcome=bindparam("new_outcome"), resolved_at=bindparam("at"))
)


def decide_comment(
    moderator: User,
    comment: Comment,
    action: str,
    rule_code: str | None,
    note: str | None,
    version: int | None = None,
    commit: bool = False,
) -> Decision:
    """Approve, withdraw or reinstate a comment; the second of two racing moderators gets 409.

    ``version`` is the comment's version the moderator saw in the queue: if the comment
    changed since (another moderator decided, the author edited), the decision is refused
    with the current state rather than applied to something they didn't see.
    ``commit``: commit it too (the request's only write); otherwise the caller commits.
    """
    if version is not None and version != comment.version:
        raise _conflict(
            comment, "This comment changed since you loaded it; here is its current state."
        )
    act = Action(action)
    rule = get_rule(rule_code, required=act == Action.WITHDRAW, active=False)
    if comment.status not in _FROM[act]:
        raise _conflict(
            comment,
            f"This comment is {comment.status.value}; it can't be "
            f"{'approved' if act == Action.APPROVE else act.value + 'n'}.",
        )
    if (
        act == Action.APPROVE
        and comment.status == CommentStatus.PUBLISHED
        and open_report_count(comment.id) == 0
    ):
        raise _conflict(comment, "This comment is already published and has no open reports.")
    new_status = CommentStatus.WITHDRAWN if act == Action.WITHDRAW else CommentStatus.PUBLISHED
    outcome = (
        None
        if act == Action.REINSTATE
        else (ReportOutcome.UPHELD if act == Action.WITHDRAW else ReportOutcome.REJECTED)
    )
    audit = (moderator, f"comment.{act.value}", "comment", comment.id)
    details = {"article": comment.article.key, "author_id": comment.author_id}
    rule_code = rule.code if rule else None
    if db.session.connection().dialect.name == "postgresql":
        values = _decision_values(act, moderator, rule, note, comment)
        entry = entry_values(*audit, details, rule_code, note)
        decision = _decide_at_once(
            moderator, comment, act, rule, new_status, outcome, values, entry, commit
        )
    else:
        if not comment_services.transition(
            comment, _FROM[act], status=new_status, held_reason=None
        ):
            raise _conflict(comment, "Another moderator has just decided this comment.")
        decision = _decide(act, moderator, rule, note, comment=comment)
        if outcome is not None:
            db.session.connection().execute(
                _RESOLVE_REPORTS, {"of_comment": comment.id, "new_outcome": outcome, "at": utcnow()}
            )
        record(*audit, {"decision_id": decision.id, **details}, rule_code=rule_code, reason=note)
    if commit:
        db.session.commit()
    return decision


_NOTICES, _AUDIT = Notice.__table__, AuditEntry.__table__
_DECISION_COLUMNS = tuple(col.name for col in Decision.__table__.c if col.name != "id")
_ENTRY_COLUMNS = tuple(col.name for col in _AUDIT.c if col.name not in ("id", "details"))
_NOTICE_COLUMNS = ("user_id", "kind", "message", "created_at")
_AT_ONCE: dict[tuple[Any, ...], Any] = {}


def _decision_at_once(
    from_statuses: tuple[CommentStatus, ...], resolve_reports: bool, notify: bool, alone: bool
) -> Any:
    """A comment decision as one statement, for PostgreSQL (which runs every data-modifying
    WITH): the conditional UPDATE of the comment, and only if it matched, the decision, the
    reports it resolves, the author's notice, the audit entry and, when the statement is its
    own transaction, the thread's version bump. One round trip instead of six to eight; a
    decision is the same rows as decide_comment writes on SQLite, one statement at a time.

    Parameters are prefixed (t_, d_, r_, n_, a_, b_): an UPDATE also SETs any column named
    like one of the statement's parameters."""
    key = (from_statuses, resolve_reports, notify, alone)
    statement = _AT_ONCE.get(key)
    if statement is not None:
        return statement
    c, r = _COMMENTS.c, _REPORTS.c
    changed = (
        update(_COMMENTS)
        .where(
            c.id == bindparam("t_id"),
            c.version == bindparam("t_version"),
            or_(*(c.status == status for status in from_statuses)),
        )
        .values(
            status=bindparam("t_status", type_=c.status.type),
            held_reason=None,
            version=c.version + 1,
        )
        .returning(c.id)
        .cte("changed")
    )
    decided = (
        insert(_DECISIONS)
        .from_select(
            _DECISION_COLUMNS,
            select(
                *(bindparam(f"d_{n}", type_=_DECISIONS.c[n].type) for n in _DECISION_COLUMNS)
            ).select_from(changed),
        )
        .returning(_DECISIONS.c.id)
        .cte("decided")
    )
    # The entry's details as record() would write them, with the new decision's id.
    details = cast(
        func.jsonb_build_object("decision_id", decided.c.id).op("||")(
            bindparam("a_details", type_=JSONB)
        ),
        JSON,
    )
    ctes = [
        changed,
        insert(_AUDIT)
        .from_select(
            (*_ENTRY_COLUMNS, "details"),
            select(
                *(bindparam(f"a_{n}", type_=_AUDIT.c[n].type) for n in _ENTRY_COLUMNS), details
            ).select_from(decided),
        )
        .cte("entered"),
    ]
    if resolve_reports:
        ctes.append(
            update(_REPORTS)
            .where(r.comment_id.in_(select(changed.c.id)), r.outcome == ReportOutcome.OPEN)
            .values(
                outcome=bindparam("r_outcome", type_=r.outcome.type),
                resolved_at=bindparam("r_at", type_=r.resolved_at.type),
            )
            .cte("resolved")
        )
    if notify:
        ctes.append(
            insert(_NOTICES)
            .from_select(
                (*_NOTICE_COLUMNS, "decision_id"),
                select(
                    *(bindparam(f"n_{n}", type_=_NOTICES.c[n].type) for n in _NOTICE_COLUMNS),
                    decided.c.id,
                ).select_from(decided),
            )
            .cte("noticed")
        )
    if alone:
        ctes.append(
            update(_ARTICLES)
            .where(_ARTICLES.c.id == bindparam("b_article_id"), select(changed.c.id).exists())
            .values(
                version=_ARTICLES.c.version + 1,
                published_count=_ARTICLES.c.published_count + bindparam("b_published"),
                published_top_level_count=_ARTICLES.c.published_top_level_count
                + bindparam("b_top_level"),
            )
            .cte("bumped")
        )
    statement = select(decided.c.id).add_cte(*ctes)
    if alone:
        # Its own transaction when nothing was written before it (comments/__init__.py).
        statement = statement.execution_options(parley_own_transaction=True)
    _AT_ONCE[key] = statement
    return statement


def _decide_at_once(
    moderator: User,
    comment: Comment,
    act: Action,
    rule: HouseRule | None,
    new_status: CommentStatus,
    outcome: ReportOutcome | None,
    values: dict[str, Any],
    entry: dict[str, Any],
    alone: bool,
) -> Decision:
    """decide_comment's writes on PostgreSQL, in one statement (_decision_at_once)."""
    db.session.flush()  # as transition() does: what the session holds is written first
    notify = act in APPEALABLE and comment.author_id is not None
    params: dict[str, Any] = {
        "t_id": comment.id,
        "t_version": comment.version,
        "t_status": new_status,
        **{f"d_{n}": values[n] for n in _DECISION_COLUMNS},
        **{f"a_{n}": v for n, v in entry.items()},
    }
    if outcome is not None:
        params.update(r_outcome=outcome, r_at=utcnow())
    if notify:
        message = _statement_of(act, rule, values["is_automatic"], values["note"])
        params.update(
            n_user_id=comment.author_id, n_kind="decision", n_message=message, n_created_at=utcnow()
        )
    # The UPDATE matches the loaded version only, so the loaded status is what it replaces.
    change = comment_services.counter_change(comment.status, new_status, comment.parent_id is None)
    if alone:
        params.update(b_article_id=comment.article_id, b_published=change[0], b_top_level=change[1])
    statement = _decision_at_once(_FROM[act], outcome is not None, notify, alone)
    decision_id = db.session.connection().execute(statement, params).scalar()
    if decision_id is None:
        db.session.expire(comment)
        raise _conflict(comment, "Another moderator has just decided this comment.")
    comment_services.took_transition(comment, {"status": new_status, "held_reason": None})
    if not alone:
        comment_services.bump_article_at_commit(comment.article_id, change)
    return _adopt_decision(values, decision_id, rule, moderator)


# -------------------------------------------------------------------------------- reports


def report_comment(
    reporter: User, comment: Comment, rule_code: str, note: str | None
) -> tuple[Report, bool]:
    """Report a comment under a rule. Returns (report, created); a repeat returns the first."""
    if comment.status in (CommentStatus.WITHDRAWN, CommentStatus.DELETED):
        raise ParleyError(
            "comment_unavailable",
            f"This comment has been {comment.status.value}; it can't be reported.",
            409,
        )
    if (
        comment.status == CommentStatus.PENDING
        and comment.author_id != reporter.id
        and comment.held_reason != "reports"
    ):
        raise not_found("comment")
    if comment.author_id == reporter.id:
        raise ParleyError("own_comment", "You can't report your own comment.", 403)
    existing = db.session.scalar(
        select(Report).where(Report.comment_id == comment.id, Report.reporter_id == reporter.id)
    )
    if existing is not None:
        return existing, False
    rule = get_rule(rule_code)
    if note is not None:
        note = note.strip() or None
    report = Report(
        comment_id=comment.id,
        reporter_id=reporter.id,
        rule_id=rule.id,
        note=note,
        created_at=utcnow(),
    )
    db.session.add(report)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except Exception:  # the same reader reporting twice at once: the unique key wins
        existing = db.session.scalar(
            select(Report).where(Report.comment_id == comment.id, Report.reporter_id == reporter.id)
        )
        if existing is None:
            raise
        return existing, False
    reporters = (
        db.session.scalar(
            select(func.count(func.distinct(Report.reporter_id))).where(
                Report.comment_id == comment.id, Report.outcome == ReportOutcome.OPEN
            )
        )
        or 0
    )
    threshold = current_app.config["REPORTS_TO_HIDE"]
    if (
        comment.status == CommentStatus.PUBLISHED
        and policy.report_threshold_reached(reporters, threshold)
        and comment_services.transition(
            comment, (CommentStatus.PUBLISHED,), status=CommentStatus.PENDING, held_reason="reports"
        )
    ):
        decision = _decide(
            Action.HIDE,
            None,
            rule,
            f"{reporters} readers reported it",
            comment=comment,
            notify=False,
        )
        record(
            None,
            "comment.hide",
            "comment",
            comment.id,
            {"decision_id": decision.id, "reports": reporters},
            rule_code=rule.code,
        )
    return report, True


def page_of(query: Any, page: int, per_page: int, *order: Any) -> tuple[list[Any], int]:
    """One page of ``query`` in ``order``, and how many rows it has in all."""
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if order:
        query = query.order_by(*order)
    rows = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return rows, total


def my_reports(user: User, page: int, per_page: int) -> dict[str, Any]:
    reports, total = page_of(
        select(Report).where(Report.reporter_id == user.id),
        page, per_page, Report.created_at.desc(), Report.id.desc(),
    )  # fmt: skip
    return {
        "reports": [r.to_json() for r in reports],
        "page": page,
        "per_page": per_page,
        "total": total,
    }


# ------------------------------------------------------------------------- closing threads


def set_thread_open(editor: User, article: Article, is_open: bool) -> Article:
    article.is_open = is_open
    article.closed_at = None if is_open else utcnow()
    if is_open and not comment_services.accepts_comments(article):
        # Reopening a thread past its automatic close: the editor's word wins.
        article.auto_close_days = 0
    comment_services.bump_article(article.id)
    db.session.flush()
    db.session.refresh(article)
    record(editor, "article.reopen" if is_open else "article.close", "article", article.key)
    return article


def update_article(editor: User, article: Article, data: dict[str, Any]) -> Article:
    changed: dict[str, Any] = {}
    for name in ("title", "url", "auto_close_days"):
        if name in data and data[name] != getattr(article, name):
            changed[name] = {"from": getattr(article, name), "to": data[name]}
            setattr(article, name, data[name])
    if (
        "auto_close_days" in data
        and data["auto_close_days"] is not None
        and not 0 <= data["auto_close_days"] <= 3650
    ):
        raise ParleyError(
            "validation_failed", "0 to 3650 days.", 422, {"auto_close_days": "0 to 3650"}
        )
    comment_services.bump_article(article.id)
    db.session.flush()
    db.session.refresh(article)
    record(editor, "article.edit", "article", article.key, changed)
    return article


# -------------------------------------------------------------------------------- appeals


def appeal(user: User, decision: Decision, statement: str) -> Appeal:
    """The affected user appeals a decision once, within the window."""
    if decision.subject_user_id != user.id:
        raise ParleyError("not_affected", "Only the person a decision affects can appeal it.", 403)
    if decision.action not in APPEALABLE:
        raise ParleyError("not_appealable", "This decision can't be appealed.", 409)
    if db.session.scalar(select(Appeal.id).where(Appeal.decision_id == decision.id)):
        raise ParleyError("already_appealed", "You have already appealed this decision.", 409)
    if utcnow() - decision.created_at > APPEAL_WINDOW:
        raise ParleyError(
            "appeal_window_closed", f"Appeals must be made within {APPEAL_WINDOW.days} days.", 403
        )
    statement = statement.strip()
    if not statement:
        raise ParleyError(
            "validation_failed", "Say why the decision was wrong.", 422, {"statement": "required"}
        )
    item = Appeal(
        decision_id=decision.id, appellant_id=user.id, statement=statement, created_at=utcnow()
    )
    db.session.add(item)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except Exception:
        raise ParleyError(
            "already_appealed", "You have already appealed this decision.", 409
        ) from None
    record(user, "appeal.create", "decision", decision.id, {"appeal_id": item.id})
    return item


def decide_appeal(moderator: User, item: Appeal, action: str, note: str | None) -> Appeal:
    """Uphold or reverse; decided by someone other than the original moderator (or an admin)."""
    decision = item.decision
    if decision.moderator_id == moderator.id and not moderator.has_role(Role.ADMIN):
        raise ParleyError(
            "same_moderator",
            "An appeal is decided by a moderator other than the one who made the decision.",
            403,
        )
    status = AppealStatus.UPHELD if action == "uphold" else AppealStatus.REVERSED
    result = db.session.execute(
        update(Appeal)
        .where(Appeal.id == item.id, Appeal.status == AppealStatus.OPEN)
        .values(status=status, decided_at=utcnow(), decided_by_id=moderator.id, outcome_note=note)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(item)
    if result.rowcount != 1:
        raise ParleyError(
            "conflict",
            "This appeal has already been decided.",
            409,
            extra={"current": {"appeal_id": item.id, "status": item.status.value}},
        )
    if status == AppealStatus.REVERSED:
        _reverse(moderator, decision)
    message = (
        "Your appeal was upheld: the decision stands."
        if status == AppealStatus.UPHELD
        else "Your appeal succeeded: the decision has been reversed."
    )
    if note:
        message += f" Moderator's note: {note}"
    _notify(item.appellant_id, "appeal_outcome", decision, message, appeal=item)
    record(
        moderator,
        f"appeal.{status.value}",
        "appeal",
        item.id,
        {"decision_id": decision.id},
        reason=note,
    )
    return item


def _reverse(moderator: User, decision: Decision) -> None:
    decision.reversed_at = utcnow()
    if decision.action == Action.WITHDRAW and decision.comment_id is not None:
        comment = db.session.get(Comment, decision.comment_id)
        if comment is not None and comment.status == CommentStatus.WITHDRAWN:
            comment_services.transition(
                comment, (CommentStatus.WITHDRAWN,), status=CommentStatus.PUBLISHED
            )
            record(
                moderator,
                "comment.reinstate",
                "comment",
                comment.id,
                {"decision_id": decision.id, "via": "appeal"},
            )
    elif decision.sanction_id is not None:
        sanction = db.session.get(Sanction, decision.sanction_id)
        if sanction is not None and sanction.lifted_at is None:
            sanction.lifted_at = utcnow()
            sanction.lifted_by_id = moderator.id
            _forget_sanctions(sanction.user_id)
            record(
                moderator,
                "sanction.lift",
                "sanction",
                sanction.id,
                {"decision_id": decision.id, "via": "appeal"},
            )
    db.session.flush()


# -------------------------------------------------------------------------------- notices


def notices(user: User, page: int, per_page: int) -> dict[str, Any]:
    items, total = page_of(
        select(Notice).where(Notice.user_id == user.id),
        page, per_page, Notice.created_at.desc(), Notice.id.desc(),
    )  # fmt: skip
    appealed = (
        {
            a.decision_id: a
            for a in db.session.scalars(
                select(Appeal).where(
                    Appeal.decision_id.in_([n.decision_id for n in items if n.decision_id])
                )
            )
        }
        if items
        else {}
    )
    out = []
    now = utcnow()
    for notice in items:
        d = notice.decision
        entry: dict[str, Any] = {
            "id": notice.id,
            "kind": notice.kind,
            "message": notice.message,
            "created_at": isoformat(notice.created_at),
            "decision": d.to_json() if d else None,
        }
        if d is not None and notice.kind == "decision":
            existing = appealed.get(d.id)
            entry["appeal"] = existing.to_json() if existing else None
            open_window = now - d.created_at <= APPEAL_WINDOW
            entry["can_appeal"] = existing is None and open_window and d.reversed_at is None
            entry["appeal_url"] = f"/api/v1/decisions/{d.id}/appeal"
            entry["appeal_by"] = isoformat(d.created_at + APPEAL_WINDOW)
            if d.comment_id is not None:
                comment = db.session.get(Comment, d.comment_id)
                if comment is not None:
                    entry["comment"] = {
                        "id": comment.id,
                        "status": comment.status.value,
                        "excerpt": to_plain_text(comment.body_html)[:200],
                        "article_key": comment.article.key,
                    }
        out.append(entry)
    return {"notices": out, "page": page, "per_page": per_page, "total": total}


def my_comments(user: User, page: int, per_page: int) -> dict[str, Any]:
    items, total = page_of(
        select(Comment).where(Comment.author_id == user.id),
        page, per_page, Comment.created_at.desc(), Comment.id.desc(),
    )  # fmt: skip
    return {
        "comments": [comment_services.comment_json(c, user) for c in items],
        "page": page,
        "per_page": per_page,
        "total": total,
    }


# ---------------------------------------------------------------------------------- audit


def audit_query(
    actor: int | None,
    action: str | None,
    target_type: str | None = None,
    target_id: str | None = None,
) -> Any:
    query = select(AuditEntry)
    if actor is not None:
        query = query.where(AuditEntry.actor_id == actor)
    if action:
        # "comment" matches every comment.* action; "comment.withdraw" only itself
        query = query.where(
            or_(AuditEntry.action == action, AuditEntry.action.startswith(action + "."))
        )
    if target_type:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id:
        query = query.where(AuditEntry.target_id == target_id)
    return query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


def author_record(user_id: int | None) -> dict[str, Any]:
    """A commenter's record for the moderator: counts, recent decisions, sanctions, and the
    ladder's suggested next step."""
    return author_records([user_id])[user_id]


# Built once with expanding bind parameters: a queue page asks for these on every load, and
# building the selects cost more than running them. They read Core rows, not ORM objects: a
# queue page only reads, and loading some 60 objects a page cost more than its queries.
_COMMENTS, _ARTICLES, _USERS, _RULES, _DECISIONS = (
    model.__table__ for model in (Comment, Article, User, HouseRule, Decision)
)


def _columns(table: Any, names: str) -> tuple[Any, ...]:
    return tuple(table.c[name] for name in names.split())


# An author as a record needs them; a queue page's rows carry these same labels.
_AUTHOR_COLUMNS = (
    _USERS.c.display_name.label("author_name"),
    _USERS.c.created_at.label("author_joined"),
    _USERS.c.has_sanctions.label("author_has_sanctions"),
)
_USERS_BY_ID = select(_USERS.c.id.label("author_id"), *_AUTHOR_COLUMNS).where(
    among_ids(_USERS.c.id)
)
# count(*), not count(id): on PostgreSQL the (author, created, status) index then answers
# alone (an index-only scan); id is in SQLite's index rows but not PostgreSQL's.
_COMMENT_COUNTS = (
    select(_COMMENTS.c.author_id, _COMMENTS.c.status, func.count())
    .where(among_ids(_COMMENTS.c.author_id))
    .group_by(_COMMENTS.c.author_id, _COMMENTS.c.status)
)
# Each author's ten most recent decisions, ranked over these authors' decisions only
# (joining a ranking of the whole table back to it read every decision), and on every row
# the author's withdrawals still standing in the ladder's window, counted in the same pass.
_RANKED = (
    select(
        _DECISIONS,
        func.row_number()
        .over(partition_by=_DECISIONS.c.subject_user_id, order_by=_DECISIONS.c.created_at.desc())
        .label("rank"),
        func.sum(
            case(
                (
                    and_(
                        _DECISIONS.c.action == Action.WITHDRAW,
                        _DECISIONS.c.reversed_at.is_(None),
                        _DECISIONS.c.created_at >= bindparam("since"),
                    ),
                    1,
                ),
                else_=0,
            )
        )
        .over(partition_by=_DECISIONS.c.subject_user_id)
        .label("withdrawals"),
    )
    .where(among_ids(_DECISIONS.c.subject_user_id))
    .subquery()
)
# The cited rule, as report_json() and decision_json() take it.
_RULE_COLUMNS = (_RULES.c.code.label("rule_code"), _RULES.c.title.label("rule_title"))
_RECENT_DECISIONS = (
    select(_RANKED, _USERS.c.display_name.label("moderator_name"), *_RULE_COLUMNS)
    .select_from(
        _RANKED.outerjoin(_USERS, _USERS.c.id == _RANKED.c.moderator_id).outerjoin(
            _RULES, _RULES.c.id == _RANKED.c.rule_id
        )
    )
    .where(_RANKED.c.rank <= 10)
    .order_by(_RANKED.c.created_at.desc(), _RANKED.c.id.desc())
)
_SANCTIONS_OF = (
    select(Sanction).where(among_ids(Sanction.user_id)).order_by(Sanction.created_at.desc())
)
_OPEN_REPORTS_OF = (
    select(
        *_columns(_REPORTS, "id comment_id note outcome created_at resolved_at"),
        *_RULE_COLUMNS,
        _USERS.c.id.label("reporter_id"),
        _USERS.c.display_name.label("reporter_name"),
    )
    .select_from(
        _REPORTS.join(_RULES, _RULES.c.id == _REPORTS.c.rule_id).outerjoin(
            _USERS, _USERS.c.id == _REPORTS.c.reporter_id
        )
    )
    .where(among_ids(_REPORTS.c.comment_id), _REPORTS.c.outcome == ReportOutcome.OPEN)
    .order_by(_REPORTS.c.created_at, _REPORTS.c.id)
)
# A comment with its article and author, as comment_services.comment_row_json() reads it.
_WITH_ARTICLE_AND_AUTHOR = _COMMENTS.join(
    _ARTICLES, _ARTICLES.c.id == _COMMENTS.c.article_id
).outerjoin(_USERS, _USERS.c.id == _COMMENTS.c.author_id)
_SHOWN_COLUMNS = (
    *_columns(_COMMENTS, "id author_id parent_id body_html status created_at edited_at"),
    _ARTICLES.c.key.label("article_key"),
)
_PARENTS = (
    select(*_SHOWN_COLUMNS, _USERS.c.display_name.label("author_name"))
    .select_from(_WITH_ARTICLE_AND_AUTHOR)
    .where(among_ids(_COMMENTS.c.id))
)
# What a queue item shows: the comment, its article, its author (for the author's record).
_ITEM_COLUMNS = (
    *_SHOWN_COLUMNS,
    *_columns(_COMMENTS, "body held_reason scores score model_version explanation version"),
    _ARTICLES.c.title.label("article_title"),
    _ARTICLES.c.url.label("article_url"),
    *_AUTHOR_COLUMNS,
)


def author_records(
    user_ids: list[int | None], known: dict[int, Any] | None = None
) -> dict[int | None, dict[str, Any]]:
    """Records for several authors with one query per kind of fact, not one per author.
    ``known``: authors already read, as rows labelled like _USERS_BY_ID's (a queue page's
    rows carry their authors)."""
    ids = sorted({u for u in user_ids if u is not None})
    out: dict[int | None, dict[str, Any]] = {None: {"user": None}} if None in user_ids else {}
    if not ids:
        return out
    users = {i: known[i] for i in ids if known and i in known}
    missing = [i for i in ids if i not in users]
    if missing:
        users.update((u.author_id, u) for u in db.session.execute(_USERS_BY_ID, {"ids": missing}))
    counts: dict[int, dict[CommentStatus, int]] = {i: {} for i in ids}
    for author, status, n in db.session.execute(_COMMENT_COUNTS, {"ids": ids}):
        counts[author][status] = n
    since = utcnow() - timedelta(days=current_app.config["LADDER_WINDOW_DAYS"])
    decisions: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    withdrawals: dict[int, int] = {}
    for d in db.session.execute(_RECENT_DECISIONS, {"ids": ids, "since": since}):
        moderator = public_user(d.moderator_id, d.moderator_name)
        decisions[d.subject_user_id].append(decision_json(d, moderator, d.rule_code, d.rule_title))
        withdrawals[d.subject_user_id] = int(d.withdrawals or 0)
    sanctions: dict[int, list[Sanction]] = {i: [] for i in ids}
    # Most pages' authors have never been sanctioned (User.has_sanctions): no query then.
    if any(u.author_has_sanctions for u in users.values()):
        for item in db.session.scalars(_SANCTIONS_OF, {"ids": ids}):
            sanctions[item.user_id].append(item)  # type: ignore[index]
    for uid in ids:
        user = users.get(uid)
        used = []
        for item in sanctions[uid]:
            if item.kind == SanctionKind.SUSPENSION and item.ends_at is not None:
                used.append(f"suspension:{max(1, round((item.ends_at - item.created_at).days))}")
            else:
                used.append(item.kind.value)
        recent_withdrawals = withdrawals.get(uid, 0)
        out[uid] = {
            "user": public_user(uid, user.author_name) if user else None,
            "joined_at": isoformat(user.author_joined) if user else None,
            "comments": {st.value: counts[uid].get(st, 0) for st in CommentStatus},
            "recent_withdrawals": recent_withdrawals,
            "decisions": decisions[uid],
            "sanctions": [item.to_json() for item in sanctions[uid]],
            "suggested_sanction": policy.suggest_sanction(
                recent_withdrawals,
                used,
                current_app.config["SANCTION_LADDER"],
                current_app.config["LADDER_MIN_WITHDRAWALS"],
            ),
        }
    return out


# ---------------------------------------------------------------------------------- queues


def _queue(kind: str, filters: list[Any]) -> tuple[Any, Any]:
    """A queue's page select (limit and offset given when run) and its capped count. Oldest held
    first; most reported, then highest scored, then oldest for the reported queue.

    Each page row also carries the capped count (``queue_total``) and its comment's number of
    open reports (``open_reports``): a page is then one statement, not three, on any page with
    items, since most held comments have no report to fetch (on PostgreSQL each statement is
    a round trip)."""
    comments = _COMMENTS.c
    if kind == "pending":
        where = [
            comments.status == CommentStatus.PENDING,
            or_(comments.held_reason.is_(None), comments.held_reason != "reports"),
            *filters,
        ]
        open_reports = _open_reports_of(comments.id).scalar_subquery().label("open_reports")
        page = select(*_ITEM_COLUMNS, open_reports).select_from(_WITH_ARTICLE_AND_AUTHOR)
        count = select(comments.id)
        order = [comments.created_at, comments.id]
    elif kind == "reported":
        counts = (
            select(_REPORTS.c.comment_id, func.count(_REPORTS.c.id).label("n"))
            .where(_REPORTS.c.outcome == ReportOutcome.OPEN)
            .group_by(_REPORTS.c.comment_id)
            .subquery()
        )
        reported = counts.c.comment_id == comments.id
        where = [comments.status.in_((CommentStatus.PUBLISHED, CommentStatus.PENDING)), *filters]
        page = select(*_ITEM_COLUMNS, counts.c.n.label("open_reports")).select_from(
            _WITH_ARTICLE_AND_AUTHOR.join(counts, reported)
        )
        count = select(comments.id).select_from(_COMMENTS.join(counts, reported))
        order = [counts.c.n.desc(), func.coalesce(comments.score, 0).desc(), comments.created_at,
                 comments.id]  # fmt: skip
    else:
        raise ParleyError("invalid_parameter", "Unknown queue.", 400, {"kind": "unknown"})
    # Written into the SQL rather than bound: PostgreSQL then plans a prepared page select
    # once (a bound LIMIT made its generic plan look dearer, so it planned every run).
    limit, offset, cap = (bindparam(n, type_=Integer, literal_execute=True)
                          for n in ("limit", "offset", "cap"))  # fmt: skip
    capped = select(func.count()).select_from(count.where(*where).limit(cap).subquery())
    paged = page.add_columns(capped.scalar_subquery().label("queue_total"))
    return (
        paged.where(*where).order_by(*order).limit(limit).offset(offset),
        capped,
    )


# Counting stops here: a moderator needs "1,000+ waiting", not the exact size of a backlog,
# and an exact count of 100,000 held comments costs ~10 ms a page.
COUNT_CAP = 1_000


def _count(statement: Any) -> int:
    """Run a queue's capped count, counting no further than COUNT_CAP."""
    return db.session.scalar(statement, {"cap": COUNT_CAP}) or 0


_UNFILTERED: dict[str, tuple[Any, Any]] = {}


def _unfiltered_queue(kind: str) -> tuple[Any, Any]:
    """A queue's _queue() statements without filters: built once, since building them cost
    more than running them on their indexes."""
    if kind not in _UNFILTERED:
        _UNFILTERED[kind] = _queue(kind, [])
    return _UNFILTERED[kind]


def queue_counts() -> dict[str, int]:
    """How many items wait in each queue (counts only: no items are built)."""
    counts = {kind: _count(_unfiltered_queue(kind)[1]) for kind in ("pending", "reported")}
    counts["appeals"] = (
        db.session.scalar(select(func.count(Appeal.id)).where(Appeal.status == AppealStatus.OPEN))
        or 0
    )
    return counts


def queue(
    kind: str,
    article_key: str | None,
    rule_code: str | None,
    author_id: int | None,
    page: int,
    per_page: int,
) -> dict[str, Any]:
    """One page of a moderation queue, each item with what a moderator needs to decide."""
    comments = _COMMENTS.c
    filters = []
    if article_key:
        filters.append(
            comments.article_id
            == select(_ARTICLES.c.id).where(_ARTICLES.c.key == article_key).scalar_subquery()
        )
    if author_id is not None:
        filters.append(comments.author_id == author_id)
    if rule_code:
        filters.append(
            comments.id.in_(
                select(_REPORTS.c.comment_id)
                .join(_RULES, _REPORTS.c.rule_id == _RULES.c.id)
                .where(_RULES.c.code == rule_code)
            )
        )
    # A queue as moderators open it has its selects built once.
    page_query, count_query = _queue(kind, filters) if filters else _unfiltered_queue(kind)
    rows = list(
        db.session.execute(
            page_query, {"limit": per_page, "offset": (page - 1) * per_page, "cap": COUNT_CAP}
        )
    )
    # Every row carries the count; a page past the end (or an empty queue) asks for it.
    total = rows[0].queue_total if rows else _count(count_query)
    return {
        "kind": kind,
        "items": queue_items(rows),
        "page": page,
        "per_page": per_page,
        "total": total,
        # Past COUNT_CAP the queue says "1,000+" rather than count every held comment.
        "total_capped": total >= COUNT_CAP,
    }


def queue_items(rows: list[Any]) -> list[dict[str, Any]]:
    """Queue items for a page of comments (rows of _ITEM_COLUMNS and ``open_reports``, as
    _queue() selects them), with everything a moderator needs to decide.

    Reports and parents are fetched for the whole page at once, and each author's record
    once however many of their comments are on the page.
    """
    from .scoring import explain

    ids = [row.id for row in rows]
    reports: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    # Each row says how many open reports its comment has: ask only about those with some.
    reported = [row.id for row in rows if row.open_reports]
    if reported:
        for r in db.session.execute(_OPEN_REPORTS_OF, {"ids": reported}):
            report = report_json(r, r.rule_code, r.rule_title)
            report["reporter"] = public_user(r.reporter_id, r.reporter_name)
            reports[r.comment_id].append(report)
    parent_ids = sorted({row.parent_id for row in rows if row.parent_id})
    parents = (
        {
            p.id: comment_services.comment_row_json(p)
            for p in db.session.execute(_PARENTS, {"ids": parent_ids})
        }
        if parent_ids
        else {}
    )
    records = author_records(
        [row.author_id for row in rows],
        {row.author_id: row for row in rows if row.author_name is not None},
    )
    items = []
    for row in rows:
        item = comment_services.comment_row_json(row)
        item["body"] = row.body
        item["held_reason"] = row.held_reason
        item["version"] = row.version
        items.append(
            {
                "comment": item,
                "context": {
                    "article": {
                        "key": row.article_key,
                        "title": row.article_title,
                        "url": row.article_url,
                    },
                    "parent": parents.get(row.parent_id) if row.parent_id else None,
                },
                "reports": reports[row.id],
                "report_count": len(reports[row.id]),
                "scores": row.scores,
                "score": row.score,
                "model_version": row.model_version,
                # kept from when the comment was held; worked out now for one readers reported
                "highlights": row.explanation if row.explanation is not None else explain(row.body),
                "author": records[row.author_id],
            }
        )
    return items


def appeals_queue(page: int, per_page: int) -> dict[str, Any]:
    items, total = page_of(
        select(Appeal).where(Appeal.status == AppealStatus.OPEN),
        page, per_page, Appeal.created_at, Appeal.id,
    )  # fmt: skip
    out = []
    for item in items:
        d = item.decision
        comment = db.session.get(Comment, d.comment_id) if d.comment_id else None
        sanction = db.session.get(Sanction, d.sanction_id) if d.sanction_id else None
        out.append(
            {
                "appeal": item.to_json(),
                "decision": d.to_json(),
                "comment": (
                    {**comment_services.comment_json(comment, None, True), "body": comment.body}
                    if comment
                    else None
                ),
                "sanction": sanction.to_json() if sanction else None,
                "author": author_record(d.subject_user_id),
            }
        )
    return {"kind": "appeals", "items": out, "page": page, "per_page": per_page, "total": total}


def history(
    article_key: str | None,
    author_id: int | None,
    page: int,
    per_page: int,
    rule_code: str | None = None,
) -> dict[str, Any]:
    """Decided items, newest first; filter by article, author and the rule cited."""
    query = select(Decision)
    if rule_code:
        query = query.join(HouseRule, HouseRule.id == Decision.rule_id).where(
            HouseRule.code == rule_code
        )
    if author_id is not None:
        query = query.where(Decision.subject_user_id == author_id)
    if article_key:
        query = (
            query.join(Comment, Comment.id == Decision.comment_id)
            .join(Article, Article.id == Comment.article_id)
            .where(Article.key == article_key)
        )
    items, total = page_of(query, page, per_page, Decision.created_at.desc(), Decision.id.desc())
    return {
        "kind": "history",
        "items": [d.to_json() for d in items],
        "page": page,
        "per_page": per_page,
        "total": total,
    }
