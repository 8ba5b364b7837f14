"""Delivering recorded connection requests to GMC, under the configured delivery policy: what a
worker, the nightly job and `reval deliver` run once a request is in the outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from reval.gmc.client import GmcClient
from reval.models import ConnectionRequest
from reval.reconcile.connections import DeliveryPolicy, deliver_due_requests, deliver_request
from reval.settings import Settings


def deliver_due(
    sessions: sessionmaker[Session],
    client: GmcClient,
    settings: Settings,
    *,
    now: Callable[[], datetime],
    ignore_backoff: bool = False,
) -> dict[str, int]:
    """Delivers every due connection request once; counts by outcome (and how many were due)."""
    policy = DeliveryPolicy.from_settings(settings)
    return deliver_due_requests(sessions, client, now=now, ignore_backoff=ignore_backoff, policy=policy)


def deliver_one(
    sessions: sessionmaker[Session],
    client: GmcClient,
    settings: Settings,
    request_id: int,
    *,
    now: Callable[[], datetime],
) -> ConnectionRequest | None:
    """One delivery attempt of a request (None: it is not deliverable now)."""
    return deliver_request(sessions, client, request_id, now=now, policy=DeliveryPolicy.from_settings(settings))
