"""The changes feed, as the API and `reval changes` serve it: what changed in what the actor's
designated bodies see, in the order it was recorded, resumable from a cursor (see
reval.reconcile.changes for why no change is skipped or served twice)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reval.models import DoctorChange
from reval.reconcile.changes import START, ChangesRead, Position, position_before, read_changes
from reval.refusals import Malformed
from reval.services.context import Context
from reval.validation import describe_value

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# RFC 3339's date-time: a full date, a full time, and a zone (Z or an offset).
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass(frozen=True)
class ChangesPage:
    items: list[dict[str, Any]]
    next_cursor: str  # resume from here: every item up to it has been served


def parse_since(since: str | None) -> Position | datetime:
    """A cursor the feed gave, or an RFC 3339 moment for a first pull; none is the feed's start."""
    if since is None or since == "":
        return START
    text = since.strip()
    if RFC3339.fullmatch(text):
        try:
            return datetime.fromisoformat(text.upper())
        except ValueError:
            pass  # a date-time of the right shape that is no date (2027-02-30): refused below
    position = Position.of_cursor(text)
    if position is None:
        raise Malformed(
            f"since {describe_value(since)} is neither a cursor this feed gave "
            "nor an RFC 3339 time such as 2027-01-31T00:00:00Z",
            field="since",
        )
    return position


def changes_page(context: Context, since: str | None, page_size: int = DEFAULT_PAGE_SIZE) -> ChangesPage:
    """Up to ``page_size`` changes after ``since`` that the actor's bodies see (a national actor:
    every body's, and the Unassigned view's), oldest first, and the cursor to resume from."""
    start = parse_since(since)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise Malformed(f"page size {page_size} is not between 1 and {MAX_PAGE_SIZE}", field="pageSize")
    actor = context.actor
    with context.reads() as session:
        after = start if isinstance(start, Position) else position_before(session, start)
        read: ChangesRead = read_changes(
            session,
            after,
            page_size,
            bodies=None if actor.national else actor.designated_bodies,
            include_unassigned=actor.national,
        )
    return ChangesPage([change_item(row) for row in read.rows], read.next.cursor())


def change_item(row: DoctorChange) -> dict[str, Any]:
    """One change as the feed serves it."""
    return {
        "cursor": Position(row.xact_id, row.id).cursor(),
        "changedAt": row.changed_at.isoformat(),
        "gmcReferenceNumber": row.gmc_number,
        "kind": row.kind,
        "designatedBody": row.designated_body_code,
        "queue": row.queue,
        "reason": row.reason,
        "visible": row.visible,
    }
