"""users carry a sanctions flag

Posting asked the sanctions table about every author on every post, and a queue page about
all of its authors; nearly all have never been sanctioned. users.has_sanctions is set when a
sanction (a warning too) is imposed, and never cleared, so the lookups run only for accounts
that have had one. Existing sanctions set it here.

Revision ID: 8c3d5e7f9a1b
Revises: 5b8e2f0c41d7
Create Date: 2026-12-01 19:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8c3d5e7f9a1b'
down_revision = '5b8e2f0c41d7'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN, not batch mode: on SQLite batch mode may copy and drop the table,
    # and with foreign keys on, dropping users deletes their sanctions and orphans comments.
    op.add_column(
        'users', sa.Column('has_sanctions', sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.execute("UPDATE users SET has_sanctions = true WHERE id IN (SELECT user_id FROM sanctions)")


def downgrade():
    # Plain DROP COLUMN too (SQLite 3.35+), for the same reason as above.
    op.drop_column('users', 'has_sanctions')
