"""Static checks of the rule table, and the promise that derived facts stay inside what they cover."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reval.rules import DEFAULT_RULE_TABLE, DoctorSituation, PlacementSpan, ProgrammeSpan, TisPersonView
from reval.rules.checks import check_table
from reval.rules.facts import derive, is_consistent, stable_between
from reval.rules.table import Queue, _row

PINNED_FINGERPRINTS = {"1": "754477b3083ea064", "2": "386d1740d309226f"}


def test_default_table_has_no_gaps_and_no_unreachable_rows():
    report = check_table(DEFAULT_RULE_TABLE)
    assert report.problems == []
    assert report.gaps == []
    assert report.unreachable == []
    assert report.combinations > 0


def test_every_row_decides_some_combination():
    report = check_table(DEFAULT_RULE_TABLE)
    assert all(count > 0 for count in report.decided_by.values())


def test_a_table_missing_its_last_row_has_a_gap():
    table = replace(DEFAULT_RULE_TABLE, rows=DEFAULT_RULE_TABLE.rows[:-1])
    report = check_table(table)
    assert report.gaps
    assert all(
        not facts.connected and not facts.current_programme and not facts.previously_connected for facts in report.gaps
    )


def test_a_row_shadowed_by_an_earlier_one_is_unreachable():
    shadowed = _row(16, "NEVER", Queue.HIDDEN, (), connected=True, tis_people="NONE")
    report = check_table(replace(DEFAULT_RULE_TABLE, rows=(*DEFAULT_RULE_TABLE.rows, shadowed)))
    assert [row.reason for row in report.unreachable] == ["NEVER"]


def test_a_condition_on_an_undeclared_fact_is_a_problem():
    broken = _row(16, "TYPO", Queue.HIDDEN, (), conected=True)
    report = check_table(replace(DEFAULT_RULE_TABLE, rows=(*DEFAULT_RULE_TABLE.rows, broken)))
    assert report.problems == ["row 16 (TYPO) tests undeclared fact 'conected'"]


def test_reasons_are_unique():
    reasons = [row.reason for row in DEFAULT_RULE_TABLE.rows]
    assert len(reasons) == len(set(reasons))


def test_editing_the_rows_needs_a_new_version():
    # A changed row changes the fingerprint: bump the version and pin its new fingerprint here.
    assert PINNED_FINGERPRINTS[DEFAULT_RULE_TABLE.version] == DEFAULT_RULE_TABLE.fingerprint()


AS_OF = date(2026, 11, 21)
days = st.integers(min_value=-800, max_value=800).map(lambda n: AS_OF + timedelta(days=n))
bodies = st.sampled_from([None, "1-1RSSQ05", "1-1RUZUSF", "1-1RSSQ1B"])


@st.composite
def programmes(draw):
    start = draw(days)
    end = draw(st.one_of(st.none(), st.integers(0, 900).map(lambda n: start + timedelta(days=n))))
    kind = draw(st.sampled_from(["SUBSTANTIVE", "MILITARY", "LAT", None]))
    owner = draw(bodies)
    return ProgrammeSpan(kind, start, end, owner or "Somewhere", owner)


@st.composite
def placements(draw):
    start = draw(days)
    end = draw(st.one_of(st.none(), st.integers(0, 400).map(lambda n: start + timedelta(days=n))))
    return PlacementSpan(draw(st.sampled_from(["F1", "f1", "ST1", None])), start, end)


@st.composite
def situations(draw):
    people = draw(
        st.lists(
            st.builds(
                TisPersonView,
                st.integers(1, 10**6),
                st.sampled_from(["CURRENT", "INACTIVE", None]),
                st.lists(programmes(), max_size=3).map(tuple),
                st.lists(placements(), max_size=3).map(tuple),
            ),
            max_size=3,
        )
    )
    gmc = draw(bodies)
    last = gmc or draw(bodies)
    return DoctorSituation(gmc, last, tuple(people))


@settings(max_examples=400, deadline=None)
@given(situations())
def test_derived_facts_are_always_among_the_checked_combinations(situation):
    assert is_consistent(derive(situation, AS_OF).facts)


@settings(max_examples=300, deadline=None)
@given(situations(), st.integers(-400, 400))
def test_facts_do_not_change_inside_the_stable_window(situation, offset):
    since, until = stable_between(situation, AS_OF)
    other = AS_OF + timedelta(days=offset)
    inside = (since is None or since <= other) and (until is None or other < until)
    if inside:
        assert derive(situation, other) == derive(situation, AS_OF)
