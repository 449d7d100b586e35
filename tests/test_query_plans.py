"""A thread page costs a page, not the thread: both databases read its top-level comments
from an index in the page's order and stop at the page's end, with no sort of the whole
thread, whichever way it is sorted."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, exists, func, insert, or_, select, text
from sqlalchemy.orm import aliased

from comments import services
from comments.extensions import db
from comments.models import Article, Comment, CommentStatus, utcnow

TOP_LEVEL = 3_000  # a viral story's thread: planners pick differently for a handful of rows
PER_PAGE = 50


@pytest.fixture
def big_thread(app: Flask, article: str, make_user) -> str:
    """``TOP_LEVEL`` top-level comments with replies under some, many sharing a timestamp (so
    the order's tie-break on id is exercised), on a site of other stories, and with the
    statistics a live database has."""
    author = make_user("Prolific")
    with app.app_context():
        for i in range(200):
            services.create_article(f"story-{i}", f"Story {i}", f"https://news.example/{i}")
        article_id = db.session.scalar(select(Article.id).where(Article.key == article))
        start = utcnow() - timedelta(days=1)

        def row(i: int, parent: int | None = None) -> dict[str, Any]:
            return {
                "article_id": article_id,
                "author_id": author,
                "parent_id": parent,
                "root_id": parent,
                "depth": 1 if parent else 0,
                "body": f"comment {i}",
                "body_html": f"<p>comment {i}</p>",
                # every third comment shares its predecessor's second
                "status": CommentStatus.WITHDRAWN if i % 97 == 0 else CommentStatus.PUBLISHED,
                "created_at": start + timedelta(seconds=i - i % 3),
                "version": 1,
            }

        db.session.execute(insert(Comment), [row(i) for i in range(TOP_LEVEL)])
        parents = db.session.scalars(
            select(Comment.id)
            .where(Comment.article_id == article_id, Comment.status == CommentStatus.PUBLISHED)
            .limit(200)
        ).all()
        db.session.execute(insert(Comment), [row(TOP_LEVEL + k, p) for k, p in enumerate(parents)])
        services.recount({article_id})  # written around posting: counted as the CLI would
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return article


def _read_page(app: Flask, key: str, sort: str = "oldest") -> tuple[dict, list[tuple[str, Any]]]:
    """Read page 1 as the API does, for a reader who is not signed in; return the page and
    every statement it sent, with its parameters."""
    captured: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        captured.append((statement, parameters))

    with app.test_request_context():
        article = services.get_article(key)
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            page = services.read_thread(article, None, 1, PER_PAGE, sort)
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
    return page, captured


def _top_level_page(app: Flask, key: str, sort: str) -> tuple[list[int], str, Any]:
    """Read page 1 as the API does; return its top-level ids and the statement (with its
    parameters) that selected them."""
    page, captured = _read_page(app, key, sort)
    ids = [c["id"] for c in page["comments"]]
    (statement, params) = [
        (s, p) for s, p in captured if "LIMIT" in s and "parent_id IS NULL" in s
    ][0]
    return ids, statement, params


def _plan(app: Flask, statement: str, params: Any) -> list[str]:
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            if db.engine.dialect.name == "postgresql":
                cur.execute("EXPLAIN " + statement, params)
                return [r[0] for r in cur.fetchall()]
            cur.execute("EXPLAIN QUERY PLAN " + statement, params)
            return [r[-1] for r in cur.fetchall()]
        finally:
            raw.close()


def _plan_of(app: Flask, statement: Any, params: dict[str, Any]) -> tuple[str, list[str]]:
    """A Core statement as the app's engine sends it with ``params`` (expanding IN lists
    rendered, parameters in the driver's style), and its plan."""
    with app.app_context():
        compiled = statement.compile(db.engine)
    state = compiled.construct_expanded_state(params)
    bound = state.positional_parameters if compiled.positional else state.parameters
    return state.statement, _plan(app, state.statement, bound)


@pytest.mark.parametrize("sort", ["oldest", "newest"])
def test_a_thread_page_reads_its_index_in_order_and_sorts_nothing(
    app: Flask, big_thread: str, sort: str
) -> None:
    ids, statement, params = _top_level_page(app, big_thread, sort)

    with app.app_context():
        order = (
            (Comment.created_at, Comment.id)
            if sort == "oldest"
            else (Comment.created_at.desc(), Comment.id.desc())
        )
        expected = db.session.scalars(
            select(Comment.id)
            .where(
                Comment.parent_id.is_(None),
                Comment.status == CommentStatus.PUBLISHED,
            )
            .order_by(*order)
            .limit(PER_PAGE)
        ).all()
    # the page a reader sees: the first 50 visible top-level comments, ties broken by id
    assert ids == expected

    plan = _plan(app, statement, params)
    text_of_plan = "\n".join(plan)
    assert "ix_comments_article_top_created" in text_of_plan, text_of_plan
    if _dialect(app) == "postgresql":
        assert not any("Sort" in line for line in plan), text_of_plan
        assert plan[0].lstrip().startswith("Limit"), text_of_plan
    else:
        assert not any("TEMP B-TREE" in line for line in plan), text_of_plan


def _dialect(app: Flask) -> str:
    with app.app_context():
        return db.engine.dialect.name


def test_the_look_for_a_readers_own_comments_searches_their_comments_not_the_thread(
    app: Flask, big_thread: str, make_user
) -> None:
    """A signed-in reader is served everyone's page when none of their comments shows in
    the thread (services.sees_what_everyone_sees): that look-up reads the reader's own
    comments by the author index, not the viral thread's thousands."""
    readers = [make_user(f"Reader{i}") for i in range(300)]
    with app.app_context():
        # A site's other readers, a few comments each on the other stories.
        stories = db.session.scalars(select(Article.id).where(Article.key != big_thread)).all()
        when = utcnow() - timedelta(hours=1)
        db.session.execute(
            insert(Comment),
            [
                {"article_id": stories[i % len(stories)], "author_id": readers[i % 300],
                 "depth": 0, "body": "x", "body_html": "<p>x</p>",
                 "status": CommentStatus.PUBLISHED, "created_at": when, "version": 1}
                for i in range(1_500)
            ],
        )  # fmt: skip
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        article_id = db.session.scalar(select(Article.id).where(Article.key == big_thread))
    _, plan = _plan_of(
        app, services._OWN_SHOWN, {"author_id": readers[0], "article_id": article_id}
    )
    assert "ix_comments_author_created_status" in "\n".join(plan), plan


def test_a_queue_pages_author_counts_search_the_author_index(
    app: Flask, big_thread: str, make_user
) -> None:
    """The author records' id lists (moderation.services._among_ids) stay index searches:
    on SQLite a boolean-typed condition is sent as "... IN (...) = 1", which no index
    answers (a full scan of every comment on each queue page)."""
    from moderation import services as moderation

    readers = [make_user(f"Counted{i}") for i in range(20)]
    statement, plan = _plan_of(app, moderation._COMMENT_COUNTS, {"ids": readers})
    text_of_plan = "\n".join(plan)
    assert "ix_comments_author_created_status" in text_of_plan, text_of_plan
    if _dialect(app) == "sqlite":
        assert plan[0].startswith("SEARCH comments"), text_of_plan
    else:
        assert "= ANY" in statement and "Seq Scan on comments" not in text_of_plan, text_of_plan


def test_a_thread_pages_count_reads_only_the_threads_unpublished_top_level_comments(
    app: Flask, big_thread: str
) -> None:
    """total_top_level is the article's counter plus the unpublished top-level comments
    that still show; those are read from their own partial index, not the thread's
    thousands. The total is what counting the thread would give."""
    page, captured = _read_page(app, big_thread)
    total = page["total_top_level"]
    with app.app_context():
        article = services.get_article(big_thread)
        reply = aliased(Comment)
        counted = db.session.scalar(
            select(func.count()).where(
                Comment.article_id == article.id,
                Comment.parent_id.is_(None),
                or_(
                    Comment.status == CommentStatus.PUBLISHED,
                    exists().where(
                        reply.root_id == Comment.id, reply.status == CommentStatus.PUBLISHED
                    ),
                ),
            )
        )
    withdrawn = len(range(0, TOP_LEVEL, 97))  # with no replies under them: not shown
    assert total == counted == TOP_LEVEL - withdrawn
    [(statement, params)] = [(s, p) for s, p in captured if "count(" in s.lower()]
    plan = "\n".join(_plan(app, statement, params))
    assert "ix_comments_article_top_unpublished" in plan, plan
    assert "ix_comments_article_top_created" not in plan, plan


def test_a_pages_replies_are_searched_by_their_top_level_comments_in_any_plan(
    app: Flask, big_thread: str
) -> None:
    """The replies of a page's top-level comments are found on (article, root) by both, in
    the plan PostgreSQL makes for any values too (its generic plan, used from a prepared
    statement's sixth run): with the ids as a list of parameters that plan searched by
    article alone and filtered every comment of the thread."""
    page, captured = _read_page(app, big_thread)
    assert any(c["replies"] for c in page["comments"])  # the page has replies to find
    [(statement, params)] = [(s, p) for s, p in captured if "root_id" in s and "LIMIT" not in s
                             and "count(" not in s.lower()]  # fmt: skip
    if _dialect(app) == "sqlite":
        plan = "\n".join(_plan(app, statement, params))
        assert "ix_comments_article_root (article_id=? AND root_id=?)" in plan, plan
        return
    # PREPARE it with $n parameters, as psycopg does from a statement's sixth run, and
    # explain the plan PostgreSQL makes for any values.
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    from psycopg import sql as psycopg_sql

    prepared = re.sub(r"%\((\w+)\)s", positional, statement)
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("SET plan_cache_mode = force_generic_plan")
            cur.execute("PREPARE replies AS " + prepared)
            values = psycopg_sql.SQL(", ").join(psycopg_sql.Literal(params[n]) for n in names)
            cur.execute(psycopg_sql.SQL("EXPLAIN EXECUTE replies ({})").format(values))
            plan = "\n".join(r[0] for r in cur.fetchall())
        finally:
            raw.rollback()
            raw.close()
    [search] = [line for line in plan.splitlines() if "on comments" in line]
    assert "ix_comments_article_root" in search, plan
    assert "(article_id = $1) AND (root_id = ANY ($2))" in plan, plan
