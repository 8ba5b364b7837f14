"""Deciding every doctor from the stored state of both sources, and recording what changed.

Doctors are decided in ranges of GMC numbers: three queries per range (GMC connections, TIS
people, previous decisions) instead of one per doctor, with memory bounded by the range, and the
ranges are the natural unit for spreading the work over several workers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from reval.db import offline_dialect, packed_rows_supported
from reval.designated_bodies import OwnerDirectory
from reval.models import (
    Doctor,
    DoctorChange,
    DoctorEvent,
    DoctorHide,
    DoctorVisibility,
    DoctorVisibilityName,
    GmcConnection,
    RejectedTisPerson,
    TisPerson,
)
from reval.progress import SILENT, Progress
from reval.reconcile.changes import ChangeFeed, Views, change_rows, doctor_views
from reval.reconcile.common import (
    BATCH_SIZE,
    BoundRows,
    EventKind,
    EventLog,
    PackedRows,
    RowWriter,
    Source,
    bound_rows,
    insert_each,
    pack_rows,
)
from reval.reconcile.helper import IN_THIS_PROCESS, SyncHelper
from reval.reconcile.views_version import views_written
from reval.rules import (
    HIDDEN_BY_ADMIN,
    SHOULD_NOT_BE_CONNECTED,
    Decision,
    DoctorSituation,
    PlacementSpan,
    ProgrammeSpan,
    Queue,
    Ready,
    RuleEngine,
    TisPersonView,
)
from reval.rules.facts import shown_programme, stable_between

DECISION_FIELDS = ("queue", "reason", "visible_to")
SORT_NAME_LENGTH = 400  # doctor.sort_name
NAME_KEY_LENGTH = 200  # doctor_visibility_name.name (a search is at most 100 characters)


RANGE_DIGITS = 2


def gmc_number_ranges() -> Iterator[tuple[str, str | None]]:
    """[low, high) ranges of GMC numbers sharing their leading digits; the last is open-ended."""
    count = 10**RANGE_DIGITS
    for index in range(count):
        low = f"{index:0{RANGE_DIGITS}d}"
        yield low, (f"{index + 1:0{RANGE_DIGITS}d}" if index + 1 < count else None)


def in_range(column, low: str, high: str | None):
    return column >= low if high is None else (column >= low) & (column < high)


class ConnectionInput(NamedTuple):
    """What deciding a doctor needs of their GMC connection (and the queues show of it)."""

    designated_body_code: str
    first_name: str | None
    last_name: str | None
    submission_date: date | None


class PersonInput(NamedTuple):
    """What deciding a doctor needs of a TIS person (their programmes and placements as spans:
    see person_spans)."""

    tis_person_id: int
    status: str | None
    forenames: str | None
    surname: str | None
    spans: str


def person_spans(memberships: Sequence[Mapping[str, Any]], placements: Sequence[Mapping[str, Any]]) -> str:
    """What deciding reads of a TIS person's programme memberships and placements, stored beside
    TIS's documents: JSON ``[programmes, placements]``, each a list of the fields person_view
    takes, in its order. Deciding a national sync's doctors decoded each person's documents
    again (a kilobyte, with their curricula) for these few fields, and the documents' text was
    most of what crossed to the helper process."""
    return orjson.dumps(
        [
            [
                [
                    m["programmeMembershipType"],
                    m["programmeStartDate"],
                    m["programmeEndDate"],
                    m["programmeOwner"],
                    m.get("programmeName"),
                ]
                for m in memberships
            ],
            [[p["gradeAbbreviation"], p["dateFrom"], p["dateTo"]] for p in placements],
        ]
    ).decode()


def person_view(row: Any, owners: OwnerDirectory) -> TisPersonView:
    """A stored TIS person as the rules see it (dates parsed, owners mapped to bodies)."""
    programmes, placements = orjson.loads(row.spans)
    return TisPersonView(
        row.tis_person_id,
        row.status,
        tuple(
            ProgrammeSpan(
                kind, date.fromisoformat(start), _optional_date(end), owner, owners.designated_body_for(owner), name
            )
            for kind, start, end, owner, name in programmes
        ),
        tuple(PlacementSpan(grade, date.fromisoformat(start), _optional_date(end)) for grade, start, end in placements),
    )


def _optional_date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def situation_of(
    connection: Any | None,
    people: Sequence[Any],
    last_connected_before: str | None,
    owners: OwnerDirectory,
    rejected_people: Sequence[Sequence[str]] = (),
) -> DoctorSituation:
    """``rejected_people``: the owners (designated body codes) of each TIS person with this GMC
    number whose every record was rejected."""
    body = connection.designated_body_code if connection is not None else None
    return DoctorSituation(
        gmc_designated_body=body,
        last_connected_designated_body=body or last_connected_before,
        tis_people=tuple(person_view(person, owners) for person in people),
        rejected_tis_people=tuple(tuple(codes) for codes in rejected_people),
    )


def doctor_row(
    number: str,
    decision: Decision,
    situation: DoctorSituation,
    connection: Any | None,
    people: Sequence[Any],
    as_of: date,
    configured_bodies: frozenset[str],
) -> dict[str, Any]:
    first_name, last_name = _shown_names(connection, people)
    shown = shown_programme(situation, as_of)
    return {
        "gmc_number": number,
        "queue": decision.queue,
        "reason": decision.reason,
        "rule_number": decision.rule_number,
        "rule_table": decision.rule_table,
        "designated_body_code": situation.gmc_designated_body,
        "last_connected_designated_body_code": situation.last_connected_designated_body,
        "visible_to": list(decision.visible_to),
        "programme_owner_designated_bodies": list(decision.programme_owner_designated_bodies),
        "tis_person_ids": [person.tis_person_id for person in people],
        "first_name": first_name,
        "last_name": last_name,
        "decided_as_of": as_of,
        "submission_date": connection.submission_date if connection is not None else None,
        **_programme_columns(shown),
        "programme_owners": " ".join(decision.programme_owner_designated_bodies),
        # Cut to its column: case-folding can lengthen a name (ß is ss), and order needs no more.
        "sort_name": f"{last_name or ''} {first_name or ''}".strip().casefold()[:SORT_NAME_LENGTH],
        "search_names": search_names(
            [connection.first_name, connection.last_name] if connection is not None else [],
            *([person.forenames, person.surname] for person in people),
        ),
        "unassigned": configured_bodies.isdisjoint(decision.visible_to),
    }


def _shown_names(connection: Any | None, people: Sequence[Any]) -> tuple[str | None, str | None]:
    """The doctor's (first, last) names: GMC's if it names them, else their first TIS person's."""
    if connection is not None and (connection.first_name or connection.last_name):
        return connection.first_name, connection.last_name
    if people:
        return people[0].forenames, people[0].surname
    return None, None


