"""Each body's view of its doctors, stored where it can be indexed, and what queues sort on;
the record of admins' actions and the API's idempotency keys, and whether a request was forced.

``doctor_visibility`` gains the queue and reason each body sees (an admin's hide for that body
applied), so a body's queue is one indexed range instead of a scan of every doctor. ``doctor``
gains what the queues show, sort and search on; existing decisions are marked stale so the
next sync fills those in.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 21:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("doctor") as batch_op:
        batch_op.add_column(sa.Column("submission_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("programme_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("programme_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("programme_end", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("programme_owners", sa.String(length=400), server_default="", nullable=False))
        batch_op.add_column(sa.Column("sort_name", sa.String(length=400), server_default="", nullable=False))
        batch_op.add_column(sa.Column("search_names", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("unassigned", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("connection_request") as batch_op:
        batch_op.add_column(sa.Column("forced", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(
            "ix_connection_request_doctor_body", ["gmc_number", "designated_body_code", "id"], unique=False
        )
    with op.batch_alter_table("doctor_visibility") as batch_op:
        batch_op.add_column(sa.Column("queue", sa.String(length=20), server_default="", nullable=False))
        batch_op.add_column(sa.Column("reason", sa.String(length=40), server_default="", nullable=False))

    op.execute(
        "UPDATE doctor_visibility SET "
        "queue = COALESCE((SELECT queue FROM doctor WHERE doctor.gmc_number = doctor_visibility.gmc_number), ''), "
        "reason = COALESCE((SELECT reason FROM doctor WHERE doctor.gmc_number = doctor_visibility.gmc_number), '')"
    )
    op.execute(
        "UPDATE doctor_visibility SET queue = 'HIDDEN', reason = 'HIDDEN_BY_ADMIN' WHERE EXISTS ("
        "SELECT 1 FROM doctor_hide WHERE doctor_hide.ended_at IS NULL "
        "AND doctor_hide.gmc_number = doctor_visibility.gmc_number "
        "AND doctor_hide.designated_body_code = doctor_visibility.designated_body_code)"
    )
    op.execute(
        "UPDATE doctor SET unassigned = NOT EXISTS ("
        "SELECT 1 FROM doctor_visibility "
        "JOIN designated_body ON designated_body.code = doctor_visibility.designated_body_code "
        "WHERE doctor_visibility.gmc_number = doctor.gmc_number), "
        # The next sync decides everyone again, and with it fills in the columns above.
        "decision_basis = ''"
    )
    op.create_table(
        "admin_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("designated_body_code", sa.String(length=32), nullable=True),
        sa.Column("performed_by", sa.String(length=200), nullable=False),
        sa.Column("performed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_action")),
    )
    op.create_table(
        "api_idempotency_key",
        sa.Column("caller", sa.String(length=300), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key", name=op.f("pk_api_idempotency_key")),
    )
    with op.batch_alter_table("doctor_visibility") as batch_op:
        batch_op.create_index("ix_doctor_visibility_queue", ["designated_body_code", "queue", "reason"], unique=False)
    with op.batch_alter_table("doctor") as batch_op:
        batch_op.create_index(
            "ix_doctor_unassigned",
            ["gmc_number"],
            unique=False,
            sqlite_where=sa.text("unassigned"),
            postgresql_where=sa.text("unassigned"),
        )


def downgrade() -> None:
    op.drop_table("api_idempotency_key")
    op.drop_table("admin_action")
    with op.batch_alter_table("connection_request") as batch_op:
        batch_op.drop_index("ix_connection_request_doctor_body")
        batch_op.drop_column("forced")
    with op.batch_alter_table("doctor") as batch_op:
        batch_op.drop_index("ix_doctor_unassigned")
        for column in (
            "unassigned",
            "search_names",
            "sort_name",
            "programme_owners",
            "programme_end",
            "programme_start",
            "programme_name",
            "submission_date",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("doctor_visibility") as batch_op:
        batch_op.drop_index("ix_doctor_visibility_queue")
        batch_op.drop_column("reason")
        batch_op.drop_column("queue")
