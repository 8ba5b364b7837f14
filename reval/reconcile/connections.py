"""Admins' connection changes at GMC, through an outbox: recorded first, then delivered, never lost.

A request is stored with its audit event before GMC is called. Each delivery attempt is
claimed in its own transaction (so two workers never send the same request at once), GMC is
called once, and the outcome recorded in another. A crash between the call and the record
leaves the claim behind; once its lease expires the request is delivered again with the same
ClientRequestID, and GMC answers "already so" (100, 140) to a change it had accepted, which
counts as success: nothing is changed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, Select, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from reval.clock import london_today
from reval.gmc.client import GmcClient, GmcReply, new_client_request_id
from reval.gmc.codes import CHANGE_REASONS, Action, OutcomeKind
from reval.models import ConnectionRequest, GmcConnection
from reval.reconcile.common import EventKind, EventLog, Source, checked_person_name, refused_as_invalid
from reval.reconcile.decisions import note_last_changed_by
from reval.reconcile.reference import configured_code
from reval.reconcile.sync import redecide_doctors
from reval.refusals import Conflict, Invalid
from reval.retrying import backoff_delay
from reval.settings import Settings
from reval.validation import gmc_number

log = logging.getLogger(__name__)


class Status(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 8  # transient failures; about four hours of retries at the defaults
    backoff_seconds: float = 60.0  # mean delay before the first retry; doubles each time
    backoff_cap_seconds: float = 3600.0
    lease_seconds: float = 300.0  # an attempt unrecorded for this long is taken to have crashed

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        """From REVAL_DELIVERY_MAX_ATTEMPTS and REVAL_DELIVERY_BACKOFF_SECONDS."""
        return cls(max_attempts=settings.delivery_max_attempts, backoff_seconds=settings.delivery_backoff_seconds)


def record_connection_request(
    session: Session,
    *,
    gmc_number_text: str,
    designated_body: str,
    action: Action,
    reason: str,
    requested_by: str,
    now: datetime,
    resend_of: int | None = None,
    forced: bool = False,
) -> ConnectionRequest:
    """Checks and records a request and its audit event; refuses bad input before recording anything.
    ``forced``: asked for against Reval's advice (recorded with the request and in its event)."""
    with refused_as_invalid("gmcNumber"):
        number = gmc_number("GMC number", gmc_number_text)
    code = configured_code(session, designated_body)
    reason = str(reason).strip()
    if reason not in CHANGE_REASONS[action]:
        allowed = "; ".join(f"{key} = {meaning}" for key, meaning in CHANGE_REASONS[action].items())
        raise Invalid(f"reason {reason!r} does not fit {action.value}; use one of: {allowed}", field="reason")
    requested_by = checked_person_name("requestedBy", requested_by)
    request = ConnectionRequest(
        client_request_id=new_client_request_id(),
        gmc_number=number,
        designated_body_code=code,
        action=action.value,
        reason=reason,
        requested_by=requested_by,
        requested_at=now,
        status=Status.PENDING,
        attempts=0,
        next_attempt_at=now,
        resend_of=resend_of,
        forced=forced,
    )
    session.add(request)
    session.flush()
    note_last_changed_by(session, number, requested_by)
    events = EventLog(recorded_at=now, as_of=london_today(now), sync_run_id=None)
    verb = "connection to" if action is Action.ADD else "disconnection from"
    events.add(
        number,
        Source.ADMIN,
        EventKind.GMC_REQUEST,
        None,
        request_view(request),
        f"{requested_by} asked GMC for a {verb} {code} (request {request.id}"
        + (", forced past Reval's checks)" if forced else ")"),
    )
    events.flush(session, force=True)
    return request


def record_resend(
    session: Session, failed: ConnectionRequest, requested_by: str | None, now: datetime, *, force: bool = False
) -> ConnectionRequest:
    """A new request repeating a failed one (the failed one stays in the record as it was).
    Refused when a later request for the same doctor and body has superseded it, since
    repeating it could undo that later change at GMC, unless ``force``."""
    if failed.status != Status.FAILED:
        raise Conflict(f"request {failed.id} is {failed.status.lower()}, not failed; only a failed request is resent")
    later = superseding_request(session, failed)
    if later is not None and not force:
        raise Conflict(
            f"request {failed.id} has been superseded by request {later.id} ({later.action} {later.gmc_number} "
            f"for {later.designated_body_code}, {later.status.lower()}); resending it could undo that change at GMC"
        )
    return record_connection_request(
        session,
        gmc_number_text=failed.gmc_number,
        designated_body=failed.designated_body_code,
        action=Action(failed.action),
        reason=failed.reason,
        requested_by=requested_by or failed.requested_by,
        now=now,
        resend_of=failed.id,
        forced=force and later is not None,
    )


