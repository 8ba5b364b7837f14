"""A sync: apply both sources and decide every doctor, in one transaction, recorded as a run."""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from reval.clock import utcnow
from reval.db import bulk_page_cache, refresh_planner_statistics
from reval.designated_bodies import DesignatedBody, OwnerDirectory
from reval.metrics import metrics
from reval.models import (
    Doctor,
    DoctorEvent,
    DoctorVisibility,
    DoctorVisibilityName,
    GmcConnection,
    RejectedRecord,
    RejectedTisPerson,
    SyncRun,
    TisPerson,
)
from reval.progress import SILENT, Progress
from reval.reconcile.archive import archive_doctors
from reval.reconcile.changes import prune_changes
from reval.reconcile.common import EventKind, EventLog, Rejection, Source, infrequent_garbage_collection
from reval.reconcile.decisions import (
    DecisionOutcome,
    decide_batch,
    decide_doctors,
    in_range,
    mark_for_decision,
    queue_counts,
    shards_of_ranges,
    undecided_numbers,
)
from reval.reconcile.helper import IN_THIS_PROCESS, SyncHelper
from reval.reconcile.lock import SyncLockBusy, lock_holder, sync_lock
from reval.reconcile.reference import configured_designated_bodies
from reval.reconcile.sources import (
    GmcOutcome,
    MassChangeGuard,
    TisExamination,
    TisOutcome,
    apply_gmc_lists,
    apply_tis_people,
    examine_people,
    examine_tis_people,
)
from reval.rules import DEFAULT_RULE_TABLE, RuleEngine
from reval.settings import Settings
from reval.snapshot_files import open_snapshot

log = logging.getLogger(__name__)
REJECTIONS_IN_SUMMARY = 20
# How long a sync waits for another to finish before it is recorded as SKIPPED (a national sync
# takes a minute or two; a nightly run's fetches take longer, and hold no lock meanwhile).


@dataclass
class GmcInput:
    """This run's GMC lists: (locator, {"designatedBodyCode", "doctors"}) pairs, one per fetched body."""

    label: str
    body_lists: Iterable[tuple[str, Any]]
    not_fetched_reasons: dict[str, str] = field(default_factory=dict)

    size_bytes: int = 0  # how much there is to read, when known
    # When the lists were taken from GMC, where known: a list never undoes a connection change
    # GMC confirmed after it was taken. Per body (live fetches), else for the whole snapshot.
    taken_at: datetime | None = None
    body_taken_at: dict[str, datetime] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> GmcInput:
        lists, size = _snapshot_file(path, "GMC", "designatedBodies")
        # A file's lists were taken at the latest when it was last written.
        written = datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
        return cls(str(path), lists, size_bytes=size, taken_at=written)

    def list_taken_at(self, code: str) -> datetime | None:
        return self.body_taken_at.get(code, self.taken_at)


@dataclass
class TisInput:
    """This run's TIS people: (locator, person) pairs forming a full snapshot, or, when not
    ``full_snapshot``, just some people (a targeted pull) with those TIS has deleted."""

    label: str
    people: Iterable[tuple[str, Any]]
    full_snapshot: bool = True
    deleted_person_ids: frozenset[int] = frozenset()

    size_bytes: int = 0  # how much there is to read, when known

    @classmethod
    def from_file(cls, path: str | Path) -> TisInput:
        people, size = _snapshot_file(path, "TIS", "people")
        return cls(str(path), people, size_bytes=size)


def _snapshot_file(path: str | Path, label: str, list_key: str) -> tuple[Iterable[tuple[str, Any]], int]:
    """A snapshot file's records and its size; raises SnapshotUnreadable before anything is
    stored. Its lines come undecoded: they are decoded where they are validated (in the sync's
    helper process, if it has one)."""
    return open_snapshot(path, label=label, list_key=list_key, undecoded=True), Path(path).stat().st_size


# Inputs above this size (several batches of records) start the sync's helper process at once.
LARGE_INPUT_BYTES = 5_000_000
# Inputs known to be under this size (a few hundred doctors) are worked here alone: a helper
# process takes about a second to start, more than all their work. (Of inputs whose size is not
# known, a step starts one once it has worked alone for a while: see SyncHelper.)
SMALL_INPUT_BYTES = 1_000_000


