"""Celery tasks: ids in, the same plain functions the CLI calls; retries, locks and schedules here only."""

from __future__ import annotations

import logging
import resource
import uuid
from datetime import date, timedelta
from typing import Any

import orjson
import redis
from celery import bootsteps, chord, shared_task
from celery.schedules import crontab
from kombu import Consumer, Exchange, Queue
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from reval.clock import london_today, utcnow
from reval.extensions import database, gmc_client, settings, tis_client
from reval.gmc.client import GmcClient
from reval.models import ConnectionRequest
from reval.progress import Progress
from reval.refusals import NotConfigured
from reval.services import delivery
from reval.services import nightly as nightly_run
from reval.services.audit import purge_expired_records
from reval.services.context import Actor, Context
from reval.services.hides import end_expired_hides_now
from reval.services.sync import refresh_people_now
from reval.services.terms import AllSourcesFailed, Status, SyncControls, SyncFailed, SyncSkipped
from reval.settings import Settings
from reval.tis.client import TisClient, TisUnavailable

log = logging.getLogger(__name__)
PERSON_CHANGED = "reval.tis.person-changed"


# --- connection requests -------------------------------------------------------------------------


@shared_task(name="reval.deliver_connection_request", bind=True)
def deliver_connection_request(self, request_id: int) -> str | None:
    request = deliver_now(request_id)
    if request is not None and request.status == Status.PENDING:
        # A transient failure: try again when the request's backoff timer says.
        self.apply_async((request_id,), eta=request.next_attempt_at)
    return request.status if request is not None else None


@shared_task(name="reval.deliver_due")
def deliver_due() -> dict[str, int]:
    return deliver_due_now()


def deliver_due_now(ignore_backoff: bool = False) -> dict[str, int]:
    """Delivers every due connection request here and now, under the app's delivery policy."""
    return delivery.deliver_due(
        database().sessions, gmc_client(), settings(), now=utcnow, ignore_backoff=ignore_backoff
    )


def deliver_now(request_id: int) -> ConnectionRequest | None:
    """One delivery attempt here and now, under the app's policy (None: not deliverable now)."""
    return delivery.deliver_one(database().sessions, gmc_client(), settings(), request_id, now=utcnow)


# --- hides ---------------------------------------------------------------------------------------


@shared_task(name="reval.end_expired_hides")
def end_expired_hides_task() -> int:
    return end_expired_hides_now(database().sessions, as_of=london_today(), now=utcnow())


@shared_task(name="reval.purge_access_audit")
def purge_access_audit_task() -> int:
    """The access audit's records older than REVAL_AUDIT_RETENTION_DAYS, removed."""
    return purge_expired_records(database().sessions, utcnow(), settings().audit_retention_days)


# --- the nightly run -----------------------------------------------------------------------------


class RunLock:
    """One nightly run at a time across every machine: redis-py's ``Lock``, under a token that the
    run's tasks hand on to each other.

    It expires on its own (a worker that dies mid-run cannot hold it for ever), its timeout starts
    again as the run makes progress, and only the holder of the token may extend or release it.
    """

    NAME = "reval:nightly-run"

    def __init__(self, url: str, seconds: float):
        self.redis = redis.Redis.from_url(url)
        self.seconds = seconds

    def _lock(self, token: str | None = None) -> Lock:
        lock = self.redis.lock(self.NAME, timeout=self.seconds, thread_local=False)
        if token is not None:
            # The token crosses to other tasks (other processes): redis-py keeps it in ``local``.
            lock.local.token = token.encode()
        return lock

    def acquire(self, token: str) -> bool:
        return self._lock().acquire(blocking=False, token=token)

    def extend(self, token: str) -> bool:
        """Starts the lock's timeout again; False if the lock is no longer this token's (it expired)."""
        try:
            return self._lock(token).reacquire()
        except LockNotOwnedError:
            return False

    def release(self, token: str) -> bool:
        """False if the lock was no longer this token's (it expired, and may be another run's now)."""
        try:
            self._lock(token).release()
        except LockNotOwnedError:
            return False
        return True


class LockKeptAlive(Progress):
    """Extends the nightly run's lock as each phase of its sync ends: a run still making progress
    keeps it, a dead one lets it expire."""

    def __init__(self, lock: RunLock, token: str):
        self.lock, self.token = lock, token

    def end(self, done: int | None = None) -> None:
        self.lock.extend(self.token)


def run_lock(configured: Settings | None = None) -> RunLock:
    """The nightly run's lock, whose timeout (REVAL_NIGHTLY_LOCK_SECONDS) starts again as the run progresses."""
    configured = configured or settings()
    url = configured.lock_url or configured.broker_url
    if url is None:
        raise NotConfigured("no broker is configured: set REVAL_BROKER_URL, e.g. redis://127.0.0.1:6379/0")
    return RunLock(url, configured.nightly_lock_seconds)


