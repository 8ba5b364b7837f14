"""The API's resources: each endpoint checks the token's scopes, calls a use case, dumps a schema."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlencode

import orjson
from flask import Blueprint as FlaskBlueprint
from flask import Response, current_app, g, jsonify, request, url_for
from flask_smorest import abort as smorest_abort
from werkzeug.http import http_date

from reval.api import API_PREFIX, ApiBlueprint
from reval.api.bodies import require_json_body
from reval.api.callers import authenticate
from reval.api.schemas import (
    ChangesArgs,
    ChangesPageSchema,
    ConnectionRequestIn,
    ConnectionRequestPageSchema,
    ConnectionRequestSchema,
    DesignatedBodyListSchema,
    DoctorDetailSchema,
    DoctorFilterArgs,
    DoctorPageSchema,
    DoctorQueryArgs,
    HideIn,
    HideSchema,
    HistorySchema,
    IdempotencyArgs,
    PreviewArgs,
    QueueCountsSchema,
    RequestQueryArgs,
    RulePreviewSchema,
    RuleTableSchema,
    RunListSchema,
    RunSchema,
    RunStartedSchema,
)
from reval.clock import utcnow
from reval.extensions import database
from reval.gateway import AppGateway
from reval.models import DoctorHide
from reval.rules import DEFAULT_RULE_TABLE, Queue, Ready
from reval.rules.table import format_value
from reval.services.access import visible_bodies, visible_body
from reval.services.changes import changes_page
from reval.services.connections import (
    RequestState,
    action_of,
    connection_request,
    list_requests,
    request_connection_change,
    resend_request,
)
from reval.services.context import Context
from reval.services.doctors import DoctorDetail, doctor_detail, doctor_history
from reval.services.hides import hide_doctor, unhide_doctor
from reval.services.idempotency import Answer, StillAnswering, answered_once
from reval.services.paging import Page
from reval.services.preview import preview_rules
from reval.services.queues import QueueEntry, QueueFilters, QueueTab, QueueView, SortKey, queue_page, tab_counts
from reval.services.runs import get_run, list_runs, run_rejections, run_view, start_nightly_run

# flask-smorest's abort raises an HTTPException with a problem document; it ships no types to say so.
abort: Callable[..., NoReturn] = smorest_abort

bodies = ApiBlueprint(
    "designated-bodies",
    __name__,
    url_prefix=f"{API_PREFIX}/designated-bodies",
    description="The designated bodies a caller may see, their queues and their doctors.",
)
doctors = ApiBlueprint(
    "doctors",
    __name__,
    url_prefix=f"{API_PREFIX}/doctors",
    description="One doctor: both sources, the decision and why, history, hides.",
)
requests_ = ApiBlueprint(
    "connection-requests",
    __name__,
    url_prefix=f"{API_PREFIX}/connection-requests",
    description="Connection changes asked of GMC, through Reval's outbox.",
)
runs = ApiBlueprint("runs", __name__, url_prefix=f"{API_PREFIX}/runs", description="Sync runs, and starting one now.")
rules = ApiBlueprint("rules", __name__, url_prefix=f"{API_PREFIX}/rules", description="The live rule table, as data.")
changes = ApiBlueprint(
    "changes",
    __name__,
    url_prefix=f"{API_PREFIX}/changes",
    description="Every change to what the caller's designated bodies see, in the order recorded.",
)
BLUEPRINTS = (bodies, doctors, requests_, runs, rules, changes)
for _blueprint in BLUEPRINTS:
    _blueprint.before_request(authenticate)
    _blueprint.before_request(require_json_body)

# Development only: the public key of the tokens `reval token` signs.
dev_keys = FlaskBlueprint("dev_keys", __name__, url_prefix=API_PREFIX)

LINK = {"Link": {"description": "first, prev, next and last pages (RFC 8288)", "schema": {"type": "string"}}}
LOCATION = {"Location": {"description": "The new resource", "schema": {"type": "string"}, "required": True}}
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "true: the first answer to this Idempotency-Key, again",
        "schema": {"type": "string"},
    }
}


def context() -> Context:
    """The caller's context: a request never waits on GMC (a worker or a background thread delivers)."""
    db = database()
    return Context(
        db.sessions, db.reads, g.api_actor, AppGateway(current_app, wait_for_delivery=False), entry_point="api"
    )