def _programme_columns(shown: Any | None) -> dict[str, Any]:
    if shown is None:
        return {
            "programme_name": None,
            "programme_start": None,
            "programme_end": None,
            "programme_membership_type": None,
        }
    return {
        "programme_name": shown.name,
        "programme_start": shown.start,
        "programme_end": shown.end,
        "programme_membership_type": shown.membership_type,
    }


def search_names(*name_lists: Sequence[str | None]) -> str:
    """Every name given, case-folded, one per line with a newline before and after each: a name
    starts with a prefix when this contains newline + prefix (names hold no control characters)."""
    names = sorted({name.strip().casefold() for names in name_lists for name in names if name and name.strip()})
    return "\n" + "\n".join(names) + "\n" if names else ""


@dataclass(frozen=True)
class DecisionContext:
    """What every decision of a sync is made under (it crosses to the helper process once), and
    what new doctors' rows are written with: the events' time and run, the database's dialect."""

    engine: RuleEngine
    owners: OwnerDirectory
    basis: str
    as_of: date
    recorded_at: datetime
    sync_run_id: int | None
    dialect: str  # the database's ("sqlite" or "postgresql")


# (GMC number, connection, TIS people, the last body connected to as stored before, the owners
# of each TIS person with the number whose records were all rejected). The connection and the
# people are plain tuples in the order of ConnectionInput's and PersonInput's fields: they cross
# to the helper process, and pickling a named tuple calls back into Python for each one (half
# the cost of sending a batch).
DoctorInputs = tuple[str, tuple | None, tuple[tuple, ...], str | None, tuple[tuple[str, ...], ...]]


class DecidedDoctor(NamedTuple):
    number: str
    decision: Decision
    situation: DoctorSituation
    connection: ConnectionInput | None
    people: tuple[PersonInput, ...]


def decide_each(context: DecisionContext, batch: list[DoctorInputs]) -> Iterator[DecidedDoctor]:
    """Each doctor's decision, with the inputs it was made from: pure."""
    make_connection, make_person = ConnectionInput._make, PersonInput._make
    for number, connection_values, people_values, last_connected_before, rejected_people in batch:
        connection = None if connection_values is None else make_connection(connection_values)
        people = tuple(map(make_person, people_values))
        situation = situation_of(connection, people, last_connected_before, context.owners, rejected_people)
        yield DecidedDoctor(number, context.engine.decide(situation, context.as_of), situation, connection, people)


