"""Deciding a doctor: derive the facts, find the first matching row, resolve who sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from reval.rules.facts import (
    DateSpan,
    DerivedFacts,
    DoctorFacts,
    DoctorSituation,
    ProgrammeSpan,
    derive,
    placement_is_current,
    programme_has_ended,
    programme_is_current,
)
from reval.rules.table import Audience, Row, RuleTable


class NoRuleMatched(Exception):
    """The table has a gap for these facts; the static checks exist so this never happens."""


class Decision(NamedTuple):
    queue: str
    reason: str
    rule_number: int
    rule_table: str
    visible_to: tuple[str, ...]
    programme_owner_designated_bodies: tuple[str, ...]


@dataclass(frozen=True)
class RowOutcome:
    row: Row
    failed: list[tuple[str, Any, Any]]  # (fact, required, actual); empty for the matching row


@dataclass(frozen=True)
class Explanation:
    as_of: date
    situation: DoctorSituation
    facts: DoctorFacts
    decision: Decision
    rows_tried: list[RowOutcome]  # every row up to and including the one that matched


class RuleEngine:
    def __init__(self, table: RuleTable):
        self.table = table
        # Facts have a small finite domain, so the first matching row is looked up once per combination.
        self._first_row: dict[DoctorFacts, Row] = {}

    def first_row(self, facts: DoctorFacts) -> Row:
        row = self._first_row.get(facts)
        if row is None:
            row = next((r for r in self.table.rows if r.matches(facts)), None)
            if row is None:
                raise NoRuleMatched(f"no row of {self.table.label} matches {facts}")
            self._first_row[facts] = row
        return row

    def decide(self, situation: DoctorSituation, as_of: date) -> Decision:
        return self._decision(situation, derive(situation, as_of))

    def _decision(self, situation: DoctorSituation, derived: DerivedFacts) -> Decision:
        row = self.first_row(derived.facts)
        return Decision(
            queue=row.queue.value,
            reason=row.reason,
            rule_number=row.number,
            rule_table=self.table.label,
            visible_to=_audience(row, situation, derived.programme_owner_designated_bodies),
            programme_owner_designated_bodies=derived.programme_owner_designated_bodies,
        )

    def explain(self, situation: DoctorSituation, as_of: date) -> Explanation:
        derived = derive(situation, as_of)
        decision, facts = self._decision(situation, derived), derived.facts
        tried = []
        for row in self.table.rows:
            tried.append(RowOutcome(row, row.failed_conditions(facts)))
            if row.number == decision.rule_number:
                break
        return Explanation(as_of, situation, facts, decision, tried)


def _audience(row: Row, situation: DoctorSituation, owners: tuple[str, ...]) -> tuple[str, ...]:
    bodies: set[str] = set()
    for audience in row.visible_to:
        if audience is Audience.GMC_DESIGNATED_BODY and situation.gmc_designated_body:
            bodies.add(situation.gmc_designated_body)
        elif audience is Audience.PROGRAMME_OWNERS:
            bodies.update(owners)
        elif audience is Audience.LAST_CONNECTED_DESIGNATED_BODY and situation.last_connected_designated_body:
            bodies.add(situation.last_connected_designated_body)
        elif audience is Audience.REJECTED_RECORD_OWNERS:
            bodies.update(code for owners in situation.rejected_tis_people for code in owners)
    return tuple(sorted(bodies))


def programme_state(programme: ProgrammeSpan, as_of: date) -> str:
    if programme_is_current(programme, as_of):
        return "current"
    if programme_has_ended(programme, as_of):
        return "ended"
    return "future"


def placement_state(placement: DateSpan, as_of: date) -> str:
    return "current" if placement_is_current(placement, as_of) else "not current"
