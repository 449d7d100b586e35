"""What reading the hot thread costs signed-in readers while the thread keeps changing: after
each change (a post, an edit, a decision, on any worker) every reader's next read misses the
cached page of the version before.

    .venv/bin/python bench/changing_thread_reads.py                 # the seeded SQLite file
    .venv/bin/python bench/changing_thread_reads.py --db postgresql://postgres@127.0.0.1:5432/parley_bench

It signs in ``--readers`` bench readers, then ``--changes`` times bumps the hot story's version
in the database (as another worker's post would) and has each reader, then one reader who is
not signed in, read the first page (per_page=100) through the WSGI app, no HTTP. It prints
the CPU per signed-in read (median over the changes), how many reads rendered a page (SELECTs
of the thread's comments), and how many of the readers have comments of their own there.
A SQLite file is copied first, so the seeded one is left as it was.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from inprocess import SEEDED, app_on, database


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", default=str(SEEDED), help="a seeded SQLite file or postgresql:// URL")
    p.add_argument("--readers", type=int, default=25)
    p.add_argument("--changes", type=int, default=40)
    args = p.parse_args(argv)
    with database(args.db) as url:
        print(measure(url, args.readers, args.changes))
    return 0


def measure(url: str, readers: int, changes: int) -> str:
    app = app_on(url)
    import seed
    from sqlalchemy import bindparam, event, text

    from comments.extensions import db

    path = f"/api/v1/articles/{seed.HOT_KEY}/comments?per_page=100"
    clients = []
    for n in range(readers):
        client = app.test_client()
        token = client.get("/api/v1/auth/session").get_json()["csrf_token"]
        signin = client.post(
            "/api/v1/auth/signin",
            headers={"X-CSRFToken": token},
            json={"email": f"reader{20000 + n}@bench.example", "password": seed.BENCH_PASSWORD},
        )
        if signin.status_code != 200:
            raise SystemExit(f"sign-in failed: {signin.get_json()}")
        clients.append(client)
    anonymous = app.test_client()
    with app.app_context():
        engine = db.engine
        own = db.session.execute(
            text(
                "SELECT count(DISTINCT c.author_id) FROM comments c JOIN users u "
                "ON u.id = c.author_id JOIN articles a ON a.id = c.article_id "
                "WHERE a.key = :key AND u.email IN :emails AND c.status IN "
                "('published', 'pending')"
            ).bindparams(bindparam("emails", expanding=True)),
            {"key": seed.HOT_KEY,
             "emails": [f"reader{20000 + n}@bench.example" for n in range(readers)]},
        ).scalar()  # fmt: skip
    renders = []

    def count(conn, cursor, statement, *rest) -> None:
        if "parent_id IS NULL" in statement and "LIMIT" in statement:  # a page's roots
            renders.append(1)

    def bump() -> None:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE articles SET version = version + 1 WHERE key = :key"),
                {"key": seed.HOT_KEY},
            )

    for client in clients:  # warm: every reader has read once
        assert client.get(path).status_code == 200
    per_read = []
    event.listen(engine, "before_cursor_execute", count)
    for _ in range(changes):
        bump()
        t = time.process_time()
        for client in clients:
            assert client.get(path).status_code == 200
        per_read.append((time.process_time() - t) / readers * 1000)
        assert anonymous.get(path).status_code == 200
    event.remove(engine, "before_cursor_execute", count)
    return (
        f"signed-in first-page read after each change: {statistics.median(per_read):.2f} ms CPU "
        f"at the median (min {min(per_read):.2f}), {len(renders)} renders for "
        f"{changes * (readers + 1)} reads ({readers} readers and one not signed in, {changes} "
        f"changes); {own} of the readers have comments in the thread"
    )


if __name__ == "__main__":
    sys.exit(main())
