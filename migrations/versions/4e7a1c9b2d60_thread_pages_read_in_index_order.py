"""thread pages read in index order

A thread's page of top-level comments is `WHERE article_id = ? AND parent_id IS NULL ORDER
BY created_at, id LIMIT ?`. PostgreSQL does not take `parent_id IS NULL` as fixing the
second column of (article_id, parent_id, created_at), so it read every top-level comment
of the thread and sorted them for each page: a cost that grows with the thread. A partial
index on (article_id, created_at, id) WHERE parent_id IS NULL gives it the page's order, and
it stops at the page's end (newest first reads it backwards). SQLite already read the old
index in order; the partial index is smaller there too, since replies are not in it. The
old index served only these two statements (the page and its count).

Revision ID: 4e7a1c9b2d60
Revises: 8c3d5e7f9a1b
Create Date: 2026-12-02 06:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4e7a1c9b2d60'
down_revision = '8c3d5e7f9a1b'
branch_labels = None
depends_on = None

_TOP = sa.text("parent_id IS NULL")


def upgrade():
    # Plain index operations, not batch mode: on SQLite batch mode may copy and drop the
    # table, and with foreign keys on that would cascade.
    op.create_index(
        'ix_comments_article_top_created',
        'comments',
        ['article_id', 'created_at', 'id'],
        unique=False,
        postgresql_where=_TOP,
        sqlite_where=_TOP,
    )
    op.drop_index('ix_comments_article_parent_created', table_name='comments')


def downgrade():
    op.create_index(
        'ix_comments_article_parent_created',
        'comments',
        ['article_id', 'parent_id', 'created_at'],
        unique=False,
    )
    op.drop_index('ix_comments_article_top_created', table_name='comments')
