"""The `reval` command end to end: the contract external checks rely on."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine

from tests.factories import (
    EAST_OF_ENGLAND,
    WESSEX,
    gmc_doctor,
    gmc_snapshot,
    person,
    placement,
    programme,
    tis_snapshot,
)

EXPORT_KEYS = {
    "gmcReferenceNumber",
    "queue",
    "reason",
    "visibleTo",
    "designatedBody",
    "programmeOwnerDesignatedBodies",
    "hiddenFor",
    "firstName",
    "lastName",
    "tisPersonIds",
    "gmcUpdateFailed",
}


def export(reval, *args):
    return json.loads(reval("export", *args).stdout)


def test_sync_json_summary(synced):
    assert synced["status"] == "SUCCEEDED" and synced["asOf"] == "2026-11-21"
    assert synced["queues"]["DISCREPANCY"]["after"] == 2
    assert synced["rejectedRecords"] == 1
    assert synced["rejections"][0]["message"] == "gmcNumber: is not a 7-digit GMC number (got 'bad-one')"


def test_sync_prints_a_readable_summary(reval, snapshots):
    gmc, tis = snapshots
    output = reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", "2026-11-21").output
    assert "Rejected records: 1" in output and "DISCREPANCY" in output


def test_export_json_rows(reval, synced):
    rows = export(reval)
    assert [row["gmcReferenceNumber"] for row in rows] == ["1000001", "1000002", "1000003"]
    assert all(set(row) == EXPORT_KEYS for row in rows)
    assert rows[2] == {
        "gmcReferenceNumber": "1000003",
        "queue": "DISCREPANCY",
        "reason": "DB_MISMATCH",
        "visibleTo": [EAST_OF_ENGLAND],
        "designatedBody": EAST_OF_ENGLAND,
        "programmeOwnerDesignatedBodies": [WESSEX],
        "hiddenFor": [],
        "firstName": "Ada",
        "lastName": "Lovelace",
        "tisPersonIds": [3],
        "gmcUpdateFailed": False,
    }


def test_export_filters_by_queue_and_designated_body(reval, synced):
    assert [r["gmcReferenceNumber"] for r in export(reval, "--queue", "CONNECTED")] == ["1000001"]
    assert [r["gmcReferenceNumber"] for r in export(reval, "--designated-body", WESSEX)] == ["1000002"]


def test_export_csv(reval, synced):
    rows = list(csv.DictReader(io.StringIO(reval("export", "--format", "csv").output)))
    assert set(rows[0]) == EXPORT_KEYS
    assert rows[1]["visibleTo"] == WESSEX and rows[1]["designatedBody"] == ""


def test_hide_shows_hidden_by_admin_to_that_body_only(reval, synced):
    with time_machine.travel("2026-11-21 09:00 +0000", tick=False):
        reval(
            "hide",
            "1000003",
            "--designated-body",
            EAST_OF_ENGLAND,
            "--reason",
            "moving next week",
            "--until",
            "2026-12-01",
        )
    [row] = export(reval, "--designated-body", EAST_OF_ENGLAND, "--queue", "HIDDEN")
    assert (row["gmcReferenceNumber"], row["reason"], row["hiddenFor"]) == (
        "1000003",
        "HIDDEN_BY_ADMIN",
        [EAST_OF_ENGLAND],
    )
    assert export(reval, "--queue", "HIDDEN") == []
    reval("unhide", "1000003", "--designated-body", EAST_OF_ENGLAND)
    assert export(reval, "--designated-body", EAST_OF_ENGLAND, "--queue", "HIDDEN") == []
    kinds = [e["kind"] for e in json.loads(reval("history", "1000003", "--json").stdout)]
    assert kinds == ["CONNECTION", "DECISION", "HIDE", "UNHIDE"]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["hide", "12", "--designated-body", EAST_OF_ENGLAND, "--reason", "x"],
            "GMC number: is not a 7-digit GMC number (got '12')",
        ),
        (
            ["hide", "9999999", "--designated-body", EAST_OF_ENGLAND, "--reason", "x"],
            "GMC number 9999999 is not a doctor Reval knows",
        ),
        (["hide", "1000002", "--designated-body", EAST_OF_ENGLAND, "--reason", "x"], "is not visible to 1-1RSSQ05"),
        (["hide", "1000001", "--designated-body", "NOPE", "--reason", "x"], "designated body 'NOPE' is not configured"),
        (["unhide", "1000001", "--designated-body", EAST_OF_ENGLAND], "is not hidden for 1-1RSSQ05"),
        (["explain", "7777777"], "is not known to GMC, TIS or any earlier sync"),
        (["export", "--designated-body", "NOPE"], "designated body 'NOPE' is not configured"),
    ],
)
def test_refusals_exit_2_with_one_line(reval, synced, args, message):
    result = reval(*args, expect_exit=2)
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_explain_shows_facts_the_matching_row_and_why_earlier_rows_failed(reval, synced):
    output = reval("explain", "1000003").output
    assert "10 DB_MISMATCH                 MATCHED" in output
    assert " 9 CONNECTED                   no: connected_to_programme_owner is no, needs yes" in output
    assert "Decision: DISCREPANCY / DB_MISMATCH (row 10)" in output


def test_rules_prints_the_table_and_passes_its_checks(reval):
    output = reval("rules", "--check").output
    assert "15  NO_PROGRAMME_NOT_CONNECTED" in output
    assert "0 gaps, 0 unreachable rows, 0 problems" in output


def test_designated_bodies_load_replaces_the_set(reval, files):
    path = files / "bodies.csv"
    path.write_text("code,name,owner\nX-1,Somewhere,Somewhere LETB\n")
    reval("designated-bodies", "load", path)
    assert reval("designated-bodies").output.strip() == "X-1         Somewhere (TIS owner: Somewhere LETB)"


def test_a_bad_designated_bodies_file_changes_nothing(reval, files):
    path = files / "bodies.csv"
    path.write_text("code,title\nX-1,Somewhere\n")
    result = reval("designated-bodies", "load", path, expect_exit=2)
    assert "must have the header code,name,owner" in result.output
    assert len(reval("designated-bodies").output.strip().splitlines()) == 14


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot be read: No such file or directory"),
        (b"{not json", "is not valid JSON"),
        (b'{"doctors": []}', "must be a JSON object with a 'people' list"),
    ],
)
def test_an_unreadable_file_exits_2_and_changes_nothing(reval, synced, files, content, message):
    before = export(reval)
    path = files / "tis-bad.json"
    if content is not None:
        path.write_bytes(content)
    result = reval("sync", "--tis-file", path, expect_exit=2)
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert export(reval) == before


def test_demo_exercises_every_rule(reval, app, migrated):
    output = reval("demo", "--doctors", "300", "--as-of", "2026-11-21", "--database-url", migrated, "--no-serve").output
    assert "What each designated body sees:" in output
    reasons = {row["reason"] for row in export(reval)}
    from reval.rules import DEFAULT_RULE_TABLE

    assert reasons == {row.reason for row in DEFAULT_RULE_TABLE.rows}
    requests = json.loads(reval("requests", "--format", "json").stdout)
    assert [(r["status"], r["returnCode"]) for r in requests] == [("SUCCEEDED", "0"), ("FAILED", "106")]
    flagged = [row["gmcReferenceNumber"] for row in export(reval) if row["gmcUpdateFailed"]]
    assert flagged == [requests[1]["gmcReferenceNumber"]]


def test_console_script_reports_an_unreadable_file_without_a_traceback(files, migrated):
    # The installed `reval` script, beside the interpreter running the tests.
    script = Path(sys.executable).with_name("reval")
    path = files / "gmc.json"
    path.write_text("[1, 2]")
    result = subprocess.run(
        [str(script), "sync", "--gmc-file", str(path)],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "REVAL_DATABASE_URL": migrated},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: GMC file '{path}' must be a JSON object with a 'designatedBodies' list"
    assert result.stdout == ""


def test_a_reader_that_stops_early_ends_the_command_quietly(files, migrated):
    """`reval designated-bodies | head -1`: the pipe's reader has gone when the list is written.
    That is the reader's choice, not an error to report."""
    script = Path(sys.executable).with_name("reval")
    reader, writer = os.pipe()
    os.close(reader)  # gone before the command writes a line
    try:
        result = subprocess.run(
            [str(script), "designated-bodies"],
            check=False,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "REVAL_DATABASE_URL": migrated},
        )
    finally:
        os.close(writer)
    assert result.returncode == 1
    assert result.stderr == ""


