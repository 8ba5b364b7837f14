"""The check that tells a table's author which rows can decide a doctor no designated body sees."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings

from reval.rules import DEFAULT_RULE_TABLE, RuleEngine
from reval.rules.checks import check_table, no_body_conditions
from reval.rules.table import Audience, Queue, Row, _row
from tests.rules.test_table import AS_OF, situations

REPORT = check_table(DEFAULT_RULE_TABLE)


def row_for(reason: str) -> Row:
    row = DEFAULT_RULE_TABLE.row_for(reason)
    assert row is not None, reason
    return row


def reported(report) -> set[str]:
    return {DEFAULT_RULE_TABLE.rows[number - 1].reason for number in report.seen_by_no_body}


@settings(max_examples=200, deadline=None)
@given(situations())
def test_every_doctor_no_body_sees_was_decided_by_a_row_the_check_reports(situation):
    decision = RuleEngine(DEFAULT_RULE_TABLE).decide(situation, AS_OF)
    if not decision.visible_to:
        assert decision.rule_number in REPORT.seen_by_no_body


def test_a_discrepancy_whose_programme_owner_maps_to_no_body_can_be_seen_by_none():
    assert "UNKNOWN_PROGRAMME_OWNER" in reported(REPORT)
    row = row_for("UNKNOWN_PROGRAMME_OWNER")
    assert no_body_conditions(row) == {"connected": False, "current_programme_owners": "NONE"}


def test_rows_sure_of_a_body_are_not_reported():
    # A doctor in a current programme whose owner maps to no body is UNKNOWN_PROGRAMME_OWNER before
    # NOT_CONNECTED is tried, so a NOT_CONNECTED doctor always has a programme owner to see them.
    assert not reported(REPORT) & {"NOT_CONNECTED", "CONNECTED", "NOT_IN_TIS", "DB_MISMATCH", "PREVIOUSLY_CONNECTED"}


def test_a_row_with_no_audience_is_reported_and_is_no_failure():
    military = row_for("MILITARY_DOCTOR")
    nobody = replace(military, visible_to=())
    report = check_table(
        replace(DEFAULT_RULE_TABLE, rows=tuple(nobody if row is military else row for row in DEFAULT_RULE_TABLE.rows))
    )
    assert military.number in report.seen_by_no_body and no_body_conditions(nobody) == {}
    assert report.ok


def test_the_last_connected_body_is_sure_once_a_doctor_was_connected():
    row = _row(1, "GONE", Queue.HISTORIC, (Audience.LAST_CONNECTED_DESIGNATED_BODY,))
    assert no_body_conditions(row) == {"previously_connected": False}
