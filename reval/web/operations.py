"""What a platform probes and scrapes: /healthz, /readyz and /metrics (no sign-in; /metrics takes
its own bearer token), and the request id, count, time and log line of every request."""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from collections.abc import Iterator
from contextvars import Token

from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request, session
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reval import logs, metrics
from reval.extensions import database, settings
from reval.readiness import readiness, ready
from reval.services.operations import operational_state

blueprint = Blueprint("operations", __name__)
log = logging.getLogger("reval.requests")

UNMATCHED_ROUTE = "unmatched"  # an address no route serves: never the address itself


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
    # First of the before-request functions, so a refusal (sign-in, a large body) is counted too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request(_finish_request)
    app.teardown_request(_forget_request)


@blueprint.get("/healthz")
def healthz() -> Response:
    """The process serves: no database call."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = readiness(current_app)
    return jsonify(checks), 200 if ready(checks) else 503


@blueprint.get("/metrics")
def scrape() -> Response:
    expected = settings().metrics_token
    if expected is None:
        abort(404)  # not offered unless an operator chose a token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return Response(
            "a bearer token is required\n", 401, {"WWW-Authenticate": 'Bearer realm="reval-metrics"'}, "text/plain"
        )
    folder = metrics.folder()
    registry = metrics.collected(folder) if folder is not None else None
    body = generate_latest(registry) if registry is not None else b""
    body += generate_latest(_StoredState(current_app))
    return Response(body, 200, mimetype=CONTENT_TYPE_LATEST.split(";")[0], content_type=CONTENT_TYPE_LATEST)


class _StoredState(Collector):
    """The gauges of stored state, read from the database as the scrape asks."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterator[Metric]:
        try:
            state = operational_state(database(self.app).reads)
        except Exception:  # the counters still go out; /readyz says what is wrong with the database
            log.warning("the stored-state gauges could not be read", exc_info=True)
            return
        doctors = GaugeMetricFamily("reval_doctors", "Doctors in each queue.", labels=["queue"])
        for queue, count in sorted(state.doctors.items()):
            doctors.add_metric([queue], count)
        yield doctors
        yield GaugeMetricFamily(
            "reval_unassigned_doctors", "Doctors no configured designated body sees.", value=state.unassigned_doctors
        )
        requests = GaugeMetricFamily("reval_gmc_requests", "GMC connection requests by status.", labels=["status"])
        for status, count in sorted(state.gmc_requests.items()):
            requests.add_metric([status], count)
        yield requests
        last = GaugeMetricFamily(
            "reval_last_successful_sync_timestamp_seconds",
            "When the last sync that took each source whole ended (Unix time; 0: never).",
            labels=["source"],
        )
        for source, moment in state.last_successful_sync.items():
            last.add_metric([source], moment.timestamp() if moment is not None else 0)
        yield last


# --- every request ----------------------------------------------------------------------------


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_id = logs.request_id_from(request.headers.get(logs.REQUEST_ID_HEADER))
    g.request_id_token = logs.request_id.set(g.request_id)
    g.actor_token = logs.actor.set(_session_subject())


def _session_subject() -> str | None:
    """The signed-in session, never the person's name: the audit says whose session it is."""
    sign_in = session.get("sign_in") if "user" in session else None
    return f"session:{sign_in}" if sign_in else None


def _finish_request(response: Response) -> Response:
    started = g.get("request_started")
    if started is None:
        return response
    seconds = time.perf_counter() - started
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
    measured = metrics.metrics()
    measured.http_requests.labels(route, request.method, str(response.status_code)).inc()
    measured.http_request_duration.labels(route).observe(seconds)
    response.headers[logs.REQUEST_ID_HEADER] = g.request_id
    if log.isEnabledFor(logging.INFO):
        log.info(
            "%s %s %s",
            request.method,
            route,
            response.status_code,
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 3),
            },
        )
    return response


def _forget_request(_error: BaseException | None) -> None:
    for variable, name in ((logs.request_id, "request_id_token"), (logs.actor, "actor_token")):
        token: Token[str | None] | None = g.pop(name, None)
        if token is not None:
            with contextlib.suppress(ValueError, RuntimeError):  # set in another context: nothing to undo
                variable.reset(token)
