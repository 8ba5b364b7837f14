"""Every CSV Reval writes (the web download and the command's export) opens safely in a
spreadsheet: a cell that would run as a formula is written as text."""

from __future__ import annotations

import csv
import io
import json

import pytest

from reval.spreadsheets import safe_cell
from tests.factories import AS_OF, EAST_OF_ENGLAND, gmc_doctor, gmc_snapshot, person, programme, tis_snapshot

FORMULAS = [
    '=HYPERLINK("https://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_cell_that_would_run_as_a_formula_is_written_as_text(formula):
    assert safe_cell(formula) == "'" + formula


@pytest.mark.parametrize(
    "value, cell",
    [("Ada", "Ada"), (None, ""), (["A", "B"], "A;B"), (1100001, "1100001"), ("O'Brien", "O'Brien"), ("", "")],
)
def test_other_cells_are_written_as_they_are(value, cell):
    assert safe_cell(value) == cell


@pytest.fixture
def formula_names(reval, files):
    gmc = gmc_snapshot(
        files / "gmc.json",
        {
            EAST_OF_ENGLAND: [
                gmc_doctor(f"100000{i}", DoctorFirstName=formula, DoctorLastName=formula)
                for i, formula in enumerate(FORMULAS)
            ]
        },
    )
    tis = tis_snapshot(
        files / "tis.json",
        [
            person(
                f"100000{i}",
                programme(EAST_OF_ENGLAND, programmeName=formula),
                person_id=i + 1,
                forenames=formula,
                surname=formula,
            )
            for i, formula in enumerate(FORMULAS)
        ],
    )
    reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF.isoformat(), "--json")


def test_the_commands_csv_export_writes_formulas_as_text(reval, formula_names):
    rows = list(csv.DictReader(io.StringIO(reval("export", "--format", "csv").stdout)))
    assert len(rows) == len(FORMULAS)
    as_json = {row["gmcReferenceNumber"]: row for row in json.loads(reval("export").stdout)}
    for row in rows:
        for field, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (field, cell)
        assert row["firstName"] == "'" + as_json[row["gmcReferenceNumber"]]["firstName"]
