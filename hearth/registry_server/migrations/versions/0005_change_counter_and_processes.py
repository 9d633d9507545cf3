"""A change counter bumped in every audited write's transaction, and a heartbeat row per live server process.

The counter lets another process's cache notice every committed write (the newest audit id does not: a slow
writer's lower id can commit after a faster writer's higher one). The process rows let a second server on the
same database see the first, and refuse to start without a shared `--public-url`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 07:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    changes = op.create_table(
        "registry_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(changes, [{"id": 1, "counter": 0}])
    op.create_table(
        "registry_processes",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("listen", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("public_url", sa.String(length=1000), nullable=False, server_default=""),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registry_processes")
    op.drop_table("registry_changes")
