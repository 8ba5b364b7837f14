"""Reval's stored state: what the sources last said, the decisions, hides, history and runs.

The schema is owned by Alembic (``reval/migrations``); these models describe it and a test
checks the two agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.functions import FunctionElement

from reval.tis.records import (
    memberships_from_storage,
    placements_from_storage,
    stored_memberships,
    stored_placements,
)

GMC_NUMBER = String(7)
BODY_CODE = String(32)


class UtcDateTime(TypeDecorator):
    """A moment, stored in UTC and read back zone-aware on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"moment {value.isoformat()} has no time zone; Reval stores zone-aware moments")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SerializedJson(str):
    """A JSON column's value already serialized, in the form stored (by a sync's helper process):
    stored as it is."""


class _StoredDocuments(TypeDecorator):
    """A TIS person's documents, stored compactly (``reval.tis.records``) and read back in the
    validated form, so nothing but this column knows the difference."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> Any:
        if value is None or isinstance(value, SerializedJson):
            return value
        return self.to_storage(value)

    def process_result_value(self, value: Any, dialect) -> Any:
        return None if value is None else self.from_storage(value)

    def to_storage(self, value: Any) -> Any:
        raise NotImplementedError

    def from_storage(self, value: Any) -> Any:
        raise NotImplementedError


class StoredMemberships(_StoredDocuments):
    cache_ok = True  # (SQLAlchemy reads it from each class itself, not from its bases)

    def to_storage(self, value: Any) -> Any:
        return stored_memberships(value)

    def from_storage(self, value: Any) -> Any:
        return memberships_from_storage(value)


class StoredPlacements(_StoredDocuments):
    cache_ok = True

    def to_storage(self, value: Any) -> Any:
        return stored_placements(value)

    def from_storage(self, value: Any) -> Any:
        return placements_from_storage(value)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}
    # Every model here maps one table (SQLAlchemy types it as any FromClause: a join could be mapped).
    __table__: ClassVar[Table]


class DesignatedBodyRecord(Base):
    """A designated body Reval works for; only these are fetched from GMC."""

    __tablename__ = "designated_body"

    code: Mapped[str] = mapped_column(BODY_CODE, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200), unique=True)


class GmcConnection(Base):
    """A doctor on a designated body's GMC list, as last fetched (or kept when not fetched)."""

    __tablename__ = "gmc_connection"
    __table_args__ = ({"sqlite_with_rowid": False},)  # stored in GMC-number order (migration 0004)

    gmc_number: Mapped[str] = mapped_column(GMC_NUMBER, primary_key=True)
    designated_body_code: Mapped[str] = mapped_column(BODY_CODE, index=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    submission_date: Mapped[date | None] = mapped_column(Date)
    date_added: Mapped[date | None] = mapped_column(Date)
    under_notice: Mapped[str | None] = mapped_column(String(20))
    doctor_status: Mapped[str | None] = mapped_column(String(100))
    breach: Mapped[str | None] = mapped_column(String(100))
    investigation: Mapped[str | None] = mapped_column(String(100))
    preliminary_investigation: Mapped[str | None] = mapped_column(String(100))
    sanction: Mapped[str | None] = mapped_column(String(100))
    record_hash: Mapped[str] = mapped_column(String(32))


class TisPerson(Base):
    """A TIS person as last pulled; programmes and placements are kept as TIS's documents, in
    their validated form (stored compactly: StoredMemberships, StoredPlacements)."""

    __tablename__ = "tis_person"

    tis_person_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    gmc_number: Mapped[str | None] = mapped_column(GMC_NUMBER, index=True)
    forenames: Mapped[str | None] = mapped_column(String(200))
    surname: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str | None] = mapped_column(String(20))
    programme_memberships: Mapped[list[Any]] = mapped_column(StoredMemberships)
    placements: Mapped[list[Any]] = mapped_column(StoredPlacements)
    # What deciding reads of those documents, half their size (migration 0008; written by
    # reval.reconcile.decisions.person_spans, read by person_view).
    spans: Mapped[str] = mapped_column(Text)
    record_hash: Mapped[str] = mapped_column(String(32))


