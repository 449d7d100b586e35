"""Posting, editing, deleting and reading comments.

Each operation loads what it needs, applies the rules, sanitises, asks the screener for a
verdict, then adds and flushes. The caller (a view or a command) commits once.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import sys
import unicodedata
from datetime import timedelta
from typing import Any

from flask import current_app, g
from sqlalchemy import (
    Integer,
    and_,
    any_,
    bindparam,
    event,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased, joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.functions import FunctionElement

from . import audit, threads
from .cache import PageCache, readers_seeing_all
from .errors import ParleyError, not_found
from .extensions import db
from .models import (
    TOP_UNPUBLISHED,
    Article,
    Comment,
    CommentStatus,
    Role,
    User,
    isoformat,
    public_user,
    utcnow,
)
from .sanitize import sanitize
from .screening import Screening, get_screener
from .validation import check_text

THREAD_CLOSED_MESSAGE = "Comments are closed on this article"
SORTS = ("oldest", "newest", "replies")
PAGE_MAX = 1_000_000  # the highest ?page= a thread read takes
# Shown for comments kept after their author deleted the account.
DELETED_AUTHOR = {"id": None, "display_name": "[deleted account]"}


# ---------------------------------------------------------------------------- articles


_ARTICLE_BY_KEY = select(Article).where(Article.key == bindparam("key"))


def get_article(key: str) -> Article:
    article = db.session.scalar(_ARTICLE_BY_KEY, {"key": key})
    if article is None:
        raise not_found("article")
    return article


def create_article(
    key: str,
    title: str,
    url: str,
    auto_close_days: int | None = None,
    actor: User | None = None,
    via: str = "api",
) -> Article:
    """Register a story for comments (flushes, and writes the audit log). Refuses a key
    that exists with 409. ``actor`` None means the command line or the demo loader."""
    key, title, url = key.strip(), title.strip(), url.strip()
    problems = {}
    if not key or len(key) > 200 or any(ch.isspace() for ch in key) or "/" in key:
        problems["key"] = "1 to 200 characters, no spaces or slashes."
    if not title or len(title) > 300:
        problems["title"] = "1 to 300 characters."
    if not url.startswith(("http://", "https://")) or len(url) > 2000:
        problems["url"] = "An http or https address."
    if auto_close_days is not None and not 0 <= auto_close_days <= 3650:
        problems["auto_close_days"] = "0 to 3650 days."
    if problems:
        raise ParleyError("validation_failed", "Some fields are missing or invalid.", 422, problems)
    if db.session.scalar(select(Article.id).where(Article.key == key)) is not None:
        raise ParleyError("article_exists", f"An article with key {key!r} exists.", 409)
    article = Article(key=key, title=title, url=url, auto_close_days=auto_close_days)
    db.session.add(article)
    db.session.flush()
    audit.record(actor, "article.create", "article", article.key, {"title": title, "via": via})
    return article


def accepts_comments(article: Any) -> bool:
    """Open for posting; ``article`` is an Article or a row with its open/close columns."""
    return Article.accepts_comments(article, current_app.config["AUTO_CLOSE_DAYS"])


# What a thread read needs before it knows whether its cached page will do: the article's
# id, version and open/close columns. The fast read path runs the same statement.
THREAD_HEADER = select(
    Article.id,
    Article.version,
    Article.is_open,
    Article.auto_close_days,
    Article.created_at,
).where(Article.key == bindparam("key"))


def thread_header(key: str) -> Any:
    """The article's THREAD_HEADER row, or 404."""
    row = db.session.execute(THREAD_HEADER, {"key": key}).first()
    if row is None:
        raise not_found("article")
    return row


def ensure_open(article: Article) -> None:
    if not accepts_comments(article):
        raise ParleyError("thread_closed", THREAD_CLOSED_MESSAGE, 403)


class among_ids(FunctionElement):  # noqa: N801 - a SQL condition, named as one
    """``column`` is one of the ids given as the ``ids`` parameter (a list). SQLite gets an
    expanding IN, rendered again for each execution; PostgreSQL gets ``= ANY`` of one array
    parameter. Its statement text never changes (rendering 20 bound ids with their casts on
    every execution was about a twentieth of a queue page's time in the worker), and its
    generic plan, which PostgreSQL keeps after a prepared statement's fifth run, still
    searches an index by it: with a list of parameters the plan for a thread's replies
    searched by article alone and filtered the rest, reading a 50,000-comment thread's every
    comment (100 ms) for each page."""

    # No Boolean type: SQLite, with no boolean of its own, would be sent "... IN (...) = 1",
    # which no index answers.
    inherit_cache = True