def deliver_request(
    sessions: sessionmaker[Session],
    client: GmcClient,
    request_id: int,
    *,
    now: Callable[[], datetime],
    policy: DeliveryPolicy = DeliveryPolicy(),
) -> ConnectionRequest | None:
    """One delivery attempt; None when the request is not deliverable now (done, or claimed by another)."""
    claimed_at = now()
    with sessions.begin() as session:
        # An UPDATE's result is a CursorResult (with its rowcount); Session.execute types it as any Result.
        claimed = cast(
            CursorResult[Any],
            session.execute(
                update(ConnectionRequest)
                .where(ConnectionRequest.id == request_id, _deliverable(claimed_at, policy))
                .values(in_flight_since=claimed_at, last_attempt_at=claimed_at, attempts=ConnectionRequest.attempts + 1)
            ),
        ).rowcount
        if not claimed:
            return None
        request = session.get_one(ConnectionRequest, request_id)
        call = (
            Action(request.action),
            request.gmc_number,
            request.designated_body_code,
            request.reason,
            request.client_request_id,
            request.requested_by,
        )
    reply = client.change_connection(*call)
    with sessions.begin() as session:
        request = session.get_one(ConnectionRequest, request_id)
        record_delivery_outcome(session, request, reply, now(), policy)
        return request


def record_delivery_outcome(
    session: Session, request: ConnectionRequest, reply: GmcReply, now: datetime, policy: DeliveryPolicy
) -> None:
    request.in_flight_since = None
    request.return_code, request.message, request.gmc_request_id = (
        reply.return_code,
        reply.message,
        reply.gmc_request_id,
    )
    as_of = london_today(now)
    events = EventLog(recorded_at=now, as_of=as_of, sync_run_id=None)
    if reply.kind is OutcomeKind.SUCCESS:
        request.status, request.next_attempt_at = Status.SUCCEEDED, None
        _apply_accepted_change(session, request, events)
        events.flush(session, force=True)
        redecide_doctors(session, {request.gmc_number}, source=Source.ADMIN, as_of=as_of, now=now, events=events)
        return
    if reply.kind is OutcomeKind.TRANSIENT and request.attempts < policy.max_attempts:
        delay = backoff_delay(request.attempts - 1, policy.backoff_seconds, policy.backoff_cap_seconds)
        request.next_attempt_at = now + timedelta(seconds=delay)
        log.warning(
            "GMC request %s not delivered (attempt %d), next at %s: %s",
            request.id,
            request.attempts,
            request.next_attempt_at.isoformat(),
            reply.message,
        )
        return
    request.status, request.next_attempt_at = Status.FAILED, None
    if reply.kind is OutcomeKind.TRANSIENT:
        request.message = f"gave up after {request.attempts} attempts; last: {reply.message}"
    log.error("GMC request %s failed: %s", request.id, request.message)
    events.add(
        request.gmc_number,
        Source.ADMIN,
        EventKind.GMC_REQUEST_FAILED,
        None,
        request_view(request),
        f"GMC did not make the change asked for in request {request.id}: {request.message}",
    )
    events.flush(session, force=True)


def _apply_accepted_change(session: Session, request: ConnectionRequest, events: EventLog) -> None:
    """GMC now holds the change (made now, or already so): our copy of its lists follows at once."""
    connection = session.get(GmcConnection, request.gmc_number)
    before = connection.designated_body_code if connection is not None else None
    after: str | None
    if request.action == Action.ADD:
        after = added = request.designated_body_code
        if connection is None:
            session.add(GmcConnection(gmc_number=request.gmc_number, designated_body_code=added, record_hash=""))
        else:
            connection.designated_body_code = added
            connection.record_hash = ""  # the next list from GMC is taken in full, not skipped as unchanged
    else:
        after = None if before == request.designated_body_code else before
        if connection is not None and after is None:
            session.delete(connection)
    session.flush()
    if before != after:
        events.add(
            request.gmc_number,
            Source.ADMIN,
            EventKind.CONNECTION,
            {"designatedBody": before},
            {"designatedBody": after},
            f"{'connected' if after else 'disconnected'} at GMC by {request.requested_by} (request {request.id})",
        )


