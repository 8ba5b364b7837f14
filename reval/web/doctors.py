"""A doctor's page: both sources, the decision and why, hides, GMC requests, history, actions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from reval.designated_bodies import find_designated_body
from reval.gmc.codes import CHANGE_REASONS
from reval.refusals import Invalid
from reval.rules import DEFAULT_RULE_TABLE
from reval.services.doctors import (
    EVENT_SOURCES,
    DoctorDetail,
    describe_event,
    doctor_detail,
    rejected_record_text,
)
from reval.web.auth import signed_in_actor
from reval.web.pages import body_name, my_bodies, web_context
from reval.web.presenters import HistoryWords, event_sentence, fact_answers, refused_change, request_summary

blueprint = Blueprint("doctor_pages", __name__)


@blueprint.get("/doctors/<gmc_number>")
def doctor(gmc_number: str) -> str:
    try:
        detail = doctor_detail(web_context(), gmc_number)
    except Invalid:
        abort(404)  # not a GMC number: no such page
    bodies = my_bodies()
    acting_for = _acting_for(bodies, detail)
    active_hide = next(
        (
            hide
            for hide in detail.active_hides
            if acting_for is not None and hide.designated_body_code == acting_for.code
        ),
        None,
    )
    return render_template(
        "doctors/doctor.html",
        detail=detail,
        bodies=bodies,
        acting_for=acting_for,
        active_hide=active_hide,
        may_act=signed_in_actor().may_act,
        describe_event=describe_event,
        event_sentence=event_sentence,
        history_words=HistoryWords(body_name, DEFAULT_RULE_TABLE.reason_label, CHANGE_REASONS),
        event_sources=EVENT_SOURCES,
        change_reasons=CHANGE_REASONS,
        rejected_record_text=rejected_record_text,
        request_summary=request_summary,
        fact_answers=fact_answers,
        refused_change=refused_change,
    )


def _acting_for(bodies: list[Any], detail: DoctorDetail) -> Any | None:
    """The body the page acts for: the one asked for, else the first that sees the doctor, else the first."""
    seeing = [body for body in bodies if body.code in detail.visible_to]
    return find_designated_body(bodies, request.args.get("body")) or (seeing or bodies or [None])[0]
