"""One doctor, as the doctor's page, `reval explain`, `reval history` and the API show them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from reval.gmc.codes import CHANGE_REASONS
from reval.models import Doctor, DoctorEvent, DoctorHide, GmcConnection, RejectedTisPerson
from reval.reconcile import queries
from reval.reconcile.queries import DoctorRecords, doctor_records, explain_records
from reval.reconcile.sync import latest_successful_run
from reval.refusals import NotFound
from reval.rules import DEFAULT_RULE_TABLE, Explanation, RuleEngine
from reval.rules.facts import placement_is_current
from reval.services.access import checked_gmc_number, doctor_bodies, may_see_doctor, not_visible
from reval.services.audit import View, record_doctor_view
from reval.services.connections import RequestState, request_states
from reval.services.context import Context


@dataclass(frozen=True)
class DoctorDetail:
    gmc_number: str
    as_of: date  # the date the explanation judges on
    records: DoctorRecords
    explanation: Explanation
    visible_to: frozenset[str]  # the bodies that see the doctor now
    requests: list[RequestState]
    gmc_update_failed: bool

    @property
    def stored(self) -> Doctor | None:
        return self.records.stored

    @property
    def archived_on(self) -> date | None:
        return self.stored.archived_on if self.stored is not None else None

    @property
    def last_changed(self) -> datetime | None:
        """When the doctor's history last recorded a change."""
        return max((event.recorded_at for event in self.history), default=None)

    @property
    def connection(self) -> GmcConnection | None:
        return self.records.connection

    @property
    def tis_people(self) -> Sequence[Any]:
        return self.records.tis_people

    @property
    def rejected_tis_people(self) -> list[RejectedTisPerson]:
        return list(self.records.rejected_tis_people)

    @property
    def history(self) -> list[DoctorEvent]:
        return self.records.events

    @property
    def active_hides(self) -> list[DoctorHide]:
        return [hide for hide in self.records.hides if hide.ended_at is None]

    @property
    def past_hides(self) -> list[DoctorHide]:
        return [hide for hide in self.records.hides if hide.ended_at is not None]

    def current_placements(self, person: Any) -> list[dict[str, Any]]:
        return [
            placement
            for placement in person.placements
            if placement_is_current(_PlacementDates.of(placement), self.as_of)
        ]


class _PlacementDates:
    """A stored placement's dates, as the rules read them."""

    __slots__ = ("end", "start")

    def __init__(self, start: date, end: date | None):
        self.start, self.end = start, end

    @classmethod
    def of(cls, placement: dict[str, Any]) -> _PlacementDates:
        end = placement.get("dateTo")
        return cls(date.fromisoformat(placement["dateFrom"]), date.fromisoformat(end) if end else None)


def doctor_detail(context: Context, number: str, as_of: date | None = None) -> DoctorDetail:
    """Both sources, the decision and its explanation, hides, GMC requests and history; NotFound
    for a doctor none of the actor's bodies sees, or one no source knows."""
    number = checked_gmc_number(number)
    with context.reads() as session:
        if not may_see_doctor(session, context.actor, number):
            raise not_visible(number)
        records = doctor_records(session, number)
        if not records.known:
            raise NotFound(f"GMC number {number} is not known to GMC, TIS or any earlier sync", field="gmcNumber")
        if as_of is None:
            last_run = latest_successful_run(session)
            as_of = last_run.as_of if last_run is not None else context.today()
        explanation = explain_records(session, records, as_of, RuleEngine(DEFAULT_RULE_TABLE))
        requests = request_states(session, records.requests)
        detail = DoctorDetail(
            gmc_number=number,
            as_of=as_of,
            records=records,
            explanation=explanation,
            visible_to=frozenset(doctor_bodies(session, number)),
            requests=requests,
            gmc_update_failed=any(state.flags_failure for state in requests),
        )
    record_doctor_view(context, View.DOCTOR, number)  # before anyone sees it; a failure fails the view
    return detail


def doctor_history(context: Context, number: str) -> list[DoctorEvent]:
    """The doctor's history, oldest first (empty for a number Reval has not met)."""
    number = checked_gmc_number(number)
    with context.reads() as session:
        if not may_see_doctor(session, context.actor, number):
            raise not_visible(number)
        history = queries.doctor_history(session, number)
    record_doctor_view(context, View.HISTORY, number)
    return history


