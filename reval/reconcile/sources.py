"""Applying what GMC and TIS said in this run to the stored state of each source.

Both steps stream their records, validate each, and write only what changed, in batches.
Neither ever removes something on the strength of a list it did not fully read: a GMC body that
was not fetched keeps its doctors, a rejected record keeps its previous state, and a TIS snapshot
with a record whose person cannot even be identified deletes nobody.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reval.designated_bodies import OwnerDirectory
from reval.gmc.records import read_connected_doctor
from reval.models import ConnectionRequest, GmcConnection, RejectedTisPerson, SerializedJson, TisPerson
from reval.progress import SILENT, Progress
from reval.reconcile.common import EventKind, EventLog, Rejection, RowWriter, Source, batched, line_hash, record_hash
from reval.reconcile.decisions import person_spans
from reval.reconcile.helper import IN_THIS_PROCESS, OrderedResults, SyncHelper
from reval.reconcile.reference import configured_designated_bodies
from reval.settings import Settings
from reval.snapshot_files import UnparseableRecord, parse_line
from reval.tis.records import read_person, stored_memberships, stored_placements
from reval.validation import InvalidValue, gmc_number, gmc_number_or_none, list_of_objects, record_id, require_object

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MassChangeGuard:
    """Holds back a source whose application would remove much of what is stored: an empty or
    cut-short snapshot looks exactly like everyone having left. ``allowed``: apply it anyway,
    this once (the day a change really is that large)."""

    max_tis_deletions_percent: float = 5.0  # REVAL_MAX_TIS_DELETIONS_PERCENT
    max_gmc_disconnections_percent: float = 10.0  # REVAL_MAX_GMC_DISCONNECTIONS_PERCENT
    allowed: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, allowed: bool = False) -> MassChangeGuard:
        return cls(settings.max_tis_deletions_percent, settings.max_gmc_disconnections_percent, allowed)

    def tis_refusal(self, deleting: int, stored: int) -> str | None:
        if self.allowed or deleting * 100 <= self.max_tis_deletions_percent * stored:
            return None
        return (
            f"held back: it would delete {deleting} of the {stored} stored TIS people, more than "
            f"REVAL_MAX_TIS_DELETIONS_PERCENT ({self.max_tis_deletions_percent:g}%)"
        )

    def gmc_refusal(self, leaving: int, connected: int) -> str | None:
        if self.allowed or leaving * 100 <= self.max_gmc_disconnections_percent * connected:
            return None
        return (
            f"held back: its list would disconnect {leaving} of its {connected} connected doctors, more than "
            f"REVAL_MAX_GMC_DISCONNECTIONS_PERCENT ({self.max_gmc_disconnections_percent:g}%)"
        )


@dataclass
class GmcOutcome:
    fetched: list[str] = field(default_factory=list)
    not_fetched: dict[str, str] = field(default_factory=dict)  # configured body -> why not
    failed: set[str] = field(default_factory=set)  # bodies whose fetch failed, list was incomplete or held back
    unreadable_lists: int = 0  # body lists (lines, entries) that could not be read at all
    held_back: set[str] = field(default_factory=set)  # bodies whose lists the mass-change guard held back
    empty: bool = False  # GMC was asked and gave no body's list at all
    doctors_read: int = 0
    added: int = 0
    removed: int = 0
    moved: int = 0
    updated: int = 0
    changed_numbers: set[str] = field(default_factory=set)  # whose connection changed
    touched_numbers: set[str] = field(default_factory=set)  # whose connection or GMC details changed
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """Whether GMC was only partly applied: a body not fetched for a failure, a list held
        back or incomplete, a list that could not be read, or no list at all."""
        return bool(self.failed or self.unreadable_lists or self.empty)

    def summary(self) -> dict[str, Any]:
        return {
            "designatedBodiesFetched": sorted(self.fetched),
            "designatedBodiesNotFetched": dict(sorted(self.not_fetched.items())),
            "doctorsRead": self.doctors_read,
            "connectionsAdded": self.added,
            "connectionsRemoved": self.removed,
            "connectionsMoved": self.moved,
            "connectionsUpdated": self.updated,
        }


@dataclass
class _BodyList:
    """One body's list as applied so far: kept apart until the mass-change guard lets it through."""

    code: str
    events: EventLog
    seen: dict[str, str] = field(default_factory=dict)
    kept: set[str] = field(default_factory=set)
    incomplete: bool = False
    doctors_read: int = 0
    added: int = 0
    moved: int = 0
    updated: int = 0
    changed: set[str] = field(default_factory=set)
    touched: set[str] = field(default_factory=set)
    rejections: list[Rejection] = field(default_factory=list)
    writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # ("insert" | "update", row)

    def merge_into(self, outcome: GmcOutcome, seen: dict[str, str], kept: set[str], events: EventLog) -> None:
        seen.update(self.seen)
        kept.update(self.kept)
        outcome.fetched.append(self.code)
        outcome.doctors_read += self.doctors_read
        outcome.added += self.added
        outcome.moved += self.moved
        outcome.updated += self.updated
        outcome.changed_numbers |= self.changed
        outcome.touched_numbers |= self.touched
        outcome.rejections += self.rejections
        events.take(self.events)


