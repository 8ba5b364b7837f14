"""Who acts, for which designated bodies, on which clock, and through what gateway."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session, sessionmaker

from reval.clock import EARLIEST_AS_OF, SYSTEM_CLOCK, Clock, latest_as_of
from reval.refusals import Invalid
from reval.settings import Settings

if TYPE_CHECKING:
    from reval.gmc.client import GmcClient
    from reval.models import ConnectionRequest
    from reval.tis.client import TisClient


class Role(StrEnum):
    VIEWER = "viewer"  # reads their bodies' queues
    ADMIN = "admin"  # reads and acts for their bodies
    NATIONAL = "national"  # reads and acts for every body, and sees the doctors no body sees


@dataclass(frozen=True)
class Actor:
    """A signed-in person or system. ``designated_bodies`` are theirs; a national actor has every
    configured body whatever it lists."""

    name: str
    role: Role
    designated_bodies: frozenset[str] = frozenset()
    # Which sign-in acted, for the access audit: "token:<subject>", "session:<id>" or "cli:<account>".
    subject: str | None = field(default=None, compare=False)

    @property
    def national(self) -> bool:
        return self.role is Role.NATIONAL

    @property
    def may_act(self) -> bool:
        return self.role in (Role.ADMIN, Role.NATIONAL)

    @classmethod
    def operator(cls, name: str, account: str | None = None) -> Actor:
        """Someone at the server's command line (``account``: their login): they hold the
        database itself, so every body."""
        return cls(name, Role.NATIONAL, subject=f"cli:{account}" if account else None)


class Gateway(Protocol):
    """What a use case reaches beyond the database, as the entry point provides it."""

    @property
    def settings(self) -> Settings:
        """The settings, read and checked as the entry point started (never changed by a use case)."""

    def gmc_client(self) -> GmcClient:
        """GMC Connect's client; raises NotConfigured."""

    def tis_client(self) -> TisClient:
        """TIS's client; raises NotConfigured."""

    def check_delivery(self) -> None:
        """Raises NotConfigured when a recorded connection request could never be delivered."""

    def deliver(self, request_id: int) -> ConnectionRequest | None:
        """Delivers a recorded request: here and now (returns it as delivered), or hands it to a
        worker or a background thread (returns None)."""

    def start_nightly(self, as_of: date) -> int:
        """Starts a nightly run in the background; returns its run id."""

    def deliver_due(self, ignore_backoff: bool = False) -> dict[str, int]:
        """Delivers every due connection request here and now; counts by outcome."""

    @property
    def broker_configured(self) -> bool:
        """Whether workers do the background work (else this process does)."""


@dataclass(frozen=True)
class Context:
    sessions: sessionmaker[Session]  # transactions that write
    reads: sessionmaker[Session]  # transactions that only read (never wait for a writer)
    actor: Actor
    gateway: Gateway | None = None
    clock: Clock = field(default=SYSTEM_CLOCK)
    entry_point: str = "cli"  # ui, api or cli: where the access audit says a view came from

    def today(self) -> date:
        return self.clock.today()

    def now(self) -> datetime:
        return self.clock.now()

    def checked_as_of(self, day: date | None) -> date:
        """The as-of date asked for (default: today in London), refused outside 2000-01-01 to a
        year from today: a typing error there would decide everyone wrongly, and one far in the
        past would end every hide for good."""
        today = self.today()
        if day is None:
            return today
        latest = latest_as_of(today)
        if not EARLIEST_AS_OF <= day <= latest:
            raise Invalid(
                f"as-of date {day.isoformat()} is outside {EARLIEST_AS_OF.isoformat()} to {latest.isoformat()}",
                field="asOf",
            )
        return day

    def require_gateway(self) -> Gateway:
        if self.gateway is None:
            raise RuntimeError("this use case needs a gateway, and its entry point gave none")
        return self.gateway
