"""Initial schema, with the default designated bodies.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 04:33:52.754623
"""

import sqlalchemy as sa
from alembic import op

from reval.designated_bodies import DEFAULT_DESIGNATED_BODIES

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    designated_body = op.create_table(
        "designated_body",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_designated_body")),
        sa.UniqueConstraint("owner", name=op.f("uq_designated_body_owner")),
    )
    op.create_table(
        "doctor",
        sa.Column("gmc_number", sa.String(length=7), nullable=False),
        sa.Column("queue", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("rule_number", sa.Integer(), nullable=False),
        sa.Column("rule_table", sa.String(length=60), nullable=False),
        sa.Column("designated_body_code", sa.String(length=32), nullable=True),
        sa.Column("last_connected_designated_body_code", sa.String(length=32), nullable=True),
        sa.Column("visible_to", sa.JSON(), nullable=False),
        sa.Column("programme_owner_designated_bodies", sa.JSON(), nullable=False),
        sa.Column("tis_person_ids", sa.JSON(), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("decided_as_of", sa.Date(), nullable=False),
        sa.Column("stable_from", sa.Date(), nullable=True),
        sa.Column("stable_until", sa.Date(), nullable=True),
        sa.Column("decision_basis", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("gmc_number", name=op.f("pk_doctor")),
    )
    with op.batch_alter_table("doctor", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_doctor_queue"), ["queue"], unique=False)

    op.create_table(
        "doctor_hide",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gmc_number", sa.String(length=7), nullable=False),
        sa.Column("designated_body_code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("hidden_by", sa.String(length=200), nullable=False),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gmc_designated_body_code", sa.String(length=32), nullable=True),
        sa.Column("programme_owner_designated_bodies", sa.JSON(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doctor_hide")),
    )
    with op.batch_alter_table("doctor_hide", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_doctor_hide_gmc_number"), ["gmc_number"], unique=False)
        batch_op.create_index(
            "uq_doctor_hide_active",
            ["gmc_number", "designated_body_code"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )

    op.create_table(
        "doctor_visibility",
        sa.Column("designated_body_code", sa.String(length=32), nullable=False),
        sa.Column("gmc_number", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("designated_body_code", "gmc_number", name=op.f("pk_doctor_visibility")),
    )
    with op.batch_alter_table("doctor_visibility", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_doctor_visibility_gmc_number"), ["gmc_number"], unique=False)

    op.create_table(
        "gmc_connection",
        sa.Column("gmc_number", sa.String(length=7), nullable=False),
        sa.Column("designated_body_code", sa.String(length=32), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("submission_date", sa.Date(), nullable=True),
        sa.Column("date_added", sa.Date(), nullable=True),
        sa.Column("under_notice", sa.String(length=20), nullable=True),
        sa.Column("doctor_status", sa.String(length=100), nullable=True),
        sa.Column("breach", sa.String(length=100), nullable=True),
        sa.Column("investigation", sa.String(length=100), nullable=True),
        sa.Column("preliminary_investigation", sa.String(length=100), nullable=True),
        sa.Column("sanction", sa.String(length=100), nullable=True),
        sa.Column("record_hash", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("gmc_number", name=op.f("pk_gmc_connection")),
    )
    with op.batch_alter_table("gmc_connection", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gmc_connection_designated_body_code"), ["designated_body_code"], unique=False
        )

    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rule_table", sa.String(length=60), nullable=False),
        sa.Column("gmc_source", sa.Text(), nullable=True),
        sa.Column("tis_source", sa.Text(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("rejected_records", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_run")),
    )
    op.create_table(
        "tis_person",
        sa.Column("tis_person_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("gmc_number", sa.String(length=7), nullable=True),
        sa.Column("forenames", sa.String(length=200), nullable=True),
        sa.Column("surname", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("programme_memberships", sa.JSON(), nullable=False),
        sa.Column("placements", sa.JSON(), nullable=False),
        sa.Column("record_hash", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("tis_person_id", name=op.f("pk_tis_person")),
    )
    with op.batch_alter_table("tis_person", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tis_person_gmc_number"), ["gmc_number"], unique=False)

    op.create_table(
        "doctor_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gmc_number", sa.String(length=7), nullable=False),
        sa.Column("sync_run_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["sync_run_id"], ["sync_run.id"], name=op.f("fk_doctor_event_sync_run_id_sync_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doctor_event")),
    )
    with op.batch_alter_table("doctor_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_doctor_event_gmc_number"), ["gmc_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_doctor_event_sync_run_id"), ["sync_run_id"], unique=False)

    op.create_table(
        "rejected_record",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sync_run_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("locator", sa.Text(), nullable=False),
        sa.Column("record_key", sa.String(length=40), nullable=True),
        sa.Column("field", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["sync_run_id"], ["sync_run.id"], name=op.f("fk_rejected_record_sync_run_id_sync_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_record")),
    )
    with op.batch_alter_table("rejected_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rejected_record_sync_run_id"), ["sync_run_id"], unique=False)

    op.bulk_insert(
        designated_body,
        [{"code": body.code, "name": body.name, "owner": body.owner} for body in DEFAULT_DESIGNATED_BODIES],
    )


def downgrade() -> None:
    with op.batch_alter_table("rejected_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rejected_record_sync_run_id"))

    op.drop_table("rejected_record")
    with op.batch_alter_table("doctor_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_doctor_event_sync_run_id"))
        batch_op.drop_index(batch_op.f("ix_doctor_event_gmc_number"))

    op.drop_table("doctor_event")
    with op.batch_alter_table("tis_person", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tis_person_gmc_number"))

    op.drop_table("tis_person")
    op.drop_table("sync_run")
    with op.batch_alter_table("gmc_connection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gmc_connection_designated_body_code"))

    op.drop_table("gmc_connection")
    with op.batch_alter_table("doctor_visibility", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_doctor_visibility_gmc_number"))

    op.drop_table("doctor_visibility")
    with op.batch_alter_table("doctor_hide", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_doctor_hide_active",
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_doctor_hide_gmc_number"))

    op.drop_table("doctor_hide")
    with op.batch_alter_table("doctor", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_doctor_queue"))

    op.drop_table("doctor")
    op.drop_table("designated_body")
