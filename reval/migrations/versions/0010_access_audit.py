"""The access audit: one row for each view of doctors' personal data (a doctor's page or record,
their history, an export), so information governance can answer "who saw this doctor, and when".

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 14:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("actor_bodies", sa.JSON(), nullable=False),
        sa.Column("actor_subject", sa.String(length=300), nullable=True),
        sa.Column("entry_point", sa.String(length=10), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("view", sa.String(length=40), nullable=False),
        sa.Column("gmc_number", sa.String(length=7), nullable=True),
        sa.Column("filters", sa.JSON(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_audit")),
    )
    with op.batch_alter_table("access_audit") as batch_op:
        batch_op.create_index("ix_access_audit_recorded_at", ["recorded_at"])
        batch_op.create_index("ix_access_audit_gmc_number_recorded_at", ["gmc_number", "recorded_at"])
        batch_op.create_index("ix_access_audit_actor_name_recorded_at", ["actor_name", "recorded_at"])


def downgrade() -> None:
    op.drop_table("access_audit")