def needs(*scopes: str) -> None:
    missing = set(scopes) - g.api_scopes
    if missing:
        needed = " ".join(sorted(scopes))
        abort(
            403,
            message=f"this needs the scope {needed}",
            kind="insufficient-scope",
            headers={"WWW-Authenticate": f'Bearer realm="reval", error="insufficient_scope", scope="{needed}"'},
        )


# --- designated bodies ---------------------------------------------------------------------------


@bodies.route("")
@bodies.response(200, DesignatedBodyListSchema)
def list_designated_bodies() -> dict[str, Any]:
    """The designated bodies the caller may see."""
    needs("reval.read")
    with database().reads() as session:
        return {"items": visible_bodies(session, g.api_actor)}


@bodies.route("/<code>/queues")
@bodies.arguments(DoctorFilterArgs, location="query")
@bodies.response(200, QueueCountsSchema)
@bodies.alt_response(404, response="NOT_FOUND")
@bodies.alt_response(422, response="UNPROCESSABLE_ENTITY")
def designated_body_queues(args: dict[str, Any], code: str) -> dict[str, Any]:
    """How many doctors the body sees in each queue (its hides applied), with the same filters as its doctors."""
    needs("reval.read")
    body = _visible_body(code)
    counts = tab_counts(context(), body, _filters(args))
    queues = {
        queue.value: counts[tab]
        for tab, queue in (
            (QueueTab.CONNECTED, Queue.CONNECTED),
            (QueueTab.DISCREPANCIES, Queue.DISCREPANCY),
            (QueueTab.HIDDEN, Queue.HIDDEN),
            (QueueTab.HISTORIC, Queue.HISTORIC),
        )
    }
    return {"designatedBody": body, "queues": queues, "gmcUpdateFailed": counts[QueueTab.FAILED_UPDATES]}


@bodies.route("/<code>/doctors")
@bodies.arguments(DoctorQueryArgs, location="query")
@bodies.response(200, DoctorPageSchema, headers=LINK)
@bodies.alt_response(404, response="NOT_FOUND")
@bodies.alt_response(422, response="UNPROCESSABLE_ENTITY")
def designated_body_doctors(args: dict[str, Any], code: str) -> tuple[Page[QueueEntry], dict[str, str]]:
    """The body's doctors (its hides applied), filtered, sorted and paged as `reval export --designated-body` lists them."""  # noqa: E501 -- the OpenAPI summary: one line
    needs("reval.read")
    body = _visible_body(code)
    view = QueueView(
        body,
        Queue(args["queue"]) if args.get("queue") else None,
        filters=_filters(args),
        sort=SortKey(args["sort"]),
        descending=args["order"] == "desc",
    )
    page = queue_page(context(), view, args["page"], args["pageSize"])
    return page, {"Link": _links(page.page, page.pages)}


def _visible_body(code: str) -> str:
    with database().reads() as session:
        return visible_body(session, g.api_actor, code).code


def _filters(args: dict[str, Any]) -> QueueFilters:
    return QueueFilters(
        q=args.get("q"),
        reason=args.get("reason"),
        owner=args.get("programmeOwner"),
        gmc_update_failed=args.get("gmcUpdateFailed"),
        ready=Ready(args["ready"]) if args.get("ready") else None,
        programme=args.get("programme"),
        submitted_from=args.get("submittedFrom"),
        submitted_to=args.get("submittedTo"),
        ended_from=args.get("endedFrom"),
        ended_to=args.get("endedTo"),
        changed_from=args.get("changedFrom"),
        changed_to=args.get("changedTo"),
        changed_by=args.get("changedBy"),
    )


def _links(page: int, pages: int) -> str:
    def link(number: int, relation: str) -> str:
        query = {**request.args.to_dict(), "page": number}
        return f'<{request.path}?{urlencode(query)}>; rel="{relation}"'

    links = [link(1, "first"), link(pages, "last")]
    if page > 1:
        links.append(link(min(page - 1, pages), "prev"))
    if page < pages:
        links.append(link(page + 1, "next"))
    return ", ".join(links)


# --- doctors -------------------------------------------------------------------------------------


LAST_MODIFIED = {"Last-Modified": {"description": "The doctor's latest recorded change", "schema": {"type": "string"}}}


