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
    BulkAction,
    act_on_doctors,
    action_results,
    resend_failed_request,
    resend_failed_requests,
    standing_failures,
)
from reval.services.queues import doctors_seen_by
from reval.web.addresses import local_path
from reval.web.pages import my_bodies, web_context

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
        errors[refusal.field or "doctor"] = str(refusal)
        return _confirmation(action, form.get("body"), numbers, form, errors)
    return redirect(url_for("actions.results", action_id=action_id), 303)


def _until(form: Mapping[str, str], errors: dict[str, str]) -> date | None:
    """The hide's optional last day, from the date input's three fields."""
    parts = [(form.get(f"until[{part}]") or "").strip() for part in ("day", "month", "year")]
    if not any(parts):
        return None
    try:
        day, month, year = (int(part) for part in parts)
        return date(year, month, day)
    except ValueError:
        errors["until"] = "Until must be a real date, for example 31 12 2026"
        return None


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
    return render_template("actions/results.html", results=action_results(web_context(), action_id))


@blueprint.post("/requests/<int(max=2147483647):request_id>/resend")
def resend(request_id: int) -> ResponseReturnValue:
    action_id = resend_failed_request(web_context(), request_id)
    return redirect(url_for("actions.results", action_id=action_id), 303)
