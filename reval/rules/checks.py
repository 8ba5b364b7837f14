"""Static checks of a rule table: every consistent combination of facts is decided by exactly
one row under the FIRST hit policy, and every row decides some combination. Also reported, for
the table's author: rows whose audience can resolve to no designated body, so that a doctor they
decide is seen by no office (only by national users, as unassigned).

A checker, not an eyeball: run by the tests and by ``reval rules --check``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from reval.rules.facts import NONE, DoctorFacts, is_consistent
from reval.rules.table import Audience, Row, RuleTable


@dataclass
class TableReport:
    combinations: int = 0
    problems: list[str] = field(default_factory=list)  # undeclared facts, values outside a domain
    gaps: list[DoctorFacts] = field(default_factory=list)  # no row matches
    unreachable: list[Row] = field(default_factory=list)  # an earlier row always wins
    decided_by: dict[int, int] = field(default_factory=dict)  # row number -> combinations it decides
    overlaps: dict[int, set[int]] = field(default_factory=dict)  # row -> later rows it shadows somewhere
    # row number -> a combination it decides for which every audience of the row can be empty
    seen_by_no_body: dict[int, DoctorFacts] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.problems or self.gaps or self.unreachable)


def consistent_combinations(table: RuleTable) -> list[DoctorFacts]:
    every = itertools.product(*(fact.domain for fact in table.facts))
    return [facts for facts in map(DoctorFacts._make, every) if is_consistent(facts)]


def check_table(table: RuleTable) -> TableReport:
    """The table's rows checked for well-formedness, then run against every consistent
    combination of facts: gaps, rows that shadow others, rows never reached."""
    report = TableReport()
    report.problems = _row_problems(table)
    if report.problems:
        return report
    combinations = consistent_combinations(table)
    report.combinations = len(combinations)
    report.decided_by = {row.number: 0 for row in table.rows}
    for facts in combinations:
        _decide_combination(table, facts, report)
    report.unreachable = [row for row in table.rows if report.decided_by[row.number] == 0]
    return report


def _row_problems(table: RuleTable) -> list[str]:
    """Rows that test undeclared facts or values outside a fact's domain, or are misnumbered."""
    problems = []
    domains = {fact.name: fact.domain for fact in table.facts}
    for row in table.rows:
        for name, value in row.when.items():
            if name not in domains:
                problems.append(f"row {row.number} ({row.reason}) tests undeclared fact {name!r}")
            elif value not in domains[name]:
                problems.append(f"row {row.number} ({row.reason}) tests {name} = {value!r}, outside {domains[name]}")
    if [row.number for row in table.rows] != list(range(1, len(table.rows) + 1)):
        problems.append("rows must be numbered 1, 2, 3... in order")
    return problems


def _decide_combination(table: RuleTable, facts: DoctorFacts, report: TableReport) -> None:
    """Which row decides this combination (none: a gap), whether it may be seen by no body, and
    which later rows it shadows."""
    matching = [row for row in table.rows if row.matches(facts)]
    if not matching:
        report.gaps.append(facts)
        return
    first, *shadowed = matching
    report.decided_by[first.number] += 1
    if may_be_seen_by_no_body(first, facts):
        report.seen_by_no_body.setdefault(first.number, facts)
    if shadowed:
        report.overlaps.setdefault(first.number, set()).update(row.number for row in shadowed)


# An audience can resolve to no designated body when its fact has this value (see the engine's
# _audience): the GMC body needs a connection, the last connected body an earlier one, and the
# programme owners are sure only of a current programme that a known body owns (else they are
# the owners of ended or future programmes, which may map to no body, or there are none).
NO_BODY_WHEN: dict[Audience, tuple[str, Any]] = {
    Audience.GMC_DESIGNATED_BODY: ("connected", False),
    Audience.LAST_CONNECTED_DESIGNATED_BODY: ("previously_connected", False),
    Audience.PROGRAMME_OWNERS: ("current_programme_owners", NONE),
    # A rejected record's owner cannot always be read, nor mapped to a body: no fact tells.
    Audience.REJECTED_RECORD_OWNERS: ("tis_record_rejected", True),
}


def no_body_conditions(row: Row) -> dict[str, Any]:
    """The facts under which every audience of ``row`` can resolve to no designated body."""
    return dict(NO_BODY_WHEN[audience] for audience in row.visible_to)


def may_be_seen_by_no_body(row: Row, facts: DoctorFacts) -> bool:
    return all(getattr(facts, name) == value for name, value in no_body_conditions(row).items())
