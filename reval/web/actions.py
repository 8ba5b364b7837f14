"""Acting on doctors: choose (ticked rows or a doctor's page), confirm, then follow the results.

The confirmation step is a GET (it changes nothing, and works from an ordinary form without
JavaScript); confirming is a POST with the form's CSRF token; the results page is an address
of its own (so a reload never acts twice) that looks again every few seconds while GMC has not
yet answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from reval.designated_bodies import find_designated_body
from reval.gmc.codes import CHANGE_REASONS
from reval.refusals import Invalid
from reval.services.actions import (
    ActionRequest,
    ActionResults,
    BulkAction,
    Result,
    act_on_doctors,
    action_results,
    resend_failed_request,
    resend_failed_requests,
    standing_failures,
)
from reval.services.queues import doctors_seen_by
from reval.web.addresses import local_path, own_path
from reval.web.pages import my_bodies, web_context
from reval.web.presenters import action_error, results_banner, sentence_case, until_error

blueprint = Blueprint("actions", __name__)

CONFIRMABLE = {BulkAction.HIDE, BulkAction.UNHIDE, BulkAction.CONNECT, BulkAction.DISCONNECT, BulkAction.RESEND}
HEADINGS = {
    BulkAction.HIDE: "Hide doctors",
    BulkAction.UNHIDE: "Unhide doctors",
    BulkAction.CONNECT: "Connect doctors at GMC",
    BulkAction.DISCONNECT: "Disconnect doctors at GMC",
    BulkAction.RESEND: "Resend failed GMC updates",
}


def _action(name: str) -> BulkAction:
    try:
        action = BulkAction(name)
    except ValueError:
        abort(404)
    if action not in CONFIRMABLE:
        abort(404)
    return action


@blueprint.get("/actions/<name>")
def confirm(name: str) -> ResponseReturnValue:
    action = _action(name)
    return _confirmation(action, request.args.get("body"), request.args.getlist("doctor"), {}, {})


@blueprint.post("/actions/<name>")
def perform(name: str) -> ResponseReturnValue:
    action = _action(name)
    form = request.form
    numbers = form.getlist("doctor")
    errors: dict[str, str] = {}
    until = _until(form, errors)
    if errors:
        return _confirmation(action, form.get("body"), numbers, form, errors)
    try:
        if action is BulkAction.RESEND:
            action_id = resend_failed_requests(web_context(), form.get("body", ""), numbers)
        else:
            action_id = act_on_doctors(
                web_context(),
                ActionRequest(action, form.get("body", ""), tuple(numbers), form.get("reason"), until),
            )
    except Invalid as refusal:
        field = refusal.field if refusal.field in ("reason", "until") else "doctor"
        errors[field] = action_error(
            field, action.value, web_context().today(), lambda: _body_name(form)
        ) or sentence_case(str(refusal))
        return _confirmation(action, form.get("body"), numbers, form, errors)
    back = own_path(form.get("back"))
    if back and not back.startswith("/queues/"):
        back = None  # the results page's link goes back to the queues: the view the admin came from, if any
    return redirect(url_for("actions.results", action_id=action_id, back=back), 303)


def _body_name(form: Mapping[str, str]) -> str:
    wanted = (form.get("body") or "").strip().upper()
    return next((body.name for body in my_bodies() if body.code.upper() == wanted), wanted)


def _until(form: Mapping[str, str], errors: dict[str, str]) -> date | None:
    """The hide's optional last day, from the date input's three fields."""
    day, month, year = ((form.get(f"until[{part}]") or "").strip() for part in ("day", "month", "year"))
    if not (day or month or year):
        return None
    error = until_error((day, month, year))
    if error:
        errors["until"] = error
        return None
    return date(int(year), int(month), int(day))


def _confirmation(
    action: BulkAction, body: str | None, numbers: list[str], form: Mapping[str, str], errors: dict[str, str]
) -> tuple[str, int]:
    bodies = my_bodies()
    acting_for = find_designated_body(bodies, body)
    if acting_for is None:
        abort(404)
    doctors, missing = doctors_seen_by(web_context(), acting_for.code, numbers)
    failures = (
        standing_failures(web_context(), acting_for.code, [entry.gmc_number for entry in doctors])
        if action is BulkAction.RESEND
        else {}
    )
    if not numbers:
        errors.setdefault("doctor", "Choose at least one doctor: tick their rows, then choose the action again")
    status = 422 if errors and request.method == "POST" else 200
    return render_template(
        "actions/confirm.html",
        action=action,
        heading=HEADINGS[action],
        acting_for=acting_for,
        doctors=doctors,
        missing=missing,
        failures=failures,
        form=form,
        errors=errors,
        reasons=CHANGE_REASONS.get(action.gmc_action, {}) if action.gmc_action is not None else {},
        back=local_path(
            request.args.get("back") or form.get("back"),
            url_for("queues.queue", queue="discrepancies", body=acting_for.code),
        ),
    ), status


@blueprint.get("/results/<int(max=2147483647):action_id>")
def results(action_id: int) -> str:
    context = web_context()
    found = action_results(context, action_id)
    code = found.action.designated_body_code
    seen = doctors_seen_by(context, code, [outcome.gmc_number for outcome in found.outcomes])[0] if code else []
    return render_template(
        "actions/results.html",
        results=found,
        names={entry.gmc_number: _name(entry.first_name, entry.last_name) for entry in seen},
        banner=results_banner(found.action.action, *_tally(found)),
        back=local_path(request.args.get("back"), url_for("queues.queue", queue="discrepancies", body=code)),
    )


def _tally(found: ActionResults) -> tuple[int, int, int]:
    """How many outcomes are done, not done and still waiting for GMC."""
    done = not_done = waiting = 0
    for outcome in found.outcomes:
        status = outcome.request.request.status if outcome.request is not None else None
        if outcome.result is Result.REFUSED or status == "FAILED":
            not_done += 1
        elif outcome.result is Result.DONE or status == "SUCCEEDED":
            done += 1
        else:
            waiting += 1
    return done, not_done, waiting


def _name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part)


@blueprint.post("/requests/<int(max=2147483647):request_id>/resend")
def resend(request_id: int) -> ResponseReturnValue:
    action_id = resend_failed_request(web_context(), request_id)
    return redirect(url_for("actions.results", action_id=action_id), 303)
