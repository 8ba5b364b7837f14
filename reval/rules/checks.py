"""Static checks of a rule table: every consistent combination of facts is decided by exactly
one row under the FIRST hit policy, and every row decides some combination.

A checker, not an eyeball: run by the tests and by ``reval rules --check``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from reval.rules.facts import DoctorFacts, is_consistent
from reval.rules.table import Row, RuleTable


@dataclass
class TableReport:
    combinations: int = 0
    problems: list[str] = field(default_factory=list)  # undeclared facts, values outside a domain
    gaps: list[DoctorFacts] = field(default_factory=list)  # no row matches
    unreachable: list[Row] = field(default_factory=list)  # an earlier row always wins
    decided_by: dict[int, int] = field(default_factory=dict)  # row number -> combinations it decides
    overlaps: dict[int, set[int]] = field(default_factory=dict)  # row -> later rows it shadows somewhere

    @property
    def ok(self) -> bool:
        return not (self.problems or self.gaps or self.unreachable)


def consistent_combinations(table: RuleTable) -> list[DoctorFacts]:
    every = itertools.product(*(fact.domain for fact in table.facts))
    return [facts for facts in map(DoctorFacts._make, every) if is_consistent(facts)]


def check_table(table: RuleTable) -> TableReport:
    report = TableReport()
    domains = {fact.name: fact.domain for fact in table.facts}
    for row in table.rows:
        for name, value in row.when.items():
            if name not in domains:
                report.problems.append(f"row {row.number} ({row.reason}) tests undeclared fact {name!r}")
            elif value not in domains[name]:
                report.problems.append(
                    f"row {row.number} ({row.reason}) tests {name} = {value!r}, outside {domains[name]}"
                )
    if [row.number for row in table.rows] != list(range(1, len(table.rows) + 1)):
        report.problems.append("rows must be numbered 1, 2, 3... in order")
    if report.problems:
        return report

    combinations = consistent_combinations(table)
    report.combinations = len(combinations)
    report.decided_by = {row.number: 0 for row in table.rows}
    for facts in combinations:
        matching = [row for row in table.rows if row.matches(facts)]
        if not matching:
            report.gaps.append(facts)
            continue
        first, *shadowed = matching
        report.decided_by[first.number] += 1
        if shadowed:
            report.overlaps.setdefault(first.number, set()).update(row.number for row in shadowed)
    report.unreachable = [row for row in table.rows if report.decided_by[row.number] == 0]
    return report
