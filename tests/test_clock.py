"""One clock: "today" is the date in London for every command, task and service, whatever the
server's own zone, at the two moments it matters most: 00:30 in summer (London is a day ahead of
UTC) and 23:30 in winter on a server whose zone is already in the next day."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

import reval
from reval.tasks import end_expired_hides_task
from tests.factories import EAST_OF_ENGLAND, WESSEX

PACKAGE = Path(reval.__file__).parent

# (the moment, in the server's own zone, which time-machine makes the process's), London's date
MOMENTS = [
    pytest.param(
        (datetime(2026, 6, 30, 23, 30, tzinfo=ZoneInfo("UTC")), date(2026, 7, 1)), id="00:30 BST on a UTC server"
    ),
    pytest.param(
        (datetime(2026, 12, 2, 8, 30, tzinfo=ZoneInfo("Asia/Tokyo")), date(2026, 12, 1)),
        id="23:30 GMT on a Tokyo server",
    ),
]


@pytest.fixture(params=MOMENTS)
def moment(request):
    server_moment, london_day = request.param
    assert server_moment.date() != london_day  # the server's own date would be the wrong day
    return server_moment, london_day


def at(server_moment: datetime):
    return time_machine.travel(server_moment, tick=False)


def test_a_sync_without_an_as_of_date_decides_as_of_londons_day(reval, snapshots, moment):
    server_moment, london_day = moment
    gmc, tis = snapshots
    with at(server_moment):
        summary = json.loads(reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--json").stdout)
    assert summary["asOf"] == london_day.isoformat()
    assert {event["asOf"] for event in json.loads(reval("history", "1000003", "--json").stdout)} == {
        london_day.isoformat()
    }


def test_as_of_dates_are_accepted_up_to_a_year_from_londons_day(reval, snapshots, moment):
    server_moment, london_day = moment
    gmc, tis = snapshots
    latest = london_day.replace(year=london_day.year + 1)
    with at(server_moment):
        reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", latest.isoformat())
        refused = reval(
            "sync",
            "--gmc-file",
            gmc,
            "--tis-file",
            tis,
            "--as-of",
            (latest + timedelta(days=1)).isoformat(),
            expect_exit=2,
        )
    assert f"is outside 2000-01-01 to {latest.isoformat()}" in refused.output


def test_a_hide_must_end_after_londons_day_and_is_recorded_on_it(reval, synced, moment):
    server_moment, london_day = moment
    with at(server_moment):
        refused = reval(
            "hide",
            "1000003",
            "--designated-body",
            EAST_OF_ENGLAND,
            "--reason",
            "leaving",
            "--until",
            london_day.isoformat(),
            expect_exit=2,
        )
        reval(
            "hide",
            "1000003",
            "--designated-body",
            EAST_OF_ENGLAND,
            "--reason",
            "leaving",
            "--until",
            (london_day + timedelta(days=1)).isoformat(),
        )
    assert f"is not after {london_day.isoformat()}" in refused.output
    [hide] = [e for e in json.loads(reval("history", "1000003", "--json").stdout) if e["kind"] == "HIDE"]
    assert hide["asOf"] == london_day.isoformat()


def test_the_daily_task_ends_the_hides_whose_day_has_come_in_london(app, reval, synced, moment):
    server_moment, london_day = moment
    with at(server_moment - timedelta(days=2)):
        for number, until in (("1000001", london_day), ("1000003", london_day + timedelta(days=1))):
            reval(
                "hide",
                number,
                "--designated-body",
                EAST_OF_ENGLAND,
                "--reason",
                "leaving",
                "--until",
                until.isoformat(),
            )
    with at(server_moment), app.app_context():
        # The task's own function, in this app: calling the task would run it in the Celery app's Flask app.
        assert end_expired_hides_task.run() == 1
    hidden = {
        row["gmcReferenceNumber"]
        for row in json.loads(reval("export", "--queue", "hidden", "--designated-body", EAST_OF_ENGLAND).output)
    }
    assert hidden == {"1000003"}


def test_a_connection_gmc_accepts_is_recorded_on_londons_day(gmc_app, reval, synced, gmc_connect, moment):
    server_moment, london_day = moment
    with at(server_moment):
        reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1")
    events = [e for e in json.loads(reval("history", "1000002", "--json").stdout) if e["source"] == "ADMIN"]
    assert [e["kind"] for e in events] == ["GMC_REQUEST", "CONNECTION", "DECISION"]
    assert {e["asOf"] for e in events} == {london_day.isoformat()}


def test_nothing_reads_the_servers_own_date():
    # The server's zone says nothing about London's day; only reval/clock.py reads the clock's date.
    server_dates = re.compile(r"\b(date\.today|datetime\.today|datetime\.utcnow|time\.localtime)\b|datetime\.now\(\)")
    readers = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if server_dates.search(line)
    ]
    assert readers == []
