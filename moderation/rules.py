"""House rules as data: the default set for a UK regional paper, and seeding it."""

from __future__ import annotations

from comments.extensions import db

from .models import HouseRule

# (code, title, text, linked classifier signals). The legal_advice signal is scored and shown
# to moderators but linked to no rule by default: it flags talk about the law, which is
# welcome under a story about a court case, not defamation itself.
DEFAULT_RULES: list[tuple[str, str, str, list[str]]] = [
    (
        "civil",
        "Be civil: attack arguments, not people",
        "Debate the issue, not the person. Personal attacks, insults, name-calling and "
        "abuse of other commenters, journalists or people in the story are not allowed.",
        ["insult", "offensive"],
    ),
    (
        "hate",
        "No hate speech",
        "Nothing that attacks or demeans people for their race, ethnicity, nationality, "
        "religion, sex, gender identity, sexual orientation, disability or age.",
        ["hate"],
    ),
    (
        "threats",
        "No threats or incitement",
        "No threats of violence or harm, and nothing that encourages others to commit "
        "violence or break the law.",
        [],
    ),
    (
        "spam",
        "No spam, advertising or repeated posts",
        "No advertising, promotion, referral links, chain messages, or posting the same "
        "comment again and again.",
        ["spam"],
    ),
    (
        "on-topic",
        "Stay on topic",
        "Keep to the subject of the article. Off-topic comments may be removed.",
        [],
    ),
    (
        "privacy",
        "No one's personal information",
        "Don't post anyone's address, phone number, email, workplace or other personal "
        "details, or private correspondence.",
        [],
    ),
    (
        "legal",
        "Nothing defamatory or that could prejudice a court case",
        "Don't make allegations of wrongdoing you can't prove, and don't comment on the "
        "guilt or innocence of anyone facing trial or name anyone the courts protect. "
        "Comments on active court cases may be closed.",
        [],
    ),
    (
        "impersonation",
        "No impersonation",
        "Don't pretend to be someone else, including other commenters, public figures "
        "or staff of this site.",
        [],
    ),
]


def seed_defaults() -> int:
    """Add any default rule the site doesn't have yet (flushes); returns how many."""
    existing = set(db.session.scalars(db.select(HouseRule.code)))
    added = 0
    for position, (code, title, text, signals) in enumerate(DEFAULT_RULES, start=1):
        if code in existing:
            continue
        db.session.add(
            HouseRule(code=code, title=title, text=text, position=position * 10, signals=signals)
        )
        added += 1
    db.session.flush()
    return added