@compiles(among_ids)
def _among_ids_expanding(element: Any, compiler: Any, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(column.in_(bindparam("ids", expanding=True)), **kw)


@compiles(among_ids, "postgresql")
def _among_ids_array(element: Any, compiler: Any, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(column == any_(bindparam("ids", type_=ARRAY(Integer))), **kw)


_ARTICLES = Article.__table__
_A = _ARTICLES.c
# One article's bump, with what the change did to its counters (zero for most changes).
_BUMP = (
    update(_ARTICLES)
    .where(_A.id == bindparam("article_id"))
    .values(
        version=_A.version + 1,
        published_count=_A.published_count + bindparam("d_published"),
        published_top_level_count=_A.published_top_level_count + bindparam("d_top_level"),
    )
)

# (published, published top-level): what a comment's counts toward its thread's counters.
Counted = tuple[int, int]
NOT_COUNTED: Counted = (0, 0)


def counted(status: CommentStatus | None, top_level: bool) -> Counted:
    """What one comment adds to its thread's counters (``status`` None: no comment)."""
    published = int(status == CommentStatus.PUBLISHED)
    return published, published if top_level else 0


def counter_change(
    before: CommentStatus | None, after: CommentStatus | None, top_level: bool
) -> Counted:
    """How a comment going from ``before`` to ``after`` moves its thread's counters."""
    (p0, t0), (p1, t1) = counted(before, top_level), counted(after, top_level)
    return p1 - p0, t1 - t0


def _bump(session: Session, changes: dict[int, Counted]) -> None:
    """Bump each article's version and move its counters, in article order (two
    transactions bumping the same two articles lock them in the same order)."""
    params = [
        {"article_id": article_id, "d_published": d[0], "d_top_level": d[1]}
        for article_id, d in sorted(changes.items())
    ]
    session.connection().execute(_BUMP, params[0] if len(params) == 1 else params)


def bump_article(article_id: int, change: Counted = NOT_COUNTED) -> None:
    """Mark the thread changed: its ETags and cached pages are stale from now on.
    ``change``: what the change did to the thread's counters (counter_change).

    A Core statement on the session's connection (the ORM's bulk-update path costs more
    than the update); the version is never read back from a loaded Article."""
    _bump(db.session, {article_id: change})


_BUMPS_AT_COMMIT = "parley_bumps_at_commit"


def bump_article_at_commit(article_id: int, change: Counted = NOT_COUNTED) -> None:
    """bump_article, as the transaction's last statement before its commit; the counter
    changes of one transaction's comments in one article add up.

    The bump locks the article's row until the commit: taken as soon as a comment changes, it
    made two moderators deciding comments of one story (the queue lists a story's held
    comments together) wait for each other's whole transaction, the decision, the reports,
    the notice and the audit entry. Taken last, it is held for the commit alone. Same
    transaction, so a reader still sees the change and the new version together or neither."""
    session = db.session()
    # The change is noted with the (innermost) transaction it happened in, so that a
    # savepoint's rollback can take it back (_forget_counts).
    at = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_BUMPS_AT_COMMIT, []).append((at, article_id, change))


@event.listens_for(Session, "before_commit")
def _bump_before_commit(session: Session) -> None:
    pending = session.info.pop(_BUMPS_AT_COMMIT, None)
    if pending:
        changes: dict[int, Counted] = {}
        for _at, article_id, (published, top_level) in pending:
            p, t = changes.get(article_id, NOT_COUNTED)
            changes[article_id] = (p + published, t + top_level)
        _bump(session, changes)


def _within(transaction: Any, outer: Any) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _forget_counts(session: Session, previous_transaction: Any) -> None:
    # A savepoint's rollback undoes its comments' changes, so their counts go; their bumps
    # stay (an extra bump only makes a cached page stale, a missing one would keep it).
    pending = session.info.get(_BUMPS_AT_COMMIT)
    if pending and previous_transaction.nested:
        session.info[_BUMPS_AT_COMMIT] = [
            (at, article_id, NOT_COUNTED if _within(at, previous_transaction) else change)
            for at, article_id, change in pending
        ]


@event.listens_for(Session, "after_transaction_end")
def _forget_bumps(session: Session, transaction: Any) -> None:
    # A rollback of the whole transaction undoes the changes the bumps were for.
    if transaction.parent is None:
        session.info.pop(_BUMPS_AT_COMMIT, None)


_C = Comment.__table__.c
# The articles a recount names, locked in id order (see recount).
_LOCK_ARTICLES = select(_A.id).where(among_ids(_A.id)).order_by(_A.id).with_for_update()


def _recount_statements(named: bool) -> tuple[Any, Any]:
    """Every article's counters (``named``: the articles of the ``ids`` parameter's), from
    one pass over their published comments grouped by article (a count for each article
    would search the comments once per article, and with no statistics yet, as after a bulk
    load, PostgreSQL read the whole table for each): first each article to zero, with its
    version bumped, then each article with comments to its group's counts."""
    counted = select(
        _C.article_id,
        func.count().label("published"),
        func.count().filter(_C.parent_id.is_(None)).label("top_level"),
    ).where(_C.status == CommentStatus.PUBLISHED)
    zeroed = update(_ARTICLES).values(
        version=_A.version + 1, published_count=0, published_top_level_count=0
    )
    if named:
        counted, zeroed = counted.where(among_ids(_C.article_id)), zeroed.where(among_ids(_A.id))
    groups = counted.group_by(_C.article_id).subquery("counted")
    return zeroed, (
        update(_ARTICLES)
        .values(published_count=groups.c.published, published_top_level_count=groups.c.top_level)
        .where(_A.id == groups.c.article_id)
    )


_RECOUNT_ALL, _RECOUNT = _recount_statements(named=False), _recount_statements(named=True)


def recount_all(connection: Any) -> None:
    """Every article's counters from the comments, on ``connection`` (bumping versions)."""
    for statement in _RECOUNT_ALL:
        connection.execute(statement)


def recount(article_ids: set[int] | None = None) -> None:
    """Set articles' counters (every article's, or these) from their comments, and bump
    their versions: after a bulk change, or to repair counters written around Parley.

    On PostgreSQL the rows are locked first and counted by the next statement, whose
    snapshot then holds every change committed before the lock: a post committing
    meanwhile adds to the recounted value after this commits, rather than being lost."""
    if article_ids is not None and not article_ids:
        return
    connection = db.session.connection()
    if article_ids is None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("LOCK TABLE articles IN SHARE ROW EXCLUSIVE MODE"))
        recount_all(connection)
        return
    params = {"ids": sorted(article_ids)}
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK_ARTICLES, params).all()
    for statement in _RECOUNT:
        connection.execute(statement, params)


