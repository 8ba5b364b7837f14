"""What the next sync would change, worked out without writing anything.

A rule preview decides every stored doctor again from the stored sources, with the installed rule
table, as of a day, and compares each decision with the stored one. It reads range by range of
GMC numbers through the decide step's own reader and decides with its own pure ``decide_each``
(without making the rows a sync writes), so its memory is bounded by a range and its decisions
are the sync's.

A dry run of a sync applies its sources to a scratch copy of the database (an SQLite file of its
own, removed afterwards) and runs the real sync there: the same validation, guard and decisions,
and nothing at all written to the database itself. The copy is taken under the sync lock, which
is let go before the sources are read, so a real sync waits at most for the copy.
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from reval.clock import utcnow
from reval.db import make_engine, session_factory
from reval.designated_bodies import OwnerDirectory
from reval.models import Base, Doctor, DoctorChange, DoctorChangePruned, DoctorEvent, RejectedRecord, SyncRun
from reval.reconcile.common import EventKind
from reval.reconcile.decisions import (
    DecisionContext,
    DoctorInputs,
    _range_inputs,
    decide_each,
    gmc_number_ranges,
)
from reval.reconcile.helper import IN_THIS_PROCESS, SyncHelper
from reval.reconcile.lock import SyncLockBusy, sync_lock
from reval.reconcile.moves import Move, Placement, move_between, move_from, placement_of
from reval.reconcile.reference import configured_designated_bodies
from reval.reconcile.sync import (
    GmcInput,
    SyncControls,
    SyncFailed,
    TisInput,
    decision_basis,
    failure_text,
    run_sync,
)
from reval.rules import DEFAULT_RULE_TABLE, RuleEngine


@dataclass
class Preview:
    """The moves that deciding every doctor as of ``as_of`` with ``rule_table`` would make."""

    as_of: date
    rule_table: str
    doctors: int = 0  # doctors decided
    moves: list[Move] = field(default_factory=list)  # in GMC-number order


def preview_moves(
    session: Session,
    *,
    as_of: date,
    now: datetime | None = None,
    engine: RuleEngine | None = None,
    helper: SyncHelper = IN_THIS_PROCESS,
) -> Preview:
    """Every doctor (stored, or known to a source and not decided yet) decided as of ``as_of``
    and compared with their stored decision. Reads only: run it in a read transaction."""
    engine = engine or RuleEngine(DEFAULT_RULE_TABLE)
    bodies = configured_designated_bodies(session)
    context = DecisionContext(
        engine,
        OwnerDirectory(bodies),
        decision_basis(engine, bodies),
        as_of,
        now or utcnow(),
        None,
        session.get_bind().dialect.name,
    )
    preview = Preview(as_of, engine.table.label)
    for stored_rows, decided in helper.ordered(decided_placements, context, _every_doctor(session)):
        preview.doctors += len(decided)
        for number, placement in decided:
            stored = stored_rows.get(number)
            before = None if stored is None else placement_of(stored.queue, stored.reason, stored.visible_to)
            move = move_from(number, before, placement)
            if move is not None:
                preview.moves.append(move)
    return preview


def decided_placements(context: DecisionContext, batch: list[DoctorInputs]) -> list[tuple[str, Placement]]:
    """Where each doctor's decision puts them: pure, so it may run in the helper process, and all
    that crosses back from it (a doctor's whole row would cost more to send than to decide). The
    rows a sync writes are not made: that was a fifth of the deciding."""
    return [
        (doctor.number, placement_of(doctor.decision.queue, doctor.decision.reason, doctor.decision.visible_to))
        for doctor in decide_each(context, batch)
    ]


def stored_state(session: Session, engine: RuleEngine) -> tuple[Any, ...]:
    """What a preview depends on besides its day: the database, the rules and bodies (the
    decisions' basis), and the latest sync run and history event. Every change of a source comes
    with a run, and every change of a decision or connection with an event."""
    bodies = configured_designated_bodies(session)
    latest_run = session.execute(
        select(SyncRun.id, SyncRun.started_at, SyncRun.finished_at).order_by(SyncRun.id.desc()).limit(1)
    ).first()
    latest_event = session.execute(
        select(DoctorEvent.id, DoctorEvent.recorded_at).order_by(DoctorEvent.id.desc()).limit(1)
    ).first()
    return (
        session.connection().engine.url.render_as_string(hide_password=True),
        decision_basis(engine, bodies),
        tuple(latest_run or ()),
        tuple(latest_event or ()),
    )


# Below this many stored doctors a preview works alone: a helper's start costs more than the
# share of the deciding it takes over (docs/performance.md).
HELPER_FROM_DOCTORS = 50_000


def preview_helper(session: Session, wanted: bool) -> SyncHelper:
    """A helper process for a large preview, when ``wanted``; else this process alone."""
    if not wanted or (session.scalar(select(func.count()).select_from(Doctor)) or 0) < HELPER_FROM_DOCTORS:
        return IN_THIS_PROCESS
    return SyncHelper(None, start_now=True, preload=(decided_placements.__module__,))


# What a stored decision's placement reads: a preview needs no more of the stored row.
PLACEMENT_COLUMNS = [Doctor.__table__.c[name] for name in ("queue", "reason", "visible_to")]


def _every_doctor(session: Session) -> Iterator[tuple[list[DoctorInputs], dict[str, Any]]]:
    """Each range's doctors' inputs, with their stored decisions to compare against: every
    doctor a decision or a source has, read in one pass over each table's range."""
    for low, high in gmc_number_ranges():
        batch, stored = _range_inputs(session, None, low, high, PLACEMENT_COLUMNS)
        if batch:
            yield batch, stored


class DryRunBusy(Exception):
    """Another sync held the sync lock for the whole wait: the dry run did not copy the database."""


class DryRunFailed(Exception):
    """The sync would fail (its sources gave nothing, say); the dry run wrote nothing either."""


@dataclass
class DryRun:
    """What a sync would have done: its summary (as a run's, less the run) and its moves."""

    summary: dict[str, Any]
    moves: list[Move]

    @property
    def held_back(self) -> list[dict[str, str]]:
        """What the mass-change guard would hold back: each GMC body's list, the TIS snapshot."""
        held = [
            {"source": "GMC", "designatedBody": code, "reason": why}
            for code, why in self.summary["gmc"]["designatedBodiesNotFetched"].items()
            if why.startswith("held back")
        ]
        tis_reason = self.summary["tis"].get("notFetchedReason") or ""
        if self.summary["tis"].get("source") and tis_reason.startswith("held back"):
            held.append({"source": "TIS", "reason": tis_reason})
        return held


def dry_run_sync(
    sessions: sessionmaker[Session],
    *,
    gmc: GmcInput | None,
    tis: TisInput | None,
    as_of: date,
    tis_not_fetched_reason: str | None = None,
    controls: SyncControls = SyncControls(),
) -> DryRun:
    """The sync ``run_sync`` would run, run on a scratch copy of the database. Raises DryRunBusy
    when another sync holds the lock for the whole wait, SyncFailed when the sync would fail."""
    with tempfile.TemporaryDirectory(prefix="reval-dry-run-") as folder:
        scratch = Path(folder) / "scratch.sqlite"
        _copy_under_lock(sessions.kw["bind"], scratch, controls)
        scratch_engine = make_engine(f"sqlite:///{scratch}")
        try:
            scratch_sessions = session_factory(scratch_engine)
            try:
                with _logged_as_dry_run():
                    summary = run_sync(
                        scratch_sessions,
                        gmc=gmc,
                        tis=tis,
                        as_of=as_of,
                        tis_not_fetched_reason=tis_not_fetched_reason,
                        controls=replace(controls, wait_seconds=0, on_wait=None),
                    )
            except SyncFailed as error:
                cause = error.__cause__ if error.__cause__ is not None else error
                raise DryRunFailed(f"the sync would fail (dry run, nothing written): {failure_text(cause)}") from error
            with scratch_sessions.begin() as session:
                moves = run_moves(session, summary["syncRunId"])
                summary["archivedDoctors"] = run_doctors(session, summary["syncRunId"], EventKind.ARCHIVED)
                summary["restoredDoctors"] = run_doctors(session, summary["syncRunId"], EventKind.RESTORED)
        finally:
            scratch_engine.dispose()
    for key in ("syncRunId", "startedAt", "finishedAt", "helperProcess"):
        summary.pop(key, None)  # of the scratch run, which is gone
    return DryRun(summary, moves)


class _DryRunLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = f"Dry run, nothing written: {record.msg}"
        return True


@contextmanager
def _logged_as_dry_run() -> Iterator[None]:
    """The scratch sync's log lines say they are a dry run's: an OPERATOR ALERT, a held-back
    source or a failed run there changed nothing, and must not page anyone as if it had."""
    marker = _DryRunLines()
    loggers = [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict) if name.startswith("reval.reconcile")
    ]
    for logger in loggers:
        logger.addFilter(marker)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(marker)


def run_moves(session: Session, run_id: int) -> list[Move]:
    """The moves a sync run made, from its DECISION events (a doctor decided twice in a run:
    from the first decision's old to the last's new)."""
    first: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for number, old, new in session.execute(
        select(DoctorEvent.gmc_number, DoctorEvent.old, DoctorEvent.new)
        .where(DoctorEvent.sync_run_id == run_id, DoctorEvent.kind == EventKind.DECISION)
        .order_by(DoctorEvent.id)
    ):
        first.setdefault(number, old)
        last[number] = new
    moves = (move_between(number, first[number], last[number]) for number in sorted(last))
    return [move for move in moves if move is not None]


def run_doctors(session: Session, run_id: int, kind: EventKind) -> list[str]:
    """The GMC numbers of the doctors a sync run recorded an event of this kind for, in order."""
    return list(
        session.scalars(
            select(DoctorEvent.gmc_number)
            .where(DoctorEvent.sync_run_id == run_id, DoctorEvent.kind == kind)
            .distinct()
            .order_by(DoctorEvent.gmc_number)
        )
    )


# Written by a sync and read by none: not copied to a dry run's scratch database.
NOT_COPIED = (
    DoctorEvent.__tablename__,
    RejectedRecord.__tablename__,
    DoctorChange.__tablename__,  # the changes feed: read by other systems, never by a sync
    DoctorChangePruned.__tablename__,
)


def _copy_under_lock(source: Engine, scratch: Path, controls: SyncControls) -> None:
    def waiting() -> None:
        if controls.on_wait is not None:
            controls.on_wait(f"waiting up to {controls.wait_seconds:g} s for another sync to finish")

    try:
        with sync_lock(source, controls.wait_seconds, waiting):
            if source.dialect.name == "sqlite":
                _copy_sqlite(source, scratch)
            else:
                _copy_tables(source, scratch)
    except SyncLockBusy:
        waited = f" (waited {controls.wait_seconds:g} s)" if controls.wait_seconds > 0 else ""
        raise DryRunBusy(f"another sync holds the sync lock{waited}; the dry run changed nothing") from None


def _copy_sqlite(source: Engine, scratch: Path) -> None:
    """SQLite's own online backup: a consistent copy, page by page, that only reads the source."""
    target = sqlite3.connect(scratch)
    try:
        raw = source.raw_connection()
        try:
            raw.driver_connection.backup(target)  # type: ignore[union-attr]
        finally:
            raw.close()
    finally:
        target.close()


COPY_BATCH = 5000


def _copy_tables(source: Engine, scratch: Path) -> None:
    """Every table a sync reads, copied row by row into a new SQLite schema, read in one
    snapshot (repeatable read) so the copy is consistent."""
    target = make_engine(f"sqlite:///{scratch}")
    try:
        Base.metadata.create_all(target)
        tables = [table for table in Base.metadata.sorted_tables if table.name not in NOT_COPIED]
        with (
            source.connect().execution_options(isolation_level="REPEATABLE READ", stream_results=True) as reading,
            target.begin() as writing,
        ):
            for table in tables:
                for rows in reading.execute(select(table)).mappings().partitions(COPY_BATCH):
                    writing.execute(table.insert(), [dict(row) for row in rows])
    finally:
        target.dispose()