@shared_task(name="reval.nightly", ignore_result=False)
def nightly(
    as_of: str | None = None, attempt: int = 1, run_id: int | None = None, allow_mass_changes: bool = False
) -> dict[str, Any]:
    """Starts a nightly run: one fetch task per designated body and one TIS pull, then one
    reconciliation. ``run_id``: the run already recorded by whoever asked for it (a person);
    ``allow_mass_changes``: apply sources the mass-change guard would hold back, this once."""
    sessions = database().sessions
    day = date.fromisoformat(as_of) if as_of else london_today()
    token, lock = uuid.uuid4().hex, run_lock()
    if not lock.acquire(token):
        run_id = nightly_run.skip_run(sessions, day, utcnow(), "another nightly run was in progress", run_id)
        log.warning("Nightly run %s skipped: another nightly run is in progress", run_id)
        return {"runId": run_id, "status": "SKIPPED"}
    try:
        run_id, codes = nightly_run.begin_run(sessions, database().reads, day, utcnow(), run_id)
        fetches = [fetch_gmc_list.si(run_id, code, token) for code in codes] + [pull_tis.si(run_id, token)]
        chord(fetches)(reconcile_run.si(run_id, day.isoformat(), token, attempt, allow_mass_changes))
    except BaseException:
        lock.release(token)
        raise
    return {"runId": run_id, "status": "RUNNING"}


@shared_task(name="reval.fetch_gmc_list", ignore_result=False)
def fetch_gmc_list(run_id: int, code: str, token: str) -> bool:
    fetched = nightly_run.stage_gmc(database().sessions, run_id, gmc_client(), code)
    run_lock().extend(token)
    return fetched


@shared_task(name="reval.pull_tis", ignore_result=False)
def pull_tis(run_id: int, token: str) -> bool:
    fetched = nightly_run.stage_tis(database().sessions, run_id, tis_client())
    run_lock().extend(token)
    return fetched


@shared_task(name="reval.reconcile_run")
def reconcile_run(
    run_id: int, as_of: str, token: str, attempt: int, allow_mass_changes: bool = False
) -> dict[str, Any] | None:
    """Once every fetch has reported: one sync, or, for more doctors than a shard holds, the
    sources applied and the decisions spread over shards (the lock then passes to them)."""
    sessions, lock, day = database().sessions, run_lock(), date.fromisoformat(as_of)
    finished = nightly_run.finished_status(sessions, run_id)
    if finished is not None:  # this task delivered again after the run had finished
        return {"runId": run_id, "status": finished.value}
    handed_on = False
    try:
        configured = settings()
        controls = SyncControls.from_settings(
            configured, allow_mass_changes=allow_mass_changes, progress=LockKeptAlive(lock, token)
        )
        reconciled = nightly_run.reconcile_run(sessions, run_id, day, controls, configured.shard_size)
        if reconciled.summary is None:
            lock.extend(token)
            decide = [decide_shard_task.si(run_id, group, token) for group in reconciled.shards]
            chord(decide)(finish_run.s(run_id, token))
            handed_on = True
            return {"runId": run_id, "status": "RUNNING", "shards": reconciled.planned_shards}
        summary = reconciled.summary
    except (AllSourcesFailed, SyncSkipped) as error:
        # Nothing was applied (no source could be fetched, or another sync held the lock all the
        # while): the whole nightly run is tried again later.
        retries, minutes = settings().nightly_retries, settings().nightly_retry_minutes
        log.error(
            "OPERATOR ALERT: nightly run %s (attempt %d of %d) did not run: %s", run_id, attempt, retries + 1, error
        )
        if attempt <= retries:
            nightly.apply_async(kwargs={"as_of": as_of, "attempt": attempt + 1}, countdown=minutes * 60)
        return None
    except SyncFailed:  # recorded on the run already
        raise
    except BaseException as error:
        nightly_run.record_failure(sessions, run_id, error)
        raise
    finally:
        if not handed_on:
            lock.release(token)
    deliver_due.delay()  # the nightly job delivers pending GMC requests too
    return {"runId": run_id, "status": summary.status.value}


