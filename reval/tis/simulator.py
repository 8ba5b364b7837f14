"""A local TIS (TCS API and its OAuth2 token endpoint) for development, tests and demos.

It serves people from a dataset in the TIS snapshot format in TCS's own shapes, issues
client-credentials tokens that expire, rejects missing, wrong or expired tokens with 401,
pages as Spring Data does, answers 404 for deleted people, and injects faults through a JSON
control API under ``/simulator/``. It is a development tool: nothing in production starts it.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from werkzeug.wrappers import Request, Response

from reval.simulators import BackgroundServer, FaultList, InjectedFaultBase, json_response

FAULT_KINDS = ("delay", "http-500", "http-429", "page-fails")
PERSON_PATH = re.compile(r"^/api/people/v2/(\d+)$")
PLACEMENTS_PATH = re.compile(r"^/api/people/(\d+)/placements$")


@dataclass
class InjectedFault(InjectedFaultBase):
    """A fault for API calls matching every given criterion; ``times`` None means until cleared.

    ``page-fails`` answers 500 for one page of /api/people (``page``), whatever else matches.
    """

    kind: str
    path: str | None = None  # a prefix of the request path, e.g. /api/people/v2/
    person_id: int | None = None
    page: int | None = None
    seconds: float = 0.0
    retry_after: int = 1
    times: int | None = None

    CONTROL_FIELDS: ClassVar[dict[str, str]] = {
        "kind": "kind",
        "path": "path",
        "personId": "person_id",
        "page": "page",
        "seconds": "seconds",
        "retryAfter": "retry_after",
        "times": "times",
    }

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {', '.join(FAULT_KINDS)}")
        if self.kind == "page-fails" and self.page is None:
            raise ValueError("a page-fails fault needs page")

    def matches(self, path: str, person_id: int | None, page: int | None) -> bool:
        if self.kind == "page-fails":
            return path == "/api/people" and page == self.page
        return (
            (self.path is None or path.startswith(self.path))
            and (self.person_id is None or self.person_id == person_id)
            and (self.page is None or self.page == page)
        )


@dataclass
class TisState:
    client_id: str
    client_secret: str = field(repr=False)
    people: dict[int, dict[str, Any]] = field(default_factory=dict)  # TIS snapshot format, by id
    token_lifetime: int = 300
    clock: Callable[[], float] = time.time
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry
    tokens_issued: int = 0
    tokens_refused: int = 0  # API calls answered 401
    faults: FaultList = field(default_factory=lambda: FaultList(InjectedFault))
    calls: list[str] = field(default_factory=list)  # API paths called, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_snapshot(cls, people: Iterable[dict[str, Any]], client_id: str, client_secret: str, **kwargs) -> TisState:
        state = cls(client_id, client_secret, **kwargs)
        for person in people:
            if isinstance(person, dict) and isinstance(person.get("tisPersonId"), int):
                state.people[person["tisPersonId"]] = dict(person)
        return state

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def take_fault(self, path: str, person_id: int | None, page: int | None) -> InjectedFault | None:
        return self.faults.take(lambda fault: fault.matches(path, person_id, page))


class TisSimulator:
    def __init__(self, state: TisState, stop: threading.Event | None = None):
        self.state = state
        self.stop = stop or threading.Event()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith("/simulator/"):
            response = self._control(request)
        elif request.path == "/oauth/token" and request.method == "POST":
            response = self._token(request)
        elif request.path.startswith("/api/") and request.method == "GET":
            response = self._api(request)
        else:
            response = json_response({"error": f"no such endpoint: {request.method} {request.path}"}, 404)
        return response(environ, start_response)

    def _token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if (form.get("client_id"), form.get("client_secret")) != (self.state.client_id, self.state.client_secret):
            return json_response({"error": "invalid_client"}, 401)
        token = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.tokens[token] = self.state.clock() + self.state.token_lifetime
            self.state.tokens_issued += 1
        return json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.state.token_lifetime})

    def _api(self, request: Request) -> Response:
        """A TCS call: its token checked, any fault injected for it answered, then its resource."""
        if not self._authorized(request):
            with self.state.lock:
                self.state.tokens_refused += 1
            return json_response({"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        path = request.path
        self.state.calls.append(path)
        person_match = PERSON_PATH.match(path) or PLACEMENTS_PATH.match(path)
        person_id = int(person_match.group(1)) if person_match else None
        page = request.args.get("page", type=int) if path == "/api/people" else None
        failure = self._injected_failure(self.state.take_fault(path, person_id, page))
        if failure is not None:
            return failure
        if path == "/api/people":
            return self._people_page(request)
        if person_id is None:
            return json_response({"error": f"no such endpoint: GET {path}"}, 404)
        return self._person(path, person_id)

    def _authorized(self, request: Request) -> bool:
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else None
        with self.state.lock:
            expiry = self.state.tokens.get(token) if token else None
        return expiry is not None and expiry > self.state.clock()

    def _injected_failure(self, fault: InjectedFault | None) -> Response | None:
        """What an injected fault answers instead of the call (a delay answers it, late)."""
        if fault is None:
            return None
        if fault.kind == "delay":
            self.stop.wait(fault.seconds)
        elif fault.kind in ("http-500", "page-fails"):
            return json_response({"error": "Internal Server Error (simulated)"}, 500)
        elif fault.kind == "http-429":
            return json_response({"error": "Too Many Requests"}, 429, {"Retry-After": str(fault.retry_after)})
        return None

    def _person(self, path: str, person_id: int) -> Response:
        """A person, or their placements."""
        with self.state.lock:
            person = self.state.people.get(person_id)
        if person is None:
            return json_response({"error": f"person {person_id} not found"}, 404)
        if PERSON_PATH.match(path):
            return json_response(tcs_person(person))
        return json_response([tcs_placement(placement) for placement in person.get("placements") or []])

    def _people_page(self, request: Request) -> Response:
        page = request.args.get("page", default=0, type=int)
        size = request.args.get("size", default=20, type=int)
        with self.state.lock:
            ids = sorted(self.state.people)
            chosen = [self.state.people[i] for i in ids[page * size : (page + 1) * size]]
        return json_response([tcs_listed_person(person) for person in chosen], headers={"X-Total-Count": str(len(ids))})

    def _control(self, request: Request) -> Response:
        path = request.path.removeprefix("/simulator/")
        if path == "faults":
            return self.state.faults.control(request)
        if path == "expire-tokens" and request.method == "POST":
            self.state.expire_tokens()
            return json_response({"tokens": 0})
        deleted = re.fullmatch(r"people/(\d+)", path)
        if deleted and request.method == "DELETE":
            with self.state.lock:
                gone = self.state.people.pop(int(deleted.group(1)), None)
            return json_response({"deleted": gone is not None}, 200 if gone else 404)
        return json_response({"error": f"no simulator control at {request.path}"}, 404)


def tcs_listed_person(person: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": person["tisPersonId"],
        "status": person.get("status"),
        "gmcNumber": person.get("gmcNumber"),
        "forenames": person.get("forenames"),
        "surname": person.get("surname"),
        "role": person.get("role", "DR in Training"),
    }


def tcs_person(person: dict[str, Any]) -> dict[str, Any]:
    memberships = person.get("programmeMemberships")
    return {
        "id": person["tisPersonId"],
        "status": person.get("status"),
        "gmcDetails": {"gmcNumber": person.get("gmcNumber")},
        "contactDetails": {"forenames": person.get("forenames"), "surname": person.get("surname")},
        "programmeMemberships": [tcs_programme_membership(pm) for pm in memberships]
        if isinstance(memberships, list)
        else memberships,
    }


def tcs_programme_membership(membership: Any) -> Any:
    if not isinstance(membership, dict):
        return membership
    document = {key: value for key, value in membership.items() if key != "curricula"}
    document["curriculumMemberships"] = membership.get("curricula") or []
    return document


def tcs_placement(placement: Any) -> Any:
    if not isinstance(placement, dict):
        return placement
    return {"placementType": "In Post", "status": "CURRENT", "gradeId": None, **placement}


class RunningTisSimulator(BackgroundServer):
    """A simulator served on a background thread; ``url`` is the TCS base and ``token_url`` the IdP's."""

    def __init__(self, state: TisState, host: str = "127.0.0.1", port: int = 0, log_requests: bool = True):
        super().__init__(lambda stop: TisSimulator(state, stop), host, port, log_requests, "tis-simulator")
        self.url = self.base_url
        self.token_url = f"{self.base_url}/oauth/token"

    @property
    def state(self) -> TisState:
        return self.app.state