def decide_batch(context: DecisionContext, batch: list[DoctorInputs]) -> list[dict[str, Any]]:
    """The doctor row each doctor's inputs decide: pure, so it may run in the helper process."""
    decided = []
    for number, decision, situation, connection, people in decide_each(context, batch):
        new = doctor_row(number, decision, situation, connection, people, context.as_of, context.owners.codes)
        new["stable_from"], new["stable_until"] = stable_between(situation, context.as_of)
        new["decision_basis"] = context.basis
        decided.append(new)
    return decided


# Whether batches of doctors new to Reval have their rows made where they are decided (see
# NewDoctorRows). Off, every doctor is written by the general path: a test compares the two.
NEW_DOCTOR_ROWS_WHERE_DECIDED = True


class NewDoctorRows(NamedTuple):
    """Everything a batch of doctors new to Reval (no stored decision, no hide) writes, bound for
    the database where they were decided (on SQLite, packed: see PackedRows): in a national first
    sync that is every doctor, and making these rows (the views, their names, the history) and
    binding them is work the process holding the transaction would otherwise do between its writes."""

    rows: tuple[BoundRows, ...] | PackedRows  # of each of NEW_DOCTOR_TABLES, in that order
    queues: list[str]
    events: int  # how many of the rows are history events


# What a batch of new doctors writes, in the order it is written: the doctors, what each body sees
# of them and the names it searches them by, their history, and the changes feed.
NEW_DOCTOR_TABLES = (
    Doctor.__table__,
    DoctorVisibility.__table__,
    DoctorVisibilityName.__table__,
    DoctorEvent.__table__,
    DoctorChange.__table__,
)


# A batch of doctors to decide, and, when every one of them is new to Reval, the source each
# one's change is put down to (their new doctors' rows are then made with the decisions).
DecisionJob = tuple[list[DoctorInputs], list[str] | None]


def decide_job(context: DecisionContext, job: DecisionJob) -> list[dict[str, Any]] | NewDoctorRows:
    """The batch's doctor rows, or for new doctors everything they write: pure, so it may run in
    the helper process."""
    batch, sources = job
    decided = decide_batch(context, batch)
    if sources is None:
        return decided
    events = EventLog(context.recorded_at, context.as_of, context.sync_run_id)
    views: list[dict[str, Any]] = []
    names: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for new, source in zip(decided, sources, strict=True):
        events.add(new["gmc_number"], Source(source), EventKind.DECISION, None, decision_view(new), new["reason"])
        add_view_rows(new, set(), views, names)
        changes += change_rows(new["gmc_number"], {}, doctor_views(new), EventKind.DECISION, context.recorded_at)
    dialect = offline_dialect(context.dialect)
    bound = tuple(
        bound_rows(dialect, table, rows)
        for table, rows in zip(NEW_DOCTOR_TABLES, (decided, views, names, events.pending, changes), strict=True)
    )
    return NewDoctorRows(
        pack_rows(bound) if dialect.name == "sqlite" and packed_rows_supported() else bound,
        [new["queue"] for new in decided],
        len(events.pending),
    )


def decision_view(row: dict[str, Any] | Any) -> dict[str, Any]:
    """What a DECISION history event records as old and new."""
    get: Callable[[str], Any] = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    return {
        "queue": get("queue"),
        "reason": get("reason"),
        "rule": get("rule_number"),
        "ruleTable": get("rule_table"),
        "visibleTo": list(get("visible_to")),
    }


@dataclass
class DecisionOutcome:
    decided: int = 0
    changed: int = 0
    hides_ended: int = 0
    restored: int = 0  # archived doctors decided again: they reappeared in a source
    before: Counter = field(default_factory=Counter)
    after: Counter = field(default_factory=Counter)
    entered: Counter = field(default_factory=Counter)
    left: Counter = field(default_factory=Counter)

    def shard_counts(self) -> dict[str, Any]:
        """What a shard reports to the run it belongs to (plain values: it may cross a broker)."""
        return {
            "decided": self.decided,
            "changed": self.changed,
            "hidesEnded": self.hides_ended,
            "restored": self.restored,
            "entered": dict(self.entered),
            "left": dict(self.left),
        }

    def add_shard(self, counts: dict[str, Any]) -> None:
        self.decided += counts["decided"]
        self.changed += counts["changed"]
        self.hides_ended += counts["hidesEnded"]
        self.restored += counts.get("restored", 0)
        self.entered.update(counts["entered"])
        self.left.update(counts["left"])

    def queue_summary(self) -> dict[str, dict[str, int]]:
        return {
            queue.value: {
                "before": self.before[queue.value],
                "after": self.after[queue.value],
                "in": self.entered[queue.value],
                "out": self.left[queue.value],
            }
            for queue in Queue
        }