@doctors.route("/<gmcNumber>")
@doctors.etag
@doctors.response(200, DoctorDetailSchema, headers=LAST_MODIFIED)
@doctors.alt_response(404, response="NOT_FOUND")
@doctors.alt_response(422, response="UNPROCESSABLE_ENTITY")
def doctor(gmcNumber: str) -> tuple[dict[str, Any], dict[str, str]]:  # camelCase: the address names it so
    """The doctor's facts from both sources, the decision and its explanation, active hides and GMC requests."""
    needs("reval.read")
    detail = doctor_detail(context(), gmcNumber)
    headers = {"Last-Modified": http_date(detail.last_changed)} if detail.last_changed else {}
    return _detail_document(detail), headers


def _detail_document(detail: DoctorDetail) -> dict[str, Any]:
    stored, explanation = detail.stored, detail.explanation
    return {
        "gmcReferenceNumber": detail.gmc_number,
        "gmc": detail.connection,
        "tisPeople": detail.tis_people,
        "decision": None
        if stored is None
        else {
            "queue": stored.queue,
            "reason": stored.reason,
            "reasonLabel": DEFAULT_RULE_TABLE.reason_label(stored.reason),
            "rule": stored.rule_number,
            "ruleTable": stored.rule_table,
            "visibleTo": stored.visible_to,
            "programmeOwnerDesignatedBodies": stored.programme_owner_designated_bodies,
            "lastChange": stored.decided_as_of,
        },
        "explanation": {
            "asOf": explanation.as_of,
            "ruleTable": explanation.decision.rule_table,
            "matchedRow": explanation.decision.rule_number,
            "facts": {name: _fact(value) for name, value in explanation.facts._asdict().items()},
            "rowsTried": [
                {
                    "row": outcome.row.number,
                    "reason": outcome.row.reason,
                    "matched": not outcome.failed,
                    "failed": [
                        {"fact": name, "required_": _fact(required), "actual": _fact(actual)}
                        for name, required, actual in outcome.failed
                    ],
                }
                for outcome in explanation.rows_tried
            ],
        },
        "activeHides": detail.active_hides,
        "gmcUpdateFailed": detail.gmc_update_failed,
        "connectionRequests": detail.requests,
        "lastChanged": detail.last_changed.isoformat() if detail.last_changed else None,
        "archived": detail.archived_on is not None,
        "archivedOn": detail.archived_on.isoformat() if detail.archived_on else None,
        "lastQueue": stored.queue if stored is not None and detail.archived_on is not None else None,
    }


def _fact(value: Any) -> Any:
    return value if isinstance(value, bool) else format_value(value)


@doctors.route("/<gmcNumber>/history")
@doctors.response(200, HistorySchema)
@doctors.alt_response(404, response="NOT_FOUND")
@doctors.alt_response(422, response="UNPROCESSABLE_ENTITY")
def history(gmcNumber: str) -> dict[str, Any]:
    """Every recorded change of the doctor's connection, decision, hides and GMC requests, oldest first."""
    needs("reval.read")
    return {"items": doctor_history(context(), gmcNumber)}


@doctors.route("/<gmcNumber>/hides", methods=["POST"])
@doctors.arguments(HideIn)
@doctors.response(201, HideSchema)
@doctors.alt_response(404, response="NOT_FOUND")
@doctors.alt_response(409, response="CONFLICT")
@doctors.alt_response(422, response="UNPROCESSABLE_ENTITY")
def hide(body: dict[str, Any], gmcNumber: str) -> DoctorHide:
    """Hides the doctor from one of the caller's designated bodies."""
    needs("reval.write")
    return hide_doctor(context(), gmcNumber, body["designatedBody"], body["reason"], body.get("until"))


@doctors.route("/<gmcNumber>/hides/<designatedBody>", methods=["DELETE"])
@doctors.response(200, HideSchema)
@doctors.alt_response(404, response="NOT_FOUND")
@doctors.alt_response(409, response="CONFLICT")
@doctors.alt_response(422, response="UNPROCESSABLE_ENTITY")
def unhide(gmcNumber: str, designatedBody: str) -> DoctorHide:
    """Ends the doctor's hide for one of the caller's designated bodies (the hide, ended, is answered)."""
    needs("reval.write")
    return unhide_doctor(context(), gmcNumber, designatedBody)


