"""Sync runs: what ran and what it found, the data-quality log, and starting a run now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select

from reval.models import RejectedRecord, SyncRun
from reval.reconcile.runs import recent_runs
from reval.reconcile.summary import SyncSummary
from reval.reconcile.sync import RunStatus
from reval.refusals import Conflict, Invalid, NotFound
from reval.services.access import require_may_act, require_national
from reval.services.context import Context

SOURCES = ("GMC", "TIS")
MAX_RUNS_LISTED = 1000


def list_runs(context: Context, limit: int = 20) -> list[SyncRun]:
    """The most recent runs, newest first: every signed-in person may see how the nights went."""
    if not 1 <= limit <= MAX_RUNS_LISTED:
        raise Invalid(f"limit {limit} is not between 1 and {MAX_RUNS_LISTED}", field="limit")
    with context.reads() as session:
        return recent_runs(session, limit)


def get_run(context: Context, run_id: int) -> SyncRun:
    with context.reads() as session:
        run = session.get(SyncRun, run_id)
        if run is None:
            raise NotFound(f"there is no sync run {run_id}", field="id")
        return run


@dataclass(frozen=True)
class Rejections:
    run: SyncRun
    records: list[RejectedRecord]


def run_rejections(context: Context, run_id: int | None = None, source: str | None = None) -> Rejections:
    """The records a run rejected for data quality (default: the latest run). National users only:
    they name doctors of every office."""
    require_national(context.actor, "see the records a sync rejected")
    wanted = None
    if source:
        wanted = source.strip().upper()
        if wanted not in SOURCES:
            raise Invalid(f"source {source!r} is not GMC or TIS", field="source")
    with context.reads() as session:
        if run_id is None:
            run = session.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(1)).first()
            if run is None:
                raise NotFound("there are no sync runs yet")
        else:
            run = session.get(SyncRun, run_id)
            if run is None:
                raise NotFound(f"there is no sync run {run_id}", field="run")
        statement = select(RejectedRecord).where(RejectedRecord.sync_run_id == run.id).order_by(RejectedRecord.id)
        if wanted:
            statement = statement.where(RejectedRecord.source == wanted)
        return Rejections(run, list(session.scalars(statement)))


@dataclass(frozen=True)
class RejectionReason:
    """Records a run rejected for one and the same reason (source and sentence)."""

    source: str
    message: str
    records: int
    locator: str  # where the first of them is (for a reason only one record has, where it is)


def rejection_reasons(context: Context, run_id: int) -> list[RejectionReason]:
    """The reasons a run rejected records for, the commonest first: a summary says each once."""
    require_national(context.actor, "see the records a sync rejected")
    records = func.count(RejectedRecord.id)
    statement = (
        select(RejectedRecord.source, RejectedRecord.message, records, func.min(RejectedRecord.locator))
        .where(RejectedRecord.sync_run_id == run_id)
        .group_by(RejectedRecord.source, RejectedRecord.message)
        .order_by(records.desc(), RejectedRecord.source, RejectedRecord.message)
    )
    with context.reads() as session:
        return [RejectionReason(*row) for row in session.execute(statement)]


def running_run(context: Context) -> SyncRun | None:
    with context.reads() as session:
        return session.scalars(
            select(SyncRun).where(SyncRun.status == RunStatus.RUNNING).order_by(SyncRun.id.desc()).limit(1)
        ).first()


def start_nightly_run(context: Context, as_of: date | None = None) -> int:
    """Starts the nightly job now, in the background (by the workers when there is a broker);
    returns the run's id. Conflict while another run is running."""
    require_national(context.actor, "start a sync run")
    require_may_act(context.actor)
    day = context.checked_as_of(as_of)
    running = running_run(context)
    if running is not None:
        raise Conflict(f"sync run {running.id} is already running (started {running.started_at:%Y-%m-%d %H:%M} UTC)")
    return context.require_gateway().start_nightly(day)


def run_view(run: SyncRun) -> dict[str, Any]:
    """A run as the runs page, the API and `reval runs` show it."""
    summary = SyncSummary.from_json({"status": run.status, **(run.summary or {})})
    gmc, tis = summary.gmc, summary.tis
    tis_reason = tis.get("notFetchedReason")
    return {
        "id": run.id,
        "status": run.status,
        "asOf": run.as_of.isoformat(),
        "startedAt": run.started_at.isoformat(),
        "finishedAt": run.finished_at.isoformat() if run.finished_at else None,
        "ruleTable": run.rule_table,
        "sources": {
            "gmc": {
                "source": run.gmc_source,
                "fetched": gmc.get("designatedBodiesFetched", []),
                "notFetched": gmc.get("designatedBodiesNotFetched", {}),
            },
            "tis": {
                "source": run.tis_source,
                "fetched": bool(tis.get("source")) and tis.get("fetched", True),
                "notFetched": {"TIS": tis_reason} if tis_reason else {},
            },
        },
        "queues": summary.queues,
        "archived": summary.archived,
        "restored": summary.restored,
        "rejectedRecords": run.rejected_records,
        "error": run.error,
    }
