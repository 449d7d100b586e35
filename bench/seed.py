"""Seed a Parley database at newsroom scale for the HTTP benchmark.

    .venv/bin/python bench/seed.py --db /tmp/parley-bench.sqlite3            # SQLite file
    .venv/bin/python bench/seed.py --db postgresql://postgres@127.0.0.1:5432/parley_bench
    .venv/bin/python bench/seed.py --db ... --comments 10000 --articles 100 --users 500 \\
        --pending 1000

Defaults: 1,000,000 comments over 10,000 articles and 50,000 users, one hot article
(key ``hot-story``) of 500 comments (400 top-level, 100 replies), 100,000 comments pending
review (held_reason 'classifier'). Everything else is published.

The schema is built by the app's own migrations (``flask_migrate.upgrade()``), then rows go in
with SQLAlchemy Core executemany in 10k batches (SQLite) or COPY (PostgreSQL). The target
database is emptied first: a SQLite file is deleted, a PostgreSQL database has its ``public``
schema dropped and recreated - give it a database of its own.

Accounts (one argon2 hash of BENCH_PASSWORD shared by all of them):
  user 1          mod@bench.example      moderator
  users 2..N      reader<i>@bench.example  reader
Articles: id 1 ``hot-story`` (the viral thread), id 2 ``live-story`` (where the benchmark
posts, so the hot thread stays the same size across runs), ids 3.. ``article-<i>``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_PASSWORD = "bench-password-2026"
MODERATOR_EMAIL = "mod@bench.example"
HOT_KEY = "hot-story"
LIVE_KEY = "live-story"
SIGNALS = ("insult", "offensive", "hate", "spam", "legal_advice")
BATCH = 10_000

WORDS = (  # noqa: SIM905
    "council budget jobs durham savings union court ruling policy vote local school "
    "hospital transport housing plan decision report minister evidence figures week "
    "people town community office staff agree disagree think question answer point "
    "article story read fair wrong right year money cost service public private"
).split()


def model_version() -> str:
    try:
        manifest = json.loads((ROOT / "moderation" / "models" / "signals.json").read_text())
        return str(manifest["version"])
    except Exception:  # noqa: BLE001 - a label only
        return "bench-seed"


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def sqlalchemy_url(db: str) -> str:
    """What PARLEY_DATABASE_URL takes: a postgresql:// URL or a sqlite:/// URL for a path."""
    if is_postgres(db) or db.startswith("sqlite:"):
        return db
    return "sqlite:///" + str(pathlib.Path(db).resolve())


def sqlite_path(url: str) -> pathlib.Path:
    return pathlib.Path(url[len("sqlite:///") :])


def make_app(url: str):
    from comments import create_app

    return create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "bench-seed", "ENV": "development", "TESTING": False}
    )


def reset_database(url: str) -> None:
    if is_postgres(url):
        import psycopg

        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
    else:
        path = sqlite_path(url)
        for suffix in ("", "-wal", "-shm", "-journal"):
            p = pathlib.Path(str(path) + suffix)
            if p.exists():
                p.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)


