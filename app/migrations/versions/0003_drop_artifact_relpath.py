"""artifacts: drop relpath (the routes build every path from the job's folder and the kind)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Where each kind of artifact lives in its job's folder (as worker/attempt.py writes them).
RELPATHS = {
    "policy": "policy.safetensors",
    "best_policy": "best/policy.safetensors",
    "checkpoint": "checkpoints/last.pt",
}


def upgrade() -> None:
    # Batch mode: SQLite drops a column by copying the table; PostgreSQL gets a plain DROP COLUMN.
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.drop_column("relpath")


def downgrade() -> None:
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("relpath", sa.String(length=255), server_default="", nullable=False))
    artifacts = sa.table("artifacts", sa.column("kind", sa.String), sa.column("relpath", sa.String))
    for kind, relpath in RELPATHS.items():
        op.execute(artifacts.update().where(artifacts.c.kind == kind).values(relpath=relpath))
