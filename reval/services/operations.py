"""What an operator graphs that is stored state, read as Prometheus scrapes: doctors by queue, the
unassigned, GMC requests by status, and when each source last came in complete. Read from the
database on each scrape (a few indexed counts), so they are right whichever process wrote them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from reval.models import ConnectionRequest, Doctor, SyncRun
from reval.reconcile.sync import RunStatus
from reval.rules import Queue

# GMC requests as an operator reads them: waiting (or being sent), refused, answered.
REQUEST_STATUSES = {"PENDING": "pending", "FAILED": "failed", "SUCCEEDED": "done"}
SYNC_SOURCES = ("gmc", "tis")
RUNS_LOOKED_AT = 200  # the last successful sync of each source is among the latest runs


@dataclass(frozen=True)
class OperationalState:
    doctors: dict[str, int]  # by queue
    unassigned_doctors: int
    gmc_requests: dict[str, int]  # pending, failed, done
    last_successful_sync: dict[str, datetime | None]  # by source: when its last complete sync ended


def operational_state(reads: sessionmaker[Session]) -> OperationalState:
    with reads() as session:
        by_queue = dict.fromkeys((queue.value for queue in Queue), 0)
        for queue, count in session.execute(select(Doctor.queue, func.count()).group_by(Doctor.queue)):
            by_queue[queue] = count
        unassigned = session.execute(
            select(func.count()).select_from(Doctor).where(Doctor.unassigned.is_(True))
        ).scalar_one()
        requests = dict.fromkeys(REQUEST_STATUSES.values(), 0)
        for status, count in session.execute(
            select(ConnectionRequest.status, func.count()).group_by(ConnectionRequest.status)
        ):
            requests[REQUEST_STATUSES.get(status, status.lower())] = count
        return OperationalState(by_queue, unassigned, requests, _last_complete_sources(session))


def _last_complete_sources(session: Session) -> dict[str, datetime | None]:
    """When the latest run that took each source whole (every body's GMC list; every TIS person) ended."""
    found: dict[str, datetime | None] = dict.fromkeys(SYNC_SOURCES)
    runs = session.execute(
        select(SyncRun.status, SyncRun.finished_at, SyncRun.summary)
        .where(SyncRun.status.in_([RunStatus.SUCCEEDED, RunStatus.PARTIAL]))
        .order_by(SyncRun.id.desc())
        .limit(RUNS_LOOKED_AT)
    )
    for status, finished_at, summary in runs:
        for source in SYNC_SOURCES:
            if found[source] is None and _took_whole(source, status, summary or {}):
                found[source] = finished_at
        if all(found.values()):
            break
    return found


def _took_whole(source: str, status: str, summary: Mapping[str, Any]) -> bool:
    part = summary.get(source) or {}
    if part.get("source") is None:
        return False  # not given this run (a TIS-only refresh, a GMC file alone)
    if status == RunStatus.SUCCEEDED:
        return True
    if source == "gmc":
        return not part.get("designatedBodiesNotFetched")
    return bool(part.get("fetched")) and bool(part.get("complete"))
