"""What the in-process read benchmarks share (changing_thread_reads.py, big_thread_reads.py):
the database to run on, and the app on it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = pathlib.Path(__file__).resolve().parent
SEEDED = pathlib.Path(tempfile.gettempdir()) / "parley-bench-1000000.sqlite3"


@contextlib.contextmanager
def database(db: str) -> Iterator[str]:
    """A URL for ``db``: a postgresql:// URL as it is; a seeded SQLite file copied to a
    scratch file first, so that the seeded one is left as it was."""
    if db.startswith(("postgresql://", "postgres://")):
        yield db
        return
    if not os.path.exists(db):
        raise SystemExit(f"no seeded database at {db}: run bench/seed.py")
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / "reads.sqlite3"
        shutil.copyfile(db, copy)
        yield f"sqlite:///{copy}"


def app_on(url: str) -> Any:
    """The app (wsgi.app) on ``url``, rate limits off, this checkout's code first on the path
    (so that a copy of the script in an older checkout measures that checkout)."""
    sys.path[:0] = [str(ROOT), str(BENCH)]
    os.environ.update(
        PARLEY_DATABASE_URL=url,
        PARLEY_SECRET_KEY="in-process-bench-not-a-secret",
        PARLEY_RATELIMIT_ENABLED="false",
    )
    import wsgi

    return wsgi.app
