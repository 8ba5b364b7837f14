"""What makes a sync robust: who holds a run, when a staged list was fetched, rejected records'
values, and the TIS people Reval could never take.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rejected_record") as batch_op:
        batch_op.add_column(sa.Column("value", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
    with op.batch_alter_table("sync_run") as batch_op:
        batch_op.add_column(sa.Column("holder", sa.String(length=200), nullable=True))
    with op.batch_alter_table("staged_source") as batch_op:
        batch_op.add_column(sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "rejected_tis_person",
        sa.Column("tis_person_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("gmc_number", sa.String(length=7), nullable=False),
        sa.Column("owners", sa.JSON(), nullable=False),
        sa.Column("sync_run_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sync_run_id"], ["sync_run.id"], name=op.f("fk_rejected_tis_person_sync_run_id_sync_run")
        ),
        sa.PrimaryKeyConstraint("tis_person_id", name=op.f("pk_rejected_tis_person")),
    )
    with op.batch_alter_table("rejected_tis_person") as batch_op:
        batch_op.create_index(batch_op.f("ix_rejected_tis_person_gmc_number"), ["gmc_number"], unique=False)


def downgrade() -> None:
    op.drop_table("rejected_tis_person")
    with op.batch_alter_table("staged_source") as batch_op:
        batch_op.drop_column("fetched_at")
    with op.batch_alter_table("sync_run") as batch_op:
        batch_op.drop_column("holder")
    with op.batch_alter_table("rejected_record") as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("value")
