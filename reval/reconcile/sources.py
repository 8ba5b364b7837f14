"""Applying what GMC and TIS said in this run to the stored state of each source.

Both steps stream their records, validate each, and write only what changed, in batches.
Neither ever removes something on the strength of a list it did not fully read: a GMC body that
was not fetched keeps its doctors, a rejected record keeps its previous state, and a TIS snapshot
with a record whose person cannot even be identified deletes nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from reval.db import SerializedJson
from reval.gmc.records import read_connected_doctor
from reval.models import GmcConnection, TisPerson
from reval.reconcile.common import EventKind, EventLog, Rejection, RowWriter, Source, batched, record_hash
from reval.reconcile.helper import IN_THIS_PROCESS, SyncHelper
from reval.snapshot_files import UnparseableRecord, parse_line
from reval.tis.records import read_person
from reval.validation import InvalidValue, gmc_number, list_of_objects, require_object, required_int


@dataclass
class GmcOutcome:
    fetched: list[str] = field(default_factory=list)
    not_fetched: dict[str, str] = field(default_factory=dict)  # configured body -> why not
    failed: set[str] = field(default_factory=set)  # bodies whose fetch failed or list was incomplete
    doctors_read: int = 0
    added: int = 0
    removed: int = 0
    moved: int = 0
    updated: int = 0
    changed_numbers: set[str] = field(default_factory=set)  # whose connection changed
    touched_numbers: set[str] = field(default_factory=set)  # whose connection or GMC details changed
    rejections: list[Rejection] = field(default_factory=list)

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


def apply_gmc_lists(
    session: Session,
    body_lists: Iterable[tuple[str, Any]],
    configured_bodies: Iterable[str],
    events: EventLog,
    not_fetched_reasons: dict[str, str] | None = None,
    helper: SyncHelper = IN_THIS_PROCESS,
) -> GmcOutcome:
    """Applies complete GMC lists of designated bodies; bodies without a list keep their doctors.
    ``helper`` examines the lists in a second process while this one writes."""
    outcome = GmcOutcome()
    canonical_codes = {code.upper(): code for code in configured_bodies}
    table = GmcConnection.__table__
    stored = _stored_by_key(session, table.c.gmc_number, table.c.designated_body_code, table.c.record_hash)
    writer = RowWriter(session, table, "gmc_number")
    seen: dict[str, str] = {}  # GMC number -> body whose list holds it
    kept: set[str] = set()  # rejected doctors whose number we know: they keep their previous state
    incomplete: set[str] = set()  # bodies with an entry we could not identify: no removals inferred

    def reject(locator: str, error: InvalidValue | str, key: str | None = None) -> None:
        outcome.rejections.append(Rejection.of("GMC", locator, key, error))

    lists = (((locator, body_list), locator) for locator, body_list in body_lists)
    for locator, (code, raw_code, problem, examined) in helper.ordered(examine_body_list, (canonical_codes, stored), lists):
        if problem is None and code in outcome.fetched:
            problem = InvalidValue("designatedBodyCode", raw_code, "appears twice; the later list is ignored")
        if problem is not None:
            reject(locator, problem)
            continue
        outcome.fetched.append(code)
        for doctor in examined:
            number = doctor.number
            outcome.doctors_read += 1
            if doctor.rejection is not None:
                if number is None:
                    incomplete.add(code)
                else:
                    kept.add(number)
                outcome.rejections.append(doctor.rejection)
                continue
            if doctor.row is None and number not in seen:
                seen[number] = code  # the very record stored last time: nothing to write
                continue
            if number in seen:
                reject(
                    _doctor_locator(locator, code, doctor.index),
                    InvalidValue("GMCReferenceNumber", number, f"is also on the list of {seen[number]}; kept there"),
                    number,
                )
                continue
            seen[number] = code
            previous = stored.get(number)
            if previous is None:
                writer.insert(doctor.row)
                outcome.added += 1
                _record_connection_change(outcome, events, number, None, code)
            elif previous[0] != code:
                writer.update(doctor.row)
                outcome.moved += 1
                _record_connection_change(outcome, events, number, previous[0], code)
            else:
                writer.update(doctor.row)
                outcome.updated += 1
                outcome.touched_numbers.add(number)
        events.flush(session)

    fetched = set(outcome.fetched)
    for number, (body, _digest) in stored.items():
        if body in fetched and number not in seen and number not in kept and body not in incomplete:
            writer.delete(number)
            outcome.removed += 1
            _record_connection_change(outcome, events, number, body, None)
    writer.flush()
    events.flush(session, force=True)

    outcome.not_fetched = {
        code: (not_fetched_reasons or {}).get(code, "no list for this designated body in the GMC snapshot")
        for code in canonical_codes.values()
        if code not in fetched
    }
    for code in incomplete:
        outcome.not_fetched.setdefault(code, "list had unidentifiable doctors; no disconnections inferred")
    outcome.failed = incomplete | (set(not_fetched_reasons or {}) & set(outcome.not_fetched))
    return outcome


class ExaminedDoctor(NamedTuple):
    index: int  # in its list
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
        body_list = parse_line(body_list)
    if isinstance(body_list, UnparseableRecord):
        return None, None, body_list.problem, []
    try:
        body_list = require_object("designatedBodyList", body_list)
        raw_code = body_list.get("designatedBodyCode")
        code = canonical_codes.get(raw_code.strip().upper()) if isinstance(raw_code, str) else None
        if code is None:
            raise InvalidValue("designatedBodyCode", raw_code, "is not a configured designated body")
        doctors = list_of_objects("doctors", body_list.get("doctors"))
    except InvalidValue as error:
        return None, None, error, []
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
    return code, raw_code, None, examined


def _doctor_locator(list_locator: str, code: str, index: int) -> str:
    return f"{list_locator} {code} doctors[{index}]"


def _record_connection_change(
    outcome: GmcOutcome, events: EventLog, number: str, old: str | None, new: str | None
) -> None:
    outcome.changed_numbers.add(number)
    outcome.touched_numbers.add(number)
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
    people_read: int = 0
    added: int = 0
    updated: int = 0
    deleted: int = 0
    touched_numbers: set[str] = field(default_factory=set)  # GMC numbers whose TIS people changed
    rejections: list[Rejection] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "peopleRead": self.people_read,
            "peopleAdded": self.added,
            "peopleUpdated": self.updated,
            "peopleDeleted": self.deleted,
        }


def apply_tis_people(
    session: Session,
    people: Iterable[tuple[str, Any]],
    full_snapshot: bool = True,
    deleted_person_ids: Iterable[int] = (),
    helper: SyncHelper = IN_THIS_PROCESS,
) -> TisOutcome:
    """Applies TIS people. From a full snapshot, people absent from a complete one have been
    deleted; from a targeted pull (not full), only ``deleted_person_ids`` have. ``helper``
    examines batches of people in a second process while this one writes."""
    outcome = TisOutcome()
    table = TisPerson.__table__
    stored = _stored_by_key(session, table.c.tis_person_id, table.c.record_hash, table.c.gmc_number)
    writer = RowWriter(session, table, "tis_person_id")
    seen: set[int] = set()
    stored_digests = {person_id: digest for person_id, (digest, _number) in stored.items()}
    batches = ((batch, None) for batch in batched(people))

    for _, examined in helper.ordered(examine_people, stored_digests, batches):
        for person in examined:
            outcome.people_read += 1
            person_id = person.person_id
            if person.rejection is not None:
                if person_id is None:
                    outcome.complete = False  # someone we cannot identify: nobody may be deleted
                else:
                    seen.add(person_id)  # rejected, so they keep what was stored
                outcome.rejections.append(person.rejection)
                continue
            if person.row is None and person_id not in seen:
                seen.add(person_id)  # the very record stored last time: nothing to write
                continue
            if person_id in seen:
                error = InvalidValue("tisPersonId", person_id, "appears twice; the later record is ignored")
                outcome.rejections.append(Rejection.of("TIS", person.locator, str(person_id), error))
                continue
            seen.add(person_id)
            previous = stored.get(person_id)
            for name in SERIALIZED_COLUMNS:
                person.row[name] = SerializedJson(person.row[name])
            if previous is None:
                writer.insert(person.row)
                outcome.added += 1
            else:
                writer.update(person.row)
                outcome.updated += 1
                if previous[1]:
                    outcome.touched_numbers.add(previous[1])
            if person.row["gmc_number"]:
                outcome.touched_numbers.add(person.row["gmc_number"])

    deleted = set(deleted_person_ids) if not full_snapshot else set(stored) - seen if outcome.complete else set()
    for person_id, (_digest, number) in stored.items():
        if person_id in deleted:
            writer.delete(person_id)
            outcome.deleted += 1
            if number:
                outcome.touched_numbers.add(number)
    writer.flush()
    return outcome


class ExaminedPerson(NamedTuple):
    locator: str
    person_id: int | None  # None: the record does not even say who it is
    row: dict[str, Any] | None  # what to store; None when rejected, or unchanged since stored
    rejection: Rejection | None


def examine_people(stored_digests: Mapping[int, str], batch: list[tuple[str, Any]]) -> list[ExaminedPerson]:
    """Decodes and validates TIS records, skipping any identical to the one stored for that person
    (an identical record was valid when stored). Pure, so it may run in the helper process."""
    return [_examine_person(stored_digests, locator, raw) for locator, raw in batch]


def _examine_person(stored_digests: Mapping[int, str], locator: str, raw: Any) -> ExaminedPerson:
    if isinstance(raw, bytes):
        raw = parse_line(raw)
    if isinstance(raw, UnparseableRecord):
        return ExaminedPerson(locator, None, None, Rejection.of("TIS", locator, None, raw.problem))
    digest = record_hash(raw)
    person_id = _readable(required_int, "tisPersonId", raw.get("tisPersonId") if isinstance(raw, dict) else None)
    if person_id is not None and stored_digests.get(person_id) == digest:
        return ExaminedPerson(locator, person_id, None, None)
    try:
        person = read_person(raw)
    except InvalidValue as error:
        key = None if person_id is None else str(person_id)
        return ExaminedPerson(locator, person_id, None, Rejection.of("TIS", locator, key, error))
    return ExaminedPerson(locator, person_id, _person_row(person, digest), None)


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
        # Serialized where validated (in the helper process, if any): their dates are cheaper to
        # write out as JSON than to send across. Plain str crosses fastest; see SERIALIZED_COLUMNS.
        "programme_memberships": orjson.dumps(person["programmeMemberships"]).decode(),
        "placements": orjson.dumps(person["placements"]).decode(),
        "record_hash": digest,
    }


def _readable(rule, field_name: str, value: Any):
    """The value if it passes its rule, else None: used to identify a record that was rejected."""
    try:
        return rule(field_name, value)
    except InvalidValue:
        return None