def apply_gmc_lists(
    session: Session,
    body_lists: Iterable[tuple[str, Any]],
    configured_bodies: Iterable[str],
    events: EventLog,
    not_fetched_reasons: dict[str, str] | None = None,
    helper: SyncHelper = IN_THIS_PROCESS,
    guard: MassChangeGuard = MassChangeGuard(),
    fetched_at: Callable[[str], datetime | None] = lambda _code: None,
    progress: Progress = SILENT,
    when_idle: OrderedResults | None = None,
) -> GmcOutcome:
    """Applies complete GMC lists of designated bodies; bodies without a list keep their doctors.
    A list that would disconnect too many of its body's doctors is held back (``guard``), and a
    list never undoes a connection change GMC confirmed after it was fetched (``fetched_at`` of
    each body's list). ``helper`` examines the lists in a second process while this one writes,
    and whenever it has examined every list it was given, starts on ``when_idle`` (the TIS people
    to come: examining a list takes it less time than writing its doctors takes this process)."""
    applier = _GmcListApplier(session, configured_bodies, events, guard, fetched_at)
    progress.begin("GMC", "doctors")
    doctors_read = applier.read_lists(body_lists, helper, progress, when_idle)
    applier.settle_doubtful_lists()
    applier.remove_doctors_on_no_list()
    applier.name_bodies_not_fetched(not_fetched_reasons or {})
    progress.end(doctors_read)
    return applier.outcome