def _deliverable(now: datetime, policy: DeliveryPolicy):
    """Pending, and not in flight (or in flight longer than the lease: that attempt crashed)."""
    return (ConnectionRequest.status == Status.PENDING) & or_(
        ConnectionRequest.in_flight_since.is_(None),
        ConnectionRequest.in_flight_since <= now - timedelta(seconds=policy.lease_seconds),
    )


def due_request_ids(
    session: Session, now: datetime, *, ignore_backoff: bool = False, policy: DeliveryPolicy = DeliveryPolicy()
) -> list[int]:
    statement = select(ConnectionRequest.id).where(_deliverable(now, policy))
    if not ignore_backoff:
        statement = statement.where(
            or_(ConnectionRequest.next_attempt_at.is_(None), ConnectionRequest.next_attempt_at <= now)
        )
    return list(session.scalars(statement.order_by(ConnectionRequest.id)))


def deliver_due_requests(
    sessions: sessionmaker[Session],
    client: GmcClient,
    *,
    now: Callable[[], datetime],
    ignore_backoff: bool = False,
    policy: DeliveryPolicy = DeliveryPolicy(),
) -> dict[str, int]:
    """Delivers every due request once; returns how many ended in each status."""
    with sessions.begin() as session:
        due = due_request_ids(session, now(), ignore_backoff=ignore_backoff, policy=policy)
    # Plain strings as keys: the counts are written out as JSON, which takes no enum keys.
    counts = {"due": len(due), Status.SUCCEEDED.value: 0, Status.FAILED.value: 0, Status.PENDING.value: 0}
    for request_id in due:
        request = deliver_request(sessions, client, request_id, now=now, policy=policy)
        if request is not None:
            counts[request.status] += 1
    return counts


def list_requests(session: Session, status: str | None = None) -> list[ConnectionRequest]:
    statement = select(ConnectionRequest).order_by(ConnectionRequest.id)
    if status is not None:
        statement = statement.where(ConnectionRequest.status == status.upper())
    return list(session.scalars(statement))


def _later_request_for_same_doctor_and_body():
    later = aliased(ConnectionRequest)
    return (
        select(later.id)
        .where(
            later.gmc_number == ConnectionRequest.gmc_number,
            later.designated_body_code == ConnectionRequest.designated_body_code,
            later.id > ConnectionRequest.id,
        )
        .correlate(ConnectionRequest)
    )


def failed_update_numbers_query() -> Select[str]:
    """The GMC numbers flagged "GMC update failed": a request failed and no later request for the
    same doctor and body has superseded it (a resend, or a change asked for since)."""
    return select(ConnectionRequest.gmc_number).where(
        ConnectionRequest.status == Status.FAILED, ~_later_request_for_same_doctor_and_body().exists()
    )


def failed_update_numbers(session: Session, numbers: Iterable[str] | None = None) -> set[str]:
    statement = failed_update_numbers_query()
    if numbers is not None:
        statement = statement.where(ConnectionRequest.gmc_number.in_(list(numbers)))
    return set(session.scalars(statement))


def superseding_request(session: Session, request: ConnectionRequest) -> ConnectionRequest | None:
    """The latest later request for the same doctor and body, if any: it, not ``request``, says
    what was last asked of GMC for them."""
    return session.scalars(
        select(ConnectionRequest)
        .where(
            ConnectionRequest.gmc_number == request.gmc_number,
            ConnectionRequest.designated_body_code == request.designated_body_code,
            ConnectionRequest.id > request.id,
        )
        .order_by(ConnectionRequest.id.desc())
        .limit(1)
    ).first()


def request_view(request: ConnectionRequest) -> dict[str, Any]:
    """A request as ``reval requests`` and the history show it."""
    return {
        "id": request.id,
        "gmcReferenceNumber": request.gmc_number,
        "designatedBodyCode": request.designated_body_code,
        "action": request.action,
        "reason": request.reason,
        "status": request.status,
        "returnCode": request.return_code,
        "message": request.message,
        "attempts": request.attempts,
        "requestedBy": request.requested_by,
        "requestedAt": _iso(request.requested_at),
        "lastAttemptAt": _iso(request.last_attempt_at),
        "nextAttemptAt": _iso(request.next_attempt_at) if request.status == Status.PENDING else None,
        "clientRequestId": request.client_request_id,
        "gmcRequestId": request.gmc_request_id,
        "resendOf": request.resend_of,
        "forced": request.forced,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
