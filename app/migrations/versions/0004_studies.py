"""studies and their cells; jobs: study_id, cell_id, final_score, mmer, eval_score

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("axes", sa.JSON(), nullable=False),
        sa.Column("seeds", sa.JSON(), nullable=False),
        sa.Column("search", sa.String(length=16), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=True),
        sa.Column("study_seed", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_studies_user_id"), ["user_id"], unique=False)

    op.create_table(
        "study_cells",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "number", name="uq_study_cells_study_number"),
    )
    with op.batch_alter_table("study_cells", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_cells_study_id"), ["study_id"], unique=False)

    # Batch mode: SQLite adds foreign keys by copying the table; PostgreSQL gets ALTER TABLEs.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("study_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("cell_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("final_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("mmer", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("eval_score", sa.Float(), nullable=True))
        batch_op.create_foreign_key(
            "fk_jobs_study_id_studies", "studies", ["study_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_foreign_key(
            "fk_jobs_cell_id_study_cells", "study_cells", ["cell_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(batch_op.f("ix_jobs_study_id"), ["study_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_cell_id"), ["cell_id"], unique=False)
    # Jobs finished before this revision have no stored scores: the API computes them from
    # their points when asked (app/run_scores.py), so nothing is backfilled here.


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_cell_id"))
        batch_op.drop_index(batch_op.f("ix_jobs_study_id"))
        batch_op.drop_constraint("fk_jobs_cell_id_study_cells", type_="foreignkey")
        batch_op.drop_constraint("fk_jobs_study_id_studies", type_="foreignkey")
        batch_op.drop_column("eval_score")
        batch_op.drop_column("mmer")
        batch_op.drop_column("final_score")
        batch_op.drop_column("cell_id")
        batch_op.drop_column("study_id")
    with op.batch_alter_table("study_cells", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_cells_study_id"))
    op.drop_table("study_cells")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_studies_user_id"))
    op.drop_table("studies")
