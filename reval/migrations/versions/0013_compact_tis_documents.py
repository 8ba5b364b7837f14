"""TIS people's documents stored as arrays of values, without their keys.

``tis_person.programme_memberships`` and ``.placements`` held each item as a JSON object, its
field names repeated in every item: over half of each person's row, and half the database is
TIS people. Each item is now an array of its values in its fields' order, a membership's
curricula last (``reval.tis.records``); the models read them back as objects. Converted here, a
batch at a time in TIS id order, and back on downgrade.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from reval.migrations.batches import in_batches, json_document

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The fields of each kind of item, in the order stored, as reval.tis.records has them at this revision.
MEMBERSHIP_FIELDS = (
    "id",
    "programmeName",
    "programmeNumber",
    "programmeMembershipType",
    "programmeStartDate",
    "programmeEndDate",
    "programmeOwner",
    "trainingPathway",
)
CURRICULUM_FIELDS = ("curriculumName", "curriculumStartDate", "curriculumEndDate")
PLACEMENT_FIELDS = ("id", "gradeAbbreviation", "dateFrom", "dateTo")


def _compact_memberships(memberships: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            *(m.get(name) for name in MEMBERSHIP_FIELDS),
            [[c.get(name) for name in CURRICULUM_FIELDS] for c in m.get("curricula") or ()],
        ]
        for m in memberships
    ]


def _compact_placements(placements: list[dict[str, Any]]) -> list[list[Any]]:
    return [[p.get(name) for name in PLACEMENT_FIELDS] for p in placements]


def _expanded_memberships(memberships: list[list[Any]]) -> list[dict[str, Any]]:
    return [
        {
            **dict(zip(MEMBERSHIP_FIELDS, values[:-1], strict=True)),
            "curricula": [dict(zip(CURRICULUM_FIELDS, c, strict=True)) for c in values[-1]],
        }
        for values in memberships
    ]


def _expanded_placements(placements: list[list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(PLACEMENT_FIELDS, values, strict=True)) for values in placements]


def upgrade() -> None:
    _rewrite(_compact_memberships, _compact_placements)


def downgrade() -> None:
    _rewrite(_expanded_memberships, _expanded_placements)


def _rewrite(memberships: Callable[[Any], Any], placements: Callable[[Any], Any]) -> None:
    """Each stored person's documents rewritten, a batch at a time in TIS id order."""
    connection = op.get_bind()
    update = sa.text(
        "UPDATE tis_person SET programme_memberships = :memberships, placements = :placements WHERE tis_person_id = :id"
    ).bindparams(sa.bindparam("memberships", type_=sa.JSON), sa.bindparam("placements", type_=sa.JSON))
    for people in in_batches("tis_person", "tis_person_id", ("programme_memberships", "placements")):
        connection.execute(
            update,
            [
                {
                    "id": person_id,
                    "memberships": memberships(json_document(stored_memberships)),
                    "placements": placements(json_document(stored_placements)),
                }
                for person_id, stored_memberships, stored_placements in people
            ],
        )
