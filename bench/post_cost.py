"""What one post costs inside the app, without HTTP, gunicorn or wrk: a steadier measure than
requests/s on a shared machine, for comparing two versions of the posting path.

    .venv/bin/python bench/post_cost.py                    # CPU ms per post (min and median)
    .venv/bin/python bench/post_cost.py --callgrind        # instructions per post (valgrind)
    .venv/bin/python bench/post_cost.py --db /tmp/parley-bench-1000000.sqlite3 --posts 300
    .venv/bin/python bench/post_cost.py --db postgresql://postgres@127.0.0.1:5432/parley_bench

It copies a seeded SQLite database (bench/seed.py; `http_bench.py` leaves one in /tmp) to a
scratch file, or uses a seeded PostgreSQL database as it is (the posts land on its live-story,
as the HTTP benchmark's do), signs in one bench reader, and sends the benchmark's own
300-character posts (markup, two links, random words: bench/http_bench.py) through the WSGI app
as a gunicorn worker would, after 30 warm-up posts that also fill the author's repeat-check
window.

``--queue`` measures the moderator's pending-queue first page instead (GET
/api/v1/moderation/queue?kind=pending as mod@bench.example), the same way; ``--decide`` a
moderator's approval of a held comment (POST /api/v1/moderation/comments/<id>/decision, the
oldest classifier-held comments, one each, as the HTTP benchmark's decide case picks them).

``--stub screen|repeat|sanitize|service`` (repeatable) replaces that part with a constant, so
the difference from a run without it is what the part costs (``service``: everything after
loading the user and the article; the request then ends in a 422).

CPU time (time.process_time over batches of 25) moves with whatever else the machine runs;
under ``--callgrind`` the script re-runs itself in valgrind, counting instructions only
while the measured posts run (``callgrind_control -i on/off``): the same code and database
give the same count within about 1%, whatever the other core is doing. Prints one line.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = pathlib.Path(__file__).resolve().parent
WARMUP = 30
BATCH = 25


def post_body(words: list[str], k: int) -> str:
    """A post shaped like the HTTP benchmark's (see lua_script in http_bench.py)."""
    rnd = random.Random(k)

    def phrase(n: int) -> str:
        return " ".join(rnd.choice(words) for _ in range(n))

    return (
        f'{phrase(9)} <b>{phrase(3)}</b> {phrase(8)}. See <a href="https://news.example/report/'
        f'c-{k}">{phrase(2)}</a> and https://example.org/data?id={k} {phrase(6)}.\n\n'
        f"<i>{phrase(4)}</i> {phrase(9)}"
    )


STUBS = ("screen", "repeat", "sanitize", "service")


