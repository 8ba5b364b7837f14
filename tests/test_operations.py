"""Running it in production: /healthz, /readyz and `reval check` in each state, /metrics and each
metric moving on its event, and JSON log lines carrying the request id the response returned."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select

from reval import logs, metrics
from reval.app import create_app
from reval.clock import utcnow
from reval.db import alembic_config, make_engine
from reval.extensions import database
from reval.gmc.simulator import InjectedFault
from reval.models import AccessRecord
from tests.conftest import assert_one_line_refusal, log_lines, reval_from_settings, scraped, value
from tests.factories import AS_OF, EAST_OF_ENGLAND, WESSEX, gmc_doctor, person, programme

CLOSED_PORT = 1  # nothing listens on port 1 of the loopback


def settings_of(app) -> dict[str, str]:
    return {key: value for key, value in app.config.items() if key.startswith("REVAL_")}


def unreachable_database_url(app, tmp_path: Path) -> str:
    """A database like the test one that does not answer: PostgreSQL on a closed port, or an SQLite
    "file" that is a folder (SQLite cannot open it)."""
    if database(app).engine.dialect.name == "postgresql":
        return f"postgresql://postgres@127.0.0.1:{CLOSED_PORT}/reval"
    (tmp_path / "not-a-file").mkdir()
    return f"sqlite:///{tmp_path / 'not-a-file'}"


@pytest.fixture
def old_schema_url(app, tmp_path):
    """A database migrated to 0009 only (PostgreSQL: a schema of its own in the test database)."""
    url = database(app).engine.url
    if url.get_backend_name() == "postgresql":
        engine = make_engine(url.render_as_string(hide_password=False))
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS reval_old CASCADE; CREATE SCHEMA reval_old")
        engine.dispose()
        old = url.update_query_dict({"options": "-csearch_path=reval_old"}).render_as_string(hide_password=False)
    else:
        old = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(old)
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
    engine.dispose()
    yield old
    if url.get_backend_name() == "postgresql":
        engine = make_engine(url.render_as_string(hide_password=False))
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA reval_old CASCADE")
        engine.dispose()


def made(app, **settings: str):
    return create_app(settings_of(app) | {"TESTING": True} | settings, migrate=False)


# --- health and readiness -----------------------------------------------------------------------


def test_healthz_answers_without_sign_in_or_database(app, tmp_path):
    down = made(app, REVAL_DATABASE_URL=unreachable_database_url(app, tmp_path))
    response = down.test_client().get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_is_ready_on_a_current_database_without_a_broker(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 200 and response.json == {"database": "ok", "schema": "ok"}


def test_readyz_names_a_database_that_does_not_answer(app, tmp_path):
    down = made(app, REVAL_DATABASE_URL=unreachable_database_url(app, tmp_path))
    response = down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["database"].startswith("unreachable: ") and response.json["schema"].startswith("unknown")
    assert "127.0.0.1" not in response.text and str(tmp_path) not in response.text  # no addresses or paths


def test_readyz_names_an_old_schema(app, old_schema_url):
    response = made(app, REVAL_DATABASE_URL=old_schema_url).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {"database": "ok", "schema": "out of date: run `reval db upgrade`"}


def test_readyz_names_a_broker_that_does_not_answer(app):
    broken = made(app, REVAL_BROKER_URL=f"redis://127.0.0.1:{CLOSED_PORT}/0")
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {"database": "ok", "schema": "ok", "broker": "unreachable: connection refused"}


def test_readyz_checks_a_broker_that_answers(app, broker):
    response = made(app, REVAL_BROKER_URL=broker).test_client().get("/readyz")
    assert response.status_code == 200 and response.json["broker"] == "ok"


def test_reval_check_prints_each_check_and_exits_0_when_ready(reval):
    assert reval("check").output.splitlines() == ["database: ok", "schema: ok"]


def test_reval_check_exits_1_naming_what_is_not_ready(app, tmp_path, old_schema_url):
    broken_broker = reval_from_settings(
        tmp_path,
        "check",
        REVAL_DATABASE_URL=settings_of(app)["REVAL_DATABASE_URL"],
        REVAL_BROKER_URL=f"redis://127.0.0.1:{CLOSED_PORT}/0",
    )
    assert broken_broker.exit_code == 1
    assert "broker: unreachable: connection refused" in broken_broker.output
    old = reval_from_settings(tmp_path, "check", REVAL_DATABASE_URL=old_schema_url)
    assert old.exit_code == 1 and "schema: out of date" in old.output
    down = reval_from_settings(tmp_path, "check", REVAL_DATABASE_URL=unreachable_database_url(app, tmp_path))
    assert down.exit_code == 1 and "database: unreachable: " in down.output


def test_reval_check_does_not_migrate_an_old_schema(app, tmp_path, old_schema_url):
    reval_from_settings(tmp_path, "check", REVAL_DATABASE_URL=old_schema_url)
    response = made(app, REVAL_DATABASE_URL=old_schema_url).test_client().get("/readyz")
    assert response.json["schema"] != "ok"


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_are_not_offered_without_a_token_setting(app):
    assert app.test_client().get("/metrics").status_code == 404


def test_metrics_refuse_a_wrong_or_missing_token(metered):
    client = metered.test_client()
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_sync_counts_and_stamps_each_source(metered, reval, snapshots):
    before = scraped(metered)
    gmc, tis = snapshots
    reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF.isoformat())
    after = scraped(metered)
    assert value(after, "reval_sync_runs_total", status="succeeded") == (
        value(before, "reval_sync_runs_total", status="succeeded") + 1
    )
    assert value(after, "reval_sync_duration_seconds_count") == value(before, "reval_sync_duration_seconds_count") + 1
    assert value(before, "reval_last_successful_sync_timestamp_seconds", source="gmc") == 0
    assert value(after, "reval_last_successful_sync_timestamp_seconds", source="gmc") > 0


def test_a_failed_gmc_call_counts_and_its_request_shows_failed(metered, gmc_app, gmc_connect, reval, synced):
    gmc_connect.state.faults.append(InjectedFault("return-code", gmc_number="1000002", return_code="106"))
    before = scraped(metered)
    reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", "--force", expect_exit=1)
    after = scraped(metered)
    failed = {"operation": "TryAddDoctor", "outcome": "permanent"}
    assert value(after, "reval_gmc_calls_total", **failed) == value(before, "reval_gmc_calls_total", **failed) + 1
    assert value(after, "reval_gmc_call_duration_seconds_count", operation="TryAddDoctor") > 0
    assert value(after, "reval_gmc_requests", status="failed") == 1


def test_the_nightly_job_counts_gmc_and_tis_calls(metered, gmc_app, tis_app, gmc_connect, tis_service, reval):
    gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"] = gmc_doctor("1000001")
    tis_service.state.people[1] = person("1000001", programme(EAST_OF_ENGLAND), person_id=1)
    before = scraped(metered)
    reval("nightly", "--wait", "--as-of", AS_OF.isoformat())
    after = scraped(metered)
    lists = {"operation": "GetDoctorsForDB", "outcome": "success"}
    assert value(after, "reval_gmc_calls_total", **lists) >= value(before, "reval_gmc_calls_total", **lists) + 14
    for operation in ("token", "people", "person", "placements"):
        assert value(after, "reval_tis_calls_total", operation=operation, outcome="success") > value(
            before, "reval_tis_calls_total", operation=operation, outcome="success"
        ), operation
    assert value(after, "reval_tis_call_duration_seconds_count", operation="person") >= 1


def test_metrics_of_several_processes_add_up(metered, tmp_path):
    """Two processes count into one folder; one scrape adds them up; a dead one's files go at a start."""
    folder = tmp_path / "shared-metrics"
    script = (
        "import sys; from pathlib import Path; from reval import metrics; "
        "metrics.use_folder(Path(sys.argv[1])); metrics.metrics().sync_runs.labels('succeeded').inc(int(sys.argv[2]))"
    )
    for count in ("2", "3"):
        subprocess.run([sys.executable, "-c", script, str(folder), count], check=True, env=dict(os.environ))
    totals = {
        sample.labels.get("status"): sample.value
        for family in metrics.collected(folder).collect()
        for sample in family.samples
        if sample.name == "reval_sync_runs_total"
    }
    assert totals == {"succeeded": 5.0}
    assert len(metrics.remove_dead_processes(folder)) == 2 and not list(folder.glob("*.db"))


