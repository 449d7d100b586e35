"""The benchmark's seeder still fills the app's schema: it writes rows column by column (COPY
on PostgreSQL), so a new column in the models must reach it too, or `make bench` breaks."""

from __future__ import annotations

import os
import pathlib
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import counters_vs_rows

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def seed_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import seed

    return seed


def _seed_and_count(seed, url: str) -> dict[str, int]:
    seed.main(
        ["--db", url, "--comments", "300", "--articles", "5", "--users", "20", "--pending", "30"]
        + ["--hot-top", "40", "--hot-replies", "10"]
    )
    from comments.config import database_uri

    engine = create_engine(database_uri(seed.sqlalchemy_url(url), "."))
    try:
        with engine.connect() as conn:
            hot = conn.execute(text("SELECT id FROM articles WHERE key = 'hot-story'")).scalar_one()
            # Every article's counters hold what its comments say (and the hot thread has
            # published comments to count: a seed of zeros would pass otherwise).
            counters = counters_vs_rows(conn)
            assert all(held == rows for held, rows in counters.values()), counters
            assert counters["hot-story"][0][0] > 0
            return seed.row_counts(conn, hot_article_id=hot)
    finally:
        engine.dispose()


def test_seeds_a_small_sqlite_database(seed_module, tmp_path) -> None:
    counts = _seed_and_count(seed_module, str(tmp_path / "bench.sqlite3"))
    assert counts == {
        "comments": 300, "pending": 30, "users": 20, "articles": 5, "hot_comments": 50,
    }  # fmt: skip


def test_seeds_a_small_postgresql_database(seed_module) -> None:
    url = os.environ.get("PARLEY_TEST_DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("PostgreSQL: set PARLEY_TEST_DATABASE_URL")
    import psycopg

    # A database of its own: seeding drops and rebuilds the public schema.
    server, _, _ = url.rpartition("/")
    name = f"parley_seed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        counts = _seed_and_count(seed_module, f"{server}/{name}")
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert counts == {
        "comments": 300, "pending": 30, "users": 20, "articles": 5, "hot_comments": 50,
    }  # fmt: skip