@shared_task(name="reval.decide_shard", ignore_result=False)
def decide_shard_task(run_id: int, ranges: list[tuple[str, str | None]], token: str | None = None) -> dict[str, Any]:
    # Each range arrives as a [low, high] list (JSON carried it).
    counts = nightly_run.decide_run_shard(database().sessions, run_id, [(low, high) for low, high in ranges])
    if token is not None:
        run_lock().extend(token)
    # ru_maxrss is in KiB on Linux: this worker process's peak so far.
    return counts | {"workerPeakMemoryMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


@shared_task(name="reval.finish_run")
def finish_run(shard_counts: list[dict[str, Any]], run_id: int, token: str) -> dict[str, Any]:
    try:
        controls = SyncControls.from_settings(settings())  # archiving and pruning, as the settings say
        summary = nightly_run.finish_run(database().sessions, run_id, shard_counts, controls)
    finally:
        run_lock().release(token)
    nightly_run.refresh_statistics(database().sessions, summary)
    deliver_due.delay()
    return {"runId": run_id, "status": summary.status.value}


def beat_schedule(configured: Settings) -> dict[str, dict[str, Any]]:
    """The unattended schedule, in Europe/London time; each entry's time is configurable."""
    hour, minute = configured.nightly_at
    hides_hour, hides_minute = configured.hide_expiry_at
    return {
        # 00:30 by default: outside the hour that the clocks change in, so it runs once every night.
        "nightly-run": {"task": "reval.nightly", "schedule": crontab(hour=hour, minute=minute)},
        "deliver-connection-requests": {
            "task": "reval.deliver_due",
            "schedule": timedelta(minutes=configured.deliver_every_minutes),
        },
        "end-expired-hides": {
            "task": "reval.end_expired_hides",
            "schedule": crontab(hour=hides_hour, minute=hides_minute),
        },
        "purge-access-audit": {
            "task": "reval.purge_access_audit",
            "schedule": crontab(hour=hides_hour, minute=hides_minute),
        },
    }


# --- same-day updates from TIS -------------------------------------------------------------------


# Retried when TIS cannot be read, or another sync held the lock all the while: a change TIS
# announced is never dropped. Celery's autoretry is the task layer's own policy, over the calls'
# (reval.retrying): a task retried minutes later, each of its calls already tried as the settings say.
@shared_task(
    name="reval.refresh_people", autoretry_for=(TisUnavailable, SyncSkipped), retry_backoff=True, max_retries=5
)
def refresh_people(person_ids: list[int]) -> dict[str, Any]:
    db = database()
    context = Context(db.sessions, db.reads, Actor.operator("TIS person-changed"), WorkerGateway())
    summary = refresh_people_now(context, person_ids)
    return {"runId": summary.sync_run_id, "doctorsDecided": summary.doctors_decided}


class WorkerGateway:
    """What a use case reaches from a worker: this app's clients; background work goes to the workers."""

    @property
    def settings(self) -> Settings:
        return settings()

    @property
    def broker_configured(self) -> bool:
        return True

    def gmc_client(self) -> GmcClient:
        return gmc_client()

    def tis_client(self) -> TisClient:
        return tis_client()

    def check_delivery(self) -> None:
        """A worker's requests are delivered by the workers."""

    def deliver(self, request_id: int) -> ConnectionRequest | None:
        deliver_connection_request.delay(request_id)
        return None

    def deliver_due(self, ignore_backoff: bool = False) -> dict[str, int]:
        return deliver_due_now(ignore_backoff)

    def start_nightly(self, as_of: date) -> int:
        run_id, _codes = nightly_run.begin_run(database().sessions, database().reads, as_of, utcnow(), None)
        nightly.delay(as_of=as_of.isoformat(), run_id=run_id)
        return run_id


def person_ids_of(body: Any) -> list[int]:
    """The ids in a person-changed message ``{"personIds": [...]}``; ValueError names what is wrong."""
    if isinstance(body, (bytes, str)):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise ValueError(f"message is not JSON: {error}") from None
    if not isinstance(body, dict) or not isinstance(body.get("personIds"), list):
        raise ValueError(f"message {body!r:.200} has no personIds list")
    ids = body["personIds"]
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        raise ValueError(f"personIds {ids!r:.200} must be a non-empty list of positive whole numbers")
    return ids


class PersonChangedConsumer(bootsteps.ConsumerStep):
    """Consumes TIS's plain JSON messages on ``reval.tis.person-changed`` (not Celery task messages)."""

    def get_consumers(self, channel):
        exchange = Exchange(PERSON_CHANGED, type="direct", durable=True)
        queue = Queue(PERSON_CHANGED, exchange, routing_key=PERSON_CHANGED, durable=True)
        return [Consumer(channel, queues=[queue], callbacks=[self.on_message], accept=["json", "text/plain"])]

    def on_message(self, body, message) -> None:
        try:
            ids = person_ids_of(body)
        except ValueError as error:
            log.warning("Dropped a malformed %s message: %s", PERSON_CHANGED, error)
        else:
            refresh_people.delay(ids)
        message.ack()  # a malformed message is never retried; a refresh retries as its own task
