"""The outbox of connection changes requested of GMC.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 05:13:34.834898
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connection_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_request_id", sa.String(length=36), nullable=False),
        sa.Column("gmc_number", sa.String(length=7), nullable=False),
        sa.Column("designated_body_code", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=4), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("in_flight_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("return_code", sa.String(length=10), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("gmc_request_id", sa.String(length=100), nullable=True),
        sa.Column("resend_of", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resend_of"], ["connection_request.id"], name=op.f("fk_connection_request_resend_of_connection_request")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_request")),
        sa.UniqueConstraint("client_request_id", name=op.f("uq_connection_request_client_request_id")),
    )
    with op.batch_alter_table("connection_request", schema=None) as batch_op:
        batch_op.create_index("ix_connection_request_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_connection_request_gmc_number"), ["gmc_number"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("connection_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_request_gmc_number"))
        batch_op.drop_index("ix_connection_request_due")

    op.drop_table("connection_request")
