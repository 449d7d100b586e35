"""comments vacuumed after thousands of changes, not a fifth of the table

Moderators work the pending queue oldest first, so every decision leaves a dead row version
exactly where the queue's next page starts reading, in the (status, held_reason, created)
index. PostgreSQL's autovacuum waits by default for dead rows to reach a fifth of the table:
200,000 on a site of a million comments. After about 59,000 decisions (a busy day on such a
site, or this benchmark's repeated runs) the queue's first page fell from about 250 to about
90 requests/s with a p99 of 370 to 510 ms, and a VACUUM (2 s) gave back the 260 requests/s.
The comments table is now vacuumed after 5,000 changed rows whatever its size, and analysed
after 2% of it changes. SQLite has no vacuum to schedule: nothing to do there.

Revision ID: 7d2f4a6c8e10
Revises: 4e7a1c9b2d60
Create Date: 2026-12-06 22:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '7d2f4a6c8e10'
down_revision = '4e7a1c9b2d60'
branch_labels = None
depends_on = None

_SETTINGS = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "5000",
    "autovacuum_analyze_scale_factor": "0.02",
}


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        settings = ", ".join(f"{name} = {value}" for name, value in _SETTINGS.items())
        op.execute(f"ALTER TABLE comments SET ({settings})")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE comments RESET ({', '.join(_SETTINGS)})")
