"""What the queues' new filters and columns read: the programme's membership type and who last
changed a doctor's connection or hid them.

``doctor.programme_membership_type`` is the membership type of the programme the queues show
(written with the decision); existing decisions are marked stale so the next sync fills it in.
``doctor.last_changed_by`` is the person who last asked GMC for a connection change of the
doctor, or hid or unhid them (written by those actions); filled here from the stored requests
and hides, the later of the two.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 12:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Each doctor's latest request and latest hide or unhide, as (moment, person); the later one wins.
_LAST_REQUEST = (
    "SELECT requested_at AS at, requested_by AS person FROM connection_request "
    "WHERE connection_request.gmc_number = doctor.gmc_number"
)
_LAST_HIDE = (
    "SELECT COALESCE(ended_at, hidden_at) AS at, "
    "CASE WHEN ended_at IS NOT NULL AND end_reason LIKE 'unhidden by %' THEN SUBSTR(end_reason, 13) "
    "ELSE hidden_by END AS person FROM doctor_hide WHERE doctor_hide.gmc_number = doctor.gmc_number"
)


def upgrade() -> None:
    with op.batch_alter_table("doctor") as batch_op:
        batch_op.add_column(sa.Column("programme_membership_type", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("last_changed_by", sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE doctor SET last_changed_by = ("
        f"SELECT person FROM ({_LAST_REQUEST} UNION ALL {_LAST_HIDE}) AS changes ORDER BY at DESC LIMIT 1), "
        # The next sync decides everyone again, and with it fills in the membership type.
        "decision_basis = ''"
    )


def downgrade() -> None:
    with op.batch_alter_table("doctor") as batch_op:
        batch_op.drop_column("last_changed_by")
        batch_op.drop_column("programme_membership_type")
