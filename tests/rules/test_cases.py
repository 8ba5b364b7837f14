"""The decision cases in cases.json: at least one for every row, and the date boundaries."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from reval.designated_bodies import DEFAULT_DESIGNATED_BODIES, OwnerDirectory
from reval.rules import DEFAULT_RULE_TABLE, DoctorSituation, PlacementSpan, ProgrammeSpan, RuleEngine, TisPersonView

CASES = json.loads((Path(__file__).parent / "cases.json").read_text())["cases"]
OWNERS = OwnerDirectory(DEFAULT_DESIGNATED_BODIES)


def _date(text):
    return None if text is None else date.fromisoformat(text)


def situation(case: dict) -> DoctorSituation:
    people = tuple(
        TisPersonView(
            tis_person_id=index,
            status=person.get("status", "CURRENT"),
            programmes=tuple(
                ProgrammeSpan(kind.upper(), _date(start), _date(end), owner, OWNERS.designated_body_for(owner))
                for kind, start, end, owner in person["programmes"]
            ),
            placements=tuple(
                PlacementSpan(grade, _date(start), _date(end)) for grade, start, end in person["placements"]
            ),
        )
        for index, person in enumerate(case["people"])
    )
    body = case["gmc"]
    rejected = tuple(tuple(owners) for owners in case.get("rejectedOwners", ()))
    return DoctorSituation(body, body or case.get("lastConnected"), people, rejected)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case(case):
    decision = RuleEngine(DEFAULT_RULE_TABLE).decide(situation(case), date.fromisoformat(case["asOf"]))
    queue, reason, visible_to = case["expect"]
    assert (decision.queue, decision.reason, list(decision.visible_to)) == (queue, reason, visible_to)


def test_every_row_has_a_case():
    engine = RuleEngine(DEFAULT_RULE_TABLE)
    covered = {engine.decide(situation(c), date.fromisoformat(c["asOf"])).rule_number for c in CASES}
    assert covered == {row.number for row in DEFAULT_RULE_TABLE.rows}


def test_explanation_names_the_failed_condition_of_each_earlier_row():
    case = next(c for c in CASES if c["name"] == "connected to another body than the current programme's owner")
    explanation = RuleEngine(DEFAULT_RULE_TABLE).explain(situation(case), date(2026, 11, 21))
    assert [outcome.row.number for outcome in explanation.rows_tried] == list(range(1, 11))
    assert all(outcome.failed for outcome in explanation.rows_tried[:-1])
    assert explanation.rows_tried[-1].failed == []
    assert ("connected_to_programme_owner", True, False) in explanation.rows_tried[8].failed
