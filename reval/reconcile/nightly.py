"""The nightly job as plain functions: start a run, stage each source's fetch, reconcile once.

Each fetch (one per GMC designated body, one for TIS) stages what it got, or why it got nothing,
in the database, so fetches can run as separate tasks on several machines. The reconciliation
then reads the staged sources (through a file, so the sync's own transaction is the only one
open) and runs the ordinary sync under the same run. A source that could not be fetched is "not
fetched", never a disconnection or a deletion; when nothing at all could be fetched the run fails.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from reval.clock import utcnow
from reval.gmc.client import GmcClient
from reval.models import Doctor, StagedSource, StagedTisPerson, SyncRun
from reval.progress import SILENT, Progress
from reval.reconcile.common import batched, insert_rows
from reval.reconcile.connections import DeliveryPolicy, deliver_due_requests
from reval.reconcile.live import counted, fetch_gmc_list, pull_failure, staged_gmc_input, staged_tis_input, write_lines
from reval.reconcile.reference import configured_designated_bodies
from reval.reconcile.sync import (
    GmcInput,
    RunStatus,
    SyncControls,
    TisInput,
    apply_run_sources,
    run_sync,
    start_run,
)
from reval.tis.client import TisClient, TisUnavailable

log = logging.getLogger(__name__)
TIS_KEY = "TIS"


class AllSourcesFailed(Exception):
    """Neither GMC nor TIS could be fetched: the run failed and changed nothing."""


def record_run_start(sessions: sessionmaker[Session], as_of: date, now: datetime) -> int:
    with sessions.begin() as session:
        return start_run(session, as_of, now).id


def record_run_failure(sessions: sessionmaker[Session], run_id: int, reason: str) -> None:
    with sessions.begin() as session:
        run = session.get_one(SyncRun, run_id)
        run.status, run.finished_at, run.error = RunStatus.FAILED, utcnow(), reason
        _discard_staged(session, run_id)


def stage_gmc_list(sessions: sessionmaker[Session], run_id: int, client: GmcClient, code: str) -> bool:
    """Fetches one body's list (with retries) and stages it, or why it could not be fetched, with
    when the fetch began (the list does not undo a change GMC confirms after that)."""
    began = utcnow()
    doctors, reason = fetch_gmc_list(client, code)
    with sessions.begin() as session:
        session.merge(
            StagedSource(
                sync_run_id=run_id,
                source="GMC",
                key=code,
                fetched=reason is None,
                reason=reason,
                doctors=doctors,
                fetched_at=began,
            )
        )
    return reason is None


def stage_tis_people(
    sessions: sessionmaker[Session], run_id: int, client: TisClient, progress: Progress = SILENT
) -> bool:
    """A full TIS pull staged person by person; a pull that fails part-way stages only its reason."""
    table = StagedTisPerson.__table__
    progress.begin("TIS", "people fetched")
    try:
        with sessions.begin() as session:
            session.execute(delete(StagedTisPerson).where(StagedTisPerson.sync_run_id == run_id))  # a repeated task
            for batch in batched(counted(client.everyone(), progress), 1000):
                rows = [
                    {"sync_run_id": run_id, "tis_person_id": person["tisPersonId"], "record": person}
                    for person in batch
                ]
                insert_rows(session.connection(), table, rows)
            session.merge(StagedSource(sync_run_id=run_id, source="TIS", key=TIS_KEY, fetched=True))
        return True
    except TisUnavailable as error:
        progress.end()
        reason = pull_failure(error)
        log.warning("TIS not fetched in run %s: %s", run_id, reason)
        with sessions.begin() as session:
            session.merge(StagedSource(sync_run_id=run_id, source="TIS", key=TIS_KEY, fetched=False, reason=reason))
        return False


@contextmanager
def staged_inputs(
    sessions: sessionmaker[Session], run_id: int
) -> Iterator[tuple[GmcInput, TisInput | None, str | None]]:
    """What a run's fetches staged, as sync inputs (GMC lists, TIS people or why not); raises AllSourcesFailed."""
    with sessions.begin() as session:
        codes = [body.code for body in configured_designated_bodies(session)]
        staged = {
            (row.source, row.key): row
            for row in session.scalars(select(StagedSource).where(StagedSource.sync_run_id == run_id))
        }
    not_fetched = _gmc_not_fetched(staged, codes)
    tis_reason = _tis_not_fetched(staged)
    if len(not_fetched) == len(codes) and tis_reason is not None:
        reason = f"no source could be fetched: TIS: {tis_reason}; GMC: " + "; ".join(
            f"{c}: {r}" for c, r in not_fetched.items()
        )
        record_run_failure(sessions, run_id, reason)
        raise AllSourcesFailed(reason)
    with tempfile.TemporaryDirectory(prefix="reval-nightly-") as directory:
        gmc_file = write_lines(Path(directory) / "gmc.jsonl", _staged_gmc_lists(sessions, run_id, codes, not_fetched))
        gmc = staged_gmc_input(gmc_file, "GMC Connect (nightly)", not_fetched)
        gmc.body_taken_at = {
            key: row.fetched_at for (source, key), row in staged.items() if source == "GMC" and row.fetched_at
        }
        tis = None
        if tis_reason is None:
            tis_file = write_lines(Path(directory) / "tis.jsonl", _staged_people(sessions, run_id))
            tis = staged_tis_input(tis_file, "TIS (nightly)")
        try:
            yield gmc, tis, tis_reason
        finally:  # used or not (the sync failed, or was skipped), what was staged has served
            with sessions.begin() as session:
                _discard_staged(session, run_id)


