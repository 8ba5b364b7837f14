"""Builders for GMC and TIS records in their wire formats, and snapshot files of them."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from reval.reconcile.sync import GmcInput, TisInput, run_sync
from reval.services.context import Actor, Context
from reval.services.queues import QueueView, queue_entries
from reval.snapshot_files import open_snapshot

EAST_OF_ENGLAND = "1-1RSSQ05"
WESSEX = "1-1RUZUSF"
NORTH_EAST = "1-1RSSQ1B"
THAMES_VALLEY = "1-1RSSQ6R"
OWNER_NAMES = {
    EAST_OF_ENGLAND: "East of England",
    WESSEX: "Wessex",
    NORTH_EAST: "North East",
    THAMES_VALLEY: "Thames Valley",
}

AS_OF = date(2026, 11, 21)
_ids = itertools.count(1000)


def days(n: int, base: date = AS_OF) -> str:
    return (base + timedelta(days=n)).isoformat()


def programme(
    owner: str = EAST_OF_ENGLAND, start: str | None = None, end: str | None = None, kind: str = "SUBSTANTIVE", **extra
) -> dict:
    return {
        "id": next(_ids),
        "programmeName": "General Practice",
        "programmeNumber": "GP1",
        "programmeMembershipType": kind,
        "programmeStartDate": start or days(-100),
        "programmeEndDate": end or days(300),
        "programmeOwner": OWNER_NAMES.get(owner, owner),
        "trainingPathway": "CCT",
        "curricula": [],
        **extra,
    }


def placement(grade: str = "ST1", start: str | None = None, end: str | None = None) -> dict:
    return {"id": next(_ids), "gradeAbbreviation": grade, "dateFrom": start or days(-30), "dateTo": end or days(60)}


def person(
    gmc_number: str | None,
    *programmes: dict,
    person_id: int | None = None,
    status: str = "CURRENT",
    placements: list | None = None,
    **extra,
) -> dict:
    return {
        "tisPersonId": person_id if person_id is not None else next(_ids),
        "gmcNumber": gmc_number,
        "forenames": "Ada",
        "surname": "Lovelace",
        "status": status,
        "programmeMemberships": list(programmes),
        "placements": placements if placements is not None else [placement()],
        **extra,
    }


def gmc_doctor(gmc_number: str, **extra) -> dict:
    return {
        "GMCReferenceNumber": gmc_number,
        "DoctorFirstName": "Ada",
        "DoctorLastName": "Lovelace",
        "SubmissionDate": "01/06/2027",
        "DateAdded": "15/08/2024",
        "UnderNotice": "No",
        "DoctorStatus": "Not Under Notice",
        **extra,
    }


def gmc_snapshot(path: Path, lists: dict[str, list[dict]], jsonl: bool = False) -> Path:
    """``lists``: designated body code -> its doctors. Bodies not given were not fetched."""
    body_lists = [{"designatedBodyCode": code, "doctors": doctors} for code, doctors in lists.items()]
    if jsonl:
        path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in body_lists))
    else:
        path.write_bytes(orjson.dumps({"designatedBodies": body_lists}))
    return path


def tis_snapshot(path: Path, people: list[dict[str, Any]], jsonl: bool = False) -> Path:
    if jsonl:
        path.write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in people))
    else:
        path.write_bytes(orjson.dumps({"people": people}))
    return path


def sync_snapshots(
    sessions, files: Path, gmc_lists: dict[str, list[dict]], people: list[dict[str, Any]], name: str = "", **options
) -> dict[str, Any]:
    """Writes the lists and the people as GMC and TIS snapshot files (gmc<name>.json and
    tis<name>.json in ``files``) and syncs them; ``options`` go to run_sync (as_of, controls,
    engine); its summary."""
    gmc = gmc_snapshot(files / f"gmc{name}.json", gmc_lists)
    tis = tis_snapshot(files / f"tis{name}.json", people)
    return run_sync(
        sessions,
        gmc=GmcInput(str(gmc), open_snapshot(gmc, label="GMC", list_key="designatedBodies")),
        tis=TisInput(str(tis), open_snapshot(tis, label="TIS", list_key="people")),
        **options,
    )


def operator_context(sessions) -> Context:
    """A use case's context for an operator at the command line (every designated body)."""
    return Context(sessions, sessions, Actor.operator("tester"))


def exported(sessions, body: str | None = None) -> list[dict[str, Any]]:
    """What `reval export [--designated-body body]` writes."""
    return [entry.export_row() for entry in queue_entries(operator_context(sessions), QueueView(body))]
