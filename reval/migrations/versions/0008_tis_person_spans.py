"""Each TIS person's programme and placement spans, as deciding reads them, beside the documents.

``tis_person.spans`` holds, as compact JSON, the few fields of the programme memberships and
placements that deciding a doctor reads: it no longer decodes each person's documents (a
kilobyte, with their curricula) for them. Filled here from the stored documents.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 10:00:00
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FILL_BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("tis_person") as batch_op:
        batch_op.add_column(sa.Column("spans", sa.Text(), nullable=True))
    _fill_spans()
    with op.batch_alter_table("tis_person") as batch_op:
        batch_op.alter_column("spans", existing_type=sa.Text(), nullable=False)


def _spans(memberships, placements) -> str:
    """As reval.reconcile.decisions.person_spans writes them (kept here as it was at this revision)."""
    return json.dumps(
        [
            [
                [
                    m.get("programmeMembershipType"),
                    m.get("programmeStartDate"),
                    m.get("programmeEndDate"),
                    m.get("programmeOwner"),
                    m.get("programmeName"),
                ]
                for m in memberships
            ],
            [[p.get("gradeAbbreviation"), p.get("dateFrom"), p.get("dateTo")] for p in placements],
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _fill_spans() -> None:
    """Each stored person's spans from their documents, a batch at a time in TIS id order."""
    connection = op.get_bind()
    last = None
    while True:
        after, parameters = (
            ("", {"size": FILL_BATCH})
            if last is None
            else (" WHERE tis_person_id > :last", {"size": FILL_BATCH, "last": last})
        )
        people = connection.execute(
            sa.text(
                f"SELECT tis_person_id, programme_memberships, placements FROM tis_person{after}"
                " ORDER BY tis_person_id LIMIT :size"
            ),
            parameters,
        ).all()
        if not people:
            return
        last = people[-1][0]
        connection.execute(
            sa.text("UPDATE tis_person SET spans = :spans WHERE tis_person_id = :id"),
            [
                {"id": person_id, "spans": _spans(_document(memberships), _document(placements))}
                for person_id, memberships, placements in people
            ],
        )


def _document(value):
    """A JSON column's value as read here: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def downgrade() -> None:
    with op.batch_alter_table("tis_person") as batch_op:
        batch_op.drop_column("spans")
