"""Record validation: the value rules, and the bulk readers agreeing with the marshmallow schemas."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from reval.gmc.records import ConnectedDoctorSchema, read_connected_doctor
from reval.tis.records import PersonSchema, read_person
from reval.validation import FieldReader, InvalidValue, gmc_number_or_none, iso_date, optional_code, optional_text
from tests.factories import gmc_doctor, person, placement, programme


@pytest.mark.parametrize("raw", [" 1234567 ", "\u00a01234567\u00a0", "1234567\t"])
def test_whitespace_around_gmc_numbers_is_ignored(raw):
    assert gmc_number_or_none("gmcNumber", raw) == "1234567"


@pytest.mark.parametrize("raw", ["unknown", "UNKNOWN", "n/a", "N/A", "na", "", "  ", None])
def test_placeholders_mean_no_gmc_number(raw):
    assert gmc_number_or_none("gmcNumber", raw) is None


@pytest.mark.parametrize("raw", ["123456", "12345678", "12a4567", "GMC1234"])
def test_malformed_gmc_numbers_are_rejected_naming_the_value(raw):
    with pytest.raises(InvalidValue) as error:
        gmc_number_or_none("gmcNumber", raw)
    assert str(error.value) == f"gmcNumber: is not a 7-digit GMC number (got {raw!r})"


def test_enumerations_are_case_insensitive():
    record = read_person(person("1234567", programme(kind="military"), status="inactive"))
    assert record["status"] == "INACTIVE"
    assert record["programmeMemberships"][0]["programmeMembershipType"] == "MILITARY"


def test_gmc_dates_are_day_month_year():
    doctor = read_connected_doctor(gmc_doctor("1234567", DateAdded="03/04/2024", SubmissionDate=""))
    assert doctor["date_added"] == date(2024, 4, 3)
    assert doctor["submission_date"] is None


def test_only_the_reference_number_is_required_of_a_gmc_doctor():
    assert read_connected_doctor({"GMCReferenceNumber": "1234567"})["gmc_number"] == "1234567"


def test_error_names_the_nested_field_and_value():
    raw = person("1234567", programme(), programme(start="2026-13-01"))
    with pytest.raises(InvalidValue) as error:
        read_person(raw)
    assert error.value.field == "programmeMemberships[1].programmeStartDate"
    assert "'2026-13-01'" in str(error.value)


def test_end_before_start_is_rejected():
    with pytest.raises(InvalidValue, match=r"placements\[0\].dateTo: is before dateFrom 2026-05-01"):
        read_person(person("1234567", placements=[placement(start="2026-05-01", end="2026-04-01")]))


# The bulk readers and the schemas must accept and reject exactly the same records.
def _outcome(function, raw):
    try:
        return "ok", function(raw)
    except (InvalidValue, ValidationError):
        return "rejected", None


MUTATIONS = {
    "gmcNumber": st.sampled_from(["1234567", " 7654321 ", "unknown", "123", 1234567, None, "x"]),
    "status": st.sampled_from(["CURRENT", "inactive", "retired", None, 3]),
    "tisPersonId": st.sampled_from([1, "12", "abc", None, True]),
    "programmeStartDate": st.sampled_from(["2026-01-01", "2026-02-30", "01/01/2026", None, ""]),
    "programmeEndDate": st.sampled_from(["2027-01-01", "2025-01-01", None, "soon"]),
    "programmeMembershipType": st.sampled_from(["SUBSTANTIVE", "lat", "OTHER", None]),
    "dateFrom": st.sampled_from(["2026-01-01", None, "yesterday"]),
    "gradeAbbreviation": st.sampled_from(["F1", None, 7]),
}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional=MUTATIONS))
def test_bulk_person_reader_agrees_with_the_schema(mutation):
    raw = person("1234567", programme(start="2026-01-01", end="2027-06-01"), person_id=5)
    for name, value in mutation.items():
        target = raw["programmeMemberships"][0] if name.startswith("programme") else raw
        target = raw["placements"][0] if name in ("dateFrom", "gradeAbbreviation") else target
        target[name] = value
    assert _outcome(read_person, copy.deepcopy(raw)) == _outcome(PersonSchema().load, copy.deepcopy(raw))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["1234567", " 1234567", "123", None, 99]),
    st.sampled_from(["01/02/2024", "2024-02-01", "31/02/2024", "", None]),
    st.sampled_from(["Yes", "no", "On hold", "Maybe", None]),
)
def test_bulk_gmc_reader_agrees_with_the_schema(number, added, notice):
    raw = gmc_doctor("1", GMCReferenceNumber=number, DateAdded=added, UnderNotice=notice)
    assert _outcome(read_connected_doctor, raw) == _outcome(ConnectedDoctorSchema().load, raw)


def test_a_bulk_reader_gives_what_its_rules_give_however_often_a_text_comes_again():
    # The same texts in fields with different rules, each record read twice: a text a field's
    # rule passed is remembered for that field only, and one that failed is checked again.
    reader = FieldReader([("day", "day", iso_date), ("name", "name", optional_text), ("code", "code", optional_code)])
    long_text = "x" * 150  # a name may be 200 characters, a code 100
    records = [
        {"day": "2026-01-01", "name": "2026-01-01", "code": " F1 "},
        {"day": "2026-01-01", "name": long_text, "code": "F1"},
        {"day": "2026-01-01", "name": "F1", "code": long_text},
        {"day": "2026-13-01", "name": "F1", "code": "F1"},
        {"day": " 2026-01-01 ", "name": " F1 ", "code": "2026-01-01"},
    ]

    def directly(record):
        try:
            return {
                "day": iso_date("day", record["day"]),
                "name": optional_text("name", record["name"]),
                "code": optional_code("code", record["code"]),
            }
        except InvalidValue as error:
            return str(error)

    def read(record):
        try:
            return reader.read(record)
        except InvalidValue as error:
            return str(error)

    expected = [directly(record) for record in records]
    assert [read(record) for record in records + records] == expected + expected
    assert expected[0] == {"day": date(2026, 1, 1), "name": "2026-01-01", "code": "F1"}
    assert expected[1]["name"] == long_text and expected[2].startswith("code: is longer than 100 characters")
