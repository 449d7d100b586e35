"""Moderation: house rules, the classifier, reports, queues, decisions, sanctions, appeals.

It depends on ``comments`` and plugs into it through ``init_app``; ``comments`` never imports
this package at module level.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register moderation's screener, API and commands on the app."""
