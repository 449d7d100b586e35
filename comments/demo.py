"""Demo data for a fresh install: two regional stories, their threads, one user per role.

Comments go through the real posting path, so the classifier and policy decide which of the
rule-breaking ones are held, exactly as they would for a reader.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import current_app

from . import auth, services
from .extensions import db
from .models import Article, Role, User

USERS = [
    # (email, display name, role, password): demo only, printed on load.
    ("admin@parley.test", "Site Admin", Role.ADMIN, "demo-admin-pass"),
    ("editor@parley.test", "Newsdesk Editor", Role.EDITOR, "demo-editor-pass"),
    ("moderator@parley.test", "Community Moderator", Role.MODERATOR, "demo-moderator-pass"),
    ("moderator2@parley.test", "Second Moderator", Role.MODERATOR, "demo-moderator2-pass"),
    ("reader@parley.test", "Durham Reader", Role.READER, "demo-reader-pass"),
    ("reader2@parley.test", "Tyneside Tom", Role.READER, "demo-reader2-pass"),
    ("reader3@parley.test", "Wearside Wendy", Role.READER, "demo-reader3-pass"),
]

ARTICLES = [
    (
        "ns-and-i-durham-jobs-india",
        "National Savings jobs to move from Durham to India",
        "https://news.example.com/durham/ns-and-i-jobs-move-to-india",
    ),
    (
        "union-data-protection-challenge",
        "Union to challenge call-centre move under the Data Protection Act",
        "https://news.example.com/durham/union-data-protection-act-challenge",
    ),
    (
        "durham-miners-gala-road-closures",
        "Road closures announced for the Durham Miners' Gala",
        "https://news.example.com/durham/miners-gala-road-closures",
    ),
]

# (article, author index into USERS, text, index of the comment it replies to or None)
THREADS = [
    (
        0,
        4,
        "My neighbour has worked at the Durham office for twenty years. This is a real "
        "blow to the city and to the families who depend on those wages.",
        None,
    ),
    (
        0,
        5,
        "It's sad, but the savings bank has to keep costs down for savers. I'd like to "
        "see the figures before deciding it's the wrong call.",
        0,
    ),
    (
        0,
        6,
        "The figures were in the annual report: the Durham site was one of the most "
        "productive. Moving the work abroad looks short-sighted to me.",
        1,
    ),
    (0, 4, "Has anyone asked our MP what she plans to do about it?", None),
    (0, 5, "You are a complete idiot if you think an MP can stop this. Pathetic moron.", 3),
    (
        0,
        6,
        "BUY CHEAP WATCHES NOW!!! Best prices at www.cheap-watch-deals.example.com "
        "click here click here for free gift",
        None,
    ),
    (
        1,
        6,
        "Good on the union. Customers' personal data being handled offshore is a "
        "legitimate worry and the Act exists for exactly this.",
        None,
    ),
    (
        1,
        4,
        "I doubt the challenge gets far, but it's worth asking the Information "
        "Commissioner for a view.",
        6,
    ),
    (1, 5, "Shut up, nobody cares what a stupid loser like you thinks.", 7),
    (
        2,
        4,
        "Thanks for publishing the diversion map, very useful for getting to the "
        "hospital on the day.",
        None,
    ),
]


def load() -> Iterator[str]:
    """Create the demo users, articles and comments; safe to run twice."""
    users: list[User] = []
    created = []
    for email, name, role, password in USERS:
        user = db.session.scalar(db.select(User).where(User.email == email))
        if user is None:
            user = auth.create_user(email, name, password, role)
            created.append((role.value, email, password))
        users.append(user)
    articles: list[Article] = []
    new_articles: set[int] = set()
    for index, (key, title, url) in enumerate(ARTICLES):
        article = db.session.scalar(db.select(Article).where(Article.key == key))
        if article is None:
            article = services.create_article(key, title, url, via="demo")
            new_articles.add(index)
        articles.append(article)
    posted = []
    counts = {"published": 0, "pending": 0}
    for article_index, author_index, text, reply_to in THREADS:
        if article_index not in new_articles:
            posted.append(None)
            continue
        parent = posted[reply_to] if reply_to is not None else None
        comment = services.post_comment(
            articles[article_index], users[author_index], text, parent.id if parent else None
        )
        counts[comment.status.value] = counts.get(comment.status.value, 0) + 1
        posted.append(comment)
    # Moderation adds what it wants to show (readers' reports) through a hook, so this
    # package never imports it.
    extras = current_app.extensions.get("parley.demo_extras")
    notes = extras(users, posted) if extras and any(posted) else []
    db.session.commit()

    yield f"Demo data in {current_app.config['SQLALCHEMY_DATABASE_URI']}"
    yield f"Articles: {', '.join(a.key for a in articles)}"
    yield f"Comments posted: {counts['published']} published, {counts['pending']} held for review"
    yield from notes
    if created:
        yield "Demo accounts (demo only; change or delete them on a real site):"
        for role, email, password in created:
            yield f"  {role:<10} {email:<26} password: {password}"
    else:
        yield "Demo accounts already exist (passwords as printed when first loaded)."
