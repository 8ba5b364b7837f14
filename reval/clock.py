"""One clock for every entry point: moments in UTC, and "today" as it is in London.

Revalidation is an English process run by English offices, so a day begins at midnight in
Europe/London whatever the server's own zone: a sync run from cron at 00:30 in summer decides
as of that day, not yesterday. Nothing below the entry points reads the clock; they pass
``as_of`` and ``now`` down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")

# The as-of dates an operator may ask for: a date outside this window is a typing error, and
# one far in the past would end every hide for good.
EARLIEST_AS_OF = date(2000, 1, 1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def london_today(moment: datetime | None = None) -> date:
    """The date in London at ``moment`` (default: now)."""
    return (moment or utcnow()).astimezone(LONDON).date()


def london_time(moment: datetime) -> datetime:
    """``moment`` as the clocks in London show it (GMT or BST)."""
    return moment.astimezone(LONDON)


def latest_as_of(today: date) -> date:
    """The last as-of date accepted on ``today``: one year ahead."""
    try:
        return today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        return today + timedelta(days=365)


@dataclass(frozen=True)
class Clock:
    """What an entry point hands its use cases: the moment now, and the London date it falls on."""

    def now(self) -> datetime:
        return utcnow()

    def today(self) -> date:
        return london_today(self.now())


SYSTEM_CLOCK = Clock()
