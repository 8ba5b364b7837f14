"""The changes feed other systems read, and archiving doctors nobody holds.

``doctor_change`` holds one row per change to what a designated body (or, with no body, the
national Unassigned view) sees of a doctor. Its position is (``xact_id``, ``id``): on
PostgreSQL ``xact_id`` is the writing transaction's id, so a reader serves only rows of
transactions older than every one still running (its snapshot's xmin) and resumes after the
last position it served without skipping a row a slower transaction commits later; SQLite
serializes writers, so there it is 0 and ``id`` alone orders the rows.
``doctor_change_pruned`` remembers the latest position pruning has deleted: a cursor before it
may have missed rows, and is refused.
``doctor.archived_on``: the day a sync archived the doctor (no GMC connection, no TIS person,
no change for a long time); archived doctors have no visibility rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    # xid8 as a plain number (it is 64 bits, epoch included, so it never wraps).
    transaction_id = sa.text("(pg_current_xact_id()::text::bigint)") if postgresql else sa.text("0")
    op.create_table(
        "doctor_change",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("xact_id", sa.BigInteger(), server_default=transaction_id, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gmc_number", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("designated_body_code", sa.String(length=32), nullable=True),
        sa.Column("queue", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("visible", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doctor_change")),
        sqlite_autoincrement=True,  # an id is never used twice, even after the newest rows are pruned
    )
    op.create_index("ix_doctor_change_body_position", "doctor_change", ["designated_body_code", "xact_id", "id"])
    op.create_index("ix_doctor_change_position", "doctor_change", ["xact_id", "id"])
    op.create_index("ix_doctor_change_changed_at", "doctor_change", ["changed_at"])
    op.create_table(
        "doctor_change_pruned",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("xact_id", sa.BigInteger(), nullable=False),
        sa.Column("change_id", sa.BigInteger(), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doctor_change_pruned")),
    )
    with op.batch_alter_table("doctor") as batch_op:
        batch_op.add_column(sa.Column("archived_on", sa.Date(), nullable=True))
        batch_op.create_index(
            "ix_doctor_archived",
            ["gmc_number"],
            unique=False,
            sqlite_where=sa.text("archived_on IS NOT NULL"),
            postgresql_where=sa.text("archived_on IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("doctor") as batch_op:
        batch_op.drop_index("ix_doctor_archived")
        batch_op.drop_column("archived_on")
    op.drop_table("doctor_change_pruned")
    op.drop_index("ix_doctor_change_changed_at", table_name="doctor_change")
    op.drop_index("ix_doctor_change_position", table_name="doctor_change")
    op.drop_index("ix_doctor_change_body_position", table_name="doctor_change")
    op.drop_table("doctor_change")