def apply_stubs(stubs: list[str]) -> None:
    """Replace parts of the posting path with constants (measuring only; see --stub)."""
    import comments.services as posting
    from comments.errors import ParleyError
    from comments.screening import Screening

    if "screen" in stubs:
        scores = {"insult": 0.01}
        posting._screen = lambda body, author, article: Screening(
            "publish", None, None, scores, 0.01, "stub", None
        )
    if "sanitize" in stubs:
        posting.sanitize = lambda body: body
    if "service" in stubs:

        def refuse(*args: object, **kwargs: object) -> None:
            raise ParleyError("stubbed", "The posting service is stubbed out.", 422)

        posting.post_comment = refuse


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def measure(
    db: str,
    posts: int,
    email: str,
    under_callgrind: bool,
    stubs: list[str],
    kind: str = "post",
    base: int | None = None,
) -> dict[str, float]:
    """CPU ms per request over batches; ``kind`` post, queue (the moderator's pending-queue
    first page) or decide (approving a held comment)."""
    sys.path[:0] = [str(ROOT), str(BENCH)]
    url = db if is_postgres(db) else f"sqlite:///{db}"
    os.environ.update(
        PARLEY_DATABASE_URL=url,
        PARLEY_SECRET_KEY="post-cost-bench-not-a-secret",
        PARLEY_RATELIMIT_ENABLED="false",
    )
    if "repeat" in stubs:
        os.environ["PARLEY_DUPLICATE_WINDOW_MINUTES"] = "0"
    import seed
    from http_bench import POST_WORDS
    from werkzeug.test import EnvironBuilder

    import wsgi

    app = wsgi.app
    apply_stubs(stubs)
    client = app.test_client()
    token = client.get("/api/v1/auth/session").get_json()["csrf_token"]
    signin = client.post(
        "/api/v1/auth/signin",
        headers={"X-CSRFToken": token},
        json={"email": email, "password": seed.BENCH_PASSWORD},
    )
    if signin.status_code != 200:
        raise SystemExit(f"sign-in as {email} failed: {signin.get_json()}")
    token = signin.get_json()["csrf_token"]
    cookie = "; ".join(f"{c.key}={c.value}" for c in client._cookies.values())
    words = list(POST_WORDS)
    if base is None:
        base = int(time.time() * 1000) % 10**9
    if kind == "decide":
        from http_bench import pick_ids

        _, pending = pick_ids(url, 0, WARMUP + posts)
        if len(pending) < WARMUP + posts:
            raise SystemExit(f"only {len(pending)} held comments left: reseed")
        environs = [
            EnvironBuilder(
                path=f"/api/v1/moderation/comments/{comment_id}/decision",
                method="POST",
                data=json.dumps({"action": "approve"}),
                headers={
                    "Content-Type": "application/json",
                    "Cookie": cookie,
                    "X-CSRFToken": token,
                },
            ).get_environ()
            for comment_id in pending
        ]
    elif kind == "queue":
        environs = [
            EnvironBuilder(
                path="/api/v1/moderation/queue",
                query_string="kind=pending",
                headers={"Cookie": cookie},
            ).get_environ()
            for _ in range(WARMUP + posts)
        ]
    else:
        environs = [
            EnvironBuilder(
                path=f"/api/v1/articles/{seed.LIVE_KEY}/comments",
                method="POST",
                data=json.dumps({"body": post_body(words, base + k)}),
                headers={
                    "Content-Type": "application/json",
                    "Cookie": cookie,
                    "X-CSRFToken": token,
                },
            ).get_environ()
            for k in range(WARMUP + posts)
        ]
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        statuses.append(status)

    def send(environ: dict) -> None:
        b"".join(app(environ, start_response))

    for environ in environs[:WARMUP]:
        send(environ)
    statuses.clear()
    control = ["callgrind_control", "-i"]
    if under_callgrind:
        subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    batches = []
    busy_before, cpu_before = busy_seconds(), time.process_time()
    for i in range(WARMUP, WARMUP + posts, BATCH):
        t = time.process_time()
        for environ in environs[i : i + BATCH]:
            send(environ)
        batches.append((time.process_time() - t) / len(environs[i : i + BATCH]) * 1000)
    others = None
    if busy_before is not None:
        own = time.process_time() - cpu_before
        others = max(0.0, busy_seconds() - busy_before - own) / posts * 1000
    if under_callgrind:
        subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)
    expected = ("200",) if kind != "post" else ("422",) if "service" in stubs else ("201", "202")
    unexpected = [s for s in statuses if not s.startswith(expected)]
    if unexpected:
        raise SystemExit(f"unexpected answers: {sorted(set(unexpected))}")
    held = sum(s.startswith("202") for s in statuses)
    return {
        "min_ms": min(batches),
        "median_ms": statistics.median(batches),
        "held": held,
        "others_ms": others,
    }


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (all but idle and iowait), from
    /proc/stat; None off Linux. Less this process's own, it is what the database server
    (and anything else running) spent meanwhile."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:8]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    seeded = pathlib.Path(tempfile.gettempdir()) / "parley-bench-1000000.sqlite3"
    p.add_argument("--db", default=str(seeded),
                   help="a seeded SQLite file (copied) or a postgresql:// URL")  # fmt: skip
    p.add_argument("--posts", type=int, default=200)
    p.add_argument("--email", default="reader30000@bench.example", help="the posting reader")
    p.add_argument("--callgrind", action="store_true", help="count instructions (valgrind)")
    p.add_argument("--stub", action="append", default=[], choices=STUBS,
                   help="replace a part of posting with a constant (repeatable)")  # fmt: skip
    p.add_argument("--queue", action="store_true",
                   help="the moderator's pending-queue first page instead of a post")  # fmt: skip
    p.add_argument("--decide", action="store_true",
                   help="a moderator approving a held comment instead of a post")  # fmt: skip
    p.add_argument("--base", type=int, default=None,
                   help="number the posts from this (the same words every run: for comparing two "
                        "versions on a copied SQLite file; default from the clock, so posts never "
                        "repeat an earlier run's on PostgreSQL)")  # fmt: skip
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.queue and args.decide:
        p.error("--queue or --decide, not both")
    kind = "queue" if args.queue else "decide" if args.decide else "post"
    if kind != "post":
        if args.stub:
            p.error("--stub prices parts of a post only")
        import seed

        args.email = seed.MODERATOR_EMAIL
    what = {"post": "post", "queue": "queue page", "decide": "decision"}[kind]
    pg = is_postgres(args.db)
    if not pg and not os.path.exists(args.db):
        raise SystemExit(f"no seeded database at {args.db}: run bench/seed.py or http_bench.py")
    if args._child:  # in valgrind, on the parent's scratch copy (or the PostgreSQL database)
        measure(args.db, args.posts, args.email, True, args.stub, kind, args.base)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        # A SQLite file is copied so runs start alike; on PostgreSQL the posts land on the
        # seeded database's live-story, as the HTTP benchmark's do.
        db = args.db
        if not pg:
            db = str(pathlib.Path(tmp) / "posts.sqlite3")
            shutil.copyfile(args.db, db)
        if args.callgrind:
            if shutil.which("valgrind") is None:
                raise SystemExit("needs valgrind (apt-get install valgrind)")
            out = pathlib.Path(tmp) / "callgrind.out"
            cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                   f"--callgrind-out-file={out}", sys.executable, __file__, "--_child",
                   "--callgrind", "--db", db, "--posts", str(args.posts),
                   "--email", args.email, *(f"--stub={x}" for x in args.stub),
                   *([f"--base={args.base}"] if args.base is not None else []),
                   *([f"--{kind}"] if kind != "post" else [])]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True)
            totals = next(ln for ln in out.read_text().splitlines() if ln.startswith("totals:"))
            per_post = int(totals.split()[1]) / args.posts
            stubbed = f", stubbed: {', '.join(args.stub)}" if args.stub else ""
            print(f"{per_post / 1e6:.2f}M instructions per {what} ({args.posts} requests, "
                  f"callgrind{stubbed})")  # fmt: skip
            return 0
        result = measure(db, args.posts, args.email, False, args.stub, kind, args.base)
    held = "" if kind != "post" else f", {result['held']} held"
    others = result["others_ms"]
    rest = "" if others is None else f"; other processes (the database server) {others:.2f} ms"
    print(
        f"CPU per {what}: min {result['min_ms']:.2f} ms, median {result['median_ms']:.2f} ms "
        f"over batches of {BATCH} ({args.posts} requests{held}){rest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
