"""HTTP benchmark for issue 6, "Fast at newsroom scale": Parley under gunicorn, driven by wrk.

    .venv/bin/python bench/http_bench.py                                  # SQLite, 1M comments
    .venv/bin/python bench/http_bench.py --small                          # 10k comments
    .venv/bin/python bench/http_bench.py --postgres postgresql://postgres@127.0.0.1:5432/parley_bench
    .venv/bin/python bench/http_bench.py --reuse ...                      # skip seeding if seeded
    .venv/bin/python bench/http_bench.py --check-plans [--small]          # EXPLAIN only, no load
    .venv/bin/python bench/http_bench.py --scale-compare  # page + post, 10k vs 1M

What it does: seeds the database (bench/seed.py) unless --reuse finds it seeded, prints the
query plans of the app's hot queries (captured from the app's own code, see check_plans),
starts Parley under gunicorn (2 workers on 127.0.0.1, a free port; sync and gthread worker
classes by default), signs in the accounts it needs, then runs each case with wrk for
--duration seconds at --concurrency connections. The ceiling (bench/ceiling_app.py, a fixed
~20 KB JSON document, same gunicorn settings, same wrk) is measured before and after the
cases; fractions use the mean of the two.

Prints a table per worker class and writes bench/results/http-<sqlite|postgresql>.json.
Needs wrk (Debian: apt-get install wrk); it exits 2 with that advice if wrk is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import seed as seeding  # noqa: E402

PYTHON_BIN = pathlib.Path(sys.executable).parent
GUNICORN = str(PYTHON_BIN / "gunicorn")
HOST = "127.0.0.1"
SMALL = {"comments": 10_000, "articles": 100, "users": 500, "pending": 1_000}
BIG = {"comments": 1_000_000, "articles": 10_000, "users": 50_000, "pending": 100_000}
PER_PAGE = 100
LOG_DIR = pathlib.Path(tempfile.gettempdir()) / "parley-bench-logs"  # gunicorn output, kept
SLOW_MS = 5.0
SCAN_MIN_ROWS = 10_000  # a captured SELECT slower than this (median of 5) is flagged
REPORTERS = 60  # signed-in readers who report (one report per reader per comment)
STARTUP_TIMEOUT_S = 90
SIGNIN_TIMEOUT_S = 30
CASES = ("thread", "page", "revalidate", "post", "report", "queue", "decide")
CASE_TITLES = {
    "ceiling": "ceiling: fixed 20 KB JSON",
    "thread": "1 whole hot thread, page by page",
    "page": "2 hot thread, first page",
    "revalidate": "3 first page, If-None-Match (304)",
    "post": "4 post a comment (300 chars)",
    "report": "5 report a comment",
    "queue": "6 pending queue, first page",
    "decide": "7 approve a pending comment",
}
POST_WORDS = (  # noqa: SIM905
    "council budget jobs durham savings union court ruling policy vote local school hospital "
    "transport housing plan decision report minister evidence figures week people town "
    "community office staff agree disagree think question answer point article story fair "
    "wrong right year money cost service public private roads bus train river bridge market "
    "shop pub library park police fire health doctor nurse teacher parent child family "
    "pension tax rent wage price energy water waste recycling planning flood weather "
    "election candidate mayor ward councillor meeting consultation petition protest strike "
    "closure opening investment contract appeal tribunal judge jury verdict sentence "
    "evidence witness statement interview survey result data percentage million thousand"
).split()
BIG_TABLES = ("comments", "users", "reports", "decisions", "audit_log", "notices", "articles")


# ------------------------------------------------------------------------------ helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def code_version() -> dict[str, Any]:
    """The commit measured, and whether app files differ from it (the tree is shared)."""

    def git(*a: str) -> str:
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return r.stdout.strip()

    changed = [
        ln[3:]
        for ln in git("status", "--porcelain").splitlines()
        if ln[3:].startswith(("comments/", "moderation/", "migrations/", "wsgi.py"))
    ]
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "app_files_changed": changed,
    }


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": load,
        "wrk": (
            subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
            or [""]
        )[0]
        if shutil.which("wrk")
        else None,
    }


class Server:
    """A gunicorn process we started, in its own process group, stopped on exit."""

    def __init__(
        self,
        app: str,
        chdir: pathlib.Path,
        env: dict[str, str],
        worker_class: str,
        workers: int,
        threads: int,
        log: pathlib.Path,
    ):
        self.port = free_port()
        cmd = [
            GUNICORN,
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--bind",
            f"{HOST}:{self.port}",
            "--chdir",
            str(chdir),
            "--log-level",
            "warning",
            "--timeout",
            "60",
        ]
        if worker_class == "gthread":
            cmd += ["--threads", str(threads)]
        cmd.append(app)
        self.cmd = cmd
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.proc.returncode}; see {self.log.name}"
                )
            try:
                status, _, _ = request("GET", self.port, path, timeout=5)
                if status < 500:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer within {STARTUP_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def request(
    method: str,
    port: int,
    path: str,
    body: Any = None,
    headers: dict | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload
    finally:
        conn.close()


def cookie_of(headers: dict[str, str]) -> str | None:
    raw = headers.get("set-cookie")
    if not raw:
        return None
    m = re.search(r"(parley_session=[^;]+)", raw)
    return m.group(1) if m else None


def sign_in(port: int, email: str, password: str) -> dict[str, str]:
    """GET the session for a CSRF token, POST signin; returns {'cookie', 'csrf'}."""
    status, headers, body = request("GET", port, "/api/v1/auth/session")
    if status != 200:
        raise RuntimeError(f"GET /auth/session: {status}")
    cookie = cookie_of(headers)
    csrf = json.loads(body)["csrf_token"]
    status, headers, body = request(
        "POST",
        port,
        "/api/v1/auth/signin",
        {"email": email, "password": password},
        {"Cookie": cookie or "", "X-CSRFToken": csrf},
        timeout=SIGNIN_TIMEOUT_S,
    )
    if status != 200:
        raise RuntimeError(f"signin {email}: {status} {body[:200]!r}")
    return {"cookie": cookie_of(headers) or cookie or "", "csrf": json.loads(body)["csrf_token"]}


# ------------------------------------------------------------------------------ wrk

LUA_COMMON = r"""
local threads = {}
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end
n = 0
bad = 0
codes = {}
OFFSET = 0
function init(args)
  OFFSET = tonumber(args[1] or "0")
  if seed_random then seed_random() end