def decide_doctors(
    session: Session,
    *,
    engine: RuleEngine,
    owners: OwnerDirectory,
    basis: str,
    as_of: date,
    now: datetime,
    events: EventLog,
    change_sources: Mapping[str, Source],
    touched: set[str],
    ranges: Iterable[tuple[str, str | None]] | None = None,
    only: set[str] | None = None,
    count_queues: bool = True,
    helper: SyncHelper = IN_THIS_PROCESS,
    progress: Progress = SILENT,
) -> DecisionOutcome:
    """Decides, in the given GMC-number ranges (default: all), every doctor whose decision may have
    changed: sources touched in this run, as-of date outside its stable window, different rules or
    designated bodies (``basis``), or an active hide to check. Records what changed, put down to
    the doctor's source in ``change_sources`` (others: TIS, whose dates drive the rest).
    ``only``: decide just these doctors (after an admin's change), whatever else is stale.
    ``count_queues``: count every queue before and after (a shard leaves that to its run).
    ``helper``: decides batches in a second process while this one reads and writes."""
    outcome = DecisionOutcome(before=queue_counts(session) if count_queues else Counter())
    doctors = RowWriter(session, Doctor.__table__, "gmc_number")
    visibility = BodyViews(session, events.recorded_at)
    hides_ending = RowWriter(session, DoctorHide.__table__, "id")
    active_hides = _active_hides(session)
    checked_every_time: dict[str, set[str]] = defaultdict(set)  # by range (its leading digits)
    for number in _checked_every_time(only, touched, active_hides):
        checked_every_time[number[:RANGE_DIGITS]].add(number)
    if only is not None:
        ranges = [(low, high) for low, high in gmc_number_ranges() if low in checked_every_time]

    range_list = list(ranges or gmc_number_ranges())
    context = DecisionContext(
        engine, owners, basis, as_of, events.recorded_at, events.sync_run_id, session.get_bind().dialect.name
    )
    stale = _StaleDoctors(session, basis, as_of, checked_every_time, read_stale=only is None)
    jobs = _decision_jobs(stale.batches(range_list, progress, outcome), active_hides, change_sources)
    recorder = _DecisionRecorder(
        outcome, doctors, visibility, hides_ending, events, change_sources, active_hides, as_of, now
    )
    progress.begin("decide", "doctors")
    for previous_rows, decided in helper.ordered(decide_job, context, jobs):
        if isinstance(decided, NewDoctorRows):
            _write_new_doctors(session, outcome, doctors, visibility, events, decided)
            continue
        for new in decided:
            recorder.record(new, previous_rows.get(new["gmc_number"]))
        events.flush(session)
    for writer in (doctors, visibility, hides_ending):
        writer.flush()
    events.flush(session, force=True)
    progress.end(outcome.decided)
    if count_queues:
        outcome.after = queue_counts(session)
    return outcome


class _StaleDoctors:
    """The doctors to decide, read range by range: those whose stored decision is stale (unless
    only given doctors are decided) and those checked every time (touched, or with a hide)."""

    def __init__(
        self, session: Session, basis: str, as_of: date, checked_every_time: dict[str, set[str]], read_stale: bool
    ) -> None:
        self.session, self.basis, self.as_of = session, basis, as_of
        self.checked_every_time, self.read_stale = checked_every_time, read_stale

    def batches(
        self, range_list: list[tuple[str, str | None]], progress: Progress, outcome: DecisionOutcome
    ) -> Iterator[tuple[list[DoctorInputs], dict[str, Any]]]:
        """Batches of about BATCH_SIZE: each goes to ``decide_batch``, the previous decisions stay
        here to compare against."""
        batch: list[DoctorInputs] = []
        previous_rows: dict[str, Any] = {}
        for index, (low, high) in enumerate(range_list):
            progress.advance(outcome.decided, index / len(range_list))
            needed = set(self._stale(low, high)) | self.checked_every_time.get(low, set())
            if needed:
                range_batch, range_previous = _range_inputs(self.session, needed, low, high)
                batch += range_batch
                previous_rows |= range_previous
            if len(batch) >= BATCH_SIZE:
                yield batch, previous_rows
                batch, previous_rows = [], {}
        if batch:
            yield batch, previous_rows

    def _stale(self, low: str, high: str | None) -> Sequence[str]:
        if not self.read_stale:
            return []
        return self.session.scalars(
            select(Doctor.gmc_number).where(
                in_range(Doctor.gmc_number, low, high),
                Doctor.archived_on.is_(None),  # decided again only when a source brings them back
                or_(
                    Doctor.decision_basis != self.basis,
                    Doctor.stable_from > self.as_of,
                    Doctor.stable_until <= self.as_of,
                ),
            )
        ).all()