def test_a_spawned_child_counts_into_its_parents_folder_before_the_parent_has_made_it(tmp_path):
    """`reval bench --scale-from` syncs its smaller size in a spawned process, which counts a sync
    before the bench itself has counted anything."""
    folder = tmp_path / "not-made-yet"
    script = (
        "import sys, multiprocessing; from pathlib import Path; from reval import metrics\n"
        "def count(): metrics.metrics().sync_runs.labels('succeeded').inc()\n"
        "if __name__ == '__main__':\n"
        "    metrics.use_folder(Path(sys.argv[1]))\n"
        "    child = multiprocessing.get_context('spawn').Process(target=count)\n"
        "    child.start(); child.join(); sys.exit(child.exitcode)\n"
    )
    program = tmp_path / "spawning.py"
    program.write_text(script)
    subprocess.run([sys.executable, str(program), str(folder)], check=True, env=dict(os.environ), cwd=tmp_path)
    totals = [
        sample.value
        for family in metrics.collected(folder).collect()
        for sample in family.samples
        if sample.name == "reval_sync_runs_total"
    ]
    assert totals == [1.0]


# --- logs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["", "has spaces", "x" * 129, 'quote"d', "ünïcode"])
def test_an_ill_formed_request_id_is_replaced(json_logs, capsys, header):
    response = json_logs.test_client().get("/healthz", headers={"X-Request-ID": header} if header else {})
    chosen = response.headers["X-Request-ID"]
    assert chosen != header and re.fullmatch(r"[0-9a-f]{32}", chosen)
    [line] = [line for line in log_lines(capsys) if line["logger"] == "reval.requests"]
    assert line["request_id"] == chosen


