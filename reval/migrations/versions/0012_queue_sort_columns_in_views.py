"""A body's queue sorts and filters on its own rows.

``doctor_visibility`` gains the doctor's columns a queue is sorted or filtered by (programme
name, start and end, programme owners, the date of the decision, who last changed the doctor)
and what the body's admin can do at once (``ready``: connect, disconnect or nothing), copied
from the stored decisions here, and after by each decision and each action that changes them.
A page sorted by programme, a date or who changed the doctor, or the Discrepancies' two ready
counts, then read the body's rows alone, not a doctor row for each of them. The queue index
holds ``ready`` too, so the ready counts read the index alone (on PostgreSQL it includes the
sorted columns, so a sorted page reads the index alone too: PostgreSQL's rows are not stored in
the body's order as SQLite's are), and a new index by (body, programme name) gives a body's
programme names one seek each.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The decisions that say a doctor connected at GMC should not be connected where they are, as
# reval.rules has them at this revision.
SHOULD_NOT_BE_CONNECTED = ("NOT_IN_TIS", "INACTIVE_IN_TIS", "DB_MISMATCH", "PROGRAMME_EXPIRED", "NO_CURRENT_PROGRAMME")
COLUMNS = (
    "programme_name",
    "programme_start",
    "programme_end",
    "programme_owners",
    "decided_as_of",
    "last_changed_by",
    "ready",
)
# What a sorted page reads besides the queue index's keys (PostgreSQL only).
QUEUE_INDEX_INCLUDES = ["reason", *(column for column in COLUMNS if column != "ready")]


def upgrade() -> None:
    op.add_column("doctor_visibility", sa.Column("programme_name", sa.String(length=200), nullable=True))
    op.add_column("doctor_visibility", sa.Column("programme_start", sa.Date(), nullable=True))
    op.add_column("doctor_visibility", sa.Column("programme_end", sa.Date(), nullable=True))
    op.add_column(
        "doctor_visibility", sa.Column("programme_owners", sa.String(length=400), server_default="", nullable=False)
    )
    op.add_column("doctor_visibility", sa.Column("decided_as_of", sa.Date(), nullable=True))
    op.add_column("doctor_visibility", sa.Column("last_changed_by", sa.String(length=200), nullable=True))
    op.add_column("doctor_visibility", sa.Column("ready", sa.String(length=10), server_default="", nullable=False))
    reasons = ", ".join(f"'{reason}'" for reason in SHOULD_NOT_BE_CONNECTED)
    op.execute(
        "UPDATE doctor_visibility SET"
        " programme_name = doctor.programme_name,"
        " programme_start = doctor.programme_start,"
        " programme_end = doctor.programme_end,"
        " programme_owners = doctor.programme_owners,"
        " decided_as_of = doctor.decided_as_of,"
        " last_changed_by = doctor.last_changed_by,"
        " ready = CASE"
        "  WHEN doctor.designated_body_code = doctor_visibility.designated_body_code"
        f"   THEN CASE WHEN doctor.reason IN ({reasons}) THEN 'disconnect' ELSE '' END"
        "  WHEN ' ' || doctor.programme_owners || ' ' LIKE '% ' || doctor_visibility.designated_body_code || ' %'"
        "   THEN 'connect'"
        "  ELSE '' END"
        " FROM doctor WHERE doctor.gmc_number = doctor_visibility.gmc_number"
    )
    with op.batch_alter_table("doctor_visibility") as batch_op:
        batch_op.drop_index("ix_doctor_visibility_queue")
        batch_op.create_index(
            "ix_doctor_visibility_queue",
            ["designated_body_code", "queue", "gmc_number", "ready"],
            unique=False,
            postgresql_include=QUEUE_INDEX_INCLUDES,
        )
        batch_op.create_index(
            "ix_doctor_visibility_programme", ["designated_body_code", "programme_name"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("doctor_visibility") as batch_op:
        batch_op.drop_index("ix_doctor_visibility_programme")
        batch_op.drop_index("ix_doctor_visibility_queue")
        batch_op.create_index(
            "ix_doctor_visibility_queue", ["designated_body_code", "queue", "gmc_number"], unique=False
        )
        for column in reversed(COLUMNS):
            batch_op.drop_column(column)
