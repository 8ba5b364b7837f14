"""The rule table as data: queues, reasons, audiences and the product's default rows.

Hit policy FIRST (as in DMN): rows are tried in order and the first whose every condition holds
decides. Conditions compare one fact with one value; a row lists only the facts it cares about.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reval.rules.facts import FACTS, MANY, NONE, DoctorFacts, Fact


class Queue(StrEnum):
    CONNECTED = "CONNECTED"
    DISCREPANCY = "DISCREPANCY"
    HIDDEN = "HIDDEN"
    HISTORIC = "HISTORIC"


class Audience(StrEnum):
    """Who sees a decision, resolved to designated body codes for each doctor."""

    GMC_DESIGNATED_BODY = "GMC DB"
    PROGRAMME_OWNERS = "P"
    LAST_CONNECTED_DESIGNATED_BODY = "last connected DB"
    REJECTED_RECORD_OWNERS = "owners of a rejected TIS record"


class Ready(StrEnum):
    """The Discrepancies an admin can act on at once, as the national UI's two lists have them."""

    CONNECT = "connect"  # a programme owner is this body, and the doctor is not connected to it
    DISCONNECT = "disconnect"  # connected to this body, and the decision says they should not be


# The decisions that say a doctor connected at GMC should not be connected where they are.
SHOULD_NOT_BE_CONNECTED = ("NOT_IN_TIS", "INACTIVE_IN_TIS", "DB_MISMATCH", "PROGRAMME_EXPIRED", "NO_CURRENT_PROGRAMME")

HIDDEN_BY_ADMIN = "HIDDEN_BY_ADMIN"
HIDDEN_BY_ADMIN_LABEL = "Hidden by an admin"
HIDDEN_BY_ADMIN_DESCRIPTION = "An admin of this designated body hid the doctor from its other queues."


