"""A token that changes with every write to the queues' view rows.

``views_version`` holds one row, whose token every transaction that writes ``doctor_visibility``
replaces as it commits (``reval.reconcile.views_version``). A process keeps each body's queue
counts beside the token it counted them at, and counts again only when the token has changed:
on PostgreSQL at a million doctors, counting the largest body's queues was the costliest
statement of most queue pages. The row is written by the first such transaction; until then
nothing is kept, so no row is made here.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "views_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_views_version")),
    )


def downgrade() -> None:
    op.drop_table("views_version")