def article_json(article: Article) -> dict[str, Any]:
    closes = article.closes_at(current_app.config["AUTO_CLOSE_DAYS"])
    return {
        "key": article.key,
        "title": article.title,
        "url": article.url,
        "is_open": accepts_comments(article),
        "comment_count": article.published_count,
        "auto_close_days": article.auto_close_days,
        "closes_at": isoformat(closes),
        "created_at": isoformat(article.created_at),
    }


# ---------------------------------------------------------------------------- comments


def check_body(body: str) -> str:
    """Trim and bound a body before it is sanitised: 1..COMMENT_MAX_LENGTH characters."""
    check_text("body", body)
    body = body.strip()
    limit = current_app.config["COMMENT_MAX_LENGTH"]
    if not body:
        raise ParleyError("comment_empty", "Write something first.", 422, {"body": "empty"})
    if len(body) > limit:
        raise ParleyError(
            "comment_too_long",
            f"A comment is at most {limit} characters; this one is {len(body)}.",
            422,
            {"body": f"at most {limit} characters"},
        )
    return body


def get_comment(comment_id: int) -> Comment:
    comment = db.session.get(Comment, comment_id)
    if comment is None:
        raise not_found("comment")
    return comment


def _screen(body: str, author: User, article: Article) -> Screening:
    verdict = get_screener().screen(body, author, article)
    if verdict.action == "reject":
        raise ParleyError(
            "comment_rejected",
            verdict.message
            or "This comment looks like it breaks the house rules. Please revise it and try again.",
            422,
            {"body": "likely breaks the house rules"},
            {"reason": verdict.reason, "scores": verdict.scores},
        )
    return verdict


def _resolve_parent(article: Article, parent_id: int, author: User) -> Comment:
    """The comment a reply hangs under: same article, visible, and not too deep."""
    parent = db.session.get(Comment, parent_id)
    visible = parent is not None and (
        parent.status == CommentStatus.PUBLISHED
        or (parent.status == CommentStatus.PENDING and parent.author_id == author.id)
    )
    if parent is None or parent.article_id != article.id:
        raise ParleyError(
            "invalid_parent",
            "The comment you are replying to is not in this article.",
            422,
            {"parent_id": "not in this article"},
        )
    if not visible:
        raise ParleyError(
            "invalid_parent",
            f"You can't reply to a comment that is {parent.status.value}.",
            422,
            {"parent_id": parent.status.value},
        )
    max_depth = current_app.config["COMMENT_MAX_DEPTH"]
    # Too deep: the reply attaches to the deepest ancestor that may still have replies.
    while parent.depth >= max_depth and parent.parent_id is not None:
        parent = db.session.get(Comment, parent.parent_id)  # type: ignore[assignment]
    return parent