def _decision_jobs(
    batches: Iterable[tuple[list[DoctorInputs], dict[str, Any]]],
    active_hides: Mapping[str, Any],
    change_sources: Mapping[str, Source],
) -> Iterator[tuple[DecisionJob, dict[str, Any]]]:
    """Each batch as a job for ``decide_job``: a batch of doctors new to Reval (no previous row,
    no hide) carries each doctor's source, so that its rows are made where it is decided."""
    for batch, previous_rows in batches:
        new_only = (
            NEW_DOCTOR_ROWS_WHERE_DECIDED
            and not previous_rows
            and active_hides.keys().isdisjoint(doctor[0] for doctor in batch)
        )
        sources = [change_sources.get(doctor[0], Source.TIS_SYNC).value for doctor in batch] if new_only else None
        yield (batch, sources), previous_rows


def _checked_every_time(only: set[str] | None, touched: set[str], active_hides: Mapping[str, Any]) -> Iterable[str]:
    """The doctors decided whatever their stored decision: those given, else those touched or hidden."""
    return only if only is not None else touched | active_hides.keys()


@dataclass
class _DecisionRecorder:
    """Records each decision made (with what changed), and ends the hides whose reason has gone."""

    outcome: DecisionOutcome
    doctors: RowWriter
    visibility: BodyViews
    hides_ending: RowWriter
    events: EventLog
    change_sources: Mapping[str, Source]
    active_hides: Mapping[str, list[DoctorHide]]
    as_of: date
    now: datetime

    def record(self, new: dict[str, Any], previous: Any) -> None:
        number = new["gmc_number"]
        source = self.change_sources.get(number, Source.TIS_SYNC)
        self.outcome.decided += 1
        hides = [(hide, hide_end_reason(hide, new, self.as_of)) for hide in self.active_hides.get(number, ())]
        hidden_for = {hide.designated_body_code for hide, end_reason in hides if not end_reason}
        ending = [(hide, end_reason) for hide, end_reason in hides if end_reason]
        hidden_before = {hide.designated_body_code for hide, _ in hides}
        _record_decision(
            self.outcome, self.doctors, self.visibility, self.events, source, previous, new, hidden_for, hidden_before
        )
        for hide, end_reason in ending:
            self.hides_ending.update({"id": hide.id, "ended_at": self.now, "end_reason": end_reason})
            self.outcome.hides_ended += 1
            self.events.add(
                number,
                Source.ADMIN if end_reason.startswith("until-date") else source,
                EventKind.HIDE_ENDED,
                hide_view(hide),
                None,
                end_reason,
            )


def _range_inputs(
    session: Session, needed: set[str] | None, low: str, high: str | None, previous_columns: Sequence[Any] = ()
) -> tuple[list[DoctorInputs], dict[str, Any]]:
    """The range's doctors' inputs, and their stored rows (``previous_columns`` of them, with
    gmc_number and last_connected_designated_body_code; every column when none are given).
    ``needed``: the GMC numbers to read; None for every doctor a source or a decision has in the
    range (as many as ``undecided_numbers`` and the stored decisions give, read in one pass)."""
    connection_table, person_table = GmcConnection.__table__, TisPerson.__table__
    connections = {
        row[0]: row[1:]
        for row in _rows(
            session,
            connection_table,
            [connection_table.c[name] for name in CONNECTION_INPUT_COLUMNS],
            needed,
            low,
            high,
        )
    }
    people: dict[str, list[tuple]] = defaultdict(list)
    person_columns = [person_table.c[name] for name in PERSON_INPUT_COLUMNS]
    for row in _rows(session, person_table, person_columns, needed, low, high, order_by=person_table.c.tis_person_id):
        people[row[0]].append(row[1:])
    doctor_table = Doctor.__table__
    read_columns = (
        [doctor_table.c.gmc_number, doctor_table.c.last_connected_designated_body_code, *previous_columns]
        if previous_columns
        else [doctor_table]
    )
    previous_rows = {row.gmc_number: row for row in _rows(session, doctor_table, read_columns, needed, low, high)}
    rejected: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    rejected_table = RejectedTisPerson.__table__
    for number, owners in _rows(
        session,
        rejected_table,
        [rejected_table.c.gmc_number, rejected_table.c.owners],
        needed,
        low,
        high,
        order_by=rejected_table.c.tis_person_id,
    ):
        rejected[number].append(tuple(owners))
    known = connections.keys() | people.keys() | previous_rows.keys() | rejected.keys()
    batch = [
        (
            number,
            connections.get(number),
            tuple(people.get(number, ())),
            previous_rows[number].last_connected_designated_body_code if number in previous_rows else None,
            tuple(rejected.get(number, ())),
        )
        for number in sorted(known if needed is None else needed & known)
    ]
    return batch, previous_rows