class _GmcListApplier:
    """The phases of applying GMC's lists: read each list (applying it, or holding it as doubtful
    when the guard might refuse it), settle the doubtful lists once every list is read, remove the
    doctors no list holds, and say why each body without an applied list was not fetched."""

    def __init__(
        self,
        session: Session,
        configured_bodies: Iterable[str],
        events: EventLog,
        guard: MassChangeGuard,
        fetched_at: Callable[[str], datetime | None],
    ) -> None:
        self.session, self.events, self.guard, self.fetched_at = session, events, guard, fetched_at
        self.outcome = GmcOutcome()
        self.canonical_codes = {code.upper(): code for code in configured_bodies}
        table = GmcConnection.__table__
        self.stored = _stored_by_key(session, table.c.gmc_number, table.c.designated_body_code, table.c.record_hash)
        self.stored_by_body: dict[str, set[str]] = defaultdict(set)
        for number, (body, _digest) in self.stored.items():
            self.stored_by_body[body].add(number)
        self.changed_at_gmc = admin_changes(session)
        self.writer = RowWriter(session, table, "gmc_number")
        self.seen: dict[str, str] = {}  # GMC number -> body whose list holds it
        self.kept: set[str] = set()  # doctors who keep their previous state: rejected, protected, on a held-back list
        self.incomplete: set[str] = set()  # bodies with an entry we could not identify: no removals inferred
        self.protected: set[str] = set()  # changed at GMC by an admin after their list was fetched
        self.unreadable: set[str] = set()  # bodies named by a list that could not be read
        # Lists the guard may hold back, looked at again once every list is read: doctors missing from
        # them may have moved to a list still to come, and a move is not a disconnection.
        self.doubtful: list[tuple[str, str, list, set[str]]] = []
        self.on_doubtful_lists: set[str] = set()

    def read_lists(
        self,
        body_lists: Iterable[tuple[str, Any]],
        helper: SyncHelper,
        progress: Progress,
        when_idle: OrderedResults | None,
    ) -> int:
        """Examines each list (in the helper) and applies it, or holds it as doubtful; returns the
        number of doctors read."""
        lists = (((locator, body_list), locator) for locator, body_list in body_lists)
        read_so_far = 0
        examined_lists = helper.ordered(
            examine_body_list, (self.canonical_codes, self.stored), lists, when_idle=when_idle
        )
        for lists_so_far, (locator, examined_list) in enumerate(examined_lists, 1):
            code, raw_code, problem, examined = examined_list
            read_so_far += len(examined)
            progress.advance(read_so_far, min(1.0, lists_so_far / max(1, len(self.canonical_codes))))
            if problem is None and code is not None and self._already_read(code):
                problem = InvalidValue("designatedBodyCode", raw_code, "appears twice; the later list is ignored")
            if problem is not None:
                self._reject_list(locator, raw_code, problem)
            elif code is not None:  # (a list with no problem has its code)
                self._read_list(code, locator, examined)
        return read_so_far

    def _already_read(self, code: str) -> bool:
        return code in self.outcome.fetched or any(code == doubt[0] for doubt in self.doubtful)

    def _reject_list(self, locator: str, raw_code: Any, problem: InvalidValue | str) -> None:
        self.outcome.rejections.append(Rejection.of("GMC", locator, None, problem))
        named = self.canonical_codes.get(raw_code.strip().upper()) if isinstance(raw_code, str) else None
        if named is not None and named not in self.outcome.fetched:
            self.outcome.not_fetched[named] = f"its list ({locator}) could not be read: {problem}"
            self.unreadable.add(named)
        self.outcome.unreadable_lists += 1

    def _read_list(self, code: str, locator: str, examined: list) -> None:
        since = self.fetched_at(code)
        protected_here = {number for number, when in self.changed_at_gmc.items() if since is not None and when >= since}
        self.protected |= protected_here
        body = _examine_body(code, locator, examined, self.stored, self.seen, protected_here, self.events)
        if not body.incomplete and self._refusal(body) is not None:
            self.doubtful.append((code, locator, examined, protected_here))
            self.on_doubtful_lists |= body.seen.keys()
        else:
            self._apply(body)

    def settle_doubtful_lists(self) -> None:
        """Each doubtful list, examined again against every list: applied, or held back."""
        for code, locator, examined, protected_here in self.doubtful:
            body = _examine_body(code, locator, examined, self.stored, self.seen, protected_here, self.events)
            refusal = self._refusal(body, self.on_doubtful_lists)
            if refusal is None:
                self._apply(body)
                continue
            log.error("OPERATOR ALERT: GMC list of %s %s", code, refusal)
            self.outcome.not_fetched[code] = refusal
            self.outcome.held_back.add(code)
            self.kept |= body.seen.keys()  # what a held-back list says is not acted on anywhere

    def remove_doctors_on_no_list(self) -> None:
        """Disconnects the doctors of each body whose complete list was applied and holds them not."""
        outcome, fetched = self.outcome, set(self.outcome.fetched)
        for number, (body, _digest) in self.stored.items():
            if (
                body in fetched
                and number not in self.seen
                and number not in self.kept
                and number not in self.protected
                and body not in self.incomplete
            ):
                self.writer.delete(number)
                outcome.removed += 1
                _record_connection_change(
                    outcome.changed_numbers, outcome.touched_numbers, self.events, number, body, None
                )
        self.writer.flush()
        self.events.flush(self.session, force=True)

    def name_bodies_not_fetched(self, not_fetched_reasons: dict[str, str]) -> None:
        """Why each configured body has no list applied, and which bodies failed."""
        outcome, fetched = self.outcome, set(self.outcome.fetched)
        for code in self.canonical_codes.values():
            if code not in fetched and code not in outcome.not_fetched:
                outcome.not_fetched[code] = not_fetched_reasons.get(
                    code, "no list for this designated body in the GMC snapshot"
                )
        for code in self.incomplete:
            outcome.not_fetched.setdefault(code, "list had unidentifiable doctors; no disconnections inferred")
        outcome.failed = (
            self.incomplete
            | outcome.held_back
            | self.unreadable
            | (set(not_fetched_reasons) & set(outcome.not_fetched))
        )

    def _refusal(self, body: _BodyList, listed: AbstractSet[str] = frozenset()) -> str | None:
        """The guard's refusal of the body's list, if any, counting as leaving the body's stored
        doctors on no list read so far (nor ``listed``, nor kept as they are)."""
        leaving = (
            self.stored_by_body[body.code]
            - self.seen.keys()
            - body.seen.keys()
            - self.kept
            - body.kept
            - self.protected
            - listed
        )
        return self.guard.gmc_refusal(len(leaving), len(self.stored_by_body[body.code]))

    def _apply(self, body: _BodyList) -> None:
        for kind, row in body.writes:
            getattr(self.writer, kind)(row)
        body.merge_into(self.outcome, self.seen, self.kept, self.events)
        if body.incomplete or body.code in self.unreadable:  # another list for it could not be read
            self.incomplete.add(body.code)
        self.events.flush(self.session)


