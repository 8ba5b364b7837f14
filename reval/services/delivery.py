"""Delivering recorded connection requests to GMC, under the configured delivery policy: what a
worker, the nightly job and `reval deliver` run once a request is in the outbox."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from reval.gmc.client import GmcClient
from reval.models import ConnectionRequest
from reval.reconcile.connections import DeliveryPolicy, deliver_due_requests, deliver_request


def check_delivery_settings(config: Mapping[str, Any]) -> None:
    """Raises NotConfigured, naming the setting, when the delivery policy's settings are bad."""
    DeliveryPolicy.from_config(config)


def deliver_due(
    sessions: sessionmaker[Session],
    client: GmcClient,
    config: Mapping[str, Any],
    *,
    now: Callable[[], datetime],
    ignore_backoff: bool = False,
) -> dict[str, int]:
    """Delivers every due connection request once; counts by outcome (and how many were due)."""
    policy = DeliveryPolicy.from_config(config)
    return deliver_due_requests(sessions, client, now=now, ignore_backoff=ignore_backoff, policy=policy)


def deliver_one(
    sessions: sessionmaker[Session],
    client: GmcClient,
    config: Mapping[str, Any],
    request_id: int,
    *,
    now: Callable[[], datetime],
) -> ConnectionRequest | None:
    """One delivery attempt of a request (None: it is not deliverable now)."""
    return deliver_request(sessions, client, request_id, now=now, policy=DeliveryPolicy.from_config(config))