_NOT_WORD = re.compile(r"[\W_]+")


def _fingerprint(text: str) -> str:
    """Text with case, punctuation and spacing folded away: "Great, news!!" ~ "great news"."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


class _Shape:
    """A fingerprint with its words counted, for comparing one text with many others."""

    __slots__ = ("fingerprint", "distinct", "n_words", "repeats")

    def __init__(self, fingerprint: str) -> None:
        # Interned: the same words recur across texts, so cached shapes share them.
        words = [sys.intern(w) for w in fingerprint.split()]
        self.fingerprint = fingerprint
        self.distinct = frozenset(words)
        self.n_words = len(words)
        self.repeats = len(words) - len(self.distinct)

    def nearly_same(self, other: _Shape) -> bool:
        """At least 90% the same words in the same order (difflib's ratio over words, not
        characters: cheaper, and closer to what a reader calls "the same comment")."""
        la, lb = self.n_words, other.n_words
        shorter, longer = (la, lb) if la <= lb else (lb, la)
        if shorter < 4 or shorter < 0.8 * longer:
            return False
        # A bound from set sizes alone (C speed), exact, before difflib: matched words are at
        # most the distinct words in common plus the repeats in either text.
        common = len(self.distinct & other.distinct)
        if 2 * (common + min(self.repeats, other.repeats)) < 0.9 * (la + lb):
            return False
        matcher = difflib.SequenceMatcher(
            None, self.fingerprint.split(), other.fingerprint.split(), autojunk=False
        )
        return (
            matcher.real_quick_ratio() >= 0.9
            and matcher.quick_ratio() >= 0.9
            and matcher.ratio() >= 0.9
        )


def _shape_bytes(shape: _Shape) -> int:
    """What a cached shape holds: its text (the key, kept as the fingerprint's source), the
    fingerprint and the word set's table; the words are interned and shared."""
    return 2 * sys.getsizeof(shape.fingerprint) + sys.getsizeof(shape.distinct)


# Recent posts' shapes by their text, within a memory budget rather than a count: one
# 5,000-character comment weighs as much as dozens of short ones. (Each worker keeps its
# own; an author's recent posts are compared with every new post of theirs.)
_shapes = PageCache(8 * 1024 * 1024, weigh=_shape_bytes)


def _shape(text: str) -> _Shape:
    shape = _shapes.get(text)
    if shape is None:
        shape = _Shape(_fingerprint(text))
        _shapes.put(text, shape)
    return shape


def _nearly_same(a: str, b: str) -> bool:
    """Two fingerprints are nearly the same text (see _Shape.nearly_same)."""
    return _Shape(a).nearly_same(_Shape(b))


# Built once: constructing a select costs more than running it on an index.
_RECENT_BODIES = (
    select(Comment.body)
    .where(
        Comment.author_id == bindparam("author_id"),
        Comment.created_at >= bindparam("since"),
        Comment.status != CommentStatus.DELETED,
        Comment.id != bindparam("exclude_id"),
    )
    .order_by(Comment.created_at.desc())
    .limit(20)
)


def _recent_params(author_id: int, exclude_id: int | None) -> dict[str, Any]:
    """_RECENT_BODIES's parameters: the author's posts within the repeat window."""
    minutes = current_app.config["DUPLICATE_WINDOW_MINUTES"] or 0
    return {
        "author_id": author_id,
        "since": utcnow() - timedelta(minutes=minutes),
        "exclude_id": exclude_id or 0,
    }


class _bodies_of(FunctionElement):  # noqa: N801 - a SQL function, named as one
    """The texts a subquery selects, as one value: a PostgreSQL array, a SQLite JSON array."""

    inherit_cache = True


@compiles(_bodies_of)
def _bodies_of_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


@compiles(_bodies_of, "postgresql")
def _bodies_of_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"array_agg({compiler.process(element.clauses, **kw)})"


_RECENT = _RECENT_BODIES.subquery("recent")
# What posting reads before anything else, in one statement: the signed-in user, the
# article (an outer join: None when there is no such article) and the user's recent posts
# for the repeat check. A statement costs ~100 us in SQLAlchemy, and on PostgreSQL a round
# trip: three reads become one.
_POSTER = (
    select(
        User,
        Article,
        select(_bodies_of(_RECENT.c.body)).select_from(_RECENT).scalar_subquery(),
    )
    .outerjoin(Article, Article.key == bindparam("key"))
    .where(User.id == bindparam("id"))
)
_POSTER_KEY = "parley_poster"


def read_poster(user_id: int, key: str) -> User | None:
    """The user with this id, read with the article ``key`` names and the user's recent
    posts, which posting_context() then hands to the posting view without reading them
    again. (The user loader calls this for the posting endpoint.)"""
    params = {"id": user_id, "key": key, **_recent_params(user_id, None)}
    row = db.session.execute(_POSTER, params).first()
    if row is None:
        return None
    user, article, bodies = row
    if isinstance(bodies, str):  # SQLite's JSON array
        bodies = json.loads(bodies)
    g.setdefault(_POSTER_KEY, {})[(user_id, key)] = (article, list(bodies or ()))
    return user


_USER_AND_COMMENT = (
    select(User, Comment)
    .outerjoin(Comment, Comment.id == bindparam("comment_id"))
    .where(User.id == bindparam("id"))
    # A comment always has its article, but under the outer join an inner join to it
    # would drop the user's row when there is no such comment.
    .options(joinedload(Comment.article, innerjoin=False))
)


def read_user_with_comment(user_id: int, comment_id: int) -> User | None:
    """The user with this id, read with the comment a request is about: the comment is in
    the session's identity map from then on, where get_comment finds it without a read.
    (The identity map holds its objects weakly: the request keeps this one.)"""
    row = db.session.execute(_USER_AND_COMMENT, {"id": user_id, "comment_id": comment_id}).first()
    if row is None:
        return None
    g.parley_comment_read_with_user = row[1]
    return row[0]


def posting_context(author: User, key: str) -> tuple[Article, list[str] | None]:
    """The article to post to, and the author's recent bodies if read_poster read them in
    this request (None: check_not_repeat reads them)."""
    found = g.get(_POSTER_KEY, {}).pop((author.id, key), None)
    if found is None or found[0] is None:
        return get_article(key), None
    return found


def check_not_repeat(
    author: User, body: str, exclude_id: int | None = None, recent: list[str] | None = None
) -> None:
    """Refuse the same or nearly the same text from one author within the window.
    ``recent``: the author's recent bodies, if read already (see read_poster)."""
    minutes = current_app.config["DUPLICATE_WINDOW_MINUTES"]
    if not minutes:
        return
    if recent is None:
        recent = db.session.connection().scalars(
            _RECENT_BODIES, _recent_params(author.id, exclude_id)
        )
    mine = _Shape(_fingerprint(body))
    for other in recent:
        theirs = _shape(other)
        if mine.fingerprint == theirs.fingerprint or mine.nearly_same(theirs):
            raise ParleyError(
                "duplicate_comment",
                "You posted the same comment a moment ago. Say something new, or edit "
                "the comment you posted.",
                409,
                {"body": "repeats a recent comment"},
            )


def adopt_inserted(model: type[Any], values: dict[str, Any], primary_key: int) -> Any:
    """The object for a row just written by a Core INSERT, in the session as if it had been
    loaded: the unit of work's flush machinery cost more than the insert itself. ``values``
    must give every column but the key, so nothing is left to load."""
    instance = model(id=primary_key, **values)
    make_transient_to_detached(instance)
    db.session.add(instance)
    return instance


_COMMENTS = Comment.__table__
_INSERT_COMMENT = insert(_COMMENTS)


# PostgreSQL runs a data-modifying WITH whether or not the statement reads it: the insert and
# the version bump go in one round trip (one fewer per post; SQLite has no such WITH, and its
# statements cost no round trip).
# (The WITH is written as text: an UPDATE built with update() would also SET any column
# named like one of the INSERT's parameters, such as articles.created_at.)
def _insert_comment_and_bump(bump_returns: str) -> Any:
    return _INSERT_COMMENT.add_cte(
        text(
            "UPDATE articles SET version = version + 1, "
            "published_count = published_count + :bump_published, "
            "published_top_level_count = published_top_level_count + :bump_top_level "
            f"WHERE id = :bump_article_id RETURNING {bump_returns}"
        )
        .columns(id=Integer)
        .cte("bump")
    ).returning(_COMMENTS.c.id)


_INSERT_COMMENT_AND_BUMP = _insert_comment_and_bump("id")
# The same, committed as it runs when nothing was written before it in the transaction (see
# comments/__init__.py): a post that is the request's only write sends no BEGIN or COMMIT.
# Its bump also sets how that transaction commits (DATABASE_POST_SYNCHRONOUS_COMMIT): a
# transaction-local setting, gone with the statement, read by PostgreSQL at the commit.
_INSERT_COMMENT_AND_BUMP_ALONE = _insert_comment_and_bump(
    "id, set_config('synchronous_commit', :post_synchronous_commit, true)"
).execution_options(parley_own_transaction=True)


def post_comment(
    article: Article,
    author: User,
    body: str,
    parent_id: int | None,
    commit: bool = False,
    recent: list[str] | None = None,
) -> Comment:
    """Post a comment or reply; its status says whether it was published or held.
    ``commit``: commit it too (the request's only write); otherwise the caller commits.
    ``recent``: the author's recent bodies, if read already (posting_context)."""
    ensure_open(article)
    get_screener().check_author(author, article)
    body = check_body(body)
    check_not_repeat(author, body, recent=recent)
    parent = _resolve_parent(article, parent_id, author) if parent_id is not None else None
    body_html = sanitize(body)
    verdict = _screen(body, author, article)
    values = {
        "article_id": article.id,
        "author_id": author.id,
        "parent_id": parent.id if parent else None,
        "root_id": (parent.root_id or parent.id) if parent else None,
        "depth": threads.reply_depth(parent.depth, current_app.config["COMMENT_MAX_DEPTH"])
        if parent
        else 0,
        "body": body,
        "body_html": body_html,
        "status": CommentStatus.PENDING if verdict.action == "hold" else CommentStatus.PUBLISHED,
        "held_reason": verdict.reason if verdict.action == "hold" else None,
        "scores": verdict.scores,
        "score": verdict.score,
        "model_version": verdict.model_version,
        "explanation": verdict.explanation,
        "created_at": utcnow(),
        "edited_at": None,
        "deleted_at": None,
        "version": 1,
    }
    # One Core INSERT (RETURNING the id where the database has it); the bump locks the
    # article's row until the commit that follows at once.
    change = counted(values["status"], parent is None)
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        params = {
            **values,
            "bump_article_id": article.id,
            "bump_published": change[0],
            "bump_top_level": change[1],
        }
        alone = commit and not (db.session.new or db.session.dirty or db.session.deleted)
        if alone:
            statement = _INSERT_COMMENT_AND_BUMP_ALONE
            params["post_synchronous_commit"] = current_app.config[
                "DATABASE_POST_SYNCHRONOUS_COMMIT"
            ]
        else:
            statement = _INSERT_COMMENT_AND_BUMP
        comment_id = connection.execute(statement, params).scalar_one()
    else:
        comment_id = connection.execute(_INSERT_COMMENT, values).inserted_primary_key[0]
        bump_article(article.id, change)
    comment = adopt_inserted(Comment, values, comment_id)
    if commit:
        db.session.commit()
    return comment


# One prebuilt UPDATE per set of columns a transition changes and the statuses it starts
# from (there are a handful); the statuses are bound one by one, not as an expanding IN,
# which is rendered again on every execution.
_TRANSITIONS: dict[tuple[frozenset[str], tuple[CommentStatus, ...]], Any] = {}


def _transition_statement(columns: frozenset[str], from_statuses: tuple[CommentStatus, ...]) -> Any:
    statement = _TRANSITIONS.get((columns, from_statuses))
    if statement is None:
        c = _COMMENTS.c
        statement = (
            update(_COMMENTS)
            .where(
                c.id == bindparam("t_id"),
                c.version == bindparam("t_version"),
                or_(*(c.status == status for status in from_statuses)),
            )
            .values(
                version=c.version + 1,
                **{k: bindparam(f"v_{k}", type_=c[k].type) for k in sorted(columns)},
            )
        )
        _TRANSITIONS[(columns, from_statuses)] = statement
    return statement


def transition(comment: Comment, from_statuses: tuple[CommentStatus, ...], **values: Any) -> bool:
    """Change a comment only if nobody else changed it since it was loaded.

    A single conditional UPDATE, so two moderators (or a moderator and the author) acting at
    once can't both win: the loser sees False and reports the current state.

    On success the loaded comment takes the new values as its committed state, without
    reading the row back: the UPDATE matched the version it was loaded at, and every write to
    a comment bumps its version, so no other column can have changed. On failure it is
    expired, and the next read of any attribute loads what the winner wrote.
    """
    session = db.session
    session.flush()  # what the ORM's own UPDATE path would autoflush first
    params = {f"v_{k}": v for k, v in values.items()}
    params.update(t_id=comment.id, t_version=comment.version)
    statement = _transition_statement(frozenset(values), tuple(from_statuses))
    result = session.connection().execute(statement, params)
    if result.rowcount != 1:
        session.expire(comment)
        return False
    # The UPDATE matched the loaded version, so the loaded status is the one it replaced.
    change = counter_change(
        comment.status, values.get("status", comment.status), comment.parent_id is None
    )
    took_transition(comment, values)
    bump_article_at_commit(comment.article_id, change)
    return True


def took_transition(comment: Comment, values: dict[str, Any]) -> None:
    """The loaded comment takes the values a conditional UPDATE of its row (at its loaded
    version) just wrote, and the next version, as its committed state (see transition)."""
    for key, value in values.items():
        set_committed_value(comment, key, value)
    set_committed_value(comment, "version", comment.version + 1)


def _check_author_of(comment: Comment, user: User) -> None:
    if comment.author_id != user.id:
        raise ParleyError("not_author", "Only its author can change a comment.", 403)


def edit_comment(comment: Comment, user: User, body: str) -> Comment:
    """The author rewrites their comment within the edit window; it is screened again."""
    _check_author_of(comment, user)
    if comment.status not in (CommentStatus.PUBLISHED, CommentStatus.PENDING):
        raise ParleyError(
            "comment_not_editable",
            f"This comment is {comment.status.value}.",
            409,
            extra={"status": comment.status.value},
        )
    ensure_open(comment.article)
    minutes = current_app.config["EDIT_WINDOW_MINUTES"]
    if utcnow() - comment.created_at > timedelta(minutes=minutes):
        raise ParleyError(
            "edit_window_closed",
            f"Comments can be edited for {minutes} minutes after posting.",
            403,
        )
    get_screener().check_author(user, comment.article)
    body = check_body(body)
    body_html = sanitize(body)
    verdict = _screen(body, user, comment.article)
    # Held because readers reported it: editing does not take it out of the queue.
    stay_held = comment.status == CommentStatus.PENDING and comment.held_reason not in (
        None,
        "classifier",
    )
    hold = verdict.action == "hold" or stay_held
    ok = transition(
        comment,
        (CommentStatus.PUBLISHED, CommentStatus.PENDING),
        body=body,
        body_html=body_html,
        edited_at=utcnow(),
        status=CommentStatus.PENDING if hold else CommentStatus.PUBLISHED,
        held_reason=(comment.held_reason if stay_held else verdict.reason) if hold else None,
        scores=verdict.scores,
        score=verdict.score,
        model_version=verdict.model_version,
        explanation=verdict.explanation,
    )
    if not ok:
        raise ParleyError("conflict", "This comment changed meanwhile; reload it.", 409)
    db.session.flush()
    return comment


def delete_comment(comment: Comment, user: User) -> None:
    """The author removes their comment; replies under it stay, under a placeholder."""
    _check_author_of(comment, user)
    if comment.status == CommentStatus.DELETED:
        return
    if comment.status == CommentStatus.WITHDRAWN:
        raise ParleyError(
            "comment_withdrawn", "A moderator has already withdrawn this comment.", 409
        )
    ok = transition(
        comment,
        (CommentStatus.PUBLISHED, CommentStatus.PENDING),
        status=CommentStatus.DELETED,
        deleted_at=utcnow(),
    )
    if not ok:
        raise ParleyError("conflict", "This comment changed meanwhile; reload it.", 409)


def can_see(comment: Comment, viewer: User | None) -> bool:
    """Whether ``viewer`` may read this comment's text."""
    if comment.status == CommentStatus.PUBLISHED:
        return True
    if viewer is None:
        return False
    if viewer.has_role(Role.MODERATOR):
        return True
    return comment.author_id == viewer.id and comment.status != CommentStatus.DELETED


def comment_json(comment: Comment, viewer: User | None, full: bool = True) -> dict[str, Any]:
    """A comment as the API shows it to ``viewer``; a placeholder when not ``full``."""
    author = (comment.author.to_public() if comment.author else DELETED_AUTHOR) if full else None
    out = _comment_fields(comment, comment.article.key, author)
    if not full:
        out["body_html"] = None
        placeholders = threads.PLACEHOLDERS
        out["placeholder"] = placeholders.get(out["status"], placeholders["pending"])
    elif viewer is not None and comment.author_id == viewer.id:
        out["body"] = comment.body
        out["held_reason"] = comment.held_reason
    return out


def comment_row_json(row: Any) -> dict[str, Any]:
    """comment_json(..., full=True) for no viewer, from a Core row of the comment's columns
    with ``article_key`` and ``author_name`` (the author's display name, from an outer join):
    a moderator's queue builds pages of these without loading ORM objects."""
    author = public_user(row.author_id, row.author_name) or DELETED_AUTHOR
    return _comment_fields(row, row.article_key, author)


def _comment_fields(
    comment: Any, article_key: str, author: dict[str, Any] | None
) -> dict[str, Any]:
    """The fields every full view of a comment has; ``comment`` a Comment or a Core row."""
    return {
        "id": comment.id,
        "article_key": article_key,
        "parent_id": comment.parent_id,
        "author": author,
        "body_html": comment.body_html,
        "status": comment.status.value,
        "created_at": isoformat(comment.created_at),
        "edited_at": isoformat(comment.edited_at),
    }


# ---------------------------------------------------------------------------- reading


def _visible_clause(table: Any, viewer_id: int | None) -> Any:
    mine = (
        and_(table.status == CommentStatus.PENDING, table.author_id == viewer_id)
        if viewer_id is not None
        else false()
    )
    return or_(table.status == CommentStatus.PUBLISHED, mine)


# A comment of the reader's own that a thread page shows differently to them: their published
# comments carry their text and state (comment_json), their held ones show to them alone.
_OWN_SHOWN = (
    select(Comment.id)
    .where(
        Comment.author_id == bindparam("author_id"),
        Comment.article_id == bindparam("article_id"),
        or_(Comment.status == CommentStatus.PUBLISHED, Comment.status == CommentStatus.PENDING),
    )
    .limit(1)
)


def sees_what_everyone_sees(header: Any, viewer: User) -> bool:
    """Whether ``viewer``'s pages of this thread are everyone's (no comment of theirs shows
    in it): then they are served the pages every reader shares, cached once a version,
    rather than pages of their own. Remembered for the thread's version: any post, edit or
    decision that could change the answer bumps it."""
    key = (header.id, header.version, viewer.id)
    seen = readers_seeing_all().get(key)
    if seen is None:
        params = {"author_id": viewer.id, "article_id": header.id}
        seen = db.session.execute(_OWN_SHOWN, params).first() is None
        readers_seeing_all().put(key, seen)
    return seen


def thread_etag(article: Any, viewer: User | None, *parts: Any) -> str:
    """Changes whenever the thread, the page asked for, or who is asking changes."""
    key = "|".join(
        str(p) for p in (article.id, article.version, viewer.id if viewer else 0, *parts)
    )
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


# A page's replies: every comment under its top-level ones, by (article, root).
_REPLIES = (
    select(Comment)
    .where(Comment.article_id == bindparam("article_id"), among_ids(Comment.root_id))
    .order_by(Comment.created_at, Comment.id)
)


def read_thread(
    article: Article, viewer: User | None, page: int, per_page: int, sort: str
) -> dict[str, Any]:
    """One page of top-level comments with all their replies: three indexed queries."""
    viewer_id = viewer.id if viewer else None
    reply = aliased(Comment)
    top = and_(Comment.article_id == article.id, Comment.parent_id.is_(None))
    # A top-level comment the viewer can't see still shows, as a placeholder, when
    # something visible hangs under it.
    shown = or_(
        _visible_clause(Comment, viewer_id),
        # article_id too, so the planner uses (article_id, root_id) and estimates it right
        # (without it PostgreSQL misjudged the cost and switched on JIT: 300 ms, not 0.2).
        exists().where(
            reply.article_id == Comment.article_id,
            reply.root_id == Comment.id,
            _visible_clause(reply, viewer_id),
        ),
    )
    # Published top-level comments always show, and the article counts them; of the rest
    # (held, withdrawn or deleted: the partial index's few) count those that show.
    unpublished_shown = select(func.count()).where(
        Comment.article_id == article.id, text(TOP_UNPUBLISHED), shown
    )
    total = article.published_top_level_count + (db.session.scalar(unpublished_shown) or 0)

    query = select(Comment).where(top, shown)
    if sort == "newest":
        query = query.order_by(Comment.created_at.desc(), Comment.id.desc())
    elif sort == "replies":
        replies_count = (
            select(func.count(reply.id))
            .where(
                reply.article_id == Comment.article_id,
                reply.root_id == Comment.id,
                reply.status == CommentStatus.PUBLISHED,
            )
            .scalar_subquery()
        )
        query = query.order_by(replies_count.desc(), Comment.created_at.desc(), Comment.id.desc())
    else:
        query = query.order_by(Comment.created_at, Comment.id)
    roots = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))

    replies: list[Comment] = []
    if roots:
        replies = list(db.session.scalars(_REPLIES, {"article_id": article.id,
                                                     "ids": [c.id for c in roots]}))  # fmt: skip

    def node(c: Comment) -> threads.Node:
        return threads.Node(c.id, c.parent_id, c.status.value, c.author_id, c)

    forest = threads.build_forest(
        [node(c) for c in roots],
        [node(c) for c in replies],
        viewer_id,
        lambda n, full: comment_json(n.data, viewer, full),
    )
    return {
        "article": article_json(article),
        "comments": forest,
        "page": page,
        "per_page": per_page,
        "total_top_level": total,
    }
