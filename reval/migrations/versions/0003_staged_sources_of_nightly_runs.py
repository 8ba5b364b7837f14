"""Staging for the fetches of a nightly run, read by its reconciliation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 05:35:36.393940
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staged_source",
        sa.Column("sync_run_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("fetched", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("doctors", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["sync_run_id"], ["sync_run.id"], name=op.f("fk_staged_source_sync_run_id_sync_run")),
        sa.PrimaryKeyConstraint("sync_run_id", "source", "key", name=op.f("pk_staged_source")),
    )
    op.create_table(
        "staged_tis_person",
        sa.Column("sync_run_id", sa.Integer(), nullable=False),
        sa.Column("tis_person_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sync_run_id"], ["sync_run.id"], name=op.f("fk_staged_tis_person_sync_run_id_sync_run")
        ),
        sa.PrimaryKeyConstraint("sync_run_id", "tis_person_id", name=op.f("pk_staged_tis_person")),
    )


def downgrade() -> None:
    op.drop_table("staged_tis_person")
    op.drop_table("staged_source")
