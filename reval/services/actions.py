"""An admin acting on several doctors at once, and what became of each.

Each doctor is acted on through the same use case as a single action (hide, unhide, a GMC
request); one refused doctor does not stop the others. What the whole action asked for is
checked once, before any doctor is touched: a hide's reason and until-date, a GMC reason that
fits the action. The outcomes are recorded (``AdminAction``) for the results page, which follows
each GMC request until GMC has answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reval.gmc.codes import CHANGE_REASONS, Action
from reval.models import AdminAction, ConnectionRequest
from reval.reconcile.hides import checked_hide_reason
from reval.refusals import Invalid, NotFound, Refused
from reval.services.access import checked_gmc_number, require_may_act, visible_bodies, visible_body
from reval.services.connections import RequestState, request_connection_change, request_states, resend_request
from reval.services.context import Context
from reval.services.hides import hide_doctor, unhide_doctor

MAX_DOCTORS = 500


class BulkAction(StrEnum):
    HIDE = "hide"
    UNHIDE = "unhide"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    RESEND = "resend"

    @property
    def gmc_action(self) -> Action | None:
        return {BulkAction.CONNECT: Action.ADD, BulkAction.DISCONNECT: Action.REMOVE}.get(self)


class Result(StrEnum):
    DONE = "done"  # hidden or unhidden
    REQUESTED = "requested"  # a GMC request was recorded: its own status says the rest
    REFUSED = "refused"


@dataclass(frozen=True)
class ActionRequest:
    """What an admin asks of several doctors: checked whole before any is touched."""

    action: BulkAction
    designated_body: str
    gmc_numbers: tuple[str, ...]
    reason: str | None = None  # the hide's reason, or GMC's change reason code
    until: date | None = None  # a hide's last day

    def checked(self, context: Context) -> ActionRequest:
        numbers = tuple(dict.fromkeys(number.strip() for number in self.gmc_numbers if number and number.strip()))
        if not numbers:
            raise Invalid("choose at least one doctor", field="gmcNumbers")
        if len(numbers) > MAX_DOCTORS:
            raise Invalid(f"{len(numbers)} doctors chosen; act on at most {MAX_DOCTORS} at a time", field="gmcNumbers")
        return ActionRequest(self.action, self.designated_body, numbers, self._checked_reason(context), self.until)

    def _checked_reason(self, context: Context) -> str | None:
        """A hide's reason (and until-date), or a GMC change's reason code, checked."""
        reason = self.reason
        if self.action is BulkAction.HIDE:
            reason = checked_hide_reason(reason)
            if self.until is not None and self.until <= context.today():
                raise Invalid(
                    f"until-date {self.until.isoformat()} is not after today; a hide must end in the future",
                    field="until",
                )
            return reason
        if self.action.gmc_action is not None:
            reasons = CHANGE_REASONS[self.action.gmc_action]
            if (reason or "").strip() not in reasons:
                raise Invalid(
                    f"choose a reason for the {self.action.value}: "
                    + "; ".join(f"{code} = {meaning}" for code, meaning in reasons.items()),
                    field="reason",
                )
            return (reason or "").strip()
        return reason


@dataclass(frozen=True)
class Outcome:
    gmc_number: str
    result: Result
    message: str
    request: RequestState | None = None  # for a GMC request: as it stands now


@dataclass(frozen=True)
class ActionResults:
    action: AdminAction
    outcomes: list[Outcome]

    @property
    def waiting_for_gmc(self) -> bool:
        """Whether some request has not had GMC's answer yet (the page looks again soon)."""
        return any(outcome.request is not None and sending(outcome.request.request) for outcome in self.outcomes)


def sending(request: ConnectionRequest) -> bool:
    """On its way to GMC: not yet tried, or tried and GMC's answer not yet recorded."""
    return request.status == "PENDING" and (request.attempts == 0 or request.in_flight_since is not None)


def act_on_doctors(context: Context, asked: ActionRequest) -> int:
    """Acts on each doctor in turn and records the outcomes; returns the action's id."""
    require_may_act(context.actor)
    asked = asked.checked(context)
    with context.reads() as session:
        code = visible_body(session, context.actor, asked.designated_body).code
    outcomes = [_act_on(context, asked, code, number) for number in asked.gmc_numbers]
    return _record(context, asked.action, code, outcomes)


def resend_failed_request(context: Context, request_id: int) -> int:
    """Resends one failed request, recorded as an action so its result can be followed."""
    require_may_act(context.actor)
    outcome = _resend(context, request_id)
    return _record(context, BulkAction.RESEND, outcome.pop("designatedBodyCode"), [outcome])


