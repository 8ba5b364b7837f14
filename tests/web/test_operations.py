"""/metrics and the JSON logs seen from a signed-in person's page view."""

from __future__ import annotations

import json

from tests.conftest import log_lines, scraped, value
from tests.factories import EAST_OF_ENGLAND
from tests.web.conftest import EAST_MISMATCH, Browser


def test_a_page_view_counts_under_its_route_template_never_the_gmc_number(metered, sign_in, national):
    before = scraped(metered)
    browser = sign_in(role="national", name="Nina National")
    assert browser.get(f"/doctors/{EAST_MISMATCH[0]}").status_code == 200
    after = scraped(metered)
    labels = {"route": "/doctors/<gmc_number>", "method": "GET", "status": "200"}
    assert (
        value(after, "reval_http_requests_total", **labels) == value(before, "reval_http_requests_total", **labels) + 1
    )
    assert value(after, "reval_http_request_duration_seconds_count", route="/doctors/<gmc_number>") >= 1
    assert not any(EAST_MISMATCH[0] in str(key) for key in after)


def test_each_request_logs_one_json_line_with_the_request_id_it_returned(json_logs, capsys, national):
    browser = Browser(json_logs, "Nina National", "national", EAST_OF_ENGLAND)
    capsys.readouterr()
    response = browser.get(f"/doctors/{EAST_MISMATCH[0]}", headers={"X-Request-ID": "trace-4711.a_b"})
    assert response.headers["X-Request-ID"] == "trace-4711.a_b"
    [line] = [line for line in log_lines(capsys) if line["logger"] == "reval.requests"]
    assert line["request_id"] == "trace-4711.a_b" and line["actor"].startswith("session:")
    assert (line["method"], line["route"], line["status"]) == ("GET", "/doctors/<gmc_number>", 200)
    assert line["duration_ms"] >= 0 and line["level"] == "INFO" and line["time"]
    assert set(line) >= {"time", "level", "logger", "message", "request_id", "actor"}
    assert EAST_MISMATCH[0] not in json.dumps(line) and "Nina" not in json.dumps(line)


def test_stored_state_gauges_read_the_database(metered, national):
    samples = scraped(metered)
    assert value(samples, "reval_doctors", queue="DISCREPANCY") > 0
    assert value(samples, "reval_doctors", queue="CONNECTED") > 0
    assert value(samples, "reval_unassigned_doctors") == 1
    assert {value(samples, "reval_gmc_requests", status=status) for status in ("pending", "failed", "done")} == {0}
    for source in ("gmc", "tis"):
        assert value(samples, "reval_last_successful_sync_timestamp_seconds", source=source) > 0