class Doctor(Base):
    """The current decision for one GMC number, with what the export and queues show."""

    __tablename__ = "doctor"
    __table_args__ = (
        # The few doctors no configured body sees (national users' Unassigned queue).
        Index(
            "ix_doctor_unassigned", "gmc_number", sqlite_where=text("unassigned"), postgresql_where=text("unassigned")
        ),
        # The archived doctors (migration 0011), few beside the rest.
        Index(
            "ix_doctor_archived",
            "gmc_number",
            sqlite_where=text("archived_on IS NOT NULL"),
            postgresql_where=text("archived_on IS NOT NULL"),
        ),
        {"sqlite_with_rowid": False},  # stored in GMC-number order (migration 0004)
    )

    gmc_number: Mapped[str] = mapped_column(GMC_NUMBER, primary_key=True)
    queue: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    rule_number: Mapped[int] = mapped_column(Integer)
    rule_table: Mapped[str] = mapped_column(String(60))
    designated_body_code: Mapped[str | None] = mapped_column(BODY_CODE)
    last_connected_designated_body_code: Mapped[str | None] = mapped_column(BODY_CODE)
    visible_to: Mapped[list[Any]]
    programme_owner_designated_bodies: Mapped[list[Any]]
    tis_person_ids: Mapped[list[Any]]
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    decided_as_of: Mapped[date] = mapped_column(Date)  # the first as-of date of this decision
    # The decision holds while the sources are unchanged and the as-of date is in [stable_from,
    # stable_until), under the same rules and designated bodies (decision_basis); None is unbounded.
    stable_from: Mapped[date | None] = mapped_column(Date)
    stable_until: Mapped[date | None] = mapped_column(Date)
    decision_basis: Mapped[str] = mapped_column(String(64))
    # What the queues show, sort and search on (migration 0005): written with the decision.
    submission_date: Mapped[date | None] = mapped_column(Date)  # GMC's revalidation submission date
    programme_name: Mapped[str | None] = mapped_column(String(200))  # of the programme shown (shown_programme)
    programme_start: Mapped[date | None] = mapped_column(Date)
    programme_end: Mapped[date | None] = mapped_column(Date)
    programme_membership_type: Mapped[str | None] = mapped_column(String(40))  # of that programme (migration 0009)
    programme_owners: Mapped[str] = mapped_column(String(400), server_default="")  # P's codes, space-separated
    sort_name: Mapped[str] = mapped_column(String(400), server_default="")  # "last first", case-folded
    # Every first and last name GMC and TIS give, case-folded, each on a line of its own: a
    # name-prefix search is LIKE '%\n' || prefix || '%'.
    search_names: Mapped[str] = mapped_column(Text, server_default="")
    unassigned: Mapped[bool] = mapped_column(Boolean, server_default=false())  # visible to no configured body
    # Who last asked GMC to change the doctor's connection, or hid or unhid them (migration 0009):
    # written by those actions, never by a sync.
    last_changed_by: Mapped[str | None] = mapped_column(String(200))
    # The as-of date of the sync that archived the doctor (migration 0011): no GMC connection, no
    # TIS person, no change for REVAL_ARCHIVE_AFTER_DAYS. An archived doctor has no visibility
    # rows, so is in no queue; queue and reason keep their last decision.
    archived_on: Mapped[date | None] = mapped_column(Date)


# What a sorted queue page reads of each of the body's rows besides the index's keys.
QUEUE_INDEX_INCLUDES = [
    "reason",
    "programme_name",
    "programme_start",
    "programme_end",
    "programme_owners",
    "decided_as_of",
    "last_changed_by",
]


