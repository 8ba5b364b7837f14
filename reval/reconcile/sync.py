"""A sync: apply both sources and decide every doctor, in one transaction, recorded as a run."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from collections import Counter

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from reval.designated_bodies import DesignatedBody, OwnerDirectory
from reval.models import DoctorEvent, RejectedRecord, SyncRun
from reval.clock import utcnow
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
from reval.reconcile.reference import configured_designated_bodies
from reval.reconcile.sources import GmcOutcome, TisOutcome, apply_gmc_lists, apply_tis_people, examine_people
from reval.rules import DEFAULT_RULE_TABLE, RuleEngine
from reval.snapshot_files import open_snapshot

REJECTIONS_IN_SUMMARY = 20


@dataclass
class GmcInput:
    """This run's GMC lists: (locator, {"designatedBodyCode", "doctors"}) pairs, one per fetched body."""

    label: str
    body_lists: Iterable[tuple[str, Any]]
    not_fetched_reasons: dict[str, str] = field(default_factory=dict)

    size_bytes: int = 0  # how much there is to read, when known

    @classmethod
    def from_file(cls, path: str | Path) -> "GmcInput":
        lists, size = _snapshot_file(path, "GMC", "designatedBodies")
        return cls(str(path), lists, size_bytes=size)


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
    def from_file(cls, path: str | Path) -> "TisInput":
        people, size = _snapshot_file(path, "TIS", "people")
        return cls(str(path), people, size_bytes=size)


def _snapshot_file(path: str | Path, label: str, list_key: str) -> tuple[Iterable[tuple[str, Any]], int]:
    """A snapshot file's records and its size; raises SnapshotUnreadable before anything is
    stored. Its lines come undecoded: they are decoded where they are validated (in the sync's
    helper process, if it has one)."""
    return open_snapshot(path, label=label, list_key=list_key, undecoded=True), Path(path).stat().st_size


# Inputs above this size (several batches of records) start the sync's helper process at once.
LARGE_INPUT_BYTES = 5_000_000


def _sync_helper(gmc: GmcInput | None, tis: TisInput | None, use_process: bool | None = None) -> SyncHelper:
    size = (gmc.size_bytes if gmc else 0) + (tis.size_bytes if tis else 0)
    preload = (examine_people.__module__, decide_batch.__module__)  # the helper's work
    return SyncHelper(use_process, start_now=size > LARGE_INPUT_BYTES, preload=preload)


class SyncFailed(Exception):
    def __init__(self, run_id: int, cause: BaseException):
        self.run_id = run_id
        super().__init__(f"sync run {run_id} failed and changed nothing: {cause}")


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
    progress: Callable[[str], None] | None = None,
    helper_process: bool | None = None,
) -> dict[str, Any]:
    """Runs one sync and returns its summary. Either source may be absent (not fetched); a TIS
    pull that failed says why in ``tis_not_fetched_reason`` and makes the run PARTIAL.
    ``run_id``: a run already started (a nightly run whose fetches came first). ``progress`` is
    told of each phase done (a nightly run extends its lock with it). ``helper_process``: share
    the work with a second process (default: when there is a second core; see SyncHelper)."""
    engine = engine or RuleEngine(DEFAULT_RULE_TABLE)
    run_id, started = _open_run(sessions, run_id, as_of, now, engine, gmc, tis)
    try:
        with infrequent_garbage_collection(), sessions.begin() as session:
            with _sync_helper(gmc, tis, helper_process) as helper:  # its process ends before the commit
                summary = _reconcile(session, run_id, gmc, tis, as_of, engine, started, tis_not_fetched_reason, progress, helper)
            summary["helperProcess"] = {
                "used": helper.uses_process,
                "batches": helper.batches_in_process,
                "peakMemoryMiB": helper.peak_memory_mib,
            }
            run = session.get(SyncRun, run_id)
            run.status, run.finished_at = summary["status"], utcnow()
            summary["finishedAt"] = run.finished_at.isoformat()
            run.summary, run.rejected_records = summary, summary["rejectedRecords"]
            return summary
    except Exception as error:
        _record_failure(sessions, run_id, error)
        raise SyncFailed(run_id, error) from error