def text_body(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."


def scores_for(rng: random.Random, pending: bool) -> tuple[dict[str, float], float]:
    scores = {s: round(rng.random() * 0.3, 4) for s in SIGNALS}
    if pending:
        scores["insult"] = round(0.55 + rng.random() * 0.4, 4)
    # the rule-breaking score: highest signal linked to a rule (insult, offensive, hate, spam)
    score = max(scores[s] for s in ("insult", "offensive", "hate", "spam"))
    return scores, score


def plan_comments(args: argparse.Namespace, rng: random.Random):
    """Yield comment rows (dicts with every column) in id order, ids from 1."""
    now = datetime.now(UTC).replace(microsecond=0)
    version = model_version()
    n_total = args.comments
    hot_top, hot_replies = args.hot_top, args.hot_replies
    n_hot = hot_top + hot_replies
    n_rest = n_total - n_hot
    if n_rest < 0:
        raise SystemExit("--comments must be at least the hot thread's size")
    n_articles_rest = max(1, args.articles - 2)  # articles 3..A hold the rest
    n_readers = args.users - 1
    # Pending comments: spread evenly over the non-hot comments.
    pending_every = (n_rest / args.pending) if args.pending else None
    next_pending = 0.0
    pending_left = args.pending

    # Old comments first (spread over the last year), the hot thread in the last hour.
    span = timedelta(days=365).total_seconds()
    cid = 0

    def row(article_id, parent, depth, created, status) -> dict[str, Any]:
        nonlocal cid
        cid += 1
        body = text_body(rng, rng.randint(15, 40))
        pend = status == "pending"
        scores, score = scores_for(rng, pend)
        return {
            "id": cid,
            "article_id": article_id,
            "author_id": 2 + rng.randrange(n_readers),
            "parent_id": parent["id"] if parent else None,
            "root_id": (parent["root_id"] or parent["id"]) if parent else None,
            "depth": min(parent["depth"] + 1, 6) if parent else 0,
            "body": body,
            "body_html": f"<p>{body}</p>",
            "status": status,
            "held_reason": "classifier" if pend else None,
            "scores": scores,
            "score": score,
            "model_version": version,
            # held comments carry their explanation, as the app stores it when it holds one
            "explanation": [
                {
                    "signal": "insult",
                    "term": body.split()[0].lower(),
                    "weight": 0.4,
                    "spans": [[0, len(body.split()[0])]],
                }
            ]
            if pend
            else None,
            "created_at": created,
            "edited_at": None,
            "deleted_at": None,
            "version": 1,
        }

    # The rest, article by article (so replies reference earlier comments of the same thread).
    per_article = n_rest // n_articles_rest
    extra = n_rest % n_articles_rest
    done = 0
    for a in range(n_articles_rest):
        article_id = 3 + a
        count = per_article + (1 if a < extra else 0)
        tops: list[dict[str, Any]] = []
        for _ in range(count):
            created = (
                now - timedelta(days=1) - timedelta(seconds=span * (1 - done / max(1, n_rest)))
            )
            status = "published"
            if pending_every is not None and pending_left > 0 and done >= next_pending:
                status = "pending"
                pending_left -= 1
                next_pending += pending_every
            parent = rng.choice(tops) if tops and rng.random() < 0.2 else None
            r = row(article_id, parent, 0, created, status)
            if parent is None:
                tops.append(r)
            done += 1
            yield r

    # The hot thread: 400 top-level in the last hour, 100 replies (some replies to replies).
    hot: list[dict[str, Any]] = []
    start = now - timedelta(hours=1)
    for i in range(hot_top):
        r = row(1, None, 0, start + timedelta(seconds=i * 5), "published")
        hot.append(r)
        yield r
    replies: list[dict[str, Any]] = []
    for j in range(hot_replies):
        if replies and j % 4 == 3:
            parent = replies[rng.randrange(len(replies))]
        else:
            parent = hot[(j * 7) % len(hot)]
        created = max(parent["created_at"], start + timedelta(seconds=hot_top * 5)) + timedelta(
            seconds=j + 1
        )
        r = row(1, parent, 0, created, "published")
        replies.append(r)
        yield r


def user_rows(args: argparse.Namespace, password_hash: str):
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    yield {
        "id": 1,
        "email": MODERATOR_EMAIL,
        "display_name": "Bench Moderator",
        "display_name_key": "bench moderator",
        "password_hash": password_hash,
        "role": "moderator",
        "created_at": created,
        "session_version": 1,
        "has_sanctions": False,
    }
    for i in range(2, args.users + 1):
        yield {
            "id": i,
            "email": f"reader{i}@bench.example",
            "display_name": f"Reader {i}",
            "display_name_key": f"reader {i}",
            "password_hash": password_hash,
            "role": "reader",
            "created_at": created + timedelta(seconds=i),
            "session_version": 1,
            "has_sanctions": False,
        }


def article_rows(args: argparse.Namespace):
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(days=370)
    names = {1: (HOT_KEY, "A story that went viral"), 2: (LIVE_KEY, "The live blog")}
    for i in range(1, args.articles + 1):
        key, title = names.get(i, (f"article-{i}", f"Story number {i}"))
        yield {
            "id": i,
            "key": key,
            "title": title,
            "url": f"https://news.example/{key}",
            "is_open": True,
            "auto_close_days": None,
            "closed_at": None,
            "created_at": created + timedelta(minutes=i),
            "version": 1,
            # Counted once the comments are in (recount_all).
            "published_count": 0,
            "published_top_level_count": 0,
        }


def batches(rows, size: int = BATCH):
    batch = []
    for r in rows:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ------------------------------------------------------------------------------ loaders


def load_core(engine, table, rows) -> int:
    """SQLAlchemy Core executemany, 10k rows a batch, one transaction a batch."""
    from sqlalchemy import insert

    n = 0
    stmt = insert(table)
    with engine.begin() as conn:
        for batch in batches(rows):
            conn.execute(stmt, batch)
            n += len(batch)
    return n


def row_counts(conn: Any, hot_article_id: int) -> dict[str, int]:
    """What a seeded database holds: the figures the benchmark reports its scale by."""
    from sqlalchemy import text

    def count(sql: str, **params: Any) -> int:
        return conn.execute(text(sql), params).scalar()

    return {
        "comments": count("SELECT count(*) FROM comments"),
        "pending": count("SELECT count(*) FROM comments WHERE status = 'pending'"),
        "users": count("SELECT count(*) FROM users"),
        "articles": count("SELECT count(*) FROM articles"),
        "hot_comments": count(
            "SELECT count(*) FROM comments WHERE article_id = :a", a=hot_article_id
        ),
    }


def _copy_value(v: Any) -> Any:
    if isinstance(v, (dict, list)):  # JSON columns
        return json.dumps(v)
    return v


def load_copy(url: str, table, rows) -> int:
    """PostgreSQL COPY through psycopg's cursor.copy (text format, psycopg adapts values)."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    columns = [c.name for c in table.columns]
    n = 0
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        with cur.copy(sql) as copy:
            for r in rows:
                copy.write_row([_copy_value(r[c]) for c in columns])
                n += 1
        conn.commit()
    return n


def seed(args: argparse.Namespace) -> dict[str, Any]:
    url = sqlalchemy_url(args.db)
    pg = is_postgres(url)
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    reset_database(url)
    app = make_app(url)
    timings: dict[str, float] = {}
    with app.app_context():
        import flask_migrate
        from sqlalchemy import text

        from comments.auth import hash_password
        from comments.extensions import db
        from comments.services import recount_all

        flask_migrate.upgrade()
        timings["migrate_s"] = time.monotonic() - t0
        password_hash = hash_password(BENCH_PASSWORD)
        tables = db.metadata.tables
        engine = db.engine

        def load(name, rows):
            t = time.monotonic()
            n = load_copy(url, tables[name], rows) if pg else load_core(engine, tables[name], rows)
            timings[f"{name}_s"] = round(time.monotonic() - t, 1)
            print(f"  {name}: {n:,} rows in {timings[f'{name}_s']} s", file=sys.stderr)
            return n

        if pg:
            # JSON goes through COPY as text; dicts are dumped in _copy_value.
            pass
        load("users", user_rows(args, password_hash))
        load("articles", article_rows(args))
        load("comments", plan_comments(args, rng))

        t = time.monotonic()
        with engine.begin() as conn:
            # Each article's counters, from its comments: what posting keeps up one by one.
            recount_all(conn)
        timings["counters_s"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        with engine.begin() as conn:
            if pg:
                for name in ("users", "articles", "comments"):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"(SELECT COALESCE(MAX(id), 1) FROM {name}))"
                        )
                    )
        if pg:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        timings["analyze_s"] = round(time.monotonic() - t, 1)
        with engine.connect() as conn:
            counts = row_counts(conn, hot_article_id=1)
        db.engine.dispose()
    if not pg:
        # Fold the WAL into the main file so the benchmark starts from a clean file.
        import sqlite3

        with contextlib.closing(sqlite3.connect(sqlite_path(url))) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    timings["total_s"] = round(time.monotonic() - t0, 1)
    info = {"database": "postgresql" if pg else "sqlite", "url": url, "counts": counts, **timings}
    print(f"seeded in {timings['total_s']} s: {counts}", file=sys.stderr)
    return info


def add_scale_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--comments", type=int, default=1_000_000)
    p.add_argument("--articles", type=int, default=10_000)
    p.add_argument("--users", type=int, default=50_000)
    p.add_argument("--pending", type=int, default=100_000)
    p.add_argument("--hot-top", type=int, default=400, help="hot thread's top-level comments")
    p.add_argument("--hot-replies", type=int, default=100, help="hot thread's replies")
    p.add_argument("--seed", type=int, default=6, help="random seed")


def check_scale(args: argparse.Namespace) -> None:
    if args.articles < 3:
        raise SystemExit("--articles must be at least 3 (hot, live, and the rest)")
    if args.users < 10:
        raise SystemExit("--users must be at least 10")
    if args.pending > args.comments - args.hot_top - args.hot_replies:
        raise SystemExit("--pending can't exceed the non-hot comments")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", required=True, help="SQLite file path or postgresql:// URL")
    add_scale_arguments(p)
    args = p.parse_args(argv)
    check_scale(args)
    os.environ.pop("PARLEY_DATABASE_URL", None)
    info = seed(args)
    print(json.dumps(info, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
