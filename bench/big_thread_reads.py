"""What an uncached thread page and the front page cost as threads grow: a viral story's
thread runs to tens of thousands of comments, and every change to it (a post, an edit, a
decision) makes its cached pages stale, so its pages are rendered again and again.

    .venv/bin/python bench/big_thread_reads.py                 # the seeded SQLite file (copied)
    .venv/bin/python bench/big_thread_reads.py --db postgresql://postgres@127.0.0.1:5432/parley_bench

For each ``--sizes`` (default 500, 5,000 and 50,000 comments) it adds, once, a story
``big-thread-<size>`` to the seeded database with that many comments (four in five
top-level, the rest replies; one in thirty withdrawn, one in fifty held), has the app count
them into the articles' counters where the checkout has them, then ``--reads``
times bumps the story's version (as another worker's change would) and reads its first page
(per_page=100) through the WSGI app as a reader who is not signed in: each read renders
the page. It prints the median milliseconds (wall clock; the database server's time
included) per read, and the same for the front page (the newest 30 stories with their
comment counts). Beside that recount it uses the API and plain SQL only, so the same script
measures an older checkout on the same database. On PostgreSQL the stories stay in the
database for the next run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from inprocess import SEEDED, app_on, database


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", default=str(SEEDED), help="a seeded SQLite file or postgresql:// URL")
    p.add_argument("--sizes", default="500,5000,50000", help="thread sizes, comma-separated")
    p.add_argument("--reads", type=int, default=20)
    args = p.parse_args(argv)
    with database(args.db) as url:
        for line in measure(url, [int(s) for s in args.sizes.split(",")], args.reads):
            print(line)
    return 0


def add_thread(conn, size: int) -> str:
    """The story ``big-thread-<size>`` with its comments, unless it is there already."""
    from sqlalchemy import text

    key = f"big-thread-{size}"
    if conn.execute(text("SELECT 1 FROM articles WHERE key = :k"), {"k": key}).first():
        return key
    now = datetime.now(UTC).replace(microsecond=0)
    conn.execute(
        text(
            "INSERT INTO articles (key, title, url, is_open, created_at, version) "
            "VALUES (:k, :k, :u, true, :at, 1)"
        ),
        {"k": key, "u": f"https://news.example/{key}", "at": now - timedelta(days=1)},
    )
    article_id = conn.execute(text("SELECT id FROM articles WHERE key = :k"), {"k": key}).scalar()
    author = conn.execute(text("SELECT min(id) FROM users")).scalar()
    insert = text(
        "INSERT INTO comments (article_id, author_id, parent_id, root_id, depth, body, "
        "body_html, status, held_reason, created_at, version) VALUES (:a, :author, :p, :p, "
        ":d, :b, :h, :s, :why, :at, 1)"
    )
    top = size * 4 // 5
    start = now - timedelta(hours=20)

    def row(i: int, parent: int | None) -> dict:
        status = "withdrawn" if i % 30 == 7 else "pending" if i % 50 == 3 else "published"
        return {"a": article_id, "author": author, "p": parent, "d": 0 if parent is None else 1,
                "b": f"comment {i}", "h": f"<p>comment {i}</p>", "s": status,
                "why": "classifier" if status == "pending" else None,
                "at": start + timedelta(seconds=i)}  # fmt: skip

    for i in range(0, top, 5_000):
        conn.execute(insert, [row(j, None) for j in range(i, min(top, i + 5_000))])
    roots = (
        conn.execute(
            text("SELECT id FROM comments WHERE article_id = :a ORDER BY id LIMIT :n"),
            {"a": article_id, "n": size - top},
        )
        .scalars()
        .all()
    )
    conn.execute(insert, [row(top + k, parent) for k, parent in enumerate(roots)])
    return key


def measure(url: str, sizes: list[int], reads: int) -> list[str]:
    app = app_on(url)
    from sqlalchemy import text

    from comments.extensions import db

    with app.app_context():
        engine = db.engine
    with engine.begin() as conn:
        keys = [add_thread(conn, size) for size in sizes]
    from comments import services

    if hasattr(services, "recount"):  # a checkout whose articles count their comments
        with app.app_context():
            services.recount({services.get_article(key).id for key in keys})
            db.session.commit()
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    client = app.test_client()

    def timed(path: str, key: str | None) -> float:
        times = []
        for _ in range(reads):
            if key is not None:
                with engine.begin() as conn:
                    conn.execute(
                        text("UPDATE articles SET version = version + 1 WHERE key = :k"),
                        {"k": key},
                    )
            t = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200, response.status_code
        return statistics.median(times)

    lines = [f"{'thread size':>12} {'first page, uncached ms':>24} {'total_top_level':>16}"]
    for size, key in zip(sizes, keys, strict=True):
        path = f"/api/v1/articles/{key}/comments?per_page=100"
        ms = timed(path, key)
        total = client.get(path).get_json()["total_top_level"]
        lines.append(f"{size:>12,} {ms:>24.1f} {total:>16,}")
    lines.append(f"front page (30 newest stories with their counts): {timed('/', None):.1f} ms")
    return lines


if __name__ == "__main__":
    sys.exit(main())