CONNECTION_INPUT_COLUMNS = ("gmc_number", *ConnectionInput._fields)
PERSON_INPUT_COLUMNS = ("gmc_number", *PersonInput._fields)


def shards_of_ranges(shards: int) -> list[list[tuple[str, str | None]]]:
    """The GMC-number ranges split into ``shards`` contiguous groups of near-equal size."""
    ranges = list(gmc_number_ranges())
    shards = max(1, min(shards, len(ranges)))
    size, extra = divmod(len(ranges), shards)
    groups, start = [], 0
    for index in range(shards):
        end = start + size + (1 if index < extra else 0)
        groups.append(ranges[start:end])
        start = end
    return groups


def mark_for_decision(session: Session, numbers: Iterable[str]) -> None:
    """Makes these doctors' decisions stale, so whichever step decides next decides them again."""
    ordered = sorted(numbers)
    for start in range(0, len(ordered), SELECTIVE_READ_LIMIT):
        session.execute(
            Doctor.__table__.update()
            .where(Doctor.gmc_number.in_(ordered[start : start + SELECTIVE_READ_LIMIT]))
            .values(decision_basis="")
        )


def undecided_numbers(session: Session, low: str, high: str | None) -> set[str]:
    """GMC numbers in the range that a source knows and no decision does yet."""
    known = set(session.scalars(select(GmcConnection.gmc_number).where(in_range(GmcConnection.gmc_number, low, high))))
    known |= set(
        session.scalars(
            select(TisPerson.gmc_number).where(
                TisPerson.gmc_number.is_not(None), in_range(TisPerson.gmc_number, low, high)
            )
        )
    )
    known |= set(
        session.scalars(select(RejectedTisPerson.gmc_number).where(in_range(RejectedTisPerson.gmc_number, low, high)))
    )
    return known - set(session.scalars(select(Doctor.gmc_number).where(in_range(Doctor.gmc_number, low, high))))


# Above this many doctors in a range, reading the whole range beats a long IN list.
SELECTIVE_READ_LIMIT = 500


def _rows(
    session: Session, table, columns, needed: set[str] | None, low: str, high: str | None, order_by=None
) -> Sequence[Any]:
    """The range's rows of ``table`` for the ``needed`` GMC numbers (None: every row in the range)."""
    statement = select(*columns)
    if order_by is not None:
        statement = statement.order_by(order_by)
    connection = session.connection()  # plain rows: the ORM's per-row loading is not needed here
    if needed is None or len(needed) > SELECTIVE_READ_LIMIT:
        rows = connection.execute(statement.where(in_range(table.c.gmc_number, low, high))).all()
        return rows if needed is None else [row for row in rows if row[0] in needed]
    ordered = sorted(needed)
    return [
        row
        for start in range(0, len(ordered), SELECTIVE_READ_LIMIT)
        for row in connection.execute(
            statement.where(table.c.gmc_number.in_(ordered[start : start + SELECTIVE_READ_LIMIT]))
        )
    ]


def queue_counts(session: Session) -> Counter:
    """How many doctors each queue holds (archived doctors are in none)."""
    return Counter(
        dict(
            session.execute(
                select(Doctor.queue, func.count()).where(Doctor.archived_on.is_(None)).group_by(Doctor.queue)
            ).all()
        )
    )


def _write_new_doctors(
    session: Session,
    outcome: DecisionOutcome,
    doctors: RowWriter,
    visibility: BodyViews,
    events: EventLog,
    new: NewDoctorRows,
) -> None:
    for writer in (doctors, visibility.rows, visibility.names, visibility.feed):
        writer.flush()  # what is buffered goes first, so that history and the feed keep their order
    events.flush(session, force=True)
    insert_each(session.connection(), NEW_DOCTOR_TABLES, new.rows)
    events.written += new.events
    outcome.decided += len(new.queues)
    outcome.changed += len(new.queues)
    outcome.entered.update(new.queues)


