"""The classifier inside the app: one model in memory per worker, the screener that posting
calls, and explanations for moderators."""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import current_app

from comments.models import Article, CommentStatus, User
from comments.screening import Screening

from . import policy

_lock = threading.Lock()


def known_signals() -> tuple[str, ...]:
    from .classifier import SIGNALS

    return SIGNALS


def get_model() -> Any:
    """The active model, loaded once per worker process and kept in memory.

    Which model is active lives in the database, so when `flask moderation retrain` or
    `activate` switches models, every worker on every machine notices within
    MODEL_RECHECK_SECONDS and loads the new one.
    """
    holder = current_app.extensions["parley.model"]
    now = time.monotonic()
    if (
        holder.get("model") is not None
        and now - holder["checked"] < current_app.config["MODEL_RECHECK_SECONDS"]
    ):
        return holder["model"]
    from . import classifier, registry

    path = registry.active_model_path()
    with _lock:
        if holder.get("model") is None or holder.get("path") != path:
            holder["model"] = classifier.load(path)
            holder["path"] = path
        holder["checked"] = now
    return holder["model"]


def warm(app: Any) -> None:
    """Load the active model now (a worker starting), not in some reader's first post."""
    with app.app_context():
        try:
            get_model()
        except Exception as exc:  # no database yet, say (`flask db upgrade` imports this too)
            app.logger.info("classifier not loaded at start-up (%s); the first post will", exc)


def reset_model() -> None:
    """Forget the loaded model: the next post loads the active one again."""
    current_app.extensions["parley.model"].clear()


def explain(text: str, k: int = 5) -> list[dict[str, Any]]:
    """The terms that pushed each linked signal's score, with spans for highlighting."""
    from .services import linked_signals

    try:
        model = get_model()
    except Exception:  # a broken model must not take the moderator's queue down with it
        current_app.logger.exception("classifier unavailable for explanations")
        return []
    linked = set(linked_signals())
    # One pass over the text for every signal, then keep the linked ones.
    return [t for t in model.explain(text, None, k) if t["signal"] in linked and t["weight"] > 0]


def policy_config() -> policy.PolicyConfig:
    cfg = current_app.config
    return policy.PolicyConfig(
        hold_thresholds=cfg["POLICY_HOLD_THRESHOLDS"] or None,
        reject_enabled=cfg["POLICY_REJECT_ENABLED"],
        reject_thresholds=cfg["POLICY_REJECT_THRESHOLDS"] or None,
        hold_first_posts=cfg["POLICY_HOLD_FIRST_POSTS"],
    )


class HouseRulesScreener:
    """Posting's screener: sanctions first, then the classifier and the site's policy."""

    def check_author(self, author: User, article: Article) -> None:
        from .services import check_may_post

        check_may_post(author)

    def screen(self, body: str, author: User, article: Article) -> Screening:
        from comments.extensions import db
        from comments.models import Comment

        from .services import is_premoderated, linked_signals

        config = policy_config()
        published = 0
        if config.hold_first_posts:
            published = (
                db.session.scalar(
                    db.select(db.func.count(Comment.id)).where(
                        Comment.author_id == author.id, Comment.status == CommentStatus.PUBLISHED
                    )
                )
                or 0
            )
        standing = policy.Standing(premoderated=is_premoderated(author), published_count=published)
        try:
            model = get_model()
        except Exception:
            # Fail safe: with no working classifier, hold posts for a person to read.
            current_app.logger.exception("classifier unavailable; holding post for review")
            return Screening("hold", reason="classifier_unavailable")
        scores = {k: round(float(v), 4) for k, v in model.score(body).items()}
        verdict = policy.decide(
            scores,
            linked_signals(),
            model.thresholds,
            standing,
            config,
            getattr(model, "reject_thresholds", None),
        )
        message = None
        if verdict.action == "reject":
            message = (
                "Your comment looks likely to break our house rules, so it hasn't been posted. "
                "Please revise it, attacking arguments rather than people, and try again."
            )
        explanation = None
        if verdict.action == "hold":
            linked = set(linked_signals())
            explanation = [
                t for t in model.explain(body, None, 5)
                if t["signal"] in linked and t["weight"] > 0
            ]  # fmt: skip
        return Screening(
            verdict.action,
            verdict.reason,
            message,
            scores,
            verdict.score,
            model.version,
            explanation,
        )
