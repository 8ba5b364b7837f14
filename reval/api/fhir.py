"""A FHIR R4 view (/fhir/r4): each doctor GMC has connected to a designated body as a
PractitionerRole, for systems that integrate through FHIR.

The resources are built and validated with the ``fhir.resources`` models (R4B's, whose
PractitionerRole, Bundle, OperationOutcome and CapabilityStatement are R4's), never as
hand-written dicts. Callers present the API's bearer tokens and need the same scopes; who sees
what is the API's rule (``reval.services``). Every error is an OperationOutcome with the
status the API would give (its problem document, translated: one mapping for both).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.resource import Resource
from flask import Blueprint, Response, current_app, g, request
from werkzeug.http import http_date

from reval.api.callers import authenticate
from reval.api.problems import error_problem
from reval.clock import utcnow
from reval.extensions import database
from reval.refusals import Invalid, NotPermitted
from reval.services.context import Context
from reval.services.practitioner_roles import ConnectedDoctor, connected_doctor, connected_doctors

FHIR_PREFIX = "/fhir/r4"
FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
GMC_NUMBER_SYSTEM = "https://fhir.hl7.org.uk/Id/gmc-number"
# GMC Connect's designated body codes (1-1RSSQ05); no national FHIR naming system exists for them.
DESIGNATED_BODY_SYSTEM = "https://fhir.nhs.uk/Id/gmc-designated-body-code"
DEFAULT_COUNT, MAX_COUNT, MAX_PAGE = 50, 500, 1_000_000
# FHIR's date search: a prefix and a date, a month, a year or a moment with its zone.
LAST_UPDATED = re.compile(r"(gt|ge|lt|le)?([0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2}))?)?)?)")
# The OperationOutcome issue code for each status (FHIR's IssueType).
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    410: "deleted",
    413: "too-costly",
    422: "processing",
    429: "throttled",
    503: "transient",
}

fhir = Blueprint("fhir", __name__, url_prefix=FHIR_PREFIX)


@fhir.before_request
def _authenticated() -> Response | None:
    """The API's bearer token, checked as the API checks it (metadata is public, as FHIR has it)."""
    if request.endpoint == "fhir.metadata":
        return None
    refused = authenticate()
    return outcome_of(refused) if refused is not None else None


def _context() -> Context:
    if "reval.read" not in g.api_scopes:
        raise NotPermitted("this needs the scope reval.read")
    db = database()
    return Context(db.sessions, db.reads, g.api_actor)


def fhir_response(resource: Resource, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = current_app.response_class(resource.model_dump_json(exclude_none=True), status=status)
    response.mimetype = FHIR_JSON
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def outcome_of(problem: Response) -> Response:
    """A problem document as an OperationOutcome, with the same status and headers."""
    document = orjson.loads(problem.get_data())
    status = problem.status_code
    outcome = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error" if status < 500 else "fatal",  # noqa: PLR2004 -- server errors
                    "code": ISSUE_CODES.get(status, "exception"),
                    "diagnostics": document.get("detail") or document.get("title") or "error",
                }
            ],
        }
    )
    headers = {name: value for name, value in problem.headers.items() if name in ("WWW-Authenticate", "Retry-After")}
    return fhir_response(outcome, status, headers)


def fhir_error(error: Exception) -> Response:
    """Any error under /fhir/r4 as an OperationOutcome (the API's status for it)."""
    return outcome_of(error_problem(error))


# --- resources -----------------------------------------------------------------------------------


@fhir.get("/metadata")
def metadata() -> Response:
    """The CapabilityStatement: what this server offers."""
    statement = CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": utcnow().isoformat(),
            "publisher": "Reval",
            "kind": "instance",
            "software": {"name": "Reval"},
            "implementation": {"description": "Reval: designated bodies' connected doctors", "url": _base()},
            "fhirVersion": FHIR_VERSION,
            "format": [FHIR_JSON],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "description": "OAuth 2 bearer JWTs with the scope reval.read, as for /api/v1",
                    },
                    "resource": [
                        {
                            "type": "PractitionerRole",
                            "interaction": [{"code": "read"}, {"code": "search-type"}],
                            "searchParam": [
                                {"name": "organization", "type": "token", "documentation": "A designated body code"},
                                {"name": "_lastUpdated", "type": "date"},
                                {"name": "_count", "type": "number"},
                            ],
                        }
                    ],
                }
            ],
        }
    )
    return fhir_response(statement)


