"""Fixtures: a real database (SQLite, or PostgreSQL via REVAL_TEST_DATABASE_URL), migrated once,
emptied before each test; an app and a CLI runner on it."""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Hypothesis keeps its example database and caches under the working directory unless told
# otherwise: the tests write nothing into the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "reval-tests-hypothesis"))

import pytest
import redis
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete
from werkzeug.serving import make_server

from reval import logs, metrics
from reval.app import create_app
from reval.cli import cli
from reval.db import ensure_schema, make_engine
from reval.designated_bodies import DEFAULT_DESIGNATED_BODIES
from reval.extensions import celery_init_app, database
from reval.gmc.client import GmcSettings
from reval.gmc.simulator import GmcConnectState, RunningSimulator
from reval.models import Base
from reval.reconcile.reference import replace_designated_bodies
from reval.settings import SETTINGS
from reval.tis.client import TisSettings
from reval.tis.simulator import RunningTisSimulator, TisState
from tests.factories import AS_OF, EAST_OF_ENGLAND, WESSEX, gmc_doctor, gmc_snapshot, person, programme, tis_snapshot

# This process's metrics (a process writes to the first folder named): a folder of the run's own,
# not the first test's instance folder, which that test removes.
METRICS_FOLDER = Path(tempfile.mkdtemp(prefix="reval-tests-metrics-"))
metrics.use_folder(METRICS_FOLDER)
atexit.register(shutil.rmtree, METRICS_FOLDER, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("REVAL_TEST_DATABASE_URL")
    if url:
        engine = make_engine(url)
        with engine.begin() as connection:  # start from nothing: this database is the tests' own
            connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        engine.dispose()
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'reval-test.sqlite'}"


@pytest.fixture(scope="session")
def migrated(database_url):
    engine = make_engine(database_url)
    ensure_schema(engine)
    engine.dispose()
    return database_url


@pytest.fixture
def app(migrated, tmp_path):
    app = create_app(
        {"REVAL_DATABASE_URL": migrated, "REVAL_INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True}
    )
    sessions = database(app).sessions
    with sessions.begin() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
        replace_designated_bodies(session, DEFAULT_DESIGNATED_BODIES)
    yield app
    database(app).engine.dispose()


@pytest.fixture
def sessions(app):
    return database(app).sessions


class Reval:
    """Runs `reval` commands in-process against the test app."""

    def __init__(self, app):
        self.runner = app.test_cli_runner()

    def __call__(self, *args: str, expect_exit: int = 0):
        result = self.runner.invoke(cli, [str(a) for a in args])
        if result.exit_code != expect_exit:
            raise AssertionError(
                f"`reval {' '.join(map(str, args))}` exited {result.exit_code}, expected {expect_exit}:\n"
                f"{result.output}\n{result.exception!r}"
            )
        return result


@pytest.fixture
def reval(app) -> Reval:
    return Reval(app)


def reval_from_settings(tmp_path: Path, *args, **settings: str):
    """`reval` as a shell runs it: its app made from these settings and no others of this process's."""
    environment = {name: None for name in SETTINGS} | {"REVAL_INSTANCE_PATH": str(tmp_path / "instance")} | settings
    return CliRunner().invoke(cli, [str(a) for a in args], env=environment)


def assert_one_line_refusal(result, exit_code: int, *parts: str) -> None:
    """Exit status, one line naming what is wrong, and no traceback (click exited, nothing escaped)."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(result.output.strip().splitlines()) == 1, result.output
    for part in parts:
        assert part in result.output


@pytest.fixture
def files(tmp_path) -> Path:
    return tmp_path


@pytest.fixture
def snapshots(files):
    """Three doctors and a TIS record with a bad GMC number: 1000001 connected to its programme's
    owner, 1000002 not connected, 1000003 connected to another body than its programme's owner."""
    gmc = gmc_snapshot(files / "gmc.json", {EAST_OF_ENGLAND: [gmc_doctor("1000001"), gmc_doctor("1000003")]})
    tis = tis_snapshot(
        files / "tis.json",
        [
            person("1000001", programme(EAST_OF_ENGLAND), person_id=1),
            person("1000002", programme(WESSEX), person_id=2),
            person("1000003", programme(WESSEX), person_id=3),
            person("bad-one", programme(WESSEX), person_id=4),
        ],
    )
    return gmc, tis


@pytest.fixture
def synced(reval, snapshots):
    """The snapshots synced as of AS_OF; the run's summary."""
    gmc, tis = snapshots
    return json.loads(
        reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF.isoformat(), "--json").stdout
    )