# --- connection requests -------------------------------------------------------------------------


@requests_.route("", methods=["POST"])
@requests_.arguments(IdempotencyArgs, location="headers")
@requests_.arguments(ConnectionRequestIn)
@requests_.response(201, ConnectionRequestSchema, headers={**LOCATION, **REPLAYED})
@requests_.alt_response(404, response="NOT_FOUND")
@requests_.alt_response(409, response="CONFLICT")
@requests_.alt_response(422, response="UNPROCESSABLE_ENTITY")
def create_connection_request(headers: dict[str, Any], body: dict[str, Any]) -> Response:
    """Asks GMC to connect (ADD) or disconnect (REMOVE) a doctor: recorded first, then delivered."""
    needs("reval.write")

    def create() -> RequestState:
        requested = request_connection_change(
            context(), body["gmcNumber"], body["designatedBody"], action_of(body["action"]), body["reason"]
        )
        return RequestState(requested.request)

    return _idempotent(headers.get("idempotency_key"), body, create)


@requests_.route("")
@requests_.arguments(RequestQueryArgs, location="query")
@requests_.response(200, ConnectionRequestPageSchema, headers=LINK)
@requests_.alt_response(422, response="UNPROCESSABLE_ENTITY")
def list_connection_requests(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The connection requests the caller may see, oldest first."""
    needs("reval.read")
    states = list_requests(context(), args.get("status"), args.get("gmcNumber"))
    start = (args["page"] - 1) * args["pageSize"]
    pages = max(1, -(-len(states) // args["pageSize"]))
    page = {
        "items": states[start : start + args["pageSize"]],
        "total": len(states),
        "page": args["page"],
        "pageSize": args["pageSize"],
    }
    return page, {"Link": _links(args["page"], pages)}


@requests_.route("/<int(max=2147483647):id>")
@requests_.etag
@requests_.response(200, ConnectionRequestSchema)
@requests_.alt_response(404, response="NOT_FOUND")
def get_connection_request(id: int) -> RequestState:  # shadows id(): the address names it so
    """One connection request and what GMC answered."""
    needs("reval.read")
    return connection_request(context(), id)


@requests_.route("/<int(max=2147483647):id>/resend", methods=["POST"])
@requests_.arguments(IdempotencyArgs, location="headers")
@requests_.response(201, ConnectionRequestSchema, headers={**LOCATION, **REPLAYED})
@requests_.alt_response(404, response="NOT_FOUND")
@requests_.alt_response(409, response="CONFLICT")
@requests_.alt_response(422, response="UNPROCESSABLE_ENTITY")
def resend(headers: dict[str, Any], id: int) -> Response:
    """A new attempt of a failed request (refused while a later request for the same doctor and body supersedes it)."""
    needs("reval.write")
    return _idempotent(
        headers.get("idempotency_key"), {"resend": id}, lambda: RequestState(resend_request(context(), id).request)
    )


def _idempotent(key: str | None, body: Any, create: Callable[[], RequestState]) -> Response:
    """Creates once per Idempotency-Key: the same key and body answer the first result again;
    the same key with another body is refused (422); one still being answered, 409."""
    if key is None:
        return _created(create())
    fingerprint = hashlib.sha256(
        orjson.dumps([request.method, request.path, body], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()

    def answer() -> Answer:
        response = _created(create())
        return Answer(response.status_code, response.get_data(as_text=True), response.headers["Location"])

    try:
        given = answered_once(
            database().sessions,
            caller=f"{g.token_claims.get('iss')} {g.token_claims.get('sub')}",
            key=key,
            fingerprint=fingerprint,
            now=utcnow(),
            answer=answer,
        )
    except StillAnswering as error:
        abort(409, message=str(error))
    response = current_app.response_class(given.body, status=given.status, mimetype="application/json")
    response.headers["Location"] = given.location
    if given.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _created(state: RequestState) -> Response:
    response = jsonify(ConnectionRequestSchema().dump(state))
    response.status_code = 201
    response.headers["Location"] = url_for("connection-requests.get_connection_request", id=state.id)
    return response


# --- runs and rules ------------------------------------------------------------------------------


@runs.route("")
@runs.response(200, RunListSchema)
def list_sync_runs() -> dict[str, Any]:
    """The most recent sync runs, newest first."""
    needs("reval.read")
    return {"items": [run_view(run) for run in list_runs(context(), 20)]}


@runs.route("/<int(max=2147483647):id>")
@runs.etag
@runs.response(200, RunSchema)
@runs.alt_response(404, response="NOT_FOUND")
def get_sync_run(id: int) -> dict[str, Any]:
    """One run: status, times, what was fetched or not and why, queue movements; its rejected records for national callers."""  # noqa: E501 -- the OpenAPI summary: one line
    needs("reval.read")
    ctx = context()
    view = run_view(get_run(ctx, id))
    if "reval.national" in g.api_scopes:
        view["rejections"] = run_rejections(ctx, id).records
    return view


@runs.route("", methods=["POST"])
@runs.response(202, RunStartedSchema, headers=LOCATION)
@runs.alt_response(409, response="CONFLICT")
def start_sync_run() -> tuple[dict[str, Any], dict[str, str]]:
    """Starts the nightly run now (national callers only); 409 while one is running."""
    needs("reval.national")
    run_id = start_nightly_run(context())
    return {"id": run_id, "status": "RUNNING"}, {"Location": url_for("runs.get_sync_run", id=run_id)}


@rules.route("")
@rules.response(200, RuleTableSchema)
def rule_table() -> dict[str, Any]:
    """The rule table Reval decides with: its facts and its rows, in the order they are tried."""
    needs("reval.read")
    table = DEFAULT_RULE_TABLE
    return {
        "label": table.label,
        "name": table.name,
        "version": table.version,
        "fingerprint": table.fingerprint(),
        "hitPolicy": table.hit_policy,
        "facts": [
            {"name": fact.name, "meaning": fact.meaning, "domain": [_fact(value) for value in fact.domain]}
            for fact in table.facts
        ],
        "rows": [
            {
                "number": row.number,
                "reason": row.reason,
                "label": row.label,
                "description": row.description,
                "queue": row.queue.value,
                "visibleTo": [audience.value for audience in row.visible_to],
                "when": {name: _fact(value) for name, value in row.when.items()},
            }
            for row in table.rows
        ],
    }


# --- the changes feed ----------------------------------------------------------------------------


@changes.route("")
@changes.arguments(ChangesArgs, location="query")
@changes.response(200, ChangesPageSchema, headers=LINK)
@changes.alt_response(410, response="GONE")
@changes.alt_response(422, response="UNPROCESSABLE_ENTITY")
def list_changes(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Changes to what the caller's bodies see after `since`, oldest first; resume from nextCursor (410: start again)."""  # noqa: E501 -- the OpenAPI summary: one line
    needs("reval.read")
    page = changes_page(context(), args.get("since"), args["pageSize"])
    query = urlencode({"since": page.next_cursor, "pageSize": args["pageSize"]})
    body = {"items": page.items, "nextCursor": page.next_cursor}
    return body, {"Link": f'<{request.path}?{query}>; rel="next"'}


@dev_keys.get("/dev-jwks.json")
def dev_jwks() -> Response:
    """The public key of development tokens (only when REVAL_AUTH=dev)."""
    key = current_app.extensions["reval.tokens"].dev_key
    return jsonify({"keys": [key.as_dict(private=False)]})


@rules.route("/preview")
@rules.arguments(PreviewArgs, location="query")
@rules.response(200, RulePreviewSchema, headers=LINK)
@rules.alt_response(422, response="UNPROCESSABLE_ENTITY")
def rule_preview(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Who the next sync would move (queue, reason or bodies) if it decided every stored doctor as of
    asOf with the installed rule table and unchanged sources: the moves the caller's bodies see,
    in GMC-number order. Writes nothing. For national callers and admins."""
    needs("reval.read")
    preview = preview_rules(context(), args.get("asOf"))
    start = (args["page"] - 1) * args["pageSize"]
    pages = max(1, -(-len(preview.moves) // args["pageSize"]))
    page = {
        "asOf": preview.as_of,
        "ruleTable": preview.rule_table,
        "doctors": preview.doctors,
        "moves": preview.moves[start : start + args["pageSize"]],
        "total": len(preview.moves),
        "page": args["page"],
        "pageSize": args["pageSize"],
    }
    return page, {"Link": _links(args["page"], pages)}