@dataclass(frozen=True)
class Row:
    number: int
    reason: str
    when: Mapping[str, Any]
    queue: Queue
    visible_to: tuple[Audience, ...]
    # DMN annotations: for the people reading a decision; they take no part in deciding.
    label: str = ""
    description: str = ""

    def failed_conditions(self, facts: DoctorFacts) -> list[tuple[str, Any, Any]]:
        """(fact, required value, actual value) for each condition the facts do not meet."""
        return [
            (name, required, getattr(facts, name))
            for name, required in self.when.items()
            if getattr(facts, name) != required
        ]

    def matches(self, facts: DoctorFacts) -> bool:
        return all(getattr(facts, name) == required for name, required in self.when.items())

    def describe_conditions(self) -> str:
        return " and ".join(f"{name} = {format_value(value)}" for name, value in self.when.items())


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass(frozen=True)
class RuleTable:
    name: str
    version: str
    facts: tuple[Fact, ...]
    rows: tuple[Row, ...]
    hit_policy: str = "FIRST"

    @property
    def label(self) -> str:
        """What every decision records: which table, which version."""
        return f"{self.name}@{self.version}"

    def row_for(self, reason: str) -> Row | None:
        return next((row for row in self.rows if row.reason == reason), None)

    def reason_label(self, reason: str) -> str:
        """A reason code as people read it (the code itself where the table has no label)."""
        if reason == HIDDEN_BY_ADMIN:
            return HIDDEN_BY_ADMIN_LABEL
        row = self.row_for(reason)
        return row.label if row is not None and row.label else reason

    def reasons(self) -> list[str]:
        """Every reason a queue can show: the table's, then an admin's hide."""
        return [row.reason for row in self.rows] + [HIDDEN_BY_ADMIN]

    def fingerprint(self) -> str:
        """A digest of the rows: a test pins it to the version so edits must bump the version."""
        text = repr(
            [
                (r.number, r.reason, sorted(r.when.items()), r.queue.value, [a.value for a in r.visible_to])
                for r in self.rows
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_GMC = (Audience.GMC_DESIGNATED_BODY,)
_GMC_AND_REJECTED = (Audience.GMC_DESIGNATED_BODY, Audience.REJECTED_RECORD_OWNERS)
_GMC_AND_P = (Audience.GMC_DESIGNATED_BODY, Audience.PROGRAMME_OWNERS)


def _row(
    number: int,
    reason: str,
    queue: Queue,
    visible_to: tuple[Audience, ...],
    *,
    label: str = "",
    description: str = "",
    **when: Any,
) -> Row:
    return Row(number, reason, when, queue, visible_to, label, description)


DEFAULT_RULE_TABLE = RuleTable(
    name="reval-default",
    version="2",
    facts=FACTS,
    rows=(
        _row(
            1,
            "F1_DOCTOR",
            Queue.HIDDEN,
            _GMC_AND_P,
            current_f1_placement=True,
            label="F1 doctor",
            description=(
                "A current placement is at grade F1: foundation year 1 doctors are not connected for revalidation."
            ),
        ),
        _row(
            2,
            "MILITARY_DOCTOR",
            Queue.HIDDEN,
            _GMC_AND_P,
            military=True,
            label="Military doctor",
            description=(
                "The current (or last ended) programme membership is MILITARY: the Defence Deanery revalidates them."
            ),
        ),
        _row(
            3,
            "TIS_RECORD_REJECTED",
            Queue.DISCREPANCY,
            _GMC_AND_REJECTED,
            tis_record_rejected=True,
            label="TIS record rejected",
            description="TIS sent a record for this doctor that Reval rejected (see the data-quality log), "
            "and Reval holds no earlier one, so it cannot tell their programme.",
        ),
        _row(
            4,
            "DUPLICATE_GMC_NUMBER",
            Queue.DISCREPANCY,
            _GMC_AND_P,
            tis_people=MANY,
            label="GMC number on several TIS records",
            description="More than one TIS person has this GMC number, so TIS cannot say which one is the doctor.",
        ),
        _row(
            5,
            "NOT_IN_TIS",
            Queue.DISCREPANCY,
            _GMC,
            connected=True,
            tis_people=NONE,
            label="Not in TIS",
            description="Connected at GMC, but no TIS person has this GMC number.",
        ),
        _row(
            6,
            "INACTIVE_IN_TIS",
            Queue.DISCREPANCY,
            _GMC_AND_P,
            connected=True,
            inactive_in_tis=True,
            label="Inactive in TIS",
            description="Connected at GMC, but a TIS person with this GMC number is INACTIVE.",
        ),
        _row(
            7,
            "UNKNOWN_PROGRAMME_OWNER",
            Queue.DISCREPANCY,
            _GMC_AND_P,
            unknown_programme_owner=True,
            label="Unknown programme owner",
            description="A current programme is owned by a name that maps to no configured designated body.",
        ),
        _row(
            8,
            "OVERLAPPING_PROGRAMMES",
            Queue.DISCREPANCY,
            _GMC_AND_P,
            current_programme_owners=MANY,
            label="Programmes in several offices",
            description="Current programme memberships are owned by more than one designated body.",
        ),
        _row(
            9,
            "CONNECTED",
            Queue.CONNECTED,
            _GMC,
            connected=True,
            connected_to_programme_owner=True,
            label="Connected",
            description="Connected at GMC to the designated body that owns the current programme.",
        ),
        _row(
            10,
            "DB_MISMATCH",
            Queue.DISCREPANCY,
            _GMC,
            connected=True,
            current_programme=True,
            connected_to_programme_owner=False,
            label="Connected to another body",
            description="In a current programme, but connected at GMC to a designated body that does not own it.",
        ),
        _row(
            11,
            "PROGRAMME_EXPIRED",
            Queue.DISCREPANCY,
            _GMC,
            connected=True,
            current_programme=False,
            ended_programme=True,
            label="Programme ended",
            description="Connected at GMC, with no current programme membership and one that has ended.",
        ),
        _row(
            12,
            "NO_CURRENT_PROGRAMME",
            Queue.DISCREPANCY,
            _GMC,
            connected=True,
            current_programme=False,
            ended_programme=False,
            label="No current programme",
            description="Connected at GMC, with no current or ended programme membership (future ones at most).",
        ),
        _row(
            13,
            "NOT_CONNECTED",
            Queue.DISCREPANCY,
            (Audience.PROGRAMME_OWNERS,),
            connected=False,
            current_programme=True,
            label="Not connected",
            description="In a current programme, but not connected to any designated body at GMC.",
        ),
        _row(
            14,
            "PREVIOUSLY_CONNECTED",
            Queue.HISTORIC,
            (Audience.LAST_CONNECTED_DESIGNATED_BODY,),
            connected=False,
            current_programme=False,
            previously_connected=True,
            label="Previously connected",
            description="Neither connected nor in a current programme, and connected to a designated body before.",
        ),
        _row(
            15,
            "NO_PROGRAMME_NOT_CONNECTED",
            Queue.HIDDEN,
            (Audience.PROGRAMME_OWNERS,),
            connected=False,
            current_programme=False,
            previously_connected=False,
            label="No programme, never connected",
            description="Neither connected nor in a current programme, and never connected to a designated body.",
        ),
    ),
)