def _reconcile(
    session: Session, run_id: int, gmc: GmcInput | None, tis: TisInput | None, as_of: date, engine: RuleEngine,
    started: datetime, tis_not_fetched_reason: str | None, progress: Callable[[str], None] | None, helper: SyncHelper,
) -> dict[str, Any]:
    bodies = configured_designated_bodies(session)
    events = EventLog(recorded_at=started, as_of=as_of, sync_run_id=run_id)
    clock = PhaseClock(progress)
    gmc_outcome, tis_outcome, rejections = _apply_sources(session, run_id, gmc, tis, bodies, events, clock.lap, helper)
    decisions = _decide(
        session, engine, bodies, as_of, started, events,
        change_sources={number: Source.GMC_SYNC for number in gmc_outcome.changed_numbers},
        touched=gmc_outcome.touched_numbers | (tis_outcome.touched_numbers if tis_outcome else set()),
        helper=helper,
    )
    clock.lap("decide")
    summary = _sources_summary(run_id, as_of, engine, started, gmc, tis, gmc_outcome, tis_outcome, rejections,
                               tis_not_fetched_reason)
    return summary | _decisions_summary(decisions, events.written) | {"seconds": clock.seconds}


def _open_run(
    sessions: sessionmaker[Session], run_id: int | None, as_of: date, now: datetime | None, engine: RuleEngine,
    gmc: GmcInput | None, tis: TisInput | None,
) -> tuple[int, datetime]:
    """The run a sync records itself under: the one given (a nightly run's) or a new one."""
    with sessions.begin() as session:
        run = session.get(SyncRun, run_id) if run_id is not None else start_run(session, as_of, now or utcnow())
        run.rule_table = engine.table.label
        run.gmc_source, run.tis_source = (gmc.label if gmc else None), (tis.label if tis else None)
        return run.id, run.started_at


class PhaseClock:
    """Seconds per phase of a sync, for its summary; ``progress`` hears of each phase done."""

    def __init__(self, progress: Callable[[str], None] | None = None):
        self.seconds: dict[str, float] = {}
        self.progress = progress
        self._since = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase], self._since = round(now - self._since, 3), now
        if self.progress is not None:
            self.progress(phase)


def _apply_sources(
    session: Session, run_id: int, gmc: GmcInput | None, tis: TisInput | None, bodies: Sequence[DesignatedBody],
    events: EventLog, lap: Callable[[str], None], helper: SyncHelper,
) -> tuple[GmcOutcome, TisOutcome | None, list[Rejection]]:
    gmc_outcome = (
        apply_gmc_lists(session, gmc.body_lists, [b.code for b in bodies], events, gmc.not_fetched_reasons, helper)
        if gmc
        else GmcOutcome(not_fetched={b.code: "GMC was not fetched in this run" for b in bodies})
    )
    lap("gmc")
    tis_outcome = apply_tis_people(session, tis.people, tis.full_snapshot, tis.deleted_person_ids, helper) if tis else None
    lap("tis")
    rejections = gmc_outcome.rejections + (tis_outcome.rejections if tis_outcome else [])
    if rejections:
        session.execute(
            insert(RejectedRecord),
            [
                {"sync_run_id": run_id, "source": r.source, "locator": r.locator, "record_key": r.record_key,
                 "field": r.field, "message": r.message, "value": r.value, "reason": r.reason}
                for r in rejections
            ],
        )
    return gmc_outcome, tis_outcome, rejections


