"""Moderation: house rules, the classifier, reports, queues, decisions, sanctions, appeals.

It depends on ``comments`` and plugs into it through ``init_app``; ``comments`` never imports
this package at module level.
"""

from __future__ import annotations

from flask import Flask

DEFAULTS = {
    # Distinct readers' reports that hide a comment until a moderator looks.
    "REPORTS_TO_HIDE": 3,
    # Screening policy; empty thresholds mean the model's own (chosen by cross-validation).
    "POLICY_HOLD_THRESHOLDS": {},
    "POLICY_REJECT_ENABLED": False,
    "POLICY_REJECT_THRESHOLDS": {},
    "POLICY_HOLD_FIRST_POSTS": 0,
    # Sanctions ladder, suggested to moderators: withdrawn comments within the window.
    "SANCTION_LADDER": ["warning", "premoderation", "suspension:1", "suspension:7", "ban"],
    "LADDER_WINDOW_DAYS": 30,
    "LADDER_MIN_WITHDRAWALS": 2,
    # Classifier: None = the active model from the registry (the shipped one by default).
    "MODEL_PATH": None,
    "MODEL_DIR": None,
    "MODEL_RECHECK_SECONDS": 30,
    # How long a worker trusts its copy of which signals the active rules link to.
    "RULES_CACHE_SECONDS": 10,
    # When a reader deletes their account: "anonymise" keeps their comments under
    # "[deleted account]"; "remove" deletes them (threads keep placeholders).
    "DELETED_ACCOUNT_COMMENTS": "anonymise",
}


def init_app(app: Flask) -> None:
    """Register moderation's screener, API, commands and seed data on the app."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)

    from comments.auth import read_with_user
    from comments.screening import register_screener
    from comments.services import read_user_with_comment

    from . import api, commands, demo, models, registry, rules, views  # noqa: F401
    from .scoring import HouseRulesScreener

    app.extensions["parley.model"] = {}
    register_screener(app, HouseRulesScreener())
    app.extensions["parley.seed"] = rules.seed_defaults
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    # A decision and a report read their comment with the signed-in user (comments/auth.py).
    for view in (api.decide, api.report):
        read_with_user(f"{api.bp.name}.{view.__name__}", "comment_id", read_user_with_comment)
    commands.init_app(app)
    demo.init_app(app)