def rejected_record_text(rejected: RejectedTisPerson) -> str:
    """Why Reval holds nothing of a TIS person: the rejection of their record, and where it was."""
    problem = f"{rejected.field} {rejected.reason}" if rejected.field else rejected.reason or "unreadable"
    got = f" (got {rejected.value})" if rejected.value is not None else ""
    owners = f"; its programmes name {', '.join(rejected.owners)}" if rejected.owners else ""
    return f"TIS's record was rejected in sync run {rejected.sync_run_id}: {problem}{got}{owners}"


EVENT_SOURCES = {"GMC_SYNC": "GMC", "TIS_SYNC": "TIS", "ADMIN": "Admin", "SYNC": "Sync"}


def describe_event(event: DoctorEvent) -> str:
    """One history event as a sentence: what changed, from what to what."""
    describe = EVENT_DESCRIPTIONS.get(event.kind)
    if describe is None:
        return event.detail or event.kind
    return describe(event, event.old or {}, event.new or {})


def _describe_connection(event: DoctorEvent, old: dict[str, Any], new: dict[str, Any]) -> str:
    before, after = old.get("designatedBody"), new.get("designatedBody")
    if before is None:
        change = f"connected to {after}"
    elif after is None:
        change = f"disconnected from {before}"
    else:
        change = f"moved from {before} to {after}"
    how = "at GMC" if event.source == "ADMIN" else "on GMC's list"
    return f"GMC connection: {change} {how}" + (
        f" ({event.detail})" if event.source == "ADMIN" and event.detail else ""
    )


def _describe_decision(_event: DoctorEvent, old: dict[str, Any], new: dict[str, Any]) -> str:
    after = f"{new.get('queue')} / {new.get('reason')} (rule {new.get('rule')})"
    if not old:
        return f"Decided: {after}"
    return f"Decision changed from {old.get('queue')} / {old.get('reason')} to {after}"


def _describe_request(_event: DoctorEvent, _old: dict[str, Any], new: dict[str, Any]) -> str:
    return describe_request(new)


def _describe_hide(_event: DoctorEvent, _old: dict[str, Any], new: dict[str, Any]) -> str:
    until = f" until {new.get('until')}" if new.get("until") else ""
    return f"Hidden for {new.get('designatedBody')} by {new.get('hiddenBy')}{until}: {new.get('reason')}"


def _describe_hide_ended(event: DoctorEvent, old: dict[str, Any], _new: dict[str, Any]) -> str:
    return f"Hide for {old.get('designatedBody')} ended: {event.detail}"


def _describe_archived(event: DoctorEvent, old: dict[str, Any], new: dict[str, Any]) -> str:
    return f"Archived on {new.get('archivedOn')} from {old.get('queue')} / {old.get('reason')}: {event.detail}"


def _describe_restored(_event: DoctorEvent, old: dict[str, Any], _new: dict[str, Any]) -> str:
    return f"Restored from the archive (archived on {old.get('archivedOn')}): back at GMC or in TIS"


EVENT_DESCRIPTIONS: dict[str, Callable[[DoctorEvent, dict[str, Any], dict[str, Any]], str]] = {
    "CONNECTION": _describe_connection,
    "DECISION": _describe_decision,
    "GMC_REQUEST": _describe_request,
    "GMC_REQUEST_FAILED": _describe_request,
    "HIDE": _describe_hide,
    "UNHIDE": _describe_hide_ended,
    "HIDE_ENDED": _describe_hide_ended,
    "ARCHIVED": _describe_archived,
    "RESTORED": _describe_restored,
}


def _change_reasons(action: object) -> Mapping[str, str]:
    return next((reasons for known, reasons in CHANGE_REASONS.items() if known == action), {})


def describe_request(request: Mapping[str, Any]) -> str:
    """A GMC request (as ``request_view`` gives it) in one line: action, body, reason, status, and
    GMC's code and message once it has answered."""
    action, reason = request.get("action"), request.get("reason")
    meaning = _change_reasons(action).get(reason) if isinstance(reason, str) else None
    status = str(request.get("status") or "").lower()
    line = (
        f"GMC request {request.get('id')}: {action} {request.get('designatedBodyCode')}, "
        f"reason {reason}{f' ({meaning})' if meaning else ''}, {status}"
    )
    if request.get("returnCode") or status == "failed":
        line += f"; GMC answered {request.get('returnCode') or 'nothing'}: {request.get('message')}"
    return line