def test_rejections_lists_every_rejected_record_of_the_latest_run(reval, synced):
    rows = json.loads(reval("rejections", "--format", "json").stdout)
    assert rows == [
        {
            "run": synced["syncRunId"],
            "source": "TIS",
            "locator": "people[3]",
            "key": "4",
            "field": "gmcNumber",
            "value": "'bad-one'",
            "reason": "is not a 7-digit GMC number",
        }
    ]
    assert json.loads(reval("rejections", "--source", "gmc", "--format", "json").stdout) == []
    assert (
        json.loads(reval("rejections", "--run", synced["syncRunId"], "--source", "Tis", "--format", "json").stdout)
        == rows
    )
    table = reval("rejections").output.splitlines()
    assert table == [
        "run\tsource\tlocator\tkey\tfield\tvalue\treason",
        f"{synced['syncRunId']}\tTIS\tpeople[3]\t4\tgmcNumber\t'bad-one'\tis not a 7-digit GMC number",
    ]
    assert list(csv.DictReader(io.StringIO(reval("rejections", "--format", "csv").output))) == [
        {name: str(value) for name, value in row.items()} for row in rows
    ]


def test_rejections_of_a_run_that_does_not_exist_are_refused(reval, synced):
    result = reval("rejections", "--run", "99", expect_exit=2)
    assert "there is no sync run 99" in result.output