def _examine_body(
    code: str,
    locator: str,
    examined: list,
    stored: Mapping[str, tuple[str, str]],
    seen: Mapping[str, str],
    protected: set[str],
    events: EventLog,
) -> _BodyList:
    """One body's examined doctors turned into the writes and events they call for (none made yet)."""
    body = _BodyList(code, EventLog(events.recorded_at, events.as_of, events.sync_run_id))
    for doctor in examined:
        number = doctor.number
        body.doctors_read += 1
        if doctor.rejection is not None:
            _keep_rejected(body, doctor.number, doctor.rejection)
        elif number in protected:
            body.kept.add(number)  # GMC confirmed an admin's change after this list was fetched
        elif doctor.row is None and number not in seen and number not in body.seen:
            body.seen[number] = code  # the very record stored last time: nothing to write
        elif number in seen or number in body.seen:
            holder = seen.get(number) or body.seen[number]
            body.rejections.append(
                Rejection.of(
                    "GMC",
                    _doctor_locator(locator, code, doctor.position),
                    number,
                    InvalidValue("GMCReferenceNumber", number, f"is also on the list of {holder}; kept there"),
                )
            )
        else:
            body.seen[number] = code
            _write_listed(body, doctor.row, number, stored.get(number))
    return body


def _keep_rejected(body: _BodyList, number: str | None, rejection: Rejection) -> None:
    """A rejected entry keeps its doctor as stored; one with no GMC number leaves the list incomplete."""
    if number is None:
        body.incomplete = True
    else:
        body.kept.add(number)
    body.rejections.append(rejection)


def _write_listed(body: _BodyList, row: dict[str, Any], number: str, previous: tuple[str, str] | None) -> None:
    """A listed doctor's row written: new to the body's list, moved to it, or updated on it."""
    code = body.code
    if previous is None:
        body.writes.append(("insert", row))
        body.added += 1
        _record_connection_change(body.changed, body.touched, body.events, number, None, code)
    elif previous[0] != code:
        body.writes.append(("update", row))
        body.moved += 1
        _record_connection_change(body.changed, body.touched, body.events, number, previous[0], code)
    else:
        body.writes.append(("update", row))
        body.updated += 1
        body.touched.add(number)


def admin_changes(session: Session) -> dict[str, datetime]:
    """When GMC was last asked, successfully, to change each doctor's connection (the claim's time:
    GMC made the change at or after it)."""
    changes = session.execute(
        select(ConnectionRequest.gmc_number, func.max(ConnectionRequest.last_attempt_at))
        .where(ConnectionRequest.status == "SUCCEEDED")
        .group_by(ConnectionRequest.gmc_number)
    ).all()
    return {number: claimed for number, claimed in changes if claimed is not None}  # (a success was claimed)


BODY_CODE_IN_LINE = re.compile(rb'"designatedBodyCode"\s*:\s*"([^"\\]{1,40})"')