def _record_decision(
    outcome, doctors, visibility: BodyViews, events, source, previous, new, hidden_for, hidden_before
) -> None:
    """Writes a doctor's decision if it changed, with history, and each body's view of them
    (``hidden_for``: the bodies whose admins hid the doctor and whose hides still stand;
    ``hidden_before``: those whose hides stood before this decision)."""
    number = new["gmc_number"]
    if previous is None:
        doctors.insert(new)
        outcome.changed += 1
        outcome.entered[new["queue"]] += 1
        events.add(number, source, EventKind.DECISION, None, decision_view(new), new["reason"])
        visibility.write(new, hidden_for, replace=False)
        visibility.changed(number, {}, doctor_views(new, hidden_for), EventKind.DECISION)
        return
    restored = previous.archived_on is not None
    if restored:  # an archived doctor is decided again only when a source has them again
        _restore(outcome, events, source, previous, new)
    decision_changed = _note_decision_change(outcome, events, source, previous, new, counted_before=not restored)
    # The views keep copies of these, and "ready" follows the GMC connection.
    copies_changed = previous.search_names != new["search_names"] or any(
        getattr(previous, name) != new[name] for name in (*VIEW_COPIED_COLUMNS, "designated_body_code")
    )
    hide_ended = hidden_before != hidden_for
    if decision_changed or hide_ended or copies_changed or restored:
        visibility.write(new, hidden_for, replace=True, last_changed_by=previous.last_changed_by)
    moved = previous.designated_body_code != new["designated_body_code"]
    visibility.changed(
        number,
        doctor_views(previous, hidden_before),
        doctor_views(new, hidden_for),
        _change_kind(restored, moved, decision_changed, hide_ended),
        every_body=moved,
    )
    if any(getattr(previous, name) != value for name, value in new.items()):
        doctors.update(new)


def _restore(outcome: DecisionOutcome, events: EventLog, source: Source, previous: Any, new: dict[str, Any]) -> None:
    """An archived doctor back in a source: out of the archive, into their queue's count."""
    new["archived_on"] = None
    outcome.restored += 1
    outcome.entered[new["queue"]] += 1  # archived, they were in no queue's count
    events.add(
        new["gmc_number"], source, EventKind.RESTORED, {"archivedOn": previous.archived_on.isoformat()}, None, None
    )


def _note_decision_change(
    outcome: DecisionOutcome, events: EventLog, source: Source, previous: Any, new: dict[str, Any], counted_before: bool
) -> bool:
    """Whether the decision changed: if so, counted and put in the history; if not, it keeps
    the date it was first reached. ``counted_before``: the previous decision was in its
    queue's count (an archived one was not)."""
    if not any(getattr(previous, name) != new[name] for name in DECISION_FIELDS):
        new["decided_as_of"] = previous.decided_as_of
        return False
    outcome.changed += 1
    if previous.queue != new["queue"] and counted_before:
        outcome.left[previous.queue] += 1
        outcome.entered[new["queue"]] += 1
    events.add(
        new["gmc_number"], source, EventKind.DECISION, decision_view(previous), decision_view(new), new["reason"]
    )
    return True


def _change_kind(restored: bool, moved: bool, decision_changed: bool, hide_ended: bool) -> EventKind:
    """What the changes feed says changed a doctor's views, the weightiest cause first."""
    if restored:
        return EventKind.RESTORED
    if moved:
        return EventKind.CONNECTION
    if hide_ended and not decision_changed:
        return EventKind.HIDE_ENDED
    return EventKind.DECISION


class BodyViews:
    """Writes what each body sees of a doctor: a ``doctor_visibility`` row per body, with the queue
    and reason it sees (the decision's, or HIDDEN_BY_ADMIN where that body's admin hid them), and
    the names its queues are searched by."""

    def __init__(self, session: Session, changed_at: datetime):
        views_written(session)
        self.rows = RowWriter(session, DoctorVisibility.__table__, "gmc_number")
        self.names = RowWriter(session, DoctorVisibilityName.__table__, "gmc_number")
        self.feed = ChangeFeed(session)
        self.changed_at = changed_at

    def changed(self, number: str, old: Views, new: Views, kind: EventKind, every_body: bool = False) -> None:
        """Records in the changes feed how the bodies' views of a doctor changed."""
        self.feed.record(number, old, new, kind, self.changed_at, every_body=every_body)

    def write(
        self, doctor: dict[str, Any], hidden_for: set[str], replace: bool, last_changed_by: str | None = None
    ) -> None:
        number = doctor["gmc_number"]
        if replace:
            self.rows.delete(number)
            self.names.delete(number)
        views: list[dict[str, Any]] = []
        names: list[dict[str, Any]] = []
        add_view_rows(doctor, hidden_for, views, names, last_changed_by)
        for row in views:
            self.rows.insert(row)
        for row in names:
            self.names.insert(row)

    def flush(self) -> None:
        self.rows.flush()
        self.names.flush()
        self.feed.flush()