end
ok = {%(ok)s}
function response(status, headers, body)
  if not ok[status] then
    bad = bad + 1
    codes[status] = (codes[status] or 0) + 1
  end
end
function done(summary, latency, requests)
  local b = 0
  local c = {}
  local maxn = 0
  for _, t in ipairs(threads) do
    b = b + (t:get("bad") or 0)
    maxn = math.max(maxn, t:get("n") or 0)
    for k, v in pairs(t:get("codes") or {}) do c[tostring(k)] = (c[tostring(k)] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(c) do table.insert(parts, string.format('"%%s": %%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "p50_us": %%d, ' ..
    '"p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%.1f, "bad": %%d, ' ..
    '"bad_codes": {%%s}, "connect_errors": %%d, "read_errors": %%d, "write_errors": %%d, ' ..
    '"timeouts": %%d, "status_errors": %%d, "maxn": %%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean, b,
    table.concat(parts, ", "), e.connect, e.read, e.write, e.timeout, e.status, maxn))
end
"""


def lua_list(values: list[Any]) -> str:
    return "{" + ",".join(json.dumps(v) for v in values) + "}"


def lua_script(case: str, ctx: dict[str, Any], threads: int) -> str:
    ok = {
        "ceiling": [200],
        "thread": [200],
        "page": [200],
        "revalidate": [304],
        "post": [201, 202],
        "report": [201],
        "queue": [200],
        "decide": [200],
    }[case]
    head = LUA_COMMON % {"ok": ", ".join(f"[{c}] = true" for c in ok)}
    head += f"T = {threads}\n"
    hot = f"/api/v1/articles/{seeding.HOT_KEY}/comments?per_page={PER_PAGE}"
    if case == "ceiling":
        return head + 'wrk.path = "/"\n'
    if case == "page":
        return head + f"wrk.path = {json.dumps(hot)}\n"
    if case == "revalidate":
        return head + (
            f"wrk.path = {json.dumps(hot)}\n"
            f'wrk.headers["If-None-Match"] = {json.dumps(ctx["etag"])}\n'
        )
    if case == "thread":
        paths = [f"{hot}&page={p}" for p in range(1, ctx["pages"] + 1)]
        return (
            head
            + f"paths = {lua_list(paths)}\n"
            + r"""
function request()
  n = n + 1
  return wrk.format("GET", paths[(n - 1) % #paths + 1])
end
"""
        )
    if case == "queue":
        m = ctx["moderator"]
        return head + (
            'wrk.path = "/api/v1/moderation/queue?kind=pending"\n'
            f'wrk.headers["Cookie"] = {json.dumps(m["cookie"])}\n'
        )
    if case == "post":
        sessions = ctx["posters"]
        cookies = [x["cookie"] for x in sessions]
        csrfs = [x["csrf"] for x in sessions]
        path = f"/api/v1/articles/{seeding.LIVE_KEY}/comments"
        # ~300 characters of random words (so the app's near-duplicate check, difflib >= 0.9
        # against the author's recent posts, never fires), with markup and two links.
        return (
            head
            + (
                f"cookies = {lua_list(cookies)}\ncsrfs = {lua_list(csrfs)}\n"
                f"path = {json.dumps(path)}\nrun = {json.dumps(ctx['run_id'])}\n"
                f"words = {lua_list(POST_WORDS)}\n"
            )
            + r"""
function seed_random()
  math.randomseed(os.time() * 16 + tid + OFFSET)
end
local function phrase(k)
  local out = {}
  for j = 1, k do out[j] = words[math.random(#words)] end
  return table.concat(out, " ")
end
function request()
  n = n + 1
  local k = OFFSET + tid + (n - 1) * T
  local i = k % #cookies + 1
  local text = string.format(
    "%s <b>%s</b> %s. See <a href=\"https://news.example/report/%s-%d\">%s</a> and " ..
    "https://example.org/data?id=%d %s.\n\n<i>%s</i> %s",
    phrase(9), phrase(3), phrase(8), run, k, phrase(2), k, phrase(6), phrase(4), phrase(9))
  local body = '{"body": "' .. text:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', '\\n') .. '"}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
    ["Cookie"] = cookies[i], ["X-CSRFToken"] = csrfs[i]}, body)
end
"""
        )
    if case == "report":
        cookies = [s["cookie"] for s in ctx["reporters"]]
        csrfs = [s["csrf"] for s in ctx["reporters"]]
        return (
            head
            + (
                f"cookies = {lua_list(cookies)}\ncsrfs = {lua_list(csrfs)}\n"
                f"ids = {lua_list(ctx['report_ids'])}\n"
            )
            + r"""
-- Request k: comment ids[k // 3], reader k % #cookies. Each comment gets three reports from
-- three different readers (the third hides it pending review); no pair repeats.
function request()
  n = n + 1
  local k = OFFSET + tid + (n - 1) * T
  local c = ids[math.floor(k / 3) % #ids + 1]
  local i = k % #cookies + 1
  return wrk.format("POST", "/api/v1/comments/" .. c .. "/reports",
    {["Content-Type"] = "application/json", ["Cookie"] = cookies[i],
     ["X-CSRFToken"] = csrfs[i]}, '{"rule": "civil"}')
end
"""
        )
    if case == "decide":
        m = ctx["moderator"]
        return (
            head
            + (
                f"cookie = {json.dumps(m['cookie'])}\ncsrf = {json.dumps(m['csrf'])}\n"
                f"ids = {lua_list(ctx['pending_ids'])}\n"
            )
            + r"""
-- Distinct pending ids, thread-interleaved; wraps (then 409s count as errors) if exhausted.
function request()
  n = n + 1
  local k = OFFSET + tid + (n - 1) * T
  local c = ids[k % #ids + 1]
  return wrk.format("POST", "/api/v1/moderation/comments/" .. c .. "/decision",
    {["Content-Type"] = "application/json", ["Cookie"] = cookie, ["X-CSRFToken"] = csrf},
    '{"action": "approve"}')
end
"""
        )
    raise ValueError(case)


def wrk_once(
    case: str, port: int, script: pathlib.Path, seconds: int, offset: int, args: argparse.Namespace
) -> dict[str, Any]:
    cmd = [
        "wrk",
        "-t",
        str(args.wrk_threads),
        "-c",
        str(args.concurrency),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        f"http://{HOST}:{port}",
        "--",
        str(offset),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({proc.returncode}): {proc.stdout[-800:]} {proc.stderr[-800:]}"
        )
    return json.loads(line[len("BENCHJSON ") :])


def summarise(case: str, rounds: list[dict[str, Any]], ctx: dict[str, Any]) -> dict[str, Any]:
    """Sum requests over the rounds; p50 is the median of the rounds' p50s, p99 and max the
    worst round's (wrk's histograms can't be merged)."""
    secs = sum(r["duration_us"] for r in rounds) / 1e6
    reqs = sum(r["requests"] for r in rounds)
    codes: dict[str, int] = {}
    for r in rounds:
        for k, v in r["bad_codes"].items():
            codes[k] = codes.get(k, 0) + v
    sock = {
        k: sum(r[k] for r in rounds)
        for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    }
    out = {
        "case": case,
        "requests": reqs,
        "seconds": round(secs, 2),
        "rps": reqs / secs if secs else 0.0,
        "p50_ms": statistics.median(r["p50_us"] for r in rounds) / 1000,
        "p90_ms": max(r["p90_us"] for r in rounds) / 1000,
        "p99_ms": max(r["p99_us"] for r in rounds) / 1000,
        "max_ms": max(r["max_us"] for r in rounds) / 1000,
        "mean_ms": sum(r["mean_us"] * r["requests"] for r in rounds) / reqs / 1000 if reqs else 0.0,
        "unexpected": sum(r["bad"] for r in rounds) + sum(sock.values()),
        "unexpected_codes": codes,
        "socket_errors": sock,
        "kb_per_response": sum(r["bytes"] for r in rounds) / reqs / 1024 if reqs else 0,
        "rounds_rps": [round(r["requests"] / (r["duration_us"] / 1e6), 1) for r in rounds],
    }
    if case == "thread":
        out["pages"] = ctx["pages"]
        out["thread_reads_per_s"] = out["rps"] / ctx["pages"]
    return out


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, all) clock ticks of the machine's CPUs so far, from /proc/stat; None off Linux.
    Steal is time the hypervisor gave to other guests while this one had work to run."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def run_paired(
    case: str,
    port: int,
    ceiling_port: int | None,
    ctx: dict[str, Any],
    args: argparse.Namespace,
    workdir: pathlib.Path,
) -> dict[str, Any]:
    """Run a case in --rounds slices, each followed by an equal slice of the ceiling app (both
    servers are up; the idle one costs nothing), so the fraction compares like with like on a
    machine whose load changes by the minute."""
    script = workdir / f"{case}.lua"
    script.write_text(lua_script(case, ctx, args.wrk_threads))
    ceiling_script = workdir / "ceiling.lua"
    ceiling_script.write_text(lua_script("ceiling", ctx, args.wrk_threads))
    seconds = max(1, round(args.duration / args.rounds))
    rounds, ceiling_rounds, offset = [], [], 0
    ticks = cpu_ticks()
    for _ in range(args.rounds):
        raw = wrk_once(case, port, script, seconds, offset, args)
        offset += args.wrk_threads * (raw["maxn"] + 1)  # ids used so far are below this
        rounds.append(raw)
        if ceiling_port is not None:
            ceiling_rounds.append(
                wrk_once("ceiling", ceiling_port, ceiling_script, seconds, 0, args)
            )
    out = summarise(case, rounds, ctx)
    # On a shared virtual machine, how much of the case's minute went to other guests: a
    # run with much of it is one to repeat rather than to compare.
    out["steal"] = steal_share(ticks, cpu_ticks())
    if ceiling_rounds:
        c = summarise("ceiling", ceiling_rounds, ctx)
        out["ceiling"] = {k: c[k] for k in ("rps", "p50_ms", "p99_ms", "unexpected", "rounds_rps")}
        out["fraction_of_ceiling"] = out["rps"] / c["rps"] if c["rps"] else 0.0
    return out


# ------------------------------------------------------------------------------ setup of a run


def db_handle(url: str):
    from sqlalchemy import create_engine

    if seeding.is_postgres(url):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(url)


def seeded_counts(url: str) -> dict[str, int] | None:
    from sqlalchemy import text

    try:
        engine = db_handle(url)
        with engine.connect() as conn:
            hot = conn.execute(
                text("SELECT id FROM articles WHERE key = :k"), {"k": seeding.HOT_KEY}
            ).scalar()
            if hot is None:
                return None
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if version != migrations_head():
                print(
                    f"database at migration {version}, app at {migrations_head()}: reseeding",
                    file=sys.stderr,
                )
                return None
            out = seeding.row_counts(conn, hot_article_id=hot)
        engine.dispose()
        return out
    except Exception:  # noqa: BLE001 - no database, no tables: not seeded
        return None


def migrations_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(ROOT / "migrations")).get_current_head()


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in the URL if it does not exist."""
    if not seeding.is_postgres(url):
        return
    import psycopg

    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare(url: str, scale: dict[str, int], reuse: bool) -> dict[str, Any]:
    ensure_database(url)
    counts = seeded_counts(url) if reuse else None
    if (
        counts
        and counts["comments"] >= scale["comments"]
        and counts["users"] == scale["users"]
        and counts["pending"] >= scale["pending"] // 2  # decisions use them up
    ):
        print(f"reusing seeded database: {counts}", file=sys.stderr)
        return {"reused": True, "counts": counts}
    ns = argparse.Namespace(db=url, hot_top=400, hot_replies=100, seed=6, **scale)
    seeding.check_scale(ns)
    print(f"seeding {url} at {scale} ...", file=sys.stderr)
    info = seeding.seed(ns)
    return {"reused": False, **info}


def refresh_statistics(url: str) -> None:
    """Before each case on PostgreSQL, what autovacuum does on a maintained server: ANALYZE,
    and VACUUM too when the server's autovacuum is off.

    Earlier cases add thousands of reports, decisions and audit entries to tables that were
    empty when the seed analysed them; a server whose autovacuum is off (this machine's is:
    /etc/postgresql/15/main/conf.d/90-ci.conf) then plans the queue's reports lookup as a
    scan of an "empty" table. And each approval leaves a dead row version in the pending
    queue's index, where the next queue page starts reading (oldest first): Parley's own
    migration 7d2f4a6c8e10 has autovacuum clear them every 5,000 changed comments, which on
    this server never happens. SQLite's statistics are left as the seed left them."""
    if not seeding.is_postgres(url):
        return
    from sqlalchemy import text

    engine = db_handle(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        vacuum = conn.execute(text("SHOW autovacuum")).scalar() == "off"
        conn.execute(text("VACUUM (ANALYZE)" if vacuum else "ANALYZE"))
    engine.dispose()


def pick_ids(url: str, n_report: int, n_pending: int) -> tuple[list[int], list[int]]:
    """Published comments to report (not by a reporter, not in the hot or live thread) and
    pending comments to decide, oldest first (the queue's order)."""
    from sqlalchemy import text

    engine = db_handle(url)
    with engine.connect() as conn:
        report_ids = list(
            conn.execute(
                text(
                    "SELECT c.id FROM comments c JOIN articles a ON a.id = c.article_id "
                    "WHERE c.status = 'published' AND a.key NOT IN (:hot, :live) "
                    "AND c.author_id > :r AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.comment_id = c.id) "  # noqa: E501
                    "ORDER BY c.id DESC LIMIT :n"
                ),
                {
                    "hot": seeding.HOT_KEY,
                    "live": seeding.LIVE_KEY,
                    "r": REPORTERS + 1,
                    "n": n_report,
                },
            ).scalars()
        )
        pending_ids = list(
            conn.execute(
                text(
                    "SELECT id FROM comments WHERE status = 'pending' AND held_reason = 'classifier' "  # noqa: E501
                    "ORDER BY created_at, id LIMIT :n"
                ),
                {"n": n_pending},
            ).scalars()
        )
    engine.dispose()
    return report_ids, pending_ids


def sign_in_all(port: int) -> dict[str, Any]:
    """Sign in the reporters/posters and the moderator, one at a time (sign-in is argon2 and,
    on SQLite, a write transaction: doing them in parallel only queues them on the lock).
    A failed sign-in is retried twice."""
    pw = seeding.BENCH_PASSWORD

    def one(email: str) -> dict[str, str]:
        for attempt in range(3):
            try:
                return sign_in(port, email, pw)
            except RuntimeError:
                if attempt == 2:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")

    sessions = [one(f"reader{i}@bench.example") for i in range(2, 2 + REPORTERS)]
    return {
        "moderator": one(seeding.MODERATOR_EMAIL),
        "reporters": sessions,
        "posters": sessions,  # every reporter also posts (different cases, no interference)
    }


def whole_thread_probe(port: int, pages: int, n: int = 20) -> dict[str, float]:
    """Unloaded latency of a whole-thread read (all pages, one after another), n times."""
    hot = f"/api/v1/articles/{seeding.HOT_KEY}/comments?per_page={PER_PAGE}"
    times = []
    deadline = time.monotonic() + 60
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        t = time.perf_counter()
        for p in range(1, pages + 1):
            status, _, _ = request("GET", port, f"{hot}&page={p}")
            if status != 200:
                raise RuntimeError(f"thread page {p}: {status}")
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "n": len(times),
        "p50_ms": statistics.median(times),
        "max_ms": times[-1],
    }


def server_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PARLEY_DATABASE_URL": url,
            "PARLEY_SECRET_KEY": "bench-secret-key-not-for-production",
            "PARLEY_RATELIMIT_ENABLED": "false",
            "PARLEY_ENV": "development",
        }
    )
    return env


def run_worker_class(
    url: str,
    worker_class: str,
    cases: list[str],
    args: argparse.Namespace,
    workdir: pathlib.Path,
    scale_label: str,
) -> dict[str, Any]:
    log = LOG_DIR / f"gunicorn-{db_label(url)}-{worker_class}.log"
    log.unlink(missing_ok=True)
    results: dict[str, Any] = {"worker_class": worker_class, "cases": {}}
    threads = args.gthreads

    ceiling = None
    if not args.no_ceiling:
        ceiling = Server("ceiling_app:app", BENCH, dict(os.environ), worker_class, 2, threads, log)
    try:
        if ceiling is not None:
            ceiling.wait_ready("/")
        with Server("wsgi:app", ROOT, server_env(url), worker_class, 2, threads, log) as s:
            s.wait_ready("/api/v1/auth/session")
            hot = f"/api/v1/articles/{seeding.HOT_KEY}/comments?per_page={PER_PAGE}"
            status, headers, body = request("GET", s.port, hot)
            if status != 200:
                raise RuntimeError(f"hot thread: {status}")
            first = json.loads(body)
            pages = max(1, -(-first["total_top_level"] // PER_PAGE))
            ctx: dict[str, Any] = {
                "etag": headers["etag"],
                "pages": pages,
                "run_id": f"{int(time.time())}{worker_class[0]}",
            }
            results["hot_thread"] = {
                "total_top_level": first["total_top_level"],
                "pages": pages,
                "first_page_kb": round(len(body) / 1024, 1),
                "comment_count": first["article"]["comment_count"],
            }
            if any(c in cases for c in ("post", "report", "queue", "decide")):
                t = time.monotonic()
                ctx.update(sign_in_all(s.port))
                results["signin_s"] = round(time.monotonic() - t, 1)
                ctx["report_ids"], ctx["pending_ids"] = pick_ids(url, 30_000, 30_000)
                for case, key in (("report", "report_ids"), ("decide", "pending_ids")):
                    if case in cases and not ctx[key]:
                        print(
                            f"[{worker_class}] nothing left to {case}: skipped (reseed)",
                            file=sys.stderr,
                        )
                        cases = [c for c in cases if c != case]
            if "thread" in cases:
                results["whole_thread_unloaded"] = whole_thread_probe(s.port, pages)
            for case in cases:
                print(f"[{worker_class}] {case} ...", file=sys.stderr)
                refresh_statistics(url)
                # Nothing of the seed's, or an earlier case's, writes left for the disk to
                # write back (a commit's WAL checkpoint waits on fdatasync); a case still
                # pays for its own writes.
                os.sync()
                results["cases"][case] = run_paired(
                    case, s.port, ceiling.port if ceiling else None, ctx, args, workdir
                )
    finally:
        if ceiling is not None:
            ceiling.stop()
    fractions = [r["ceiling"]["rps"] for r in results["cases"].values() if "ceiling" in r]
    if fractions:
        results["ceiling_rps_mean"] = statistics.mean(fractions)
    return results


# ------------------------------------------------------------------------------ query plans


def check_plans(url: str) -> dict[str, Any]:
    """Run the app's own read, post, report, queue and decision code in-process (rolled back),
    capture every SQL statement it sends, then EXPLAIN each one and time each SELECT."""
    from sqlalchemy import event, select

    app = seeding.make_app(url)
    pg = seeding.is_postgres(url)
    captured: list[tuple[str, str, Any]] = []
    state = {"op": ""}
    out: dict[str, Any] = {"ops": {}, "statements": [], "flags": []}

    with app.app_context():
        from comments import services
        from comments.extensions import db
        from comments.models import Comment, CommentStatus, User
        from moderation import services as mod

        engine = db.engine

        def capture(conn, cursor, statement, parameters, context, executemany):
            if not executemany and state["op"]:
                captured.append((state["op"], statement, parameters))

        moderator = db.session.scalar(select(User).where(User.email == seeding.MODERATOR_EMAIL))
        reader = db.session.scalar(select(User).where(User.email == "reader3@bench.example"))
        hot = services.get_article(seeding.HOT_KEY)
        live = services.get_article(seeding.LIVE_KEY)
        pending = db.session.scalar(
            select(Comment)
            .where(Comment.status == CommentStatus.PENDING, Comment.held_reason == "classifier")
            .order_by(Comment.created_at, Comment.id)
            .limit(1)
        )
        published = db.session.scalar(
            select(Comment)
            .where(
                Comment.status == CommentStatus.PUBLISHED,
                Comment.article_id > live.id,
                Comment.author_id != reader.id,
            )
            .order_by(Comment.id.desc())
            .limit(1)
        )
        # warm the classifier so its loading queries are not counted
        from moderation.scoring import get_model

        with app.test_request_context():
            get_model()
        db.session.rollback()
        moderator_id, reader_id, pending_id, published_id = (
            moderator.id,
            reader.id,
            pending.id,
            published.id,
        )
        hot_id, live_key = hot.id, live.key

        event.listen(engine, "before_cursor_execute", capture)
        try:

            def op(name, fn):
                with app.test_request_context():  # warm-up, not captured
                    state["op"] = None
                    fn()
                    db.session.rollback()
                state["op"] = name
                before = len(captured)
                with app.test_request_context():
                    t = time.perf_counter()
                    fn()
                    db.session.flush()  # what the commit would send (audit entries...)
                    ms = (time.perf_counter() - t) * 1000
                    db.session.rollback()
                out["ops"][name] = {
                    "queries": len(captured) - before,
                    "ms_in_process": round(ms, 1),
                }

            op(
                "read_thread page 1",
                lambda: services.read_thread(
                    db.session.get(type(hot), hot_id), None, 1, PER_PAGE, "oldest"
                ),
            )

            def post() -> None:
                # As the posting endpoint does: the author, the article and the author's
                # recent posts in one read (services.read_poster), then the post.
                author = services.read_poster(reader_id, live_key)
                article, recent = services.posting_context(author, live_key)
                services.post_comment(
                    article,
                    author,
                    "A <b>plan</b> check with https://example.org/x and some words.",
                    None,
                    recent=recent,
                )

            op("post_comment", post)
            op(
                "report_comment",
                lambda: mod.report_comment(
                    db.session.get(User, reader_id),
                    db.session.get(Comment, published_id),
                    "civil",
                    None,
                ),
            )
            op("queue pending page 1", lambda: mod.queue("pending", None, None, None, 1, 20))
            op(
                "decide approve",
                lambda: mod.decide_comment(
                    db.session.get(User, moderator_id),
                    db.session.get(Comment, pending_id),
                    "approve",
                    None,
                    None,
                ),
            )
        finally:
            event.remove(engine, "before_cursor_execute", capture)

        seen: set[str] = set()
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            sizes = {}
            for table in BIG_TABLES:
                cur.execute(f"SELECT count(*) FROM {table}")
                sizes[table] = cur.fetchone()[0]
            out["table_rows"] = sizes
            for opname, statement, params in captured:
                key = " ".join(statement.split())
                if key in seen or key.upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
                    continue
                seen.add(key)
                prefix = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
                cur.execute(prefix + statement, params)
                rows = cur.fetchall()
                plan = [r[0] for r in rows] if pg else [r[-1] for r in rows]
                entry: dict[str, Any] = {"op": opname, "sql": key, "plan": plan}
                if key.upper().startswith("SELECT"):
                    times = []
                    for _ in range(5):
                        t = time.perf_counter()
                        cur.execute(statement, params)
                        cur.fetchall()
                        times.append((time.perf_counter() - t) * 1000)
                    entry["median_ms"] = round(statistics.median(times), 3)
                flags = plan_flags(plan, pg, sizes)
                if entry.get("median_ms", 0) >= SLOW_MS:
                    flags.append(f"slow: {entry['median_ms']} ms median")
                if flags:
                    entry["flags"] = flags
                    out["flags"].append({"op": opname, "sql": key[:160], "flags": flags})
                out["statements"].append(entry)
            raw.rollback()
        finally:
            raw.close()
        db.engine.dispose()
    return out


def plan_flags(plan: list[str], pg: bool, sizes: dict[str, int]) -> list[str]:
    """Full scans of tables holding at least SCAN_MIN_ROWS rows (a scan of a near-empty
    table, such as reports right after seeding, is the right plan and is not flagged)."""
    flags = []
    big = "|".join(t for t in BIG_TABLES if sizes.get(t, 0) >= SCAN_MIN_ROWS)
    if not big:
        return flags
    for line in plan:
        if pg:
            m = re.search(rf"Seq Scan on ({big})\b", line)
            if m:
                flags.append(f"Seq Scan on {m.group(1)} ({sizes[m.group(1)]:,} rows)")
        else:
            m = re.search(
                rf"\bSCAN ({big})(?:_\d+)?\b(?: AS \w+)?( USING (?:COVERING )?INDEX \w+)?", line
            )
            if m:
                kind = "full index scan" if m.group(2) else "full table scan"
                flags.append(f"{kind} ({sizes[m.group(1)]:,} rows): {line.strip()}")
    return flags


def print_plans(plans: dict[str, Any], label: str) -> None:
    print(f"\n== Query plans ({label}) ==")
    for name, o in plans["ops"].items():
        print(f"  {name}: {o['queries']} queries, {o['ms_in_process']} ms in-process")
    for e in plans["statements"]:
        print(
            f"\n-- [{e['op']}] {e['sql'][:300]}"
            + (f"  ({e['median_ms']} ms)" if "median_ms" in e else "")
        )
        for line in e["plan"]:
            print(f"     {line}")
        for f in e.get("flags", []):
            print(f"  !! {f}")
    print(f"\ntable rows: {plans.get('table_rows')}")
    print(
        f"flagged statements (full scans of tables >= {SCAN_MIN_ROWS:,} rows, or slower than "
        f"{SLOW_MS} ms): {len(plans['flags'])}"
    )
    for f in plans["flags"]:
        print(f"  !! [{f['op']}] {f['flags']}  <- {f['sql']}")


# ------------------------------------------------------------------------------ output


def fmt_table(res: dict[str, Any]) -> str:
    head = (
        f"{'case':36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'unexpctd':>8} "
        f"{'ceiling/s':>9} {'x ceiling':>9} {'steal':>6}"
    )
    lines = [f"worker class: {res['worker_class']}", head, "-" * len(head)]
    for case, r in res["cases"].items():
        frac = f"{r['fraction_of_ceiling']:9.2f}" if "fraction_of_ceiling" in r else f"{'':>9}"
        ceil = f"{r['ceiling']['rps']:9.0f}" if "ceiling" in r else f"{'':>9}"
        steal = f"{r['steal']:6.0%}" if r.get("steal") is not None else f"{'':>6}"
        lines.append(
            f"{CASE_TITLES[case]:36} {r['rps']:9.0f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
            f"{r['unexpected']:8d} {ceil} {frac} {steal}"
        )
        if case == "thread":
            lines.append(
                f"{'   = whole-thread reads (' + str(r['pages']) + ' pages)':36} {r['thread_reads_per_s']:9.0f}"  # noqa: E501
            )
        if r["unexpected_codes"]:
            lines.append(f"{'':36}   unexpected statuses: {r['unexpected_codes']}")
    if "whole_thread_unloaded" in res:
        w = res["whole_thread_unloaded"]
        lines.append(
            f"whole-thread read, unloaded, one client: p50 {w['p50_ms']:.1f} ms, max {w['max_ms']:.1f} ms (n={w['n']})"  # noqa: E501
        )
    return "\n".join(lines)


def targets(res: dict[str, Any]) -> list[str]:
    c = res["cases"]
    out = []

    def line(ok: bool, text: str) -> None:
        out.append(("  PASS " if ok else "  MISS ") + text)

    if "page" in c and "fraction_of_ceiling" in c["page"]:
        line(
            c["page"]["fraction_of_ceiling"] >= 0.5,
            f"first page >= 50% of ceiling: {c['page']['fraction_of_ceiling']:.0%}",
        )
    if "revalidate" in c and "fraction_of_ceiling" in c["revalidate"]:
        line(
            c["revalidate"]["fraction_of_ceiling"] >= 0.7,
            f"304 >= 70% of ceiling: {c['revalidate']['fraction_of_ceiling']:.0%}",
        )
    if "post" in c:
        line(c["post"]["rps"] >= 600, f"posting >= 600/s: {c['post']['rps']:.0f}/s")
    for k in ("queue", "decide"):
        if k in c:
            line(c[k]["p99_ms"] < 50, f"{k} p99 < 50 ms: {c[k]['p99_ms']:.1f} ms")
    return out


def db_label(url: str) -> str:
    return "postgresql" if seeding.is_postgres(url) else "sqlite"


def pg_size(url: str) -> str | None:
    if not seeding.is_postgres(url):
        p = seeding.sqlite_path(url)
        return f"{p.stat().st_size / 1e6:.0f} MB" if p.exists() else None
    from sqlalchemy import text

    engine = db_handle(url)
    with engine.connect() as conn:
        size = conn.execute(
            text("SELECT pg_size_pretty(pg_database_size(current_database()))")
        ).scalar()
    engine.dispose()
    return size


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--db",
        help="SQLite file or postgresql:// URL (default: a SQLite file in /tmp named by scale)",
    )
    p.add_argument("--postgres", metavar="URL", help="same as --db URL")
    p.add_argument(
        "--small", action="store_true", help="10k comments, 100 articles, 500 users, 1k pending"
    )
    p.add_argument("--comments", type=int)
    p.add_argument("--articles", type=int)
    p.add_argument("--users", type=int)
    p.add_argument("--pending", type=int)
    p.add_argument(
        "--reuse",
        action="store_true",
        help="don't reseed a database that is already seeded at this scale",
    )
    p.add_argument("--duration", type=int, default=15, help="seconds per case (default 15)")
    p.add_argument("--concurrency", type=int, default=8, help="wrk connections (default 8)")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument(
        "--worker-class",
        default="sync,gthread",
        help="sync, gthread or both (default sync,gthread)",
    )
    p.add_argument("--gthreads", type=int, default=4, help="threads per gthread worker (default 4)")
    p.add_argument("--cases", default=",".join(CASES), help=f"subset of {','.join(CASES)}")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="slices per case, each followed by an equal slice of the ceiling (default 3)",
    )
    p.add_argument("--no-ceiling", action="store_true")
    p.add_argument(
        "--check-plans", action="store_true", help="print EXPLAIN for the hot queries and exit"
    )
    p.add_argument("--no-plans", action="store_true", help="skip the EXPLAIN section of a full run")
    p.add_argument(
        "--scale-compare",
        action="store_true",
        help="read-page and post at 10k and at the full scale (1M unless --comments ...)",
    )
    p.add_argument("--small-db", help="database for the 10k side of --scale-compare")
    args = p.parse_args(argv)
    if args.duration < 1 or args.duration > 300 or args.concurrency < 1 or args.concurrency > 256:
        p.error("--duration 1..300, --concurrency 1..256")
    args.wrk_threads = max(1, min(args.wrk_threads, args.concurrency))
    args.rounds = max(1, min(args.rounds, args.duration))

    base = dict(SMALL if args.small else BIG)
    for k in base:
        if getattr(args, k) is not None:
            base[k] = getattr(args, k)
    url_arg = args.postgres or args.db

    def url_for(scale: dict[str, int], explicit: str | None) -> str:
        if explicit:
            return seeding.sqlalchemy_url(explicit)
        return seeding.sqlalchemy_url(f"/tmp/parley-bench-{scale['comments']}.sqlite3")

    if not args.check_plans and shutil.which("wrk") is None:
        print(
            "wrk is not installed. On Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y wrk\n"  # noqa: E501
            "(macOS: brew install wrk). This benchmark installs nothing itself.",
            file=sys.stderr,
        )
        return 2

    RESULTS.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    worker_classes = [w.strip() for w in args.worker_class.split(",") if w.strip()]
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES] + [
        w for w in worker_classes if w not in ("sync", "gthread")
    ]
    if unknown:
        p.error(f"unknown: {unknown}")

    if args.check_plans:
        url = url_for(base, url_arg)
        prepare(url, base, args.reuse)
        plans = check_plans(url)
        print_plans(plans, f"{db_label(url)}, {base['comments']:,} comments")
        return 0

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report: dict[str, Any] = {
        "machine": machine(),
        "date": started,
        "code": code_version(),
        "settings": {
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "wrk_threads": args.wrk_threads,
            "gunicorn_workers": 2,
            "gthread_threads": args.gthreads,
            "per_page": PER_PAGE,
        },
    }

    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        if args.scale_compare:
            small_url = url_for(
                SMALL, args.small_db or (_sibling_db(url_arg, "_10k") if url_arg else None)
            )
            big_url = url_for(base, url_arg)
            report["database"] = db_label(big_url)
            report["scale_compare"] = {}
            for label, url, scale in (("10k", small_url, SMALL), ("full", big_url, base)):
                prep = prepare(url, scale, args.reuse)
                sides = {}
                for wc in worker_classes:
                    sides[wc] = run_worker_class(url, wc, ["page", "post"], args, workdir, label)
                report["scale_compare"][label] = {"scale": scale, "seed": prep, "results": sides}
            print(f"\n== Scale compare ({report['database']}) ==")
            print(
                f"{'worker':8} {'case':28} {'10k req/s':>10} {'full req/s':>11} {'10k p50':>8} {'full p50':>9} {'ratio':>6}"  # noqa: E501
            )
            for wc in worker_classes:
                for case in ("page", "post"):
                    a = report["scale_compare"]["10k"]["results"][wc]["cases"][case]
                    b = report["scale_compare"]["full"]["results"][wc]["cases"][case]
                    print(
                        f"{wc:8} {CASE_TITLES[case]:28} {a['rps']:10.0f} {b['rps']:11.0f} "
                        f"{a['p50_ms']:8.1f} {b['p50_ms']:9.1f} {b['rps'] / a['rps']:6.2f}"
                    )
            print(f"(full = {base['comments']:,} comments; ratio = full req/s / 10k req/s)")
            path = RESULTS / f"http-scale-{report['database']}.json"
        else:
            url = url_for(base, url_arg)
            report["database"] = db_label(url)
            report["scale"] = base
            report["seed"] = prepare(url, base, args.reuse)
            report["db_size"] = pg_size(url)
            if not args.no_plans:
                plans = check_plans(url)
                report["plans"] = plans
                print_plans(plans, f"{report['database']}, {base['comments']:,} comments")
            report["runs"] = {}
            for wc in worker_classes:
                report["runs"][wc] = run_worker_class(url, wc, cases, args, workdir, "main")
            code = report["code"]
            print(
                f"\ncode: {code['commit']} {code['subject']!r}"
                + (
                    f"; uncommitted app changes: {code['app_files_changed']}"
                    if code["app_files_changed"]
                    else ""
                )
            )
            print(
                f"\n== HTTP benchmark: {report['database']}, {base['comments']:,} comments, "
                f"{base['articles']:,} articles, {base['users']:,} users, {base['pending']:,} pending; "  # noqa: E501
                f"{args.concurrency} connections x {args.duration} s; {report['machine']['nproc']} CPUs "  # noqa: E501
                f"({report['machine']['cpu_model']}) =="
            )
            for res in report["runs"].values():
                print()
                print(fmt_table(res))
                t = targets(res)
                res["targets"] = t
                print("targets:")
                print("\n".join(t))
            path = RESULTS / f"http-{report['database']}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


def _sibling_db(url: str, suffix: str) -> str:
    """The same database with a suffix on its name: a PG database or a SQLite file."""
    if seeding.is_postgres(url):
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path=parts.path + suffix))
    path = pathlib.Path(url.replace("sqlite:///", ""))
    return str(path.with_name(path.stem + suffix + path.suffix))


if __name__ == "__main__":
    sys.exit(main())
