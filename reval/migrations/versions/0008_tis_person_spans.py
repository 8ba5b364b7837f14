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

from reval.migrations.batches import in_batches, json_document

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


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
    for people in in_batches("tis_person", "tis_person_id", ("programme_memberships", "placements")):
        connection.execute(
            sa.text("UPDATE tis_person SET spans = :spans WHERE tis_person_id = :id"),
            [
                {"id": person_id, "spans": _spans(json_document(memberships), json_document(placements))}
                for person_id, memberships, placements in people
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("tis_person") as batch_op:
        batch_op.drop_column("spans")
