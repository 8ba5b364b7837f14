"""A body's queue page, name order and name search each read one index range.

``doctor_visibility`` is indexed by (body, queue, GMC number) instead of (body, queue, reason),
and gains the doctor's sort name with an index by (body, queue, sort name), so the first page,
page 50 and the name order of a queue are read in order from an index and counted from it,
without touching every doctor of the queue. ``doctor_visibility_name`` holds every name a body
sees a doctor by, in the queue it sees them in, so a name-prefix search is one range of it.
Both are filled here from the stored decisions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 00:30:00
"""

import sqlalchemy as sa
from alembic import op

from reval.migrations.batches import in_batches

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NAME_KEY_LENGTH = 200


def upgrade() -> None:
    with op.batch_alter_table("doctor_visibility") as batch_op:
        batch_op.drop_index("ix_doctor_visibility_queue")
        batch_op.add_column(sa.Column("sort_name", sa.String(length=400), server_default="", nullable=False))
    op.execute(
        "UPDATE doctor_visibility SET sort_name = COALESCE("
        "(SELECT sort_name FROM doctor WHERE doctor.gmc_number = doctor_visibility.gmc_number), '')"
    )
    with op.batch_alter_table("doctor_visibility") as batch_op:
        batch_op.create_index(
            "ix_doctor_visibility_queue", ["designated_body_code", "queue", "gmc_number"], unique=False
        )
        batch_op.create_index(
            "ix_doctor_visibility_queue_name",
            ["designated_body_code", "queue", "sort_name", "gmc_number"],
            unique=False,
        )
    names = op.create_table(
        "doctor_visibility_name",
        sa.Column("designated_body_code", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=20), nullable=False),
        sa.Column(
            "name",
            sa.String(length=200).with_variant(sa.String(length=200, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("gmc_number", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint(
            "designated_body_code", "queue", "name", "gmc_number", name=op.f("pk_doctor_visibility_name")
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("doctor_visibility_name") as batch_op:
        batch_op.create_index("ix_doctor_visibility_name_doctor", ["gmc_number", "designated_body_code"], unique=False)
    _fill_names(names)


def _fill_names(names: sa.Table) -> None:
    """One row per body, name and doctor, from each doctor's search_names (newline-separated),
    a batch of doctors at a time in GMC-number order."""
    connection = op.get_bind()
    for doctors in in_batches("doctor", "gmc_number", ("search_names",)):
        first, last = doctors[0][0], doctors[-1][0]
        names_of = {
            number: {name[:NAME_KEY_LENGTH] for name in (text or "").split("\n") if name} for number, text in doctors
        }
        views = connection.execute(
            sa.text(
                "SELECT designated_body_code, queue, gmc_number FROM doctor_visibility "
                "WHERE gmc_number >= :first AND gmc_number <= :last"
            ),
            {"first": first, "last": last},
        ).all()
        rows = [
            {"designated_body_code": code, "queue": queue, "name": name, "gmc_number": number}
            for code, queue, number in views
            for name in names_of.get(number, ())
        ]
        if rows:
            connection.execute(names.insert(), rows)


def downgrade() -> None:
    op.drop_table("doctor_visibility_name")
    with op.batch_alter_table("doctor_visibility") as batch_op:
        batch_op.drop_index("ix_doctor_visibility_queue_name")
        batch_op.drop_index("ix_doctor_visibility_queue")
        batch_op.drop_column("sort_name")
    with op.batch_alter_table("doctor_visibility") as batch_op:
        batch_op.create_index("ix_doctor_visibility_queue", ["designated_body_code", "queue", "reason"], unique=False)