def standing_failures(context: Context, designated_body: str, numbers: Sequence[str]) -> dict[str, ConnectionRequest]:
    """Each of these doctors' failed request for this body that no later request has superseded:
    the one flagging "GMC update failed", and the one a resend repeats."""
    with context.reads() as session:
        code = visible_body(session, context.actor, designated_body).code
        failed = list(
            session.scalars(
                select(ConnectionRequest)
                .where(
                    ConnectionRequest.designated_body_code == code,
                    ConnectionRequest.status == "FAILED",
                    ConnectionRequest.gmc_number.in_(list(numbers)),
                )
                .order_by(ConnectionRequest.id)
            )
        )
        return {
            state.request.gmc_number: state.request for state in request_states(session, failed) if state.flags_failure
        }


def resend_failed_requests(context: Context, designated_body: str, numbers: Sequence[str]) -> int:
    """Resends each doctor's standing failed request for the body; one action records them all."""
    require_may_act(context.actor)
    if len(numbers) > MAX_DOCTORS:
        raise Invalid(f"choose at most {MAX_DOCTORS} doctors at a time", field="doctor")
    with context.reads() as session:
        code = visible_body(session, context.actor, designated_body).code
    failures = standing_failures(context, code, numbers)
    outcomes = []
    for number in numbers:
        failed = failures.get(number)
        if failed is None:
            outcomes.append(_outcome(number, Result.REFUSED, "no failed GMC update to resend for this doctor"))
            continue
        outcome = _resend(context, failed.id)
        outcome.pop("designatedBodyCode")
        outcomes.append(outcome)
    return _record(context, BulkAction.RESEND, code, outcomes)


def _resend(context: Context, request_id: int) -> dict[str, Any]:
    """One failed request resent (or the refusal), as an outcome naming the request's body."""
    try:
        requested = resend_request(context, request_id)
    except NotFound:
        raise
    except Refused as refusal:
        with context.reads() as session:
            failed = session.get_one(ConnectionRequest, request_id)  # refused, not NotFound: it exists
        refused = _outcome(failed.gmc_number, Result.REFUSED, str(refusal))
        return {**refused, "designatedBodyCode": failed.designated_body_code}
    request = requested.request
    outcome = _outcome(
        request.gmc_number, Result.REQUESTED, f"request {request.id} resends request {request_id}", request.id
    )
    return {**outcome, "designatedBodyCode": request.designated_body_code}


def action_results(context: Context, action_id: int) -> ActionResults:
    """An action and its outcomes, each GMC request as it stands now; NotFound unless it was done
    for one of the actor's bodies."""
    with context.reads() as session:
        action = session.get(AdminAction, action_id)
        if action is None or not _may_see(session, context, action):
            raise NotFound(f"there is no action {action_id} for your designated bodies")
        ids = [outcome["requestId"] for outcome in action.outcomes if outcome.get("requestId")]
        requests = list(session.scalars(select(ConnectionRequest).where(ConnectionRequest.id.in_(ids)))) if ids else []
        states = {state.request.id: state for state in request_states(session, requests)}
    return ActionResults(
        action,
        [
            Outcome(
                outcome["gmcNumber"],
                Result(outcome["result"]),
                outcome["message"],
                states.get(outcome.get("requestId")),
            )
            for outcome in action.outcomes
        ],
    )


def _act_on(context: Context, asked: ActionRequest, code: str, number: str) -> dict[str, Any]:
    try:
        number = checked_gmc_number(number)
        if asked.action is BulkAction.HIDE:
            hide_doctor(context, number, code, asked.reason, asked.until)
            return _outcome(
                number,
                Result.DONE,
                f"hidden from {code}" + (f" until {asked.until.isoformat()}" if asked.until else ""),
            )
        if asked.action is BulkAction.UNHIDE:
            unhide_doctor(context, number, code)
            return _outcome(number, Result.DONE, f"no longer hidden from {code}")
        gmc_action = asked.action.gmc_action
        if gmc_action is None or asked.reason is None:  # checked() sets both for a connection change
            raise ValueError(f"{asked.action.value} of {number} is not a checked connection change")
        requested = request_connection_change(context, number, code, gmc_action, asked.reason)
        request = requested.request
        verb = "connection to" if request.action == Action.ADD else "disconnection from"
        return _outcome(number, Result.REQUESTED, f"request {request.id} asks GMC for a {verb} {code}", request.id)
    except Refused as refusal:
        return _outcome(number, Result.REFUSED, str(refusal))


def _outcome(number: str, result: Result, message: str, request_id: int | None = None) -> dict[str, Any]:
    return {"gmcNumber": number, "result": result.value, "message": message, "requestId": request_id}


def _record(context: Context, action: BulkAction, code: str | None, outcomes: Sequence[dict[str, Any]]) -> int:
    with context.sessions.begin() as session:
        record = AdminAction(
            action=action.value,
            designated_body_code=code,
            performed_by=context.actor.name,
            performed_at=context.now(),
            outcomes=list(outcomes),
        )
        session.add(record)
        session.flush()
        return record.id


def _may_see(session: Session, context: Context, action: AdminAction) -> bool:
    if context.actor.national:
        return True
    return action.designated_body_code in {body.code for body in visible_bodies(session, context.actor)}
