"""On SQLite, the tables keyed by GMC number are stored in GMC-number order (WITHOUT ROWID).

Deciding reads doctors, their connections and their visibility range by range of GMC numbers.
With a rowid, each row of a range sits wherever it was inserted (GMC's lists come in body
order), so a range read jumps across the whole table; clustered by the key, it is one sweep.
PostgreSQL is unaffected.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 07:45:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("gmc_connection", "doctor", "doctor_visibility")


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # Batch mode copies the table into a new one built with these options, indexes and all.
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}):
            pass