def test_the_sync_summary_says_each_rejection_reason_once_and_where_to_see_every_record(reval, files):
    people = [person(f"bad-{n}", programme(WESSEX)) for n in range(12)] + [
        person("bad-x", programme(WESSEX)) for _ in range(3)
    ]
    tis = tis_snapshot(files / "tis.json", people)
    output = reval(
        "sync", "--gmc-file", gmc_snapshot(files / "gmc.json", {}), "--tis-file", tis, "--as-of", "2026-11-21"
    ).output
    run = json.loads(reval("runs", "--format", "json").stdout)[0]["id"]
    assert "Rejected records: 15\n  3 TIS records: gmcNumber: is not a 7-digit GMC number (got 'bad-x')\n" in output
    assert "  TIS people[0]: gmcNumber: is not a 7-digit GMC number (got 'bad-0')\n" in output
    assert output.count("is not a 7-digit GMC number") == 10
    assert "  ... and 3 more records, for 3 other reasons\n" in output
    assert f"  Each one, with its field, value and reason: reval rejections --run {run}" in output


def test_the_sync_says_what_each_body_sees_with_hides_by_a_rule_and_by_an_admin_apart(reval, files):
    long_name = "Northern Ireland Medical and Dental Training Agency of Belfast"
    bodies = files / "bodies.csv"
    bodies.write_text(
        f"code,name,owner\n{EAST_OF_ENGLAND},East of England,East of England\n{WESSEX},{long_name},Wessex\n"
    )
    reval("designated-bodies", "load", bodies)
    gmc = gmc_snapshot(
        files / "gmc.json", {EAST_OF_ENGLAND: [gmc_doctor(n) for n in ("1000001", "1000002", "1000003")]}
    )
    tis = tis_snapshot(
        files / "tis.json",
        [
            person("1000001", programme(EAST_OF_ENGLAND)),
            person("1000002", programme(WESSEX), placements=[placement("F1")]),  # hidden by a rule from both bodies
            person("1000003", programme(WESSEX)),  # East of England's discrepancy, until its admin hides it
        ],
    )
    reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", "2026-11-21")
    reval("hide", "1000003", "--designated-body", EAST_OF_ENGLAND, "--reason", "moving to Wessex")
    output = reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", "2026-11-21").output
    header, *rows, note, _more = output.split("What each designated body sees:\n")[1].splitlines()
    assert [h.strip() for h in header[40:].split("  ") if h.strip()] == [
        "CONNECTED",
        "DISCREPANCY",
        "HIDDEN by rule",
        "HIDDEN by admin",
        "HISTORIC",
    ]
    assert [row[:40].rstrip() for row in rows] == [
        f"{EAST_OF_ENGLAND} East of England",
        f"{WESSEX} Northern Ireland Medical a...",
    ]
    assert [row[40:].split() for row in rows] == [["1", "0", "1", "1", "0"], ["0", "0", "1", "0", "0"]]
    assert all(len(row) == len(header) for row in rows)  # every number in its column
    assert note.startswith("A doctor visible to several designated bodies is counted in each")


def test_rules_check_reports_rows_that_can_decide_doctors_no_body_sees(reval):
    output = reval("rules", "--check").output
    assert re.search(
        r"\n  seen by no designated body: row \d+ UNKNOWN_PROGRAMME_OWNER \(DISCREPANCY\) "
        r"when connected = no and current_programme_owners = NONE\n",
        output,
    )
    assert not re.search(r"row \d+ NOT_CONNECTED ", output.split("\nCheck: ")[1])


def test_bench_prints_the_sync_against_a_floor_measured_on_each_side_of_it(reval):
    figures = json.loads(reval("bench", "--doctors", "200", "--json", "--quiet").output)
    before, after = figures["floorRunsSeconds"]
    assert before > 0 and after > 0
    assert figures["floorSeconds"] == pytest.approx((before + after) / 2)
    assert figures["fullSyncToFloor"] == pytest.approx(figures["fullSyncSeconds"] / figures["floorSeconds"])
    assert figures["unchangedResyncToFloor"] == pytest.approx(
        figures["unchangedResyncSeconds"] / figures["floorSeconds"]
    )
    assert figures["decided"] >= figures["doctors"] > 150 and figures["unchangedResyncEvents"] == 0

    text = reval("bench", "--doctors", "200", "--quiet").output
    floor_line = next(line for line in text.splitlines() if line.strip().startswith("load floor"))
    assert "s before the syncs and" in floor_line and "s after" in floor_line
    assert re.search(r"full sync +[\d.]+ s = [\d.]+ x floor", text), text
