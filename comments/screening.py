"""The one small interface through which posting asks for a verdict.

Moderation registers a screener when the app is built (the way isso lets extensions hook
``comments.new:before-save``), so the posting code never names the classifier, the house
rules or sanctions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from flask import current_app

if TYPE_CHECKING:
    from .models import Article, User

Action = Literal["publish", "hold", "reject"]


@dataclass(frozen=True)
class Screening:
    """What should happen to a post, and the evidence for it."""

    action: Action
    reason: str | None = None  # why it is held or rejected: "classifier", "premoderation", ...
    message: str | None = None  # shown to the author when rejected
    scores: dict[str, float] | None = field(default=None)
    score: float | None = None  # the rule-breaking score: highest linked signal
    model_version: str | None = None
    # For a held post: the terms that pushed its scores, kept so the moderator's queue shows
    # them without scoring again.
    explanation: list[dict[str, Any]] | None = None


class Screener(Protocol):
    def check_author(self, author: User, article: Article) -> None:
        """Raise a ParleyError if this author may not post now (suspended, banned)."""

    def screen(self, body: str, author: User, article: Article) -> Screening:
        """Decide whether a post is published, held or rejected."""


class PublishEverything:
    """The screener used when moderation is not installed: every post is published."""

    def check_author(self, author: User, article: Article) -> None:
        return None

    def screen(self, body: str, author: User, article: Article) -> Screening:
        return Screening("publish")


EXTENSION_KEY = "parley.screener"


def get_screener() -> Screener:
    return current_app.extensions.get(EXTENSION_KEY) or PublishEverything()


def register_screener(app, screener: Screener) -> None:  # type: ignore[no-untyped-def]
    app.extensions[EXTENSION_KEY] = screener
