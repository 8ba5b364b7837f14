"""The gateway use cases reach GMC, TIS and the workers through, made from a Flask app.

An entry point chooses how long it waits: the command delivers a connection request here and
now and prints GMC's answer; a web request never waits on GMC, so the request goes to a worker
(with a broker) or to a background thread of the serving process (without one). Either way the
request is recorded first (the outbox), so a process that dies loses nothing: the next
`reval deliver`, sync or periodic task sends it.
"""

from __future__ import annotations

import contextvars
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from flask import Flask

from reval import tasks
from reval.clock import utcnow
from reval.extensions import broker_configured, database, gmc_client, settings, tis_client
from reval.gmc.client import GmcClient
from reval.models import ConnectionRequest
from reval.reconcile.nightly import record_run_start
from reval.services.context import Actor, Context
from reval.services.sync import nightly_in_process
from reval.settings import Settings
from reval.tis.client import TisClient

log = logging.getLogger(__name__)


class AppGateway:
    def __init__(self, app: Flask, *, wait_for_delivery: bool):
        # The app itself, not flask.current_app: background threads have no app context of their own.
        self.app = app._get_current_object() if hasattr(app, "_get_current_object") else app
        self.wait_for_delivery = wait_for_delivery

    @property
    def settings(self) -> Settings:
        return settings(self.app)

    @property
    def broker_configured(self) -> bool:
        return broker_configured(self.app)

    def gmc_client(self) -> GmcClient:
        return gmc_client(self.app)

    def tis_client(self) -> TisClient:
        return tis_client(self.app)

    def check_delivery(self) -> None:
        if not self.broker_configured:
            self.gmc_client()  # raises NotConfigured, naming the settings

    def deliver(self, request_id: int) -> ConnectionRequest | None:
        if self.broker_configured:
            tasks.deliver_connection_request.delay(request_id)
            return None
        if self.wait_for_delivery:
            with self.app.app_context():
                return tasks.deliver_now(request_id)
        self._background(tasks.deliver_now, request_id)
        return None

    def deliver_due(self, ignore_backoff: bool = False) -> dict[str, int]:
        with self.app.app_context():
            return tasks.deliver_due_now(ignore_backoff)

    def start_nightly(self, as_of: date) -> int:
        run_id = record_run_start(database(self.app).sessions, as_of, utcnow())
        if self.broker_configured:
            tasks.nightly.delay(as_of=as_of.isoformat(), run_id=run_id)
        else:
            context = Context(database(self.app).sessions, database(self.app).reads, Actor.operator("nightly"), self)
            self._background(lambda: nightly_in_process(context, as_of, run_id=run_id))
        return run_id

    def _background(self, work, *args) -> None:
        """Runs work in this process's background thread, in the app's context; a failure is
        logged (what it was doing is recorded in the database, and retried from there)."""
        executor = self.app.extensions.get("reval.background")
        if executor is None:
            executor = self.app.extensions["reval.background"] = ThreadPoolExecutor(2, "reval-background")

        def run() -> None:
            try:
                with self.app.app_context():
                    work(*args)
            except Exception:
                log.exception("background work failed; what it was doing stays recorded for a retry")

        executor.submit(contextvars.copy_context().run, run)  # its log lines keep the request's id