class ExaminedDoctor(NamedTuple):
    position: int  # in its list (not "index": that is the tuple's own method)
    number: str | None  # None: the record has no readable GMC number
    row: dict[str, Any] | None  # what to store; None when rejected, or unchanged since stored
    rejection: Rejection | None


def examine_body_list(
    context: tuple[Mapping[str, str], Mapping[str, tuple[str, str]]], locator_and_list: tuple[str, Any]
) -> tuple[str | None, Any, InvalidValue | str | None, list[ExaminedDoctor]]:
    """A body's list: (configured body code, the code as given, None, its doctors examined), or
    (None, None, why not, []). Each doctor is validated unless identical to the record stored
    for them on that list (it was valid when stored). Pure, so it may run in the helper process.
    """
    canonical_codes, stored = context
    locator, body_list = locator_and_list
    if isinstance(body_list, bytes):
        line, body_list = body_list, parse_line(body_list)
        if isinstance(body_list, UnparseableRecord):  # the body it names, if that much can be read
            named = BODY_CODE_IN_LINE.search(line[:200])
            return None, named.group(1).decode(errors="replace") if named else None, body_list.problem, []
    if isinstance(body_list, UnparseableRecord):
        return None, None, body_list.problem, []
    try:
        code, raw_code, doctors = _read_body_list(canonical_codes, body_list)
    except InvalidValue as error:
        readable = body_list.get("designatedBodyCode") if isinstance(body_list, dict) else None
        return None, readable if isinstance(readable, str) else None, error, []
    return code, raw_code, None, _examine_doctors(stored, locator, code, doctors)


def _read_body_list(canonical_codes: Mapping[str, str], body_list: Any) -> tuple[str, str, list[dict[str, Any]]]:
    """The configured body a list is for, its code as given, and its doctors; raises InvalidValue."""
    body_list = require_object("designatedBodyList", body_list)
    raw_code = body_list.get("designatedBodyCode")
    code = canonical_codes.get(raw_code.strip().upper()) if isinstance(raw_code, str) else None
    if code is None:
        raise InvalidValue("designatedBodyCode", raw_code, "is not a configured designated body")
    return code, raw_code, list_of_objects("doctors", body_list.get("doctors"))


def _examine_doctors(
    stored: Mapping[str, tuple[str, str]], locator: str, code: str, doctors: list[dict[str, Any]]
) -> list[ExaminedDoctor]:
    examined = []
    for index, raw in enumerate(doctors):
        digest = record_hash(raw)
        number = _readable(gmc_number, "GMCReferenceNumber", raw.get("GMCReferenceNumber"))
        if number is not None and stored.get(number) == (code, digest):
            examined.append(ExaminedDoctor(index, number, None, None))
            continue
        try:
            doctor = read_connected_doctor(raw)
        except InvalidValue as error:
            rejection = Rejection.of("GMC", _doctor_locator(locator, code, index), number, error)
            examined.append(ExaminedDoctor(index, number, None, rejection))
            continue
        row = {**doctor, "designated_body_code": code, "record_hash": digest}
        examined.append(ExaminedDoctor(index, number, row, None))
    return examined


def _doctor_locator(list_locator: str, code: str, index: int) -> str:
    return f"{list_locator} {code} doctors[{index}]"


def _record_connection_change(
    changed: set[str], touched: set[str], events: EventLog, number: str, old: str | None, new: str | None
) -> None:
    changed.add(number)
    touched.add(number)
    events.add(
        number,
        Source.GMC_SYNC,
        EventKind.CONNECTION,
        {"designatedBody": old},
        {"designatedBody": new},
        "connected" if old is None else "disconnected" if new is None else "moved",
    )


@dataclass
class TisOutcome:
    complete: bool = True
    held_back: str | None = None  # why the mass-change guard held the snapshot back (nothing applied)
    people_read: int = 0
    added: int = 0
    updated: int = 0
    deleted: int = 0
    touched_numbers: set[str] = field(default_factory=set)  # GMC numbers whose TIS people changed
    rejections: list[Rejection] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        held_back = {"fetched": False, "notFetchedReason": self.held_back} if self.held_back else {"fetched": True}
        return {
            **held_back,
            "complete": self.complete,
            "peopleRead": self.people_read,
            "peopleAdded": self.added,
            "peopleUpdated": self.updated,
            "peopleDeleted": self.deleted,
        }