def _sources_summary(
    run_id: int, as_of: date, engine: RuleEngine, started: datetime, gmc: GmcInput | None, tis: TisInput | None,
    gmc_outcome: GmcOutcome, tis_outcome: TisOutcome | None, rejections: list[Rejection], tis_not_fetched_reason: str | None,
) -> dict[str, Any]:
    failed = gmc_outcome.failed or tis_not_fetched_reason or (tis_outcome is not None and not tis_outcome.complete)
    return {
        "syncRunId": run_id,
        "status": RunStatus.PARTIAL if failed else RunStatus.SUCCEEDED,
        "asOf": as_of.isoformat(),
        "ruleTable": engine.table.label,
        "startedAt": started.isoformat(),
        "gmc": {"source": gmc.label if gmc else None, **gmc_outcome.summary()},
        "tis": (
            {"source": tis.label, **tis_outcome.summary()} if tis and tis_outcome
            else {"source": None, "fetched": False, "notFetchedReason": tis_not_fetched_reason or "TIS was not given"}
        ),
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
    sessions: sessionmaker[Session], *, gmc: GmcInput | None, tis: TisInput | None, as_of: date, run_id: int | None = None,
    tis_not_fetched_reason: str | None = None, engine: RuleEngine | None = None, now: datetime | None = None,
) -> int:
    """A sharded sync's first step; returns the run id. Its decisions are left to ``decide_shard``."""
    engine = engine or RuleEngine(DEFAULT_RULE_TABLE)
    run_id, started = _open_run(sessions, run_id, as_of, now, engine, gmc, tis)
    try:
        with infrequent_garbage_collection(), sessions.begin() as session:
            clock = PhaseClock()
            events = EventLog(recorded_at=started, as_of=as_of, sync_run_id=run_id)
            bodies = configured_designated_bodies(session)
            before = queue_counts(session)
            with _sync_helper(gmc, tis) as helper:
                gmc_outcome, tis_outcome, rejections = _apply_sources(session, run_id, gmc, tis, bodies, events, clock.lap,
                                                                      helper)
            mark_for_decision(session, gmc_outcome.touched_numbers | (tis_outcome.touched_numbers if tis_outcome else set()))
            events.flush(session, force=True)
            run = session.get(SyncRun, run_id)
            run.summary = _sources_summary(run_id, as_of, engine, started, gmc, tis, gmc_outcome, tis_outcome, rejections,
                                           tis_not_fetched_reason) | {
                "queuesBefore": dict(before), "seconds": clock.seconds,
                "sourcesAppliedAt": utcnow().isoformat(),
            }
            run.rejected_records = len(rejections)
        return run_id
    except Exception as error:
        _record_failure(sessions, run_id, error)
        raise SyncFailed(run_id, error) from error


def decide_shard(
    sessions: sessionmaker[Session], run_id: int, ranges: Sequence[tuple[str, str | None]], engine: RuleEngine | None = None,
) -> dict[str, Any]:
    """Decides one shard's contiguous ranges for a run whose sources are applied; returns its counts."""
    engine = engine or RuleEngine(DEFAULT_RULE_TABLE)
    with infrequent_garbage_collection(), sessions.begin() as session:
        run = session.get(SyncRun, run_id)
        events = EventLog(recorded_at=run.started_at, as_of=run.as_of, sync_run_id=run_id)
        new = set().union(*(undecided_numbers(session, low, high) for low, high in ranges))
        # The shard's ranges are contiguous (shards_of_ranges): one span covers all of them.
        span = in_range(DoctorEvent.gmc_number, ranges[0][0], ranges[-1][1])
        moved = set(session.scalars(
            select(DoctorEvent.gmc_number).where(
                DoctorEvent.sync_run_id == run_id, DoctorEvent.kind == EventKind.CONNECTION, span
            )
        ))
        bodies = configured_designated_bodies(session)
        outcome = decide_doctors(
            session, engine=engine, owners=OwnerDirectory(bodies), basis=decision_basis(engine, bodies), as_of=run.as_of,
            now=run.started_at, events=events, change_sources={number: Source.GMC_SYNC for number in moved},
            touched=new, ranges=ranges, count_queues=False,
        )
        return outcome.shard_counts()