class DoctorVisibility(Base):
    """Which designated bodies see a doctor, and in which queue and for what reason each sees them
    (an admin's hide for that body applied): the one place a body's queues are read from."""

    __tablename__ = "doctor_visibility"
    __table_args__ = (
        # A queue's page in GMC-number or name order, and its count, are each one index range;
        # the first holds what the body's admin can do at once, so the ready counts read it alone.
        # On PostgreSQL it holds the sorted columns too: a sorted page reads the index alone
        # (SQLite's rows are stored in the body's order already; see migration 0012).
        Index(
            "ix_doctor_visibility_queue",
            "designated_body_code",
            "queue",
            "gmc_number",
            "ready",
            postgresql_include=QUEUE_INDEX_INCLUDES,
        ),
        Index("ix_doctor_visibility_queue_name", "designated_body_code", "queue", "sort_name", "gmc_number"),
        # A body's programme names: one seek each (see reval.services.queues.programme_names).
        Index("ix_doctor_visibility_programme", "designated_body_code", "programme_name"),
        {"sqlite_with_rowid": False},  # stored in key order (migration 0004)
    )

    designated_body_code: Mapped[str] = mapped_column(BODY_CODE, primary_key=True)
    gmc_number: Mapped[str] = mapped_column(GMC_NUMBER, primary_key=True, index=True)
    queue: Mapped[str] = mapped_column(String(20), server_default="")
    reason: Mapped[str] = mapped_column(String(40), server_default="")
    sort_name: Mapped[str] = mapped_column(String(400), server_default="")  # the doctor's (migration 0007)
    # The doctor's columns a queue sorts and filters on (migration 0012), copied with each decision,
    # so a sorted or filtered page reads the body's own rows and not a doctor row for each of them.
    programme_name: Mapped[str | None] = mapped_column(String(200))
    programme_start: Mapped[date | None] = mapped_column(Date)
    programme_end: Mapped[date | None] = mapped_column(Date)
    programme_owners: Mapped[str] = mapped_column(String(400), server_default="")
    decided_as_of: Mapped[date | None] = mapped_column(Date)
    last_changed_by: Mapped[str | None] = mapped_column(String(200))  # kept by the actions that set it
    # What this body's admin can do at once (a Ready value, or ""): the Discrepancies' two lists.
    ready: Mapped[str] = mapped_column(String(10), server_default="")


# Names are searched by prefix as ranges of code points; PostgreSQL must compare them so too,
# whatever the database's collation.
NAME_KEY = String(200).with_variant(String(200, collation="C"), "postgresql")


class DoctorVisibilityName(Base):
    """Each name (first or last, as GMC or TIS has it, case-folded) a body sees a doctor by, in
    the queue that body sees them in: a name-prefix search of a queue is one index range."""

    __tablename__ = "doctor_visibility_name"
    __table_args__ = (
        Index("ix_doctor_visibility_name_doctor", "gmc_number", "designated_body_code"),
        {"sqlite_with_rowid": False},
    )

    designated_body_code: Mapped[str] = mapped_column(BODY_CODE, primary_key=True)
    queue: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(NAME_KEY, primary_key=True)
    gmc_number: Mapped[str] = mapped_column(GMC_NUMBER, primary_key=True)


class ViewsVersion(Base):
    """One row: a token replaced by every committed transaction that adds or removes the view rows
    above or changes their queue or readiness, so a body's queue counts can be kept while it
    stays the same (reval.reconcile.views_version; migration 0014)."""

    __tablename__ = "views_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    token: Mapped[str] = mapped_column(String(32))


class CurrentTransactionId(FunctionElement[int]):
    """The writing transaction's id, as a column default: PostgreSQL's pg_current_xact_id() as a
    number (64 bits, so it never wraps), 0 elsewhere (as migration 0011 makes it; a schema made
    from these models, as a dry run's scratch copy is, gets the same)."""

    type = BigInteger()
    inherit_cache = True


@compiles(CurrentTransactionId)
def _no_transaction_id(element: CurrentTransactionId, compiler: Any, **kw: Any) -> str:
    return "0"


@compiles(CurrentTransactionId, "postgresql")
def _postgresql_transaction_id(element: CurrentTransactionId, compiler: Any, **kw: Any) -> str:
    return "(pg_current_xact_id()::text::bigint)"


class DoctorChange(Base):
    """One change to what a designated body sees of a doctor (None: the national Unassigned
    view), in the order the changes feed serves them (migration 0011)."""

    __tablename__ = "doctor_change"
    __table_args__ = (
        Index("ix_doctor_change_body_position", "designated_body_code", "xact_id", "id"),
        Index("ix_doctor_change_position", "xact_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # The writing transaction's id on PostgreSQL (pg_current_xact_id(), by the column's
    # default), 0 on SQLite: see reval.reconcile.changes.
    xact_id: Mapped[int] = mapped_column(BigInteger, server_default=CurrentTransactionId())
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    gmc_number: Mapped[str] = mapped_column(GMC_NUMBER)
    kind: Mapped[str] = mapped_column(String(20))  # an EventKind
    designated_body_code: Mapped[str | None] = mapped_column(BODY_CODE)
    queue: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40))
    visible: Mapped[bool] = mapped_column(Boolean)