class TisExamination(NamedTuple):
    """A TIS snapshot's people as they are examined against the people stored."""

    stored: dict[int, tuple[str, str | None]]  # TIS person id -> (record hash, GMC number)
    examined: OrderedResults[None, list[ExaminedPerson]]  # batch by batch, in the snapshot's order


def examine_tis_people(
    session: Session, people: Iterable[tuple[str, Any]], helper: SyncHelper = IN_THIS_PROCESS
) -> TisExamination:
    """Reads the people stored, and readies ``helper`` to examine ``people`` against them (nothing
    is examined until the first batch is asked for, or the helper is given one while idle)."""
    table = TisPerson.__table__
    stored = _stored_by_key(session, table.c.tis_person_id, table.c.record_hash, table.c.gmc_number)
    stored_by_digest = {digest: person_id for person_id, (digest, _number) in stored.items()}
    batches = ((batch, None) for batch in batched(people))
    return TisExamination(stored, helper.ordered(examine_people, stored_by_digest, batches))


def apply_tis_people(
    session: Session,
    people: TisExamination,
    full_snapshot: bool = True,
    deleted_person_ids: Iterable[int] = (),
    guard: MassChangeGuard = MassChangeGuard(),
    run_id: int | None = None,
    progress: Progress = SILENT,
) -> TisOutcome:
    """Applies TIS people (``examine_tis_people``: no TIS person may be written in between). From
    a full snapshot, people absent from a complete one have been deleted; from a targeted pull
    (not full), only ``deleted_person_ids`` have. A snapshot that would delete too many people is
    not applied at all (``guard``). A person rejected with no earlier version stored is kept in
    the rejected people (their doctor is a discrepancy)."""
    applier = _TisPeopleApplier(session, people.stored, run_id)
    progress.begin("TIS", "people")
    applier.read_people(people.examined, full_snapshot, progress)
    progress.end(applier.outcome.people_read)
    deleted = applier.deleted_people(full_snapshot, deleted_person_ids)
    stored = people.stored
    refusal = guard.tis_refusal(len(deleted & stored.keys()), len(stored)) if full_snapshot else None
    if refusal is not None:
        return applier.hold_back(refusal)
    applier.delete(deleted)
    applier.record_rejected_people(deleted, full_snapshot)
    return applier.outcome