def _gmc_not_fetched(staged: dict[tuple[str, str], StagedSource], codes: list[str]) -> dict[str, str]:
    """Why each body's list was not fetched (its fetch said, or never reported)."""
    return {
        # (a fetch staged as not fetched always says why: fetched is "reason is None")
        code: (staged[("GMC", code)].reason or "its fetch gave no reason")
        if ("GMC", code) in staged
        else "its fetch did not report"
        for code in codes
        if not (("GMC", code) in staged and staged[("GMC", code)].fetched)
    }


def _tis_not_fetched(staged: dict[tuple[str, str], StagedSource]) -> str | None:
    """Why TIS's people were not pulled, or None when they were."""
    tis_row = staged.get(("TIS", TIS_KEY))
    if tis_row is not None and tis_row.fetched:
        return None
    return tis_row.reason if tis_row else "its pull did not report"


def reconcile_staged(
    sessions: sessionmaker[Session],
    run_id: int,
    as_of: date,
    controls: SyncControls = SyncControls(),
) -> dict[str, Any]:
    """Runs the sync of a nightly run from what its fetches staged; raises AllSourcesFailed
    (and SyncSkipped). A run already finished (its task delivered again) is left as it is."""
    finished = finished_run_summary(sessions, run_id)
    if finished is not None:
        return finished
    with staged_inputs(sessions, run_id) as (gmc, tis, tis_reason):
        return run_sync(
            sessions, gmc=gmc, tis=tis, as_of=as_of, tis_not_fetched_reason=tis_reason, run_id=run_id, controls=controls
        )


def apply_staged(
    sessions: sessionmaker[Session], run_id: int, as_of: date, controls: SyncControls = SyncControls()
) -> None:
    """A sharded nightly run's first step: apply what its fetches staged; shards decide next.
    A run whose sources are already applied, or that has finished (its task delivered again),
    is left as it is."""
    with sessions.begin() as session:
        run = session.get_one(SyncRun, run_id)
        if run.status != RunStatus.RUNNING or "sourcesAppliedAt" in (run.summary or {}):
            return
    with staged_inputs(sessions, run_id) as (gmc, tis, tis_reason):
        apply_run_sources(
            sessions, gmc=gmc, tis=tis, as_of=as_of, run_id=run_id, tis_not_fetched_reason=tis_reason, controls=controls
        )


def planned_shards(sessions: sessionmaker[Session], run_id: int, shard_size: int) -> int:
    """How many shards a run's decisions need: one per ``shard_size`` doctors (at most one per range)."""
    with sessions.begin() as session:
        doctors = session.execute(select(func.count()).select_from(Doctor)).scalar_one()
        people = session.execute(
            select(func.count()).select_from(StagedTisPerson).where(StagedTisPerson.sync_run_id == run_id)
        ).scalar_one()
    return max(1, -(-max(doctors, people) // shard_size))


def run_nightly_in_process(
    sessions: sessionmaker[Session],
    gmc_client: GmcClient,
    tis_client: TisClient,
    as_of: date,
    policy: DeliveryPolicy,
    now: Callable[[], datetime] = utcnow,
    run_id: int | None = None,
    controls: SyncControls = SyncControls(),
) -> dict[str, Any]:
    """The whole nightly job on this machine, one step after another (no broker needed): fetch,
    reconcile (which also ends hides whose day has come), then deliver due GMC requests.
    ``run_id``: a run already recorded as started (by whoever started the job)."""
    if run_id is None:
        run_id = record_run_start(sessions, as_of, now())
    with sessions.begin() as session:
        codes = [body.code for body in configured_designated_bodies(session)]
    progress = controls.progress
    progress.begin("GMC", "lists fetched")
    fetched = 0
    for index, code in enumerate(codes, start=1):
        fetched += stage_gmc_list(sessions, run_id, gmc_client, code)
        progress.advance(fetched, index / len(codes))
    progress.end()
    stage_tis_people(sessions, run_id, tis_client, progress)
    summary = reconcile_staged(sessions, run_id, as_of, controls=controls)
    controls.progress.begin("deliver", "connection requests due")
    summary["connectionRequestsDelivered"] = deliver_due_requests(sessions, gmc_client, now=now, policy=policy)
    controls.progress.end(summary["connectionRequestsDelivered"]["due"])
    return summary


def finished_run_summary(sessions: sessionmaker[Session], run_id: int) -> dict[str, Any] | None:
    """The summary of a run that has finished, or None while it runs."""
    with sessions.begin() as session:
        run = session.get_one(SyncRun, run_id)
        return None if run.status == RunStatus.RUNNING else (run.summary or {"status": run.status})


def _staged_gmc_lists(sessions, run_id: int, codes, not_fetched) -> Iterator[dict[str, Any]]:
    for code in codes:
        if code in not_fetched:
            continue
        with sessions.begin() as session:
            row = session.get_one(StagedSource, (run_id, "GMC", code))
            yield {"designatedBodyCode": code, "doctors": row.doctors}


def _staged_people(sessions, run_id: int) -> Iterator[dict[str, Any]]:
    with sessions.begin() as session:
        statement = (
            select(StagedTisPerson.record)
            .where(StagedTisPerson.sync_run_id == run_id)
            .order_by(StagedTisPerson.tis_person_id)
        )
        yield from session.scalars(statement.execution_options(yield_per=2000))


def _discard_staged(session: Session, run_id: int) -> None:
    session.execute(delete(StagedTisPerson).where(StagedTisPerson.sync_run_id == run_id))
    session.execute(delete(StagedSource).where(StagedSource.sync_run_id == run_id))