def _sync_helper(gmc: GmcInput | None, tis: TisInput | None, use_process: bool | None = None) -> SyncHelper:
    inputs = [source for source in (gmc, tis) if source is not None]
    size = sum(source.size_bytes for source in inputs)
    if inputs and all(source.size_bytes for source in inputs) and size < SMALL_INPUT_BYTES:
        use_process = False
    preload = (examine_people.__module__, decide_batch.__module__)  # the helper's work
    return SyncHelper(use_process, start_now=size > LARGE_INPUT_BYTES, preload=preload)


class SyncFailed(Exception):
    def __init__(self, run_id: int, cause: BaseException):
        self.run_id = run_id
        super().__init__(f"sync run {run_id} failed and changed nothing: {failure_text(cause)}")


class SyncInterrupted(KeyboardInterrupt):
    """The sync was stopped (Ctrl-C, SIGTERM): its run is recorded FAILED, nothing of it committed."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        super().__init__(f"sync run {run_id} interrupted: recorded as failed, nothing of it was applied")


class SyncSkipped(Exception):
    """Another sync held the sync lock for the whole wait: this one was recorded as SKIPPED."""

    def __init__(self, run_id: int, reason: str):
        self.run_id, self.reason = run_id, reason
        super().__init__(f"sync run {run_id} skipped: {reason}")


@dataclass(frozen=True)
class SyncControls:
    """How a sync treats what could go wrong around it: sources that would remove too much
    (``guard``), and another sync holding the lock (wait up to ``wait_seconds``, telling
    ``on_wait`` why it waits)."""

    guard: MassChangeGuard = MassChangeGuard()
    wait_seconds: float = 0
    on_wait: Callable[[str], None] | None = None
    progress: Progress = SILENT  # hears each phase (GMC, TIS, decide) as it goes
    helper_process: bool = True  # REVAL_SYNC_HELPER: may share its work with a helper process
    archive_after_days: int = 365  # REVAL_ARCHIVE_AFTER_DAYS
    changes_retention_days: int = 185  # REVAL_CHANGES_RETENTION_DAYS

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        allow_mass_changes: bool = False,
        wait_seconds: float | None = None,
        on_wait: Callable[[str], None] | None = None,
        progress: Progress = SILENT,
    ) -> SyncControls:
        """The settings' controls (REVAL_MAX_*_PERCENT, REVAL_SYNC_WAIT_SECONDS, REVAL_SYNC_HELPER),
        overridden where given."""
        if wait_seconds is None:
            wait_seconds = settings.sync_wait_seconds
        guard = MassChangeGuard.from_settings(settings, allow_mass_changes)
        return cls(
            guard,
            wait_seconds,
            on_wait,
            progress,
            settings.sync_helper,
            archive_after_days=settings.archive_after_days,
            changes_retention_days=settings.changes_retention_days,
        )


def failure_text(error: BaseException) -> str:
    """A failure as stored on its run, logged and printed: what went wrong, never the data it
    went wrong on (a database error's text quotes its SQL and values: names, GMC numbers)."""
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        return "interrupted"
    if isinstance(error, DBAPIError):
        cause = error.orig if error.orig is not None else error
        first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        return f"database error {type(cause).__name__}: {first_line[:200]}"
    if isinstance(error, (SyncFailed, SyncSkipped, NothingFetched)):
        return str(error)
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def run_sync(
    sessions: sessionmaker[Session],
    *,
    gmc: GmcInput | None,
    tis: TisInput | None,
    as_of: date,
    engine: RuleEngine | None = None,
    now: datetime | None = None,
    tis_not_fetched_reason: str | None = None,
    run_id: int | None = None,
    helper_process: bool | None = None,
    controls: SyncControls = SyncControls(),
) -> dict[str, Any]:
    """Runs one sync and returns its summary. Either source may be absent (not fetched); a TIS
    pull that failed says why in ``tis_not_fetched_reason`` and makes the run PARTIAL.
    ``run_id``: a run already started (a nightly run whose fetches came first). ``controls``: the
    guard, the wait for the lock, and who hears how it goes. ``helper_process``: share
    the work with a second process (default: when there is a second core; see SyncHelper).
    Raises SyncSkipped when another sync holds the lock, SyncFailed when it fails."""
    engine = engine or RuleEngine(DEFAULT_RULE_TABLE)
    with (
        _locked_run(sessions, controls, run_id, as_of, now, engine, gmc, tis) as (this_run, started),
        infrequent_garbage_collection(),
        sessions.begin() as session,
    ):
        bulk_page_cache(session)
        if helper_process is None and not controls.helper_process:
            helper_process = False
        with _sync_helper(gmc, tis, helper_process) as helper:  # its process ends before the commit
            summary = _reconcile(
                session, this_run, gmc, tis, as_of, engine, started, tis_not_fetched_reason, helper, controls
            )
        summary["helperProcess"] = {
            "used": helper.uses_process,
            "batches": helper.batches_in_process,
            "peakMemoryMiB": helper.peak_memory_mib,
        }
        run = session.get_one(SyncRun, this_run)
        run.status, run.finished_at = summary["status"], utcnow()
        summary["finishedAt"] = run.finished_at.isoformat()
        run.summary, run.rejected_records = summary, summary["rejectedRecords"]
    refresh_statistics_after(sessions, summary)
    count_run(summary["status"], started)
    return summary


QUEUE_TABLES = (Doctor.__tablename__, DoctorVisibility.__tablename__, DoctorVisibilityName.__tablename__)
# What the decide step reads each range of GMC numbers from.
SOURCE_TABLES = (GmcConnection.__tablename__, TisPerson.__tablename__, RejectedTisPerson.__tablename__)


def refresh_statistics_after(sessions: sessionmaker[Session], summary: dict[str, Any]) -> None:
    """After a sync that changed at least one decision in a hundred (a first sync changes them
    all), or one source's records, the database's planner learns the tables' new shape at once
    (see refresh_planner_statistics); smaller changes are left to autovacuum. Called once the
    sync has committed and let go of its lock (an interruption now cannot mark the run failed),
    and a failure here costs speed, not data: it is logged and the run stands. A sharded run's
    sources were seen to as they were applied, before its shards read them."""
    changed, doctors = summary.get("decisionsChanged"), summary.get("doctors")
    if changed is None:  # a finished run's task delivered again
        return
    try:
        if changed * 100 >= doctors:
            _refresh_statistics(sessions, QUEUE_TABLES)
        if "shards" not in summary:
            refresh_source_statistics(sessions, summary)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM now stops only the refresh: the sync has succeeded
        log.warning("The planner's statistics were not refreshed after the sync: interrupted")


def refresh_source_statistics(sessions: sessionmaker[Session], summary: dict[str, Any]) -> None:
    """The sources' tables analyzed once a sync has rewritten at least one in a hundred of either
    source's records: deciding reads them range by range."""
    if _sources_rewritten(summary):
        _refresh_statistics(sessions, SOURCE_TABLES, vacuum=False)


def _refresh_statistics(sessions: sessionmaker[Session], tables: Sequence[str], vacuum: bool = True) -> None:
    """A failure here costs speed, not data: logged, and the sync goes on."""
    try:
        refresh_planner_statistics(sessions.kw["bind"], tables, vacuum)
    except SQLAlchemyError as error:
        log.warning(
            "The planner's statistics of %s were not refreshed: %s", ", ".join(tables), str(error).splitlines()[0]
        )


def _sources_rewritten(summary: dict[str, Any]) -> bool:
    """Whether either source added, changed or removed at least one in a hundred of its records."""
    gmc, tis = summary.get("gmc", {}), summary.get("tis", {})
    gmc_written = sum(
        gmc.get(key, 0) for key in ("connectionsAdded", "connectionsRemoved", "connectionsMoved", "connectionsUpdated")
    )
    tis_written = sum(tis.get(key, 0) for key in ("peopleAdded", "peopleUpdated", "peopleDeleted"))
    return (gmc_written > 0 and gmc_written * 100 >= gmc.get("doctorsRead", 0)) or (
        tis_written > 0 and tis_written * 100 >= tis.get("peopleRead", 0)
    )


def _reconcile(
    session: Session,
    run_id: int,
    gmc: GmcInput | None,
    tis: TisInput | None,
    as_of: date,
    engine: RuleEngine,
    started: datetime,
    tis_not_fetched_reason: str | None,
    helper: SyncHelper,
    controls: SyncControls,
) -> dict[str, Any]:
    bodies = configured_designated_bodies(session)
    events = EventLog(recorded_at=started, as_of=as_of, sync_run_id=run_id)
    clock = PhaseClock()
    gmc_outcome, tis_outcome, rejections = _apply_sources(
        session,
        run_id,
        gmc,
        tis,
        bodies,
        events,
        clock.lap,
        helper,
        controls.guard,
        controls.progress,
        tis_not_fetched_reason,
    )
    decisions = _decide(
        session,
        engine,
        bodies,
        as_of,
        started,
        events,
        change_sources={number: Source.GMC_SYNC for number in gmc_outcome.changed_numbers},
        touched=gmc_outcome.touched_numbers | (tis_outcome.touched_numbers if tis_outcome else set()),
        helper=helper,
        progress=controls.progress,
    )
    clock.lap("decide")
    housekeeping = keep_house(session, decisions, as_of, events, controls)
    clock.lap("housekeeping")
    summary = _sources_summary(
        run_id, as_of, engine, started, gmc, tis, gmc_outcome, tis_outcome, rejections, tis_not_fetched_reason
    )
    return summary | _decisions_summary(decisions, events.written) | housekeeping | {"seconds": clock.seconds}


def keep_house(
    session: Session, decisions: DecisionOutcome, as_of: date, events: EventLog, controls: SyncControls
) -> dict[str, int]:
    """A sync's last steps, once every doctor is decided: archives the doctors nobody holds
    (counted out of their queues) and prunes the changes feed; returns their counts."""
    archived = archive_doctors(session, as_of, controls.archive_after_days, events)
    decisions.left.update(archived.left)
    decisions.after.subtract(archived.left)
    now = utcnow()
    pruned = prune_changes(session, now - timedelta(days=controls.changes_retention_days), now)
    return {"archived": archived.archived, "restored": decisions.restored, "changesPruned": pruned}


@contextmanager
def _locked_run(
    sessions: sessionmaker[Session],
    controls: SyncControls,
    run_id: int | None,
    as_of: date,
    now: datetime | None,
    engine: RuleEngine,
    gmc: GmcInput | None,
    tis: TisInput | None,
) -> Iterator[tuple[int, datetime]]:
    """The run a sync records itself under (the one given, a nightly run's, or a new one), with
    the sync lock held. A run still RUNNING under a holder is ABANDONED: whoever ran it no longer
    holds the lock, so it stopped without finishing. Without the lock within the wait, the run
    is recorded SKIPPED and SyncSkipped raised. A failure, even an interruption, is recorded on
    the run (FAILED) before it goes on up; nothing of the sync itself was committed."""
    bind = sessions.kw["bind"]

    def waiting() -> None:
        if controls.on_wait is not None:
            controls.on_wait(
                f"waiting up to {controls.wait_seconds:g} s for {_lock_holder_description(sessions)} to finish"
            )

    try:
        with sync_lock(bind, controls.wait_seconds, waiting):
            with sessions.begin() as session:
                _mark_abandoned(session, except_run=run_id)
                run = (
                    session.get_one(SyncRun, run_id)
                    if run_id is not None
                    else start_run(session, as_of, now or utcnow())
                )
                run.rule_table = engine.table.label
                run.gmc_source, run.tis_source = (gmc.label if gmc else None), (tis.label if tis else None)
                run.holder = lock_holder()
                run_id, started = run.id, run.started_at
            try:
                yield run_id, started
            except BaseException as error:
                _release_failed_statement(error)
                _record_failure(sessions, run_id, error)
                count_run(RunStatus.FAILED, started)
                if isinstance(error, Exception):
                    raise SyncFailed(run_id, error) from error
                if isinstance(error, KeyboardInterrupt) and not isinstance(error, SyncInterrupted):
                    raise SyncInterrupted(run_id) from error
                raise
    except SyncLockBusy:
        reason = f"{_lock_holder_description(sessions)} holds the sync lock"
        if controls.wait_seconds > 0:
            reason += f" (waited {controls.wait_seconds:g} s)"
        skipped = record_skipped_run(sessions, as_of, now or utcnow(), reason, run_id)
        count_run(RunStatus.SKIPPED)
        log.warning("Sync run %s skipped: %s", skipped, reason)
        raise SyncSkipped(skipped, reason) from None


def count_run(status: str, started: datetime | None = None) -> None:
    """Counts a finished sync in the metrics, with how long it took (a skipped one took no time)."""
    measured = metrics()
    measured.sync_runs.labels(status.lower()).inc()
    if started is not None:
        measured.sync_duration.observe(max(0.0, (utcnow() - started).total_seconds()))


def _lock_holder_description(sessions: sessionmaker[Session]) -> str:
    """Which sync holds the lock, as far as the runs say."""
    with sessions.begin() as session:
        run = session.scalars(
            select(SyncRun)
            .where(SyncRun.status == RunStatus.RUNNING, SyncRun.holder.is_not(None))
            .order_by(SyncRun.id.desc())
            .limit(1)
        ).first()
        if run is None:
            return "another sync"
        return f"sync run {run.id} (started {run.started_at:%Y-%m-%d %H:%M:%S} UTC by {run.holder})"


def _mark_abandoned(session: Session, except_run: int | None) -> None:
    """Runs left RUNNING by a process that held the lock and no longer does (we hold it now)."""
    abandoned = session.scalars(
        update(SyncRun)
        .where(SyncRun.status == RunStatus.RUNNING, SyncRun.holder.is_not(None), SyncRun.id != (except_run or 0))
        .values(
            status=RunStatus.ABANDONED,
            finished_at=utcnow(),
            error="abandoned: the process running it stopped before it finished",
        )
        .returning(SyncRun.id)
    ).all()
    for run_id in abandoned:
        log.warning("Sync run %s was left running by a process that stopped; marked ABANDONED", run_id)


def record_skipped_run(
    sessions: sessionmaker[Session], as_of: date, now: datetime, reason: str, run_id: int | None = None
) -> int:
    """Records a run that did not go ahead (``run_id``: one already started for it), and why."""
    with sessions.begin() as session:
        run = session.get_one(SyncRun, run_id) if run_id is not None else start_run(session, as_of, now)
        run.status, run.finished_at, run.error = RunStatus.SKIPPED, now, reason
        return run.id


class PhaseClock:
    """Seconds per phase of a sync, for its summary."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._since = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase], self._since = round(now - self._since, 3), now


def _apply_sources(
    session: Session,
    run_id: int,
    gmc: GmcInput | None,
    tis: TisInput | None,
    bodies: Sequence[DesignatedBody],
    events: EventLog,
    lap: Callable[[str], None],
    helper: SyncHelper,
    guard: MassChangeGuard,
    progress: Progress = SILENT,
    tis_not_fetched_reason: str | None = None,
) -> tuple[GmcOutcome, TisOutcome | None, list[Rejection]]:
    # With no TIS person stored (a first sync), examining the people is the sync's heaviest work,
    # and the helper starts on it in the time the GMC step leaves it idle (the GMC step writes no
    # TIS person). Otherwise most people are unchanged, each a digest looked up, and what is
    # stored is read after the GMC step rather than held beside its own (memory, at a million).
    first_tis = tis is not None and session.scalar(select(TisPerson.tis_person_id).limit(1)) is None
    tis_people = examine_tis_people(session, tis.people, helper) if tis is not None and first_tis else None
    gmc_outcome = _apply_gmc(session, gmc, bodies, events, helper, guard, progress, tis_people)
    lap("gmc")
    tis_outcome = None
    if tis is not None:
        if tis_people is None:
            tis_people = examine_tis_people(session, tis.people, helper)
        tis_outcome = apply_tis_people(
            session,
            tis_people,
            tis.full_snapshot,
            tis.deleted_person_ids,
            guard=guard,
            run_id=run_id,
            progress=progress,
        )
    lap("tis")
    if gmc and not gmc_outcome.fetched:
        _refuse_nothing_fetched(gmc, tis_outcome, tis_not_fetched_reason)
        gmc_outcome.empty = True
    rejections = gmc_outcome.rejections + (tis_outcome.rejections if tis_outcome else [])
    _record_rejections(session, run_id, rejections)
    return gmc_outcome, tis_outcome, rejections


def _apply_gmc(
    session: Session,
    gmc: GmcInput | None,
    bodies: Sequence[DesignatedBody],
    events: EventLog,
    helper: SyncHelper,
    guard: MassChangeGuard,
    progress: Progress,
    tis_people: TisExamination | None,
) -> GmcOutcome:
    """GMC's lists applied (the helper examining TIS people whenever this step leaves it idle), or
    every body not fetched when there is no GMC input."""
    if gmc is None:
        return GmcOutcome(not_fetched={b.code: "GMC was not fetched in this run" for b in bodies})
    return apply_gmc_lists(
        session,
        gmc.body_lists,
        [b.code for b in bodies],
        events,
        gmc.not_fetched_reasons,
        helper,
        guard=guard,
        fetched_at=gmc.list_taken_at,
        progress=progress,
        when_idle=tis_people.examined if tis_people else None,
    )


def _record_rejections(session: Session, run_id: int, rejections: list[Rejection]) -> None:
    if rejections:
        session.execute(
            insert(RejectedRecord),
            [
                {
                    "sync_run_id": run_id,
                    "source": r.source,
                    "locator": r.locator,
                    "record_key": r.record_key,
                    "field": r.field,
                    "message": r.message,
                    "value": r.value,
                    "reason": r.reason,
                }
                for r in rejections
            ],
        )


class NothingFetched(Exception):
    """Neither source gave anything: a run of nothing is a failure, not a success."""


def _refuse_nothing_fetched(gmc: GmcInput, tis_outcome: TisOutcome | None, tis_not_fetched_reason: str | None) -> None:
    """GMC gave no designated body's list (an empty file, say): an operator must look. When TIS
    was asked too and gave nobody (or could not be fetched), the run fails and changes nothing."""
    if tis_not_fetched_reason or (tis_outcome is not None and tis_outcome.people_read == 0):
        raise NothingFetched(f"GMC ({gmc.label}) gave no designated body's list and TIS gave no person")
    log.error(
        "OPERATOR ALERT: GMC (%s) gave no designated body's list: every doctor keeps their GMC connection", gmc.label
    )


def _sources_summary(
    run_id: int,
    as_of: date,
    engine: RuleEngine,
    started: datetime,
    gmc: GmcInput | None,
    tis: TisInput | None,
    gmc_outcome: GmcOutcome,
    tis_outcome: TisOutcome | None,
    rejections: list[Rejection],
    tis_not_fetched_reason: str | None,
) -> dict[str, Any]:
    tis_partial = tis_outcome is not None and (not tis_outcome.complete or tis_outcome.held_back is not None)
    partial = gmc_outcome.partial or tis_not_fetched_reason or tis_partial
    if tis and tis_outcome:
        tis_summary = {"source": tis.label, **tis_outcome.summary()}
    else:
        tis_summary = {
            "source": None,
            "fetched": False,
            "notFetchedReason": tis_not_fetched_reason or "TIS was not given",
        }
    return {
        "syncRunId": run_id,
        "status": RunStatus.PARTIAL if partial else RunStatus.SUCCEEDED,
        "asOf": as_of.isoformat(),
        "ruleTable": engine.table.label,
        "startedAt": started.isoformat(),
        "gmc": {"source": gmc.label if gmc else None, **gmc_outcome.summary()},
        "tis": tis_summary,
        "rejectedRecords": len(rejections),
        "rejections": [r.as_dict() for r in rejections[:REJECTIONS_IN_SUMMARY]],
    }


def _decisions_summary(decisions: DecisionOutcome, events: int) -> dict[str, Any]:
    return {
        "doctors": sum(decisions.after.values()),
        "doctorsDecided": decisions.decided,
        "decisionsChanged": decisions.changed,
        "hidesEnded": decisions.hides_ended,
        "events": events,
        "queues": decisions.queue_summary(),
    }


# --- a sync whose decisions are spread over several workers --------------------------------------
#
# Applying the sources is one transaction, as in a single sync, and marks every doctor it touched
# as due for a decision (in the same transaction, so the mark cannot be lost). Each shard then
# decides its ranges of GMC numbers in a transaction of its own: doctors marked, doctors a
# source knows but no decision does yet, doctors whose window has passed, and hides. A shard
# run twice decides nothing twice. The run is finished once every shard has reported.


def apply_run_sources(
    sessions: sessionmaker[Session],
    *,
    gmc: GmcInput | None,
    tis: TisInput | None,
    as_of: date,
    run_id: int | None = None,
    tis_not_fetched_reason: str | None = None,
    engine: RuleEngine | None = None,
    now: datetime | None = None,
    controls: SyncControls = SyncControls(),
) -> int:
    """A sharded sync's first step; returns the run id. Its decisions are left to ``decide_shard``.
    The sync lock is held while the sources are applied; the run then names no holder, as its
    shards decide in other processes."""
    engine = engine or RuleEngine(DEFAULT_RULE_TABLE)
    with _locked_run(sessions, controls, run_id, as_of, now, engine, gmc, tis) as (this_run, started):
        _apply_for_shards(
            sessions, this_run, started, gmc, tis, as_of, engine, tis_not_fetched_reason, controls, release=True
        )
        return this_run


def _apply_for_shards(
    sessions: sessionmaker[Session],
    run_id: int,
    started: datetime,
    gmc: GmcInput | None,
    tis: TisInput | None,
    as_of: date,
    engine: RuleEngine,
    tis_not_fetched_reason: str | None,
    controls: SyncControls,
    release: bool,
) -> None:
    with infrequent_garbage_collection(), sessions.begin() as session:
        bulk_page_cache(session)
        clock = PhaseClock()
        events = EventLog(recorded_at=started, as_of=as_of, sync_run_id=run_id)
        bodies = configured_designated_bodies(session)
        before = queue_counts(session)
        with _sync_helper(gmc, tis, None if controls.helper_process else False) as helper:
            gmc_outcome, tis_outcome, rejections = _apply_sources(
                session,
                run_id,
                gmc,
                tis,
                bodies,
                events,
                clock.lap,
                helper,
                controls.guard,
                controls.progress,
                tis_not_fetched_reason,
            )
        mark_for_decision(
            session, gmc_outcome.touched_numbers | (tis_outcome.touched_numbers if tis_outcome else set())
        )
        events.flush(session, force=True)
        run = session.get_one(SyncRun, run_id)
        run.summary = _sources_summary(
            run_id, as_of, engine, started, gmc, tis, gmc_outcome, tis_outcome, rejections, tis_not_fetched_reason
        ) | {
            "queuesBefore": dict(before),
            "seconds": clock.seconds,
            "sourcesAppliedAt": utcnow().isoformat(),
        }
        run.rejected_records = len(rejections)
        if release:
            run.holder = None
        summary = run.summary
    refresh_source_statistics(sessions, summary)  # before the shards read them


def decide_shard(
    sessions: sessionmaker[Session],
    run_id: int,
    ranges: Sequence[tuple[str, str | None]],
    engine: RuleEngine | None = None,
) -> dict[str, Any]:
    """Decides one shard's contiguous ranges for a run whose sources are applied; returns its counts."""
    engine = engine or RuleEngine(DEFAULT_RULE_TABLE)
    with infrequent_garbage_collection(), sessions.begin() as session:
        bulk_page_cache(session)
        run = session.get_one(SyncRun, run_id)
        events = EventLog(recorded_at=run.started_at, as_of=run.as_of, sync_run_id=run_id)
        new = set().union(*(undecided_numbers(session, low, high) for low, high in ranges))
        # The shard's ranges are contiguous (shards_of_ranges): one span covers all of them.
        span = in_range(DoctorEvent.gmc_number, ranges[0][0], ranges[-1][1])
        moved = set(
            session.scalars(
                select(DoctorEvent.gmc_number).where(
                    DoctorEvent.sync_run_id == run_id, DoctorEvent.kind == EventKind.CONNECTION, span
                )
            )
        )
        bodies = configured_designated_bodies(session)
        outcome = decide_doctors(
            session,
            engine=engine,
            owners=OwnerDirectory(bodies),
            basis=decision_basis(engine, bodies),
            as_of=run.as_of,
            now=run.started_at,
            events=events,
            change_sources={number: Source.GMC_SYNC for number in moved},
            touched=new,
            ranges=ranges,
            count_queues=False,
        )
        return outcome.shard_counts()


def finish_sharded_run(
    sessions: sessionmaker[Session],
    run_id: int,
    shard_counts: Sequence[dict[str, Any]],
    controls: SyncControls = SyncControls(),
) -> dict[str, Any]:
    """Completes a sharded run once every shard has reported: its counts, queues and status.
    A run already finished (its task delivered again) is left as it is."""
    with sessions.begin() as session:
        run = session.get_one(SyncRun, run_id)
        if run.status != RunStatus.RUNNING:
            return dict(run.summary or {"status": run.status})
        summary = dict(run.summary or {})  # a running sharded run's summary holds its applied sources
        decisions = DecisionOutcome(before=Counter(summary.pop("queuesBefore")), after=queue_counts(session))
        for counts in shard_counts:
            decisions.add_shard(counts)
        housekeeping = keep_house(session, decisions, run.as_of, EventLog(run.started_at, run.as_of, run_id), controls)
        events = session.execute(
            select(func.count()).select_from(DoctorEvent).where(DoctorEvent.sync_run_id == run_id)
        ).scalar_one()
        applied_at = datetime.fromisoformat(summary.pop("sourcesAppliedAt"))
        seconds = summary.pop("seconds") | {"decide": round((utcnow() - applied_at).total_seconds(), 3)}
        summary = (
            summary
            | _decisions_summary(decisions, events)
            | housekeeping
            | {"seconds": seconds, "shards": len(shard_counts)}
        )
        run.status, run.finished_at = summary["status"], utcnow()
        summary["finishedAt"] = run.finished_at.isoformat()
        run.summary = summary
        count_run(run.status, run.started_at)
        return summary


def run_sync_sharded(
    sessions: sessionmaker[Session],
    *,
    gmc: GmcInput | None,
    tis: TisInput | None,
    as_of: date,
    shards: int,
    decide_shards: Callable[[int, list[list[tuple[str, str | None]]]], Sequence[dict[str, Any]]] | None = None,
    controls: SyncControls = SyncControls(),
) -> dict[str, Any]:
    """A sync with its decisions split into ``shards`` groups of ranges, decided by ``decide_shards``
    (default: one after another, here), all under the sync lock."""
    engine = RuleEngine(DEFAULT_RULE_TABLE)
    with _locked_run(sessions, controls, None, as_of, None, engine, gmc, tis) as (run_id, started):
        _apply_for_shards(sessions, run_id, started, gmc, tis, as_of, engine, None, controls, release=False)
        groups = shards_of_ranges(shards)
        counts: Sequence[dict[str, Any]]
        if decide_shards is None:
            counts = [decide_shard(sessions, run_id, group) for group in groups]
        else:
            counts = decide_shards(run_id, groups)
        summary = finish_sharded_run(sessions, run_id, counts, controls)
    refresh_statistics_after(sessions, summary)
    return summary


def _release_failed_statement(error: BaseException) -> None:
    """Lets go of what the failed sync's frames still hold. Ctrl-C or SIGTERM can stop a sync
    inside the driver's own call (an executemany, say): SQLAlchemy then closes that connection,
    but SQLite keeps a connection open, and its transaction and write lock with it, until its
    last statement is finalized, and the interrupted statement lives on in the cursor the
    traceback's frames hold. Recording the failure would wait for that lock until it gave up."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        traceback.clear_frames(link.__traceback__)
        link = link.__cause__ or link.__context__


def _record_failure(sessions: sessionmaker[Session], run_id: int, error: BaseException) -> None:
    with sessions.begin() as session:
        run = session.get_one(SyncRun, run_id)
        run.status, run.finished_at, run.error = RunStatus.FAILED, utcnow(), failure_text(error)
    log.error("Sync run %s failed: %s", run_id, failure_text(error))


def start_run(session: Session, as_of: date, now: datetime) -> SyncRun:
    run = SyncRun(
        started_at=now, as_of=as_of, status=RunStatus.RUNNING, rule_table=DEFAULT_RULE_TABLE.label, rejected_records=0
    )
    session.add(run)
    session.flush()
    return run


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"  # a source could not be fetched (or not completely) and kept its previous state
    FAILED = "FAILED"  # failed or was interrupted; nothing of it was committed
    SKIPPED = "SKIPPED"  # not run: another sync held the sync lock
    ABANDONED = "ABANDONED"  # its process stopped (killed, machine lost) before it finished


def decision_basis(engine: RuleEngine, bodies: Sequence[DesignatedBody]) -> str:
    """What every stored decision was made under: a change of rules or bodies re-decides everyone."""
    text = repr((engine.table.label, engine.table.fingerprint(), sorted((b.code, b.owner.casefold()) for b in bodies)))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def redecide_doctors(
    session: Session,
    numbers: set[str],
    *,
    source: Source,
    as_of: date,
    now: datetime,
    events: EventLog,
    engine: RuleEngine | None = None,
) -> DecisionOutcome:
    """Decides just these doctors again, at once, after a change made outside a sync."""
    engine = engine or RuleEngine(DEFAULT_RULE_TABLE)
    bodies = configured_designated_bodies(session)
    change_sources = {number: source for number in numbers}
    return _decide(session, engine, bodies, as_of, now, events, change_sources, set(numbers), only=set(numbers))


def _decide(
    session: Session,
    engine: RuleEngine,
    bodies: Sequence[DesignatedBody],
    as_of: date,
    now: datetime,
    events: EventLog,
    change_sources: dict[str, Source],
    touched: set[str],
    only: set[str] | None = None,
    helper: SyncHelper = IN_THIS_PROCESS,
    progress: Progress = SILENT,
) -> DecisionOutcome:
    return decide_doctors(
        session,
        engine=engine,
        owners=OwnerDirectory(bodies),
        basis=decision_basis(engine, bodies),
        as_of=as_of,
        now=now,
        events=events,
        change_sources=change_sources,
        touched=touched,
        only=only,
        helper=helper,
        progress=progress,
    )


def latest_successful_run(session: Session) -> SyncRun | None:
    return session.scalars(
        select(SyncRun)
        .where(SyncRun.status.in_([RunStatus.SUCCEEDED, RunStatus.PARTIAL]))
        .order_by(SyncRun.id.desc())
        .limit(1)
    ).first()
