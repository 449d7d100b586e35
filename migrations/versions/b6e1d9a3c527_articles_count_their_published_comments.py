"""articles count their published comments

A thread page counted the thread's top-level comments, and its article header the thread's
published comments, on every page it rendered: twice the whole thread. A page is rendered
again after every change to its thread, so on a viral thread, where the changes never stop,
a page cost what the thread cost (370 ms for a page of a 182,000-comment thread on
PostgreSQL). The front page and the editors' desk counted every comment on the site for each
view (240 to 340 ms at a million comments). Each article now carries its published comments
and its published top-level comments as two counters, kept by every status change in the
statement that already bumps the thread's version; the few top-level comments that are not
published (held, withdrawn, deleted), which may still show as placeholders, get a partial
index of their own; and the article list reads newest first from an index. Existing threads
are counted here.

Revision ID: b6e1d9a3c527
Revises: 7d2f4a6c8e10
Create Date: 2026-12-08 03:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b6e1d9a3c527'
down_revision = '7d2f4a6c8e10'
branch_labels = None
depends_on = None

_TOP_UNPUBLISHED = sa.text("parent_id IS NULL AND status <> 'published'")


def upgrade():
    # Plain ADD COLUMN and index operations, not batch mode: on SQLite batch mode may copy
    # and drop the table, and with foreign keys on that would cascade.
    for name in ('published_count', 'published_top_level_count'):
        op.add_column('articles', sa.Column(name, sa.Integer(), server_default='0', nullable=False))
    # One pass over the comments, grouped by article (a count for each article would search
    # the comments once per article); articles with no published comment keep their 0.
    op.execute(
        "UPDATE articles SET published_count = counted.published,"
        " published_top_level_count = counted.top_level, version = version + 1"
        " FROM (SELECT article_id, count(*) AS published,"
        " sum(CASE WHEN parent_id IS NULL THEN 1 ELSE 0 END) AS top_level"
        " FROM comments WHERE status = 'published' GROUP BY article_id) AS counted"
        " WHERE counted.article_id = articles.id"
    )
    op.create_index(
        'ix_comments_article_top_unpublished',
        'comments',
        ['article_id'],
        unique=False,
        postgresql_where=_TOP_UNPUBLISHED,
        sqlite_where=_TOP_UNPUBLISHED,
    )
    op.create_index('ix_articles_created', 'articles', ['created_at', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_articles_created', table_name='articles')
    op.drop_index('ix_comments_article_top_unpublished', table_name='comments')
    # Plain DROP COLUMN too (SQLite 3.35+), for the same reason as above.
    op.drop_column('articles', 'published_top_level_count')
    op.drop_column('articles', 'published_count')
