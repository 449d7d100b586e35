"""The Alembic migrations build exactly the schema the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from comments.extensions import db


def test_migrated_schema_matches_models(app) -> None:
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_sqlite_pragmas(app) -> None:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite pragmas")
    with app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_sanctions_flag_migration_marks_sanctioned_accounts_and_keeps_rows(tmp_path) -> None:
    """The revision that adds users.has_sanctions sets it for accounts with a sanction (a
    warning too), and keeps every row, going up and coming back down. Run on a SQLite file of
    its own: the shared test database can't be taken back to an older revision; the backfill is
    one portable UPDATE."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from comments import create_app
    from tests.conftest import base_config

    app = create_app(base_config(f"sqlite:///{tmp_path / 'old.sqlite3'}", tmp_path))
    with app.app_context():
        upgrade(revision="5b8e2f0c41d7")
        with db.engine.begin() as conn:
            for uid, name in ((1, "mod"), (2, "warned"), (3, "banned"), (4, "clean")):
                conn.execute(
                    text(
                        "INSERT INTO users (id, email, display_name, display_name_key,"
                        " password_hash, role, created_at, session_version) VALUES"
                        " (:id, :email, :name, :name, 'x', 'reader', CURRENT_TIMESTAMP, 1)"
                    ),
                    {"id": uid, "email": f"{name}@example.com", "name": name},
                )
            rule = conn.execute(text("SELECT id FROM house_rules LIMIT 1")).scalar_one()
            for uid, kind in ((2, "warning"), (3, "ban")):
                conn.execute(
                    text(
                        "INSERT INTO sanctions (user_id, kind, rule_id, reason, moderator_id,"
                        " created_at) VALUES (:uid, :kind, :rule, 'r', 1, CURRENT_TIMESTAMP)"
                    ),
                    {"uid": uid, "kind": kind, "rule": rule},
                )
        upgrade()
        with db.engine.connect() as conn:
            flags = dict(conn.execute(text("SELECT id, has_sanctions FROM users")).all())
            sanctions = conn.execute(text("SELECT count(*) FROM sanctions")).scalar_one()
        downgrade(revision="5b8e2f0c41d7")
        with db.engine.connect() as conn:
            after_downgrade = conn.execute(text("SELECT count(*) FROM sanctions")).scalar_one()
            columns = [row[1] for row in conn.execute(text("PRAGMA table_info(users)"))]
        db.engine.dispose()
    assert flags == {1: False, 2: True, 3: True, 4: False}
    # Nothing lost on the way: rebuilding users on SQLite (Alembic's batch mode) with foreign
    # keys on would have deleted every sanction, on the way up or down.
    assert sanctions == 2 and after_downgrade == 2
    assert "has_sanctions" not in columns


def test_postgresql_vacuums_comments_after_thousands_of_changes(app) -> None:
    """A queue worked oldest first leaves its dead rows where the next page reads: the
    comments table must not wait for a fifth of itself to change (revision 7d2f4a6c8e10)."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL's autovacuum")
        options = db.session.execute(
            db.text("SELECT reloptions FROM pg_class WHERE relname = 'comments'")
        ).scalar_one()
    assert set(options) == {
        "autovacuum_vacuum_scale_factor=0",
        "autovacuum_vacuum_threshold=5000",
        "autovacuum_analyze_scale_factor=0.02",
    }


def test_counters_migration_counts_existing_threads(tmp_path) -> None:
    """The revision that gives articles their counters counts the threads already there,
    and comes back down without losing a row. (A SQLite file of its own, as above.)"""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from comments import create_app
    from tests.conftest import base_config, counters_vs_rows

    app = create_app(base_config(f"sqlite:///{tmp_path / 'old.sqlite3'}", tmp_path))
    with app.app_context():
        upgrade(revision="7d2f4a6c8e10")
        with db.engine.begin() as conn:
            for aid in (1, 2):
                conn.execute(
                    text(
                        "INSERT INTO articles (id, key, title, url, is_open, created_at, version)"
                        " VALUES (:id, :key, 't', 'https://news.example/', true,"
                        " CURRENT_TIMESTAMP, 1)"
                    ),
                    {"id": aid, "key": f"story-{aid}"},
                )
            rows = [  # (id, article, parent, status)
                (1, 1, None, "published"), (2, 1, 1, "published"), (3, 1, None, "withdrawn"),
                (4, 1, 3, "published"), (5, 1, None, "pending"), (6, 2, None, "deleted"),
            ]  # fmt: skip
            for cid, aid, parent, status in rows:
                conn.execute(
                    text(
                        "INSERT INTO comments (id, article_id, parent_id, root_id, depth, body,"
                        " body_html, status, created_at, version) VALUES (:id, :a, :p, :p,"
                        " :d, 'x', '<p>x</p>', :s, CURRENT_TIMESTAMP, 1)"
                    ),
                    {"id": cid, "a": aid, "p": parent, "d": 0 if parent is None else 1,
                     "s": status},
                )  # fmt: skip
        upgrade()
        with db.engine.connect() as conn:
            counters = counters_vs_rows(conn)
        downgrade(revision="7d2f4a6c8e10")
        with db.engine.connect() as conn:
            comments = conn.execute(text("SELECT count(*) FROM comments")).scalar_one()
            columns = [row[1] for row in conn.execute(text("PRAGMA table_info(articles)"))]
        db.engine.dispose()
    assert counters == {"story-1": ((3, 1), (3, 1)), "story-2": ((0, 0), (0, 0))}
    assert comments == 6 and "published_count" not in columns