@fhir.get("/PractitionerRole/<role_id>")
def read_practitioner_role(role_id: str) -> Response:
    """One doctor GMC has connected to one of the caller's bodies (the id is the GMC number)."""
    doctor = connected_doctor(_context(), role_id)
    role = practitioner_role(doctor)
    return fhir_response(role, headers={"Last-Modified": http_date(doctor.last_updated)} if doctor.last_updated else {})


@fhir.get("/PractitionerRole")
def search_practitioner_roles() -> Response:
    """A searchset Bundle of the doctors GMC has connected to one of the caller's bodies."""
    context = _context()
    organization = _organization(request.args.get("organization"))
    count = _whole_number("_count", DEFAULT_COUNT, MAX_COUNT)
    page = _whole_number("page", 1, MAX_PAGE)
    updated = _last_updated(request.args.get("_lastUpdated"))
    found = connected_doctors(context, organization, updated, page, count)
    links = [{"relation": "self", "url": _page_url(page, count)}]
    if page * count < found.total:
        links.append({"relation": "next", "url": _page_url(page + 1, count)})
    if page > 1:
        links.append({"relation": "previous", "url": _page_url(page - 1, count)})
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": utcnow().isoformat(),
            "total": found.total,
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{_base()}/PractitionerRole/{doctor.gmc_number}",
                    "resource": practitioner_role(doctor),
                    "search": {"mode": "match"},
                }
                for doctor in found.items
            ],
        }
    )
    return fhir_response(bundle)


def practitioner_role(doctor: ConnectedDoctor) -> PractitionerRole:
    name = " ".join(part for part in (doctor.first_name, doctor.last_name) if part)
    practitioner: dict[str, Any] = {"identifier": {"system": GMC_NUMBER_SYSTEM, "value": doctor.gmc_number}}
    if name:
        practitioner["display"] = name
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": doctor.gmc_number,
        "active": True,
        "practitioner": practitioner,
        "organization": {"identifier": {"system": DESIGNATED_BODY_SYSTEM, "value": doctor.designated_body}},
    }
    if doctor.last_updated is not None:
        role["meta"] = {"lastUpdated": doctor.last_updated.isoformat()}
    if doctor.date_added is not None:
        role["period"] = {"start": doctor.date_added.isoformat()}
    return PractitionerRole.model_validate(role)


# --- parameters ----------------------------------------------------------------------------------


def _organization(value: str | None) -> str:
    """A designated body code, bare or as system|code."""
    if not value or not value.strip():
        raise Invalid("organization is required: a designated body code", field="organization")
    system, bar, code = value.strip().rpartition("|")
    if bar and system not in ("", DESIGNATED_BODY_SYSTEM):
        raise Invalid(f"organization's system must be {DESIGNATED_BODY_SYSTEM}", field="organization")
    return code


def _whole_number(name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise Invalid(f"{name} {raw[:40]!r} is not a whole number from 1 to {maximum}", field=name)
    return int(raw)


def _last_updated(value: str | None) -> tuple[str, datetime] | None:
    """_lastUpdated as a comparison and a moment (a date, month or year is its first moment)."""
    if value is None:
        return None
    match = LAST_UPDATED.fullmatch(value.strip())
    moment = _moment(match.group(2)) if match else None
    if match is None or moment is None:
        raise Invalid(
            f"_lastUpdated {value[:40]!r} is not a FHIR date such as gt2027-01-31T00:00:00Z", field="_lastUpdated"
        )
    return match.group(1) or "ge", moment  # no prefix: from that moment on


def _moment(text: str) -> datetime | None:
    padded = text + "-01-01"[len(text) - 4 :] if len(text) < 10 else text  # noqa: PLR2004 -- a full date's length
    try:
        moment = datetime.fromisoformat(padded.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _base() -> str:
    return request.url_root.rstrip("/") + FHIR_PREFIX


def _page_url(page: int, count: int) -> str:
    query = {**request.args.to_dict(), "_count": count, "page": page}
    return f"{_base()}/PractitionerRole?{urlencode(query)}"
