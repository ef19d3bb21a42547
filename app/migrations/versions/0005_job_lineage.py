"""jobs: parent_id and forked_at_step, the lineage of a forked job

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite adds a foreign key by copying the table (migrations run with its
    # foreign keys off, so the copy cascades nothing); PostgreSQL gets plain ALTERs.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("forked_at_step", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_jobs_parent_id", ["parent_id"])
        batch_op.create_foreign_key(
            "fk_jobs_parent_id_jobs", "jobs", ["parent_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_jobs_parent_id_jobs", type_="foreignkey")
        batch_op.drop_index("ix_jobs_parent_id")
        batch_op.drop_column("forked_at_step")
        batch_op.drop_column("parent_id")