GMC_USERNAME, GMC_PASSWORD = "reval-test", "s3cret-Pa55word"


@pytest.fixture
def gmc_connect():
    """A GMC Connect simulator on a loopback port, holding every default body (empty lists)."""
    state = GmcConnectState.from_snapshot(
        [{"designatedBodyCode": body.code, "doctors": []} for body in DEFAULT_DESIGNATED_BODIES],
        GMC_USERNAME,
        GMC_PASSWORD,
        today=lambda: AS_OF,
    )
    with RunningSimulator(state) as simulator:
        yield simulator


def gmc_settings(url: str, **overrides) -> GmcSettings:
    values = dict(
        url=url, username=GMC_USERNAME, password=GMC_PASSWORD, read_timeout=2.0, attempts=3, backoff_seconds=0.0
    )
    return GmcSettings(**{**values, **overrides})


@pytest.fixture
def gmc_app(app, gmc_connect):
    """The test app configured to call the simulator (fast timeouts, no backoff between retries)."""
    app.config.update(
        REVAL_GMC_URL=gmc_connect.url,
        REVAL_GMC_USERNAME=GMC_USERNAME,
        REVAL_GMC_PASSWORD=GMC_PASSWORD,
        REVAL_GMC_READ_TIMEOUT="2",
        REVAL_GMC_ATTEMPTS="3",
        REVAL_GMC_BACKOFF_SECONDS="0",
    )
    return app


TIS_CLIENT_ID, TIS_CLIENT_SECRET = "reval-test", "tis-Secret-42"


@pytest.fixture
def tis_service():
    """A TIS simulator on a loopback port, empty (tests move its clock with time-machine)."""
    state = TisState(TIS_CLIENT_ID, TIS_CLIENT_SECRET)
    with RunningTisSimulator(state) as simulator:
        yield simulator


def tis_settings(simulator, **overrides) -> TisSettings:
    values = dict(
        url=simulator.url,
        token_url=simulator.token_url,
        client_id=TIS_CLIENT_ID,
        client_secret=TIS_CLIENT_SECRET,
        read_timeout=2.0,
        attempts=3,
        backoff_seconds=0.0,
        page_size=2,
        concurrency=3,
    )
    return TisSettings(**{**values, **overrides})


@pytest.fixture
def tis_app(app, tis_service):
    """The test app configured to pull from the TIS simulator (small pages, no backoff)."""
    app.config.update(
        REVAL_TIS_URL=tis_service.url,
        REVAL_TIS_TOKEN_URL=tis_service.token_url,
        REVAL_TIS_CLIENT_ID=TIS_CLIENT_ID,
        REVAL_TIS_CLIENT_SECRET=TIS_CLIENT_SECRET,
        REVAL_TIS_READ_TIMEOUT="2",
        REVAL_TIS_ATTEMPTS="3",
        REVAL_TIS_BACKOFF_SECONDS="0",
        REVAL_TIS_PAGE_SIZE="2",
    )
    return app