class DoctorChangePruned(Base):
    """The latest feed position pruning has deleted (one row): a cursor before it is refused."""

    __tablename__ = "doctor_change_pruned"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    xact_id: Mapped[int] = mapped_column(BigInteger)
    change_id: Mapped[int] = mapped_column(BigInteger)
    pruned_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DoctorHide(Base):
    """An admin's hide of a doctor for one designated body; ended, never deleted."""

    __tablename__ = "doctor_hide"
    __table_args__ = (
        Index(
            "uq_doctor_hide_active",
            "gmc_number",
            "designated_body_code",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gmc_number: Mapped[str] = mapped_column(GMC_NUMBER, index=True)
    designated_body_code: Mapped[str] = mapped_column(BODY_CODE)
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[date | None] = mapped_column(Date)
    hidden_by: Mapped[str] = mapped_column(String(200))
    hidden_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # What the admin looked at; a change to either ends the hide.
    gmc_designated_body_code: Mapped[str | None] = mapped_column(BODY_CODE)
    programme_owner_designated_bodies: Mapped[list[Any]]
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_reason: Mapped[str | None] = mapped_column(Text)


class DoctorEvent(Base):
    """Append-only history of a doctor: connection, decision and hide changes."""

    __tablename__ = "doctor_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    gmc_number: Mapped[str] = mapped_column(GMC_NUMBER, index=True)
    sync_run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_run.id"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    as_of: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(20))  # GMC_SYNC, TIS_SYNC, ADMIN
    kind: Mapped[str] = mapped_column(String(20))  # see reval.reconcile.common.EventKind
    old: Mapped[dict[str, Any] | None]
    new: Mapped[dict[str, Any] | None]
    detail: Mapped[str | None] = mapped_column(Text)


class SyncRun(Base):
    """One reconciliation: when, on what date, from what, and what it changed."""

    __tablename__ = "sync_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    as_of: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))  # RUNNING, SUCCEEDED, PARTIAL, FAILED, SKIPPED, ABANDONED
    rule_table: Mapped[str] = mapped_column(String(60))
    gmc_source: Mapped[str | None] = mapped_column(Text)
    tis_source: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None]
    rejected_records: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Who runs it ("host pid"), once it holds the sync lock: a RUNNING run whose holder no longer
    # holds the lock was cut short, and the next sync marks it ABANDONED.
    holder: Mapped[str | None] = mapped_column(String(200))


class RejectedRecord(Base):
    """The data-quality log: a record a sync could not accept, and why."""

    __tablename__ = "rejected_record"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sync_run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id"), index=True)
    source: Mapped[str] = mapped_column(String(10))  # GMC or TIS
    locator: Mapped[str] = mapped_column(Text)  # where in the input: "people[12]", "line 40"
    record_key: Mapped[str | None] = mapped_column(String(40))  # GMC number or TIS person id, if readable
    field: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)  # field, what is wrong, and the value, as one sentence
    value: Mapped[str | None] = mapped_column(Text)  # the offending value as written (cut short)
    reason: Mapped[str | None] = mapped_column(Text)  # what is wrong with it


class RejectedTisPerson(Base):
    """A TIS person whose every record so far was rejected, so Reval holds no version of them:
    their doctor is a discrepancy (TIS_RECORD_REJECTED) until TIS sends a record Reval can take."""

    __tablename__ = "rejected_tis_person"

    tis_person_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    gmc_number: Mapped[str] = mapped_column(GMC_NUMBER, index=True)
    owners: Mapped[list[Any]]  # the designated bodies its programmes name, where readable
    sync_run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id"))
    field: Mapped[str | None] = mapped_column(Text)
    value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)