def finish_sharded_run(sessions: sessionmaker[Session], run_id: int, shard_counts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Completes a sharded run once every shard has reported: its counts, queues and status.
    A run already finished (its task delivered again) is left as it is."""
    with sessions.begin() as session:
        run = session.get(SyncRun, run_id)
        if run.status != RunStatus.RUNNING:
            return dict(run.summary or {"status": run.status})
        summary = dict(run.summary)
        decisions = DecisionOutcome(before=Counter(summary.pop("queuesBefore")), after=queue_counts(session))
        for counts in shard_counts:
            decisions.add_shard(counts)
        events = session.scalar(select(func.count()).select_from(DoctorEvent).where(DoctorEvent.sync_run_id == run_id))
        applied_at = datetime.fromisoformat(summary.pop("sourcesAppliedAt"))
        seconds = summary.pop("seconds") | {"decide": round((utcnow() - applied_at).total_seconds(), 3)}
        summary = summary | _decisions_summary(decisions, events) | {"seconds": seconds, "shards": len(shard_counts)}
        run.status, run.finished_at = summary["status"], utcnow()
        summary["finishedAt"] = run.finished_at.isoformat()
        run.summary = summary
        return summary


def run_sync_sharded(
    sessions: sessionmaker[Session], *, gmc: GmcInput | None, tis: TisInput | None, as_of: date, shards: int,
    decide_shards: Callable[[int, list[list[tuple[str, str | None]]]], Sequence[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """A sync with its decisions split into ``shards`` groups of ranges, decided by ``decide_shards``
    (default: one after another, here)."""
    run_id = apply_run_sources(sessions, gmc=gmc, tis=tis, as_of=as_of)
    groups = shards_of_ranges(shards)
    try:
        if decide_shards is None:
            counts = [decide_shard(sessions, run_id, group) for group in groups]
        else:
            counts = decide_shards(run_id, groups)
    except Exception as error:
        _record_failure(sessions, run_id, error)
        raise SyncFailed(run_id, error) from error
    return finish_sharded_run(sessions, run_id, counts)


def _record_failure(sessions: sessionmaker[Session], run_id: int, error: BaseException) -> None:
    with sessions.begin() as session:
        run = session.get(SyncRun, run_id)
        run.status, run.finished_at, run.error = RunStatus.FAILED, utcnow(), f"{type(error).__name__}: {error}"


def start_run(session: Session, as_of: date, now: datetime) -> SyncRun:
    run = SyncRun(started_at=now, as_of=as_of, status=RunStatus.RUNNING, rule_table=DEFAULT_RULE_TABLE.label, rejected_records=0)
    session.add(run)
    session.flush()
    return run


class RunStatus:
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"  # a source could not be fetched (or not completely) and kept its previous state
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # triggered while another nightly run was running


def decision_basis(engine: RuleEngine, bodies: Sequence[DesignatedBody]) -> str:
    """What every stored decision was made under: a change of rules or bodies re-decides everyone."""
    text = repr((engine.table.label, engine.table.fingerprint(), sorted((b.code, b.owner.casefold()) for b in bodies)))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def redecide_doctors(
    session: Session, numbers: set[str], *, source: Source, as_of: date, now: datetime, events: EventLog,
    engine: RuleEngine | None = None,
) -> DecisionOutcome:
    """Decides just these doctors again, at once, after a change made outside a sync."""
    engine = engine or RuleEngine(DEFAULT_RULE_TABLE)
    bodies = configured_designated_bodies(session)
    change_sources = {number: source for number in numbers}
    return _decide(session, engine, bodies, as_of, now, events, change_sources, set(numbers), only=set(numbers))


def _decide(
    session: Session, engine: RuleEngine, bodies: Sequence[DesignatedBody], as_of: date, now: datetime,
    events: EventLog, change_sources: dict[str, Source], touched: set[str], only: set[str] | None = None,
    helper: SyncHelper = IN_THIS_PROCESS,
) -> DecisionOutcome:
    return decide_doctors(
        session, engine=engine, owners=OwnerDirectory(bodies), basis=decision_basis(engine, bodies), as_of=as_of,
        now=now, events=events, change_sources=change_sources, touched=touched, only=only, helper=helper,
    )


def latest_successful_run(session: Session) -> SyncRun | None:
    return session.scalars(
        select(SyncRun).where(SyncRun.status.in_([RunStatus.SUCCEEDED, RunStatus.PARTIAL])).order_by(SyncRun.id.desc()).limit(1)
    ).first()
