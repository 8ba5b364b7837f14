"""Celery tasks: ids in, the same plain functions the CLI calls, retries here only."""

from __future__ import annotations

from celery import shared_task
from flask import current_app

from reval.app import broker_configured, database, gmc_client
from reval.models import ConnectionRequest
from reval.reconcile.common import utcnow
from reval.reconcile.connections import DeliveryPolicy, Status, deliver_request


@shared_task(name="reval.deliver_connection_request", bind=True)
def deliver_connection_request(self, request_id: int) -> str | None:
    request = _deliver(request_id)
    if request is not None and request.status == Status.PENDING:
        # A transient failure: try again when the request's backoff timer says.
        self.apply_async((request_id,), eta=request.next_attempt_at)
    return request.status if request is not None else None


def dispatch_delivery(request_id: int) -> ConnectionRequest | None:
    """Delivers a recorded request: by a worker when a broker is configured, else here and now.

    Returns the request as delivered in-process, or None when a worker will deliver it.
    """
    if broker_configured(current_app):
        deliver_connection_request.delay(request_id)
        return None
    return _deliver(request_id)


def _deliver(request_id: int) -> ConnectionRequest | None:
    policy = DeliveryPolicy.from_config(current_app.config)
    return deliver_request(database().sessions, gmc_client(), request_id, now=utcnow, policy=policy)