class ConnectionRequest(Base):
    """An admin's request to add or remove a GMC connection: the outbox GMC is called from.

    Recorded before GMC is called, so no request is lost; ``in_flight_since`` marks an attempt
    whose outcome is not yet recorded (a crash leaves it set, and a later delivery repeats the
    call with the same ClientRequestID, which GMC answers "already so" if it was accepted).
    """

    __tablename__ = "connection_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_request_id: Mapped[str] = mapped_column(String(36), unique=True)
    gmc_number: Mapped[str] = mapped_column(GMC_NUMBER, index=True)
    designated_body_code: Mapped[str] = mapped_column(BODY_CODE)
    action: Mapped[str] = mapped_column(String(10))  # ADD, REMOVE
    reason: Mapped[str] = mapped_column(String(4))  # GMC's ChangeReason code
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20))  # PENDING, SUCCEEDED, FAILED
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    in_flight_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    return_code: Mapped[str | None] = mapped_column(String(10))
    message: Mapped[str | None] = mapped_column(Text)
    gmc_request_id: Mapped[str | None] = mapped_column(String(100))
    resend_of: Mapped[int | None] = mapped_column(ForeignKey("connection_request.id"))
    # Asked for although Reval's checks advised against it (an unknown doctor, an unrelated body,
    # a resend of a superseded request): recorded so the choice can be seen later.
    forced: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Speeds up the search for a later request of the same doctor and body.
    __table_args__ = (
        Index("ix_connection_request_due", "status", "next_attempt_at"),
        Index("ix_connection_request_doctor_body", "gmc_number", "designated_body_code", "id"),
    )


class AdminAction(Base):
    """One person's action on one or more doctors, and what became of each: the record the web's
    results page reads (a hide, unhide or request is also recorded in its own table)."""

    __tablename__ = "admin_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(20))  # hide, unhide, connect, disconnect, resend
    designated_body_code: Mapped[str | None] = mapped_column(BODY_CODE)
    performed_by: Mapped[str] = mapped_column(String(200))
    performed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # [{"gmcNumber", "result": "done" | "requested" | "refused", "message", "requestId"}]
    outcomes: Mapped[list[Any]]


class ApiIdempotencyKey(Base):
    """An API caller's Idempotency-Key and the answer it got, so a repeated request gets the same
    answer instead of acting twice; ``status`` is None while the first request is in flight."""

    __tablename__ = "api_idempotency_key"

    caller: Mapped[str] = mapped_column(String(300), primary_key=True)  # issuer and subject of the token
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the method, address and body
    status: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StagedSource(Base):
    """What one fetch of a nightly run brought back, kept until the run's reconciliation reads it.

    The fetches run as separate tasks, possibly on other machines; staging them in the database
    lets the reconciliation run once all have reported, in one transaction of its own.
    One row per GMC body (its list in ``doctors``) and one for TIS (its people are StagedTisPerson).
    """

    __tablename__ = "staged_source"

    sync_run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(10), primary_key=True)  # GMC or TIS
    key: Mapped[str] = mapped_column(String(40), primary_key=True)  # the body code; "TIS" for TIS
    fetched: Mapped[bool]
    fetched_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # when the fetch began
    reason: Mapped[str | None] = mapped_column(Text)  # why not fetched
    doctors: Mapped[list[Any] | None]


class StagedTisPerson(Base):
    """A person from a nightly run's TIS pull, as mapped into the snapshot format."""

    __tablename__ = "staged_tis_person"

    sync_run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id"), primary_key=True)
    tis_person_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record: Mapped[dict[str, Any]]


class AccessRecord(Base):
    """One view of doctors' personal data: who saw what, when, through which entry point. Written
    in a transaction of its own before the data goes out; never changed, and removed only once
    older than REVAL_AUDIT_RETENTION_DAYS."""

    __tablename__ = "access_audit"
    __table_args__ = (
        Index("ix_access_audit_gmc_number_recorded_at", "gmc_number", "recorded_at"),
        Index("ix_access_audit_actor_name_recorded_at", "actor_name", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_bodies: Mapped[list[Any]]
    actor_subject: Mapped[str | None] = mapped_column(String(300))  # the API token's subject, or the sign-in session
    entry_point: Mapped[str] = mapped_column(String(10))  # ui, api, cli
    request_id: Mapped[str | None] = mapped_column(String(128))
    view: Mapped[str] = mapped_column(String(40))  # what was seen: see reval.services.audit.View
    gmc_number: Mapped[str | None] = mapped_column(GMC_NUMBER)  # one doctor's view; None: an export
    filters: Mapped[dict[str, Any] | None]  # an export's view: its body, queue, search and filters
    row_count: Mapped[int | None] = mapped_column(Integer)  # an export's doctors