@contextmanager
def served(wsgi) -> Iterator[str]:
    """A WSGI app served on a free loopback port, in a thread; yields its address."""
    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def wait_for(condition, seconds: float = 30.0):
    """Polls for an outcome another process produces; fails the test when it does not come."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting {seconds:g} s for {condition.__doc__ or condition}")


# The broker tests use a Redis database this run claims: REVAL_TEST_BROKER_URL's, or else the first
# empty one of the local Redis from 15 down. A database is claimed only when it holds nothing at
# all, by a marker naming the run, so everything in it afterwards is the run's own to delete.
LOCAL_REDIS = "redis://127.0.0.1:6379"
BROKER_OWNER_KEY = "reval-tests:owner"


def claim_broker_database(connection: redis.Redis, owner: str) -> bool:
    """Marks this Redis database as the run's if it holds nothing; leaves it untouched otherwise."""
    if not connection.set(BROKER_OWNER_KEY, owner, nx=True):
        return False
    if connection.dbsize() == 1:
        return True
    connection.delete(BROKER_OWNER_KEY)  # someone else's keys are there: not ours to use
    return False


def delete_run_keys(connection: redis.Redis) -> None:
    """Empties the claimed database of what the run wrote into it, keeping the claim."""
    keys = [key for key in connection.scan_iter(count=1000) if key != BROKER_OWNER_KEY.encode()]
    if keys:
        connection.delete(*keys)


@pytest.fixture(scope="session")
def broker_database() -> Iterator[str]:
    chosen = os.environ.get("REVAL_TEST_BROKER_URL")
    candidates = [chosen] if chosen else [f"{LOCAL_REDIS}/{number}" for number in range(15, 0, -1)]
    owner = f"reval tests, pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"
    url = next((url for url in candidates if claim_broker_database(redis.Redis.from_url(url), owner)), None)
    if url is None:
        pytest.fail(
            f"{chosen} holds keys this test run did not make; empty it if they are yours, or set REVAL_TEST_BROKER_URL "
            "to an empty Redis database"
            if chosen
            else f"every Redis database 1 to 15 at {LOCAL_REDIS} holds keys; set REVAL_TEST_BROKER_URL to an empty one"
        )
    yield url
    connection = redis.Redis.from_url(url)
    delete_run_keys(connection)
    connection.delete(BROKER_OWNER_KEY)


@pytest.fixture
def broker(broker_database) -> Iterator[str]:
    """The run's broker database, emptied of earlier tests' keys before and after the test."""
    connection = redis.Redis.from_url(broker_database)
    delete_run_keys(connection)
    yield broker_database
    delete_run_keys(connection)


class Workers:
    """Real `reval worker` processes on the test's database and broker, configured as the app is."""

    def __init__(self, app, broker_url: str, log_directory: Path):
        self.app, self.broker_url, self.log_directory = app, broker_url, log_directory
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log_paths: dict[int, str] = {}  # by process id
        app.config["REVAL_BROKER_URL"] = broker_url
        celery_init_app(app)

    def start(self, **settings: str) -> subprocess.Popen:
        environment = {
            **os.environ,
            **{k: str(v) for k, v in self.app.config.items() if k.startswith("REVAL_")},
            **settings,
        }
        log = (self.log_directory / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("reval")),
                "worker",
                "--pool=solo",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test{len(self.processes)}@%h",
            ],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.log_paths[process.pid] = log.name
        self.processes.append(process)
        return process

    def log_of(self, process) -> str:
        return Path(self.log_paths[process.pid]).read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def workers(app, broker, tmp_path):
    started = Workers(app, broker, tmp_path)
    yield started
    started.stop_all()


# --- metrics and logs ---------------------------------------------------------------------------

METRICS_TOKEN = "a-metrics-token-of-the-operator"


def scraped(app) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metered(app):
    app.config["REVAL_METRICS_TOKEN"] = METRICS_TOKEN
    return app


@pytest.fixture
def json_logs(app, capsys):
    """An app logging JSON (to the captured standard error); text logging again afterwards."""
    root_level = logging.getLogger().level
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    json_app = create_app(
        settings | {"TESTING": True, "REVAL_LOG_FORMAT": "json", "REVAL_AUTH": "dev", "REVAL_SECURE_COOKIES": "0"}
    )
    yield json_app
    logs.configure_logging("text")
    logging.getLogger().setLevel(root_level)


def log_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
