"""The changes feed (/api/v1/changes, `reval changes`) and archiving, as other systems use them:
a consumer that applies every item it pulls holds exactly what the queues say, through syncs,
hides, archiving and restoring; a cursor resumes without loss or repeat; bad or expired
cursors are refused."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select, update

from reval.app import create_app
from reval.clock import utcnow
from reval.extensions import database
from reval.models import DoctorChange
from reval.reconcile.sync import SyncControls
from tests.api.conftest import Caller
from tests.api.test_resources import all_pages
from tests.conftest import Reval, assert_one_line_refusal
from tests.factories import AS_OF, EAST_OF_ENGLAND, NORTH_EAST, WESSEX, gmc_snapshot, sync_snapshots, tis_snapshot
from tests.web.conftest import EAST_CONNECTED, EAST_NOT_CONNECTED, UNASSIGNED, Dataset

NATIONAL = "reval.read reval.national"
BODIES = (EAST_OF_ENGLAND, WESSEX, NORTH_EAST)


class Consumer:
    """Another system's copy of what Reval's bodies see, kept by applying the feed."""

    def __init__(self, caller: Caller, page_size: int = 7):
        self.caller, self.page_size = caller, page_size
        self.cursor: str | None = None
        self.seen: list[str] = []  # every item's cursor, in the order pulled
        self.views: dict[tuple[str | None, str], tuple[str, str]] = {}

    def pull(self) -> list[dict]:
        """Pulls until a page comes back short; returns the items pulled."""
        pulled: list[dict] = []
        while True:
            query = f"pageSize={self.page_size}" + (f"&since={self.cursor}" if self.cursor else "")
            response = self.caller.get(f"/api/v1/changes?{query}")
            assert response.status_code == 200, response.json
            items = response.json["items"]
            for item in items:
                self.apply(item)
            pulled += items
            self.cursor = response.json["nextCursor"]
            if len(items) < self.page_size:
                return pulled

    def apply(self, item: dict) -> None:
        self.seen.append(item["cursor"])
        key = (item["designatedBody"], item["gmcReferenceNumber"])
        if item["visible"]:
            self.views[key] = (item["queue"], item["reason"])
        else:
            self.views.pop(key, None)

    def of_body(self, code: str) -> dict[str, tuple[str, str]]:
        return {number: view for (body, number), view in self.views.items() if body == code}


def queues_say(caller: Caller, code: str) -> dict[str, tuple[str, str]]:
    rows = all_pages(caller, f"/api/v1/designated-bodies/{code}/doctors?pageSize=100")
    return {row["gmcReferenceNumber"]: (row["queue"], row["reason"]) for row in rows}


def sync(sessions, files, data: Dataset, as_of, name: str, **controls) -> dict:
    return sync_snapshots(
        sessions, files, data.gmc_lists, data.people, f"-{name}", as_of=as_of, controls=SyncControls(**controls)
    )


def without(data: Dataset, number: str) -> Dataset:
    """The dataset with the doctor gone from both sources."""
    lists = {
        code: [d for d in doctors if d["GMCReferenceNumber"] != number] for code, doctors in data.gmc_lists.items()
    }
    return Dataset(lists, [p for p in data.people if p["gmcNumber"] != number])


def test_a_consumer_holds_what_the_queues_say_through_syncs_hides_and_archiving(calling, national, sessions, files):
    east, everyone = calling(), calling(scopes=NATIONAL)
    east_feed, national_feed = Consumer(east), Consumer(everyone)
    for feed in (east_feed, national_feed):
        feed.pull()
    assert east_feed.of_body(EAST_OF_ENGLAND) == queues_say(east, EAST_OF_ENGLAND)
    assert set(east_feed.views) == {(EAST_OF_ENGLAND, number) for number in queues_say(east, EAST_OF_ENGLAND)}
    assert (None, UNASSIGNED) in national_feed.views  # the Unassigned view, for national callers only

    # An admin hides a doctor; the next sync moves one doctor out of East's programme.
    admin = calling(scopes="reval.read reval.write")
    hidden = EAST_CONNECTED[0]
    assert (
        admin.post(
            f"/api/v1/doctors/{hidden}/hides", {"designatedBody": EAST_OF_ENGLAND, "reason": "on leave"}
        ).status_code
        == 201
    )
    gone = EAST_NOT_CONNECTED[0]
    second = without(national, gone)
    sync(sessions, files, second, AS_OF + timedelta(days=1), "2")
    items = east_feed.pull()
    assert {(item["gmcReferenceNumber"], item["kind"], item["visible"]) for item in items} >= {
        (hidden, "HIDE", True),
    }
    assert east_feed.of_body(EAST_OF_ENGLAND) == queues_say(east, EAST_OF_ENGLAND)
    assert east_feed.views[(EAST_OF_ENGLAND, hidden)] == ("HIDDEN", "HIDDEN_BY_ADMIN")

    # A year and a day with neither source holding them: the doctor is archived, and leaves
    # every view (a deletion notification to each body that saw them).
    national_feed.pull()
    before = {key for key in national_feed.views if key[1] == gone}
    assert before
    later = AS_OF + timedelta(days=367)
    summary = sync(sessions, files, second, later, "3", archive_after_days=365)
    assert summary["archived"] >= 1
    archived_items = [item for item in national_feed.pull() if item["gmcReferenceNumber"] == gone]
    assert {(item["designatedBody"], item["kind"], item["visible"]) for item in archived_items} == {
        (code, "ARCHIVED", False) for code, _ in before
    }
    assert not [key for key in national_feed.views if key[1] == gone]
    doctor = everyone.get(f"/api/v1/doctors/{gone}")
    assert doctor.status_code == 200
    assert (doctor.json["archived"], doctor.json["archivedOn"]) == (True, later.isoformat())
    assert doctor.json["lastQueue"] in ("CONNECTED", "DISCREPANCY", "HIDDEN", "HISTORIC")
    assert doctor.headers["Last-Modified"]
    assert calling().get(f"/api/v1/doctors/{gone}").status_code == 404  # nobody's doctor now
    for code in BODIES:
        assert national_feed.of_body(code) == queues_say(everyone, code)

    # Back in TIS: the next sync restores them, into the views the queues show.
    summary = sync(sessions, files, national, later + timedelta(days=1), "4")
    assert summary["restored"] == 1
    restored = [item for item in national_feed.pull() if item["gmcReferenceNumber"] == gone]
    assert {item["kind"] for item in restored} == {"RESTORED"}
    assert everyone.get(f"/api/v1/doctors/{gone}").json["archived"] is False
    history = everyone.get(f"/api/v1/doctors/{gone}/history").json["items"]
    assert [event["kind"] for event in history if event["kind"] in ("ARCHIVED", "RESTORED")] == [
        "ARCHIVED",
        "RESTORED",
    ]
    for code in BODIES:
        assert national_feed.of_body(code) == queues_say(everyone, code)
    east_feed.pull()
    assert east_feed.of_body(EAST_OF_ENGLAND) == queues_say(east, EAST_OF_ENGLAND)
    for feed in (east_feed, national_feed):
        assert len(feed.seen) == len(set(feed.seen))  # nothing served twice


def test_a_first_pull_from_a_time_and_a_cursor_resume_exactly(calling, national, sessions):
    caller = calling(scopes=NATIONAL)
    everything = caller.get("/api/v1/changes?pageSize=1000").json
    first_half = caller.get("/api/v1/changes?pageSize=5").json
    rest = caller.get(f"/api/v1/changes?pageSize=1000&since={first_half['nextCursor']}").json
    assert first_half["items"] + rest["items"] == everything["items"]
    assert rest["nextCursor"] == everything["nextCursor"]
    assert caller.get(f"/api/v1/changes?since={everything['nextCursor']}").json["items"] == []
    with sessions() as session:
        recorded = session.scalar(select(DoctorChange.changed_at).limit(1))
    since_then = caller.get("/api/v1/changes", query_string={"pageSize": 1000, "since": recorded.isoformat()}).json
    assert since_then["items"] == everything["items"]
    after = (recorded + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert caller.get(f"/api/v1/changes?since={after}").json["items"] == []


@pytest.mark.parametrize("since", ["yesterday", "2027-02-30T00:00:00Z", "2027-01-01", "MTIz", "MC4w==", "%00", "-1"])
def test_a_malformed_since_is_a_400_naming_it(calling, national, since):
    response = calling().get("/api/v1/changes", query_string={"since": since})
    assert response.status_code == 400, response.json
    assert response.mimetype == "application/problem+json"
    assert "since" in response.json["detail"] and list(response.json["errors"]) == ["since"]


def test_a_cursor_older_than_the_retention_is_gone(calling, national, sessions, files):
    caller = calling()
    old_cursor = caller.get("/api/v1/changes?pageSize=1").json["nextCursor"]
    with sessions.begin() as session:  # every change recorded long ago
        session.execute(update(DoctorChange).values(changed_at=utcnow() - timedelta(days=200)))
    summary = sync(sessions, files, national, AS_OF + timedelta(days=1), "2", changes_retention_days=185)
    assert summary["changesPruned"] > 0
    response = caller.get(f"/api/v1/changes?since={old_cursor}")
    assert response.status_code == 410
    assert response.mimetype == "application/problem+json"
    assert "full pull" in response.json["detail"]


def test_reval_changes_prints_the_feed(reval, national):
    result = reval("changes", "--format", "json", "--page-size", "3")
    assert result.exit_code == 0, result.output
    page = orjson.loads(result.output)
    assert len(page["items"]) == 3 and page["nextCursor"]
    following = orjson.loads(reval("changes", "--format", "json", "--since", page["nextCursor"]).output)
    assert following["items"][0]["cursor"] != page["items"][-1]["cursor"]
    table = reval("changes", "--since", page["nextCursor"])
    assert table.exit_code == 0 and "Next cursor:" in table.output
    assert_one_line_refusal(reval("changes", "--since", "nonsense", expect_exit=2), 2, "since 'nonsense'")


def test_archived_doctors_are_counted_listed_and_out_of_the_default_export(reval, national, sessions, files):
    later = AS_OF + timedelta(days=400)
    summary = sync(sessions, files, without(national, UNASSIGNED), later, "later")
    assert (summary["archived"], summary["restored"]) == (1, 0)
    assert sum(counts["after"] for counts in summary["queues"].values()) == summary["doctors"]
    assert "1 archived, 0 restored" in reval("runs").output
    archived = orjson.loads(reval("export", "--archived").output)
    assert [(row["gmcReferenceNumber"], row["archivedOn"]) for row in archived] == [(UNASSIGNED, later.isoformat())]
    assert UNASSIGNED not in {row["gmcReferenceNumber"] for row in orjson.loads(reval("export").output)}
    assert "archivedOn" in reval("export", "--archived", "--format", "csv").output.splitlines()[0]
    assert "Archived on" in reval("history", UNASSIGNED).output
    refused = reval("export", "--archived", "--designated-body", EAST_OF_ENGLAND, expect_exit=2)
    assert "--archived" in refused.output


def test_a_dry_run_lists_whom_the_sync_would_archive(app, national, files):
    """REVAL_ARCHIVE_AFTER_DAYS as set, within the year of as-of dates a sync accepts."""
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    short = create_app(settings | {"REVAL_ARCHIVE_AFTER_DAYS": "200"})
    reval = Reval(short)
    data = without(national, UNASSIGNED)
    gmc = gmc_snapshot(files / "gmc-dry.json", data.gmc_lists)
    tis = tis_snapshot(files / "tis-dry.json", data.people)
    sources = ("--gmc-file", str(gmc), "--tis-file", str(tis), "--as-of", (AS_OF + timedelta(days=300)).isoformat())
    dry = reval("sync", "--dry-run", *sources)
    assert f"Doctors that would be archived: 1 ({UNASSIGNED})" in dry.output
    assert "Doctors that would be restored: 0" in dry.output
    listed = orjson.loads(reval("sync", "--dry-run", "--json", "--quiet", *sources).output)
    assert (listed["archived"], listed["restored"]) == ([UNASSIGNED], [])
    assert orjson.loads(reval("export", "--archived").output) == []  # a dry run writes nothing
    database(short).engine.dispose()