# The doctor's columns each body's view row keeps a copy of (besides the decision's own).
VIEW_COPIED_COLUMNS = ("sort_name", "programme_name", "programme_start", "programme_end", "programme_owners")


def ready_for(doctor: dict[str, Any], code: str) -> str:
    """What an admin of the body ``code`` can do at once about the doctor (a Ready, or "")."""
    if doctor["designated_body_code"] == code:
        return Ready.DISCONNECT.value if doctor["reason"] in SHOULD_NOT_BE_CONNECTED else ""
    return Ready.CONNECT.value if code in doctor["programme_owner_designated_bodies"] else ""


def add_view_rows(
    doctor: dict[str, Any], hidden_for: set[str], views: list, names: list, last_changed_by: str | None = None
) -> None:
    """Adds to ``views`` and ``names`` the rows of what each body sees of the doctor
    (``last_changed_by``: as the doctor's stored row has it; a sync never changes it)."""
    number = doctor["gmc_number"]
    keys = name_keys(doctor["search_names"])
    copied = {name: doctor[name] for name in VIEW_COPIED_COLUMNS}
    for code in doctor["visible_to"]:
        queue, reason = (
            (Queue.HIDDEN.value, HIDDEN_BY_ADMIN) if code in hidden_for else (doctor["queue"], doctor["reason"])
        )
        views.append(
            {
                "designated_body_code": code,
                "gmc_number": number,
                "queue": queue,
                "reason": reason,
                "decided_as_of": doctor["decided_as_of"],
                "last_changed_by": last_changed_by,
                "ready": ready_for(doctor, code),
                **copied,
            }
        )
        names.extend(
            {"designated_body_code": code, "queue": queue, "name": name, "gmc_number": number} for name in keys
        )


def note_last_changed_by(session: Session, number: str, name: str) -> None:
    """Who last asked GMC to change the doctor's connection, or hid or unhid them: on the
    doctor's row and each body's view of them (a doctor Reval does not know yet has no rows)."""
    session.execute(update(Doctor).where(Doctor.gmc_number == number).values(last_changed_by=name))
    session.execute(update(DoctorVisibility).where(DoctorVisibility.gmc_number == number).values(last_changed_by=name))


def name_keys(search_names: str) -> set[str]:
    """The distinct names of a doctor's ``search_names``, each cut to its key's length."""
    return {name[:NAME_KEY_LENGTH] for name in search_names.split("\n") if name}


def _active_hides(session: Session) -> dict[str, list[DoctorHide]]:
    hides: dict[str, list[DoctorHide]] = defaultdict(list)
    for hide in session.scalars(select(DoctorHide).where(DoctorHide.ended_at.is_(None))):
        hides[hide.gmc_number].append(hide)
    return hides


def hide_end_reason(hide: DoctorHide, doctor: dict[str, Any], as_of: date) -> str | None:
    """Why a hide ends now, or None: its until-date, or a change the admin has not looked at."""
    if hide.until is not None and as_of >= hide.until:
        return f"until-date {hide.until.isoformat()} reached"
    if hide.gmc_designated_body_code != doctor["designated_body_code"]:
        return (
            f"GMC connection changed from {hide.gmc_designated_body_code or 'none'} "
            f"to {doctor['designated_body_code'] or 'none'}"
        )
    if list(hide.programme_owner_designated_bodies) != doctor["programme_owner_designated_bodies"]:
        return (
            f"programme owners changed from {_codes(hide.programme_owner_designated_bodies)} "
            f"to {_codes(doctor['programme_owner_designated_bodies'])}"
        )
    return None


def _codes(codes: Sequence[str]) -> str:
    return ", ".join(codes) if codes else "none"


def hide_view(hide: DoctorHide) -> dict[str, Any]:
    return {
        "designatedBody": hide.designated_body_code,
        "reason": hide.reason,
        "until": hide.until.isoformat() if hide.until else None,
        "hiddenBy": hide.hidden_by,
    }