class _TisPeopleApplier:
    """The phases of applying TIS people: read each examined person (writing the changed ones),
    work out who was deleted, then either hold the whole snapshot back or delete them and keep
    the rejected people up to date. Everything is written inside a savepoint, so a snapshot held
    back leaves no trace."""

    def __init__(self, session: Session, stored: dict[int, tuple[str, str | None]], run_id: int | None) -> None:
        self.session, self.stored, self.run_id = session, stored, run_id
        self.outcome = TisOutcome()
        self.rejected_before = dict(
            session.execute(select(RejectedTisPerson.tis_person_id, RejectedTisPerson.gmc_number)).all()
        )
        self.owners = OwnerDirectory(configured_designated_bodies(session))
        self.writer = RowWriter(session, TisPerson.__table__, "tis_person_id")
        self.seen: set[int] = set()
        self.rejected_now: dict[int, dict[str, Any]] = {}  # people rejected with nothing stored for them
        self.savepoint = session.begin_nested()  # undone whole if the guard holds the snapshot back

    def read_people(
        self, examined_batches: OrderedResults[None, list[ExaminedPerson]], full_snapshot: bool, progress: Progress
    ) -> None:
        outcome, stored = self.outcome, self.stored
        for _, examined in examined_batches:
            # A full snapshot is about as long as what is stored: the estimate for a re-sync.
            progress.advance(
                outcome.people_read, outcome.people_read / len(stored) if full_snapshot and stored else None
            )
            for person in examined:
                outcome.people_read += 1
                if person.rejection is not None:
                    self._reject(person, person.rejection)
                elif person.person_id is not None:  # (every record not rejected names its person)
                    self._accept(person.person_id, person.row, person.locator)

    def _accept(self, person_id: int, row: dict[str, Any] | None, locator: str) -> None:
        seen = self.seen
        if row is None and person_id not in seen:
            seen.add(person_id)  # the very record stored last time: nothing to write
        elif person_id in seen:
            error = InvalidValue("tisPersonId", person_id, "appears twice; the later record is ignored")
            self.outcome.rejections.append(Rejection.of("TIS", locator, str(person_id), error))
        elif row is not None:  # (None only for a record stored last time, seen just above)
            seen.add(person_id)
            self._write(person_id, row)

    def _reject(self, person: ExaminedPerson, rejection: Rejection) -> None:
        person_id = person.person_id
        if person_id is None:
            self.outcome.complete = False  # someone we cannot identify: nobody may be deleted
        else:
            self.seen.add(person_id)  # rejected, so they keep what was stored
            if person_id not in self.stored and person.gmc_number is not None:
                self.rejected_now[person_id] = _rejected_person(person, rejection, self.owners, self.run_id)
        self.outcome.rejections.append(rejection)

    def _write(self, person_id: int, row: dict[str, Any]) -> None:
        outcome = self.outcome
        previous = self.stored.get(person_id)
        for name in SERIALIZED_COLUMNS:
            row[name] = SerializedJson(row[name])
        if previous is None:
            self.writer.insert(row)
            outcome.added += 1
        else:
            self.writer.update(row)
            outcome.updated += 1
            if previous[1]:
                outcome.touched_numbers.add(previous[1])
        if row["gmc_number"]:
            outcome.touched_numbers.add(row["gmc_number"])

    def deleted_people(self, full_snapshot: bool, deleted_person_ids: Iterable[int]) -> set[int]:
        """From a full snapshot, whoever it does not hold (none if it is incomplete); from a
        targeted pull, those named."""
        if not full_snapshot:
            return set(deleted_person_ids)
        return set(self.stored) - self.seen if self.outcome.complete else set()

    def hold_back(self, refusal: str) -> TisOutcome:
        """Undoes everything written: the snapshot is not applied at all."""
        self.writer.discard()
        self.savepoint.rollback()
        log.error("OPERATOR ALERT: TIS snapshot %s", refusal)
        outcome = self.outcome
        return TisOutcome(
            complete=outcome.complete, held_back=refusal, people_read=outcome.people_read, rejections=outcome.rejections
        )

    def delete(self, deleted: set[int]) -> None:
        outcome = self.outcome
        for person_id, (_digest, number) in self.stored.items():
            if person_id in deleted:
                self.writer.delete(person_id)
                outcome.deleted += 1
                if number:
                    outcome.touched_numbers.add(number)
        self.writer.flush()

    def record_rejected_people(self, deleted: set[int], full_snapshot: bool) -> None:
        self.outcome.touched_numbers |= _record_rejected_people(
            self.session,
            self.rejected_before,
            self.rejected_now,
            self.seen,
            deleted,
            full_snapshot and self.outcome.complete,
        )
        self.savepoint.commit()


def _rejected_person(
    person: ExaminedPerson, rejection: Rejection, owners: OwnerDirectory, run_id: int | None
) -> dict[str, Any]:
    return {
        "tis_person_id": person.person_id,
        "gmc_number": person.gmc_number,
        "owners": sorted({code for name in person.owner_names if (code := owners.designated_body_for(name))}),
        "sync_run_id": run_id,
        "field": rejection.field,
        "value": rejection.value,
        "reason": rejection.reason,
    }


def _record_rejected_people(
    session: Session,
    before: Mapping[int, str],
    now: Mapping[int, dict[str, Any]],
    seen: set[int],
    deleted: set[int],
    snapshot_complete: bool,
) -> set[str]:
    """Keeps the TIS people whose every record was rejected: added as rejected, dropped once a
    record of theirs is taken or they are deleted. Returns the GMC numbers concerned."""
    gone = {
        person_id
        for person_id in before
        if person_id not in now
        and (person_id in seen or person_id in deleted or (snapshot_complete and person_id not in seen))
    }
    table = RejectedTisPerson.__table__
    for chunk in batched(sorted(gone | (now.keys() & before.keys())), 900):
        session.execute(table.delete().where(table.c.tis_person_id.in_(chunk)))
    if now:
        session.execute(table.insert(), list(now.values()))
    return {before[person_id] for person_id in gone} | {row["gmc_number"] for row in now.values()}


