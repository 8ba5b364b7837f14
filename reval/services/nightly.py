"""A nightly run's steps as the workers take them: record it, fetch and stage each source, then
reconcile, in one transaction or spread over shards, and finish. The tasks add the lock, the
retries and the fan-out; each step here takes the sessions and what it acts on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from reval.gmc.client import GmcClient
from reval.reconcile.decisions import shards_of_ranges
from reval.reconcile.nightly import (
    apply_staged,
    finished_run_summary,
    planned_shards,
    reconcile_staged,
    record_run_failure,
    record_run_start,
    stage_gmc_list,
    stage_tis_people,
)
from reval.reconcile.summary import SyncSummary
from reval.reconcile.sync import (
    RunStatus,
    SyncControls,
    decide_shard,
    failure_text,
    finish_sharded_run,
    record_skipped_run,
    refresh_statistics_after,
)
from reval.services.reference import configured_bodies
from reval.tis.client import TisClient


def skip_run(sessions: sessionmaker[Session], as_of: date, now: datetime, reason: str, run_id: int | None) -> int:
    """Records a run that did not run (``run_id``: one already recorded as started); its id."""
    return record_skipped_run(sessions, as_of, now, reason, run_id)


def begin_run(
    sessions: sessionmaker[Session], reads: sessionmaker[Session], as_of: date, now: datetime, run_id: int | None
) -> tuple[int, list[str]]:
    """The run (recorded as started now unless ``run_id`` already was) and the bodies to fetch."""
    if run_id is None:
        run_id = record_run_start(sessions, as_of, now)
    return run_id, [body.code for body in configured_bodies(reads)]


def stage_gmc(sessions: sessionmaker[Session], run_id: int, client: GmcClient, code: str) -> bool:
    """Fetches one body's GMC list and stages it for the run; whether it could be fetched."""
    return stage_gmc_list(sessions, run_id, client, code)


def stage_tis(sessions: sessionmaker[Session], run_id: int, client: TisClient) -> bool:
    """Pulls every TIS person and stages them for the run; whether TIS could be read."""
    return stage_tis_people(sessions, run_id, client)


def finished_status(sessions: sessionmaker[Session], run_id: int) -> RunStatus | None:
    """A finished run's status; None while it runs."""
    finished = finished_run_summary(sessions, run_id)
    return None if finished is None else SyncSummary.from_json(finished).status


@dataclass(frozen=True)
class Reconciled:
    """What reconciling a run's staged sources came to: its summary, or the shards left to decide."""

    summary: SyncSummary | None = None
    planned_shards: int = 1
    shards: list[list[tuple[str, str | None]]] = field(default_factory=list)


def reconcile_run(
    sessions: sessionmaker[Session], run_id: int, as_of: date, controls: SyncControls, shard_size: int
) -> Reconciled:
    """Reconciles what the run's fetches staged: as one sync, or, above ``shard_size`` doctors,
    the sources applied and the decisions left to shards. Raises AllSourcesFailed, SyncSkipped."""
    shards = planned_shards(sessions, run_id, shard_size)
    if shards > 1:
        apply_staged(sessions, run_id, as_of, controls)
        return Reconciled(planned_shards=shards, shards=shards_of_ranges(shards))
    return Reconciled(summary=SyncSummary.from_json(reconcile_staged(sessions, run_id, as_of, controls=controls)))


def record_failure(sessions: sessionmaker[Session], run_id: int, error: BaseException) -> None:
    """Records the run as failed, saying why in one line."""
    record_run_failure(sessions, run_id, failure_text(error))


def decide_run_shard(
    sessions: sessionmaker[Session], run_id: int, ranges: list[tuple[str, str | None]]
) -> dict[str, Any]:
    """Decides one shard's ranges of GMC numbers for the run; its counts."""
    return decide_shard(sessions, run_id, ranges)


def finish_run(
    sessions: sessionmaker[Session],
    run_id: int,
    shard_counts: list[dict[str, Any]],
    controls: SyncControls = SyncControls(),
) -> SyncSummary:
    """Ends a sharded run once every shard has reported; its summary."""
    return SyncSummary.from_json(finish_sharded_run(sessions, run_id, shard_counts, controls))


def refresh_statistics(sessions: sessionmaker[Session], summary: SyncSummary) -> None:
    """After a run that changed much, the database's planner learns the tables' new shape."""
    refresh_statistics_after(sessions, summary.to_json())