def test_a_commands_log_lines_are_json_with_one_request_id(app, tmp_path):
    try:
        result = reval_from_settings(
            tmp_path,
            "check",
            REVAL_DATABASE_URL=settings_of(app)["REVAL_DATABASE_URL"],
            REVAL_LOG_FORMAT="json",
        )
        lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
        assert lines and result.exit_code == 0
        assert len({line["request_id"] for line in lines}) == 1 and re.fullmatch(
            r"[0-9a-f]{32}", lines[0]["request_id"]
        )
        assert all(line["actor"].startswith("cli:") for line in lines)
    finally:
        logs.configure_logging("text")


def test_a_bad_log_format_is_refused_in_one_line(tmp_path):
    result = reval_from_settings(tmp_path, "runs", REVAL_LOG_FORMAT="yaml")
    assert_one_line_refusal(result, 2, "REVAL_LOG_FORMAT", "yaml")


def test_the_nightly_job_purges_audit_records_past_their_retention(
    app, gmc_app, tis_app, gmc_connect, tis_service, reval, sessions
):
    app.config["REVAL_AUDIT_RETENTION_DAYS"] = "30"
    now = utcnow()
    with sessions.begin() as session:
        for age in (31, 29):
            session.add(
                AccessRecord(
                    recorded_at=now - timedelta(days=age),
                    actor_name="Ann Admin",
                    actor_role="admin",
                    actor_bodies=[EAST_OF_ENGLAND],
                    entry_point="ui",
                    view="doctor",
                    gmc_number="1000001",
                )
            )
    reval("nightly", "--wait", "--as-of", AS_OF.isoformat())
    with sessions.begin() as session:
        kept = [record.recorded_at for record in session.scalars(select(AccessRecord))]
    assert len(kept) == 1 and now - kept[0] < timedelta(days=30)
