"""Demo extras: readers' reports on the demo threads, so the reported queue has work in it."""

from __future__ import annotations

from typing import Any

from comments.models import Comment, User

from .services import report_comment

# (index of the comment in comments/demo.py THREADS, reporter indexes into its USERS, rule,
# note)
REPORTS = [
    (5, (4, 5, 1), "spam", "Advertising, not a comment on the story."),
    (1, (6,), "on-topic", "Not really about the jobs."),
]


def extras(users: list[User], posted: list[Comment | None]) -> list[str]:
    """File the demo reports through the real reporting path; returns lines to print."""
    lines = []
    for index, reporters, rule, note in REPORTS:
        comment = posted[index] if index < len(posted) else None
        if comment is None:
            continue
        for reporter in reporters:
            if users[reporter].id != comment.author_id:
                report_comment(users[reporter], comment, rule, note)
        lines.append(f"Reported by readers: comment {comment.id} ({rule}), now {comment.status}")
    return lines


def init_app(app: Any) -> None:
    app.extensions["parley.demo_extras"] = extras
