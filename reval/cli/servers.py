"""Long-running processes: `reval worker`, `beat`, and the GMC and TIS simulators."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

import click
from flask import current_app

from reval import metrics
from reval.api import share_rate_limit
from reval.cli.base import CommandRefused, command, context
from reval.db import schema_is_current
from reval.extensions import broker_configured, database, settings
from reval.services.reference import configured_bodies
from reval.serving import CHILD_EXIT_HOOKS, default_workers, prefork_available, serve_wsgi
from reval.snapshot_files import open_snapshot
from reval.tasks import PersonChangedConsumer, beat_schedule
from reval.web.auth import require_web_settings

PASS_TO_CELERY = {"ignore_unknown_options": True, "allow_extra_args": True}


@command(context_settings=PASS_TO_CELERY)
@click.pass_context
def worker(ctx):
    """Start a Celery worker, with TIS's person-changed consumer; further arguments go to Celery."""
    celery_app = _celery_app()
    celery_app.steps["consumer"].add(PersonChangedConsumer)
    celery_app.worker_main(["worker", "--loglevel=INFO", *ctx.args])


@command(context_settings=PASS_TO_CELERY)
@click.pass_context
def beat(ctx):
    """Start Celery beat with Reval's schedule (run exactly one); further arguments go to Celery."""
    celery_app = _celery_app()
    celery_app.conf.beat_schedule = beat_schedule(settings())
    celery_app.start(["beat", "--loglevel=INFO", *ctx.args])


def _celery_app():
    """The app's Celery (its settings, the tasks' included, were checked as the app was made)."""
    if not broker_configured():
        raise CommandRefused("no broker is configured: set REVAL_BROKER_URL, e.g. redis://127.0.0.1:6379/0")
    settings()  # read again, should the app's config have changed since
    database().check()  # a worker needs its database: one line now if it cannot be used, not failing tasks later
    forget_dead_processes_metrics()
    return current_app.extensions["celery"]


@command(name="gmc-simulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="GMC snapshot the simulator starts from.")
@click.option("--username", envvar="REVAL_GMC_USERNAME", default="reval", show_default=True)
@click.option("--password", envvar="REVAL_GMC_PASSWORD", default="reval", show_default=False)
def gmc_simulator(host, port, data_file, username, password):
    """Serve a local GMC Connect (development and tests only)."""
    from reval.gmc.simulator import GmcConnectState, RunningSimulator

    state = GmcConnectState.from_snapshot(_records(data_file, "GMC", "designatedBodies"), username, password)
    for body in configured_bodies(context().reads):
        state.lists.setdefault(body.code, {})
    _serve(
        RunningSimulator(state, host, port),
        lambda simulator: f"GMC Connect simulator on {simulator.url} (WSDL at ?wsdl)",
    )


@command(name="tis-simulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8082, show_default=True)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="TIS snapshot the simulator serves.")
@click.option("--client-id", envvar="REVAL_TIS_CLIENT_ID", default="reval", show_default=True)
@click.option("--client-secret", envvar="REVAL_TIS_CLIENT_SECRET", default="reval", show_default=False)
@click.option("--token-lifetime", default=300, show_default=True, help="Seconds an access token lasts.")
def tis_simulator(host, port, data_file, client_id, client_secret, token_lifetime):
    """Serve a local TIS: the TCS API and its token endpoint (development and tests only)."""
    from reval.tis.simulator import RunningTisSimulator, TisState

    state = TisState.from_snapshot(
        _records(data_file, "TIS", "people"), client_id, client_secret, token_lifetime=token_lifetime
    )
    _serve(
        RunningTisSimulator(state, host, port),
        lambda simulator: (
            f"TIS simulator: REVAL_TIS_URL={simulator.url} REVAL_TIS_TOKEN_URL={simulator.token_url}, "
            f"{len(state.people)} people"
        ),
    )


def _records(path: str | None, label: str, list_key: str) -> list:
    return [record for _locator, record in open_snapshot(path, label=label, list_key=list_key)] if path else []


def _serve(simulator, banner) -> None:
    with simulator:
        click.echo(f"{banner(simulator)}; faults: POST /simulator/faults. Ctrl-C stops.")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


@command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Server processes (default: one per core). More than one needs gunicorn (Linux and other POSIX).",
)
@click.option("--threads", default=8, show_default=True, help="Requests each process serves at once.")
def serve(host, port, workers, threads):
    """Serve the web UI and the API: gunicorn's prefork processes, or waitress in one process."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy: Flask types it as the app
    require_web_settings(app)
    if not schema_is_current(database().engine):
        raise CommandRefused("the database schema is not up to date; run `reval db upgrade` first")
    check_port_free(host, port)
    forget_dead_processes_metrics()
    if _forget_ended_worker_metrics not in CHILD_EXIT_HOOKS:
        CHILD_EXIT_HOOKS.append(_forget_ended_worker_metrics)
    serve_app(app, host, port, threads, workers=default_workers() if workers is None else workers)


def check_port_free(host: str, port: int) -> None:
    """Refuses (exit 2, one line) when the web UI could not be served on host:port."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: only a listener blocks it
        try:
            probe.bind((host, port))
        except OSError as error:
            raise CommandRefused(
                f"port {port} on {host} is not free ({error.strerror}): choose another with --port"
            ) from None


def forget_dead_processes_metrics() -> None:
    """A server or worker starting: the metrics files of processes that have ended are removed."""
    folder = metrics.folder()
    if folder is not None and folder.is_dir():
        metrics.remove_dead_processes(folder)


def _forget_ended_worker_metrics(_arbiter: object, worker: Any) -> None:
    metrics.process_ended(worker.pid)


def serve_app(app, host: str, port: int, threads: int = 8, workers: int = 1) -> None:
    """Serves until Ctrl-C. A web request never waits on GMC, so threads serve the slow ones; the
    processes use every core. Each process keeps its own rate-limit counts unless they share
    Redis, so each then allows only its share of the limit."""
    if workers > 1 and not prefork_available():
        click.echo(f"gunicorn cannot run here: serving in one process (waitress), not {workers}", err=True)
        workers = 1
    shared = share_rate_limit(app, workers)
    if not shared:
        click.echo(
            f"API rate limits are counted in each of the {workers} processes, each allowing 1/{workers} of "
            f"{settings(app).api_rate_limit}: set REVAL_RATE_LIMIT_STORAGE_URL or REVAL_BROKER_URL (Redis) "
            "to count them together",
            err=True,
        )
    engine = database(app).engine
    click.echo(
        f"Reval is serving on http://{host}:{port}/ with {workers} process{'es' if workers > 1 else ''} "
        f"of {threads} threads (Ctrl-C stops)"
    )
    # A forked process must not use its parent's database connections: it opens its own.
    serve_wsgi(app, host, port, workers=workers, threads=threads, after_fork=lambda: engine.dispose(close=False))