class ExaminedPerson(NamedTuple):
    locator: str
    person_id: int | None  # None: the record does not even say who it is
    row: dict[str, Any] | None  # what to store; None when rejected, or unchanged since stored
    rejection: Rejection | None
    # Of a rejected record, what can still be read: its GMC number and its programmes' owners.
    gmc_number: str | None = None
    owner_names: tuple[str, ...] = ()


def examine_people(stored_by_digest: Mapping[str, int], batch: list[tuple[str, Any]]) -> list[ExaminedPerson]:
    """Decodes and validates TIS records, skipping any identical to one stored (an identical record
    was valid when stored): a JSON Lines line is recognised by the digest of its bytes, before it
    is even decoded. Pure, so it may run in the helper process."""
    return [_examine_person(stored_by_digest, locator, raw) for locator, raw in batch]


def _examine_person(stored_by_digest: Mapping[str, int], locator: str, raw: Any) -> ExaminedPerson:
    if isinstance(raw, bytes):
        digest = line_hash(raw)
        unchanged = stored_by_digest.get(digest)
        if unchanged is not None:
            return ExaminedPerson(locator, unchanged, None, None)
        raw = parse_line(raw)
    else:
        digest = record_hash(raw)
        unchanged = stored_by_digest.get(digest)
        if unchanged is not None:  # the digest covers the record's tisPersonId too
            return ExaminedPerson(locator, unchanged, None, None)
    if isinstance(raw, UnparseableRecord):
        return ExaminedPerson(locator, None, None, Rejection.of("TIS", locator, None, raw.problem))
    person_id = _readable(record_id, "tisPersonId", raw.get("tisPersonId") if isinstance(raw, dict) else None)
    try:
        person = read_person(raw)
    except InvalidValue as error:
        key = None if person_id is None else str(person_id)
        return ExaminedPerson(
            locator,
            person_id,
            None,
            Rejection.of("TIS", locator, key, error),
            _readable(gmc_number_or_none, "gmcNumber", raw.get("gmcNumber")),
            _owner_names(raw),
        )
    return ExaminedPerson(locator, person_id, _person_row(person, digest), None)


def _owner_names(raw: dict[str, Any]) -> tuple[str, ...]:
    memberships = raw.get("programmeMemberships")
    if not isinstance(memberships, list):
        return ()
    return tuple(
        m["programmeOwner"].strip()
        for m in memberships
        if isinstance(m, dict) and isinstance(m.get("programmeOwner"), str) and m["programmeOwner"].strip()
    )


# A person's row holds these JSON documents as text, to be stored as they are.
SERIALIZED_COLUMNS = ("programme_memberships", "placements")


def _stored_by_key(session: Session, key, *columns) -> dict[Any, tuple]:
    """What is stored now, as key -> (columns...), read in one query to compare a snapshot against."""
    return {row[0]: tuple(row[1:]) for row in session.execute(select(key, *columns))}


def _person_row(person: dict[str, Any], digest: str) -> dict[str, Any]:
    return {
        "tis_person_id": person["tisPersonId"],
        "gmc_number": person["gmcNumber"],
        "forenames": person["forenames"],
        "surname": person["surname"],
        "status": person["status"],
        # Serialized where validated (in the helper process, if any), in the form stored: their
        # dates are cheaper to write out as JSON than to send across. Plain str crosses fastest;
        # see SERIALIZED_COLUMNS.
        "programme_memberships": orjson.dumps(stored_memberships(person["programmeMemberships"])).decode(),
        "placements": orjson.dumps(stored_placements(person["placements"])).decode(),
        "spans": person_spans(person["programmeMemberships"], person["placements"]),
        "record_hash": digest,
    }


def _readable(rule, field_name: str, value: Any):
    """The value if it passes its rule, else None: used to identify a record that was rejected."""
    try:
        return rule(field_name, value)
    except InvalidValue:
        return None
