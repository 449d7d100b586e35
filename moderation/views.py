"""Server-rendered moderation pages. For now: the house rules page that "Read the rules
here" links to."""

from __future__ import annotations

from flask import Blueprint, render_template

from . import services

bp = Blueprint("moderation_views", __name__, template_folder="templates")


@bp.get("/rules")
def rules_page():
    """The house rules, for readers."""
    return render_template("moderation/rules.html", rules=services.active_rules())
