"""Publisher trust levels: the publication policy sends an untrusted publisher's versions to review.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 06:20:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing publishers start untrusted: trust is an admin's decision, never a migration's.
    with op.batch_alter_table("publishers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trust", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                      server_default="untrusted"))


def downgrade() -> None:
    with op.batch_alter_table("publishers", schema=None) as batch_op:
        batch_op.drop_column("trust")
