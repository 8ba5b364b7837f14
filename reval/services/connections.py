"""Asking GMC to connect or disconnect a doctor: refused, or recorded, committed, then delivered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from reval.gmc.codes import Action
from reval.models import ConnectionRequest, DoctorVisibility
from reval.reconcile import connections
from reval.reconcile.connections import Status
from reval.reconcile.queries import doctor_records
from reval.refusals import Invalid, NotFound
from reval.services.access import (
    checked_gmc_number,
    may_see_doctor,
    may_see_request,
    not_visible,
    require_may_act,
    visible_body,
)
from reval.services.context import Context


def request_view(request: ConnectionRequest) -> dict[str, Any]:
    """A request as ``reval requests`` and a doctor's history show it."""
    return connections.request_view(request)


@dataclass(frozen=True)
class RequestState:
    """A request as people see it: whether a later request for the same doctor and body has
    superseded it (then it no longer flags "GMC update failed", and is not resent lightly)."""

    request: ConnectionRequest
    superseded_by: int | None = None

    @property
    def flags_failure(self) -> bool:
        return self.request.status == Status.FAILED and self.superseded_by is None

    @property
    def id(self) -> int:
        return self.request.id

    @property
    def next_attempt_at(self) -> datetime | None:
        return self.request.next_attempt_at if self.request.status == Status.PENDING else None


@dataclass(frozen=True)
class Requested:
    """A recorded request and, when it was delivered here and now, its outcome."""

    request: ConnectionRequest
    delivered: ConnectionRequest | None  # None: a worker or a background thread delivers it


def action_of(text: str) -> Action:
    try:
        return Action((text or "").strip().upper())
    except ValueError:
        raise Invalid(f"action {text!r} is not ADD or REMOVE", field="action") from None


def request_connection_change(
    context: Context, number: str, body: str, action: Action, reason: str, *, force: bool = False
) -> Requested:
    """Records a request for GMC (refusing bad input, a doctor no source knows, or, for a
    connection, a body that neither owns the doctor's programme nor holds their connection,
    unless ``force``), commits it, then has it delivered."""
    require_may_act(context.actor)
    number = checked_gmc_number(number)
    with context.reads() as session:  # what the actor may not see is not found, whatever else
        _visible_doctor_for_body(session, context, number, body)
    gateway = context.require_gateway()
    gateway.check_delivery()  # before anything is recorded: a request nothing could deliver
    with context.sessions.begin() as session:
        code = _visible_doctor_for_body(session, context, number, body)
        if not force:
            _check_plausible(session, number, code, action)
        request = connections.record_connection_request(
            session,
            gmc_number_text=number,
            designated_body=code,
            action=action,
            reason=reason,
            requested_by=context.actor.name,
            now=context.now(),
            forced=force,
        )
    return Requested(request, gateway.deliver(request.id))


def _visible_doctor_for_body(session: Session, context: Context, number: str, body: str) -> str:
    """The body's code, once the body is the actor's and the doctor is visible to them."""
    code = visible_body(session, context.actor, body).code
    if not may_see_doctor(session, context.actor, number):
        raise not_visible(number)
    return code


def _check_plausible(session: Session, number: str, code: str, action: Action) -> None:
    records = doctor_records(session, number)
    if not records.known:
        raise Invalid(
            f"GMC number {number} is not known to any GMC list, TIS or earlier sync; check the number "
            "(or force the request if GMC knows the doctor)",
            field="gmcNumber",
        )
    if action is Action.ADD:
        owners = set(records.stored.programme_owner_designated_bodies) if records.stored is not None else set()
        connected_to = records.connection.designated_body_code if records.connection is not None else None
        if code not in owners and code != connected_to:
            raise Invalid(
                f"{code} neither owns doctor {number}'s programme ({', '.join(sorted(owners)) or 'none'}) nor holds "
                f"their GMC connection ({connected_to or 'none'}); force the request if it is right",
                field="designatedBody",
            )


def resend_request(context: Context, request_id: int, *, force: bool = False) -> Requested:
    """A new attempt of a failed request, refused when a later request for the same doctor and
    body has superseded it (resending could undo that change at GMC), unless ``force``."""
    require_may_act(context.actor)
    with context.reads() as session:
        _visible_request(session, context, request_id)
    gateway = context.require_gateway()
    gateway.check_delivery()
    with context.sessions.begin() as session:
        failed = _visible_request(session, context, request_id)
        request = connections.record_resend(session, failed, context.actor.name, context.now(), force=force)
    return Requested(request, gateway.deliver(request.id))


def connection_request(context: Context, request_id: int) -> RequestState:
    with context.reads() as session:
        request = _visible_request(session, context, request_id)
        return request_states(session, [request])[0]


def list_requests(context: Context, status: str | None = None, number: str | None = None) -> list[RequestState]:
    """The requests the actor may see, oldest first; ``status`` in any letter case."""
    statement = select(ConnectionRequest).order_by(ConnectionRequest.id)
    if status:
        wanted = status.strip().upper()
        if wanted not in (Status.PENDING, Status.SUCCEEDED, Status.FAILED):
            raise Invalid(f"status {status!r} is not one of pending, succeeded, failed", field="status")
        statement = statement.where(ConnectionRequest.status == wanted)
    if number:
        statement = statement.where(ConnectionRequest.gmc_number == checked_gmc_number(number))
    if not context.actor.national:
        bodies = list(context.actor.designated_bodies)
        seen_by_them = select(DoctorVisibility.gmc_number).where(DoctorVisibility.designated_body_code.in_(bodies))
        statement = statement.where(
            or_(ConnectionRequest.designated_body_code.in_(bodies), ConnectionRequest.gmc_number.in_(seen_by_them))
        )
    with context.reads() as session:
        return request_states(session, list(session.scalars(statement)))


def request_states(session: Session, requests: list[ConnectionRequest]) -> list[RequestState]:
    """Each request with the latest later request for its doctor and body, if any."""
    pairs = {(r.gmc_number, r.designated_body_code) for r in requests}
    latest: dict[tuple[str, str], int] = {}
    if pairs:
        numbers = sorted({number for number, _code in pairs})
        for number, code, latest_id in session.execute(
            select(ConnectionRequest.gmc_number, ConnectionRequest.designated_body_code, func.max(ConnectionRequest.id))
            .where(ConnectionRequest.gmc_number.in_(numbers))
            .group_by(ConnectionRequest.gmc_number, ConnectionRequest.designated_body_code)
        ):
            latest[(number, code)] = latest_id
    return [
        RequestState(
            r,
            latest[(r.gmc_number, r.designated_body_code)]
            if latest.get((r.gmc_number, r.designated_body_code), r.id) > r.id
            else None,
        )
        for r in requests
    ]


def _visible_request(session: Session, context: Context, request_id: int) -> ConnectionRequest:
    request = session.get(ConnectionRequest, request_id)
    if request is None or not may_see_request(session, context.actor, request):
        raise NotFound(f"there is no connection request {request_id} for your designated bodies", field="id")
    return request
