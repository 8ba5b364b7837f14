"""The changes feed: each change to what a designated body sees of a doctor, recorded where the
view itself is written, and read back in order by other systems.

A doctor's *views* are what each body that sees them sees (their queue and reason there, that
body's hide applied), and, for a doctor no configured body sees, the national Unassigned view
(body None). Whenever a decision, a GMC connection, a hide, archiving or restoring changes a
view, one row per body concerned goes into ``doctor_change``; a body that no longer sees the
doctor gets a row with ``visible`` false.

Gap-free reading. A row's position is (``xact_id``, ``id``). On PostgreSQL, ids are drawn from a
sequence as rows are written but become visible when their transaction commits, so a nightly
sync holding small ids can commit after an admin's hide with a larger one: "everything after
the last id" would skip the sync's rows. So ``xact_id`` is the writing transaction's id
(pg_current_xact_id()) and a reader serves only rows whose transaction is older than every
transaction of this database still running at its snapshot: those transactions have all
finished, and any transaction that writes later has a larger id. Rows are served in (xact_id, id) order, and
a page that is not full tells the reader it has everything up to that horizon. SQLite lets one
writer at a time, so ``xact_id`` is 0 there and ids commit in order.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.orm import Session

from reval.models import DoctorChange, DoctorChangePruned
from reval.reconcile.common import EventKind, RowWriter
from reval.refusals import Gone
from reval.rules import HIDDEN_BY_ADMIN, Queue

# What each body sees of a doctor: its code (None: the national Unassigned view) to (queue, reason).
Views = dict[str | None, tuple[str, str]]
LAST_ID = 2**63 - 1


def doctor_views(doctor: Mapping[str, Any] | Any, hidden_for: set[str] | frozenset[str] = frozenset()) -> Views:
    """The views of a doctor's row (a decided row's dict, or a stored Doctor), ``hidden_for``
    the bodies whose admins hide them; an archived doctor has none."""
    get: Callable[[str], Any] = doctor.get if isinstance(doctor, Mapping) else lambda name: getattr(doctor, name)
    if get("archived_on") is not None:
        return {}
    views: Views = {
        code: (Queue.HIDDEN.value, HIDDEN_BY_ADMIN) if code in hidden_for else (get("queue"), get("reason"))
        for code in get("visible_to")
    }
    if get("unassigned"):
        views[None] = (get("queue"), get("reason"))
    return views


def change_rows(
    number: str, old: Views, new: Views, kind: EventKind, changed_at: datetime, every_body: bool = False
) -> list[dict[str, Any]]:
    """The feed's rows for a change of a doctor's views from ``old`` to ``new``: one for each
    body whose view changed (``every_body``: each body that sees them, changed or not, as when
    their GMC connection moved), and one with ``visible`` false for each body that lost them."""
    rows = [
        _row(number, kind, changed_at, code, view, True)
        for code, view in new.items()
        if every_body or old.get(code) != view
    ]
    rows += [_row(number, kind, changed_at, code, None, False) for code in old if code not in new]
    return rows


def _row(
    number: str, kind: EventKind, changed_at: datetime, code: str | None, view: tuple[str, str] | None, visible: bool
) -> dict[str, Any]:
    queue, reason = view if view is not None else (None, None)
    return {
        "changed_at": changed_at,
        "gmc_number": number,
        "kind": kind.value,
        "designated_body_code": code,
        "queue": queue,
        "reason": reason,
        "visible": visible,
    }


class ChangeFeed(RowWriter):
    """Buffers the feed's rows of one unit of work and writes them in batches."""

    def __init__(self, session: Session):
        super().__init__(session, DoctorChange.__table__, "id")

    def record(self, number: str, old: Views, new: Views, kind: EventKind, changed_at: datetime, **options: Any) -> int:
        rows = change_rows(number, old, new, kind, changed_at, **options)
        for row in rows:
            self.insert(row)
        return len(rows)


# --- reading -------------------------------------------------------------------------------------


class Position(NamedTuple):
    """Where a row stands in the feed: (writing transaction, id)."""

    xact_id: int
    change_id: int

    def cursor(self) -> str:
        """The opaque text a consumer hands back to resume after this position."""
        raw = f"{self.xact_id}.{self.change_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def of_cursor(cls, cursor: str) -> Position | None:
        """The position a cursor names, or None when it is not one Reval made."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
            xact_text, change_text = raw.split(".")
            position = cls(int(xact_text), int(change_text))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        if not (0 <= position.xact_id <= LAST_ID and 0 <= position.change_id <= LAST_ID):
            return None
        if not (xact_text.isdigit() and change_text.isdigit()) or position.cursor() != cursor:
            return None  # one position, one text
        return position


START = Position(0, 0)


class CursorExpired(Gone):
    """The feed no longer holds everything after this cursor (REVAL_CHANGES_RETENTION_DAYS):
    the consumer must start again from a full pull."""


@dataclass(frozen=True)
class ChangesRead:
    rows: list[DoctorChange]
    next: Position  # resume after this


def _position(column_of: Any = DoctorChange) -> Any:
    return tuple_(column_of.xact_id, column_of.id)


def read_changes(
    session: Session, after: Position, limit: int, bodies: frozenset[str] | None, include_unassigned: bool
) -> ChangesRead:
    """Up to ``limit`` rows after ``after`` that ``bodies`` see (None: every body), with the
    national Unassigned view's when ``include_unassigned``, in feed order; and where to resume.
    Raises CursorExpired when rows after ``after`` may have been pruned."""
    _refuse_pruned(session, after)
    through = _served_through(session)
    statement = (
        select(DoctorChange)
        .where(_position() > tuple_(*after), _position() <= tuple_(*through))
        .order_by(DoctorChange.xact_id, DoctorChange.id)
        .limit(limit)
    )
    if bodies is not None:
        in_bodies = DoctorChange.designated_body_code.in_(sorted(bodies))
        statement = statement.where(
            in_bodies | DoctorChange.designated_body_code.is_(None) if include_unassigned else in_bodies
        )
    rows = list(session.scalars(statement))
    if len(rows) == limit:
        return ChangesRead(rows, Position(rows[-1].xact_id, rows[-1].id))
    # Not a full page: every row this caller sees up to the horizon has been served.
    return ChangesRead(rows, max(after, through))


# The oldest transaction that may still commit a row of this database: the oldest of the
# snapshot's running transactions, leaving out those another database's sessions are running
# (transaction ids are the server's, and another database's long transaction must not hold this
# feed back). One that has ended since the snapshot, or whose database cannot be seen, counts.
_HORIZON = text(
    "SELECT COALESCE("
    "(SELECT min(running::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS running "
    "WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity AS other WHERE other.backend_xid = running::xid "
    "AND other.datname IS NOT NULL AND other.datname <> current_database())), "
    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint)"
)


def _served_through(session: Session) -> Position:
    """The last position a reader may serve now: below the oldest transaction of this database
    still running (PostgreSQL), or the newest row (SQLite, whose writers commit in order)."""
    if session.get_bind().dialect.name == "postgresql":
        horizon = session.scalar(_HORIZON)
        return Position(int(horizon or 1) - 1, LAST_ID)
    return Position(0, session.scalar(select(func.coalesce(func.max(DoctorChange.id), 0))) or 0)


def _refuse_pruned(session: Session, after: Position) -> None:
    pruned = session.get(DoctorChangePruned, 1)
    if pruned is not None and after < Position(pruned.xact_id, pruned.change_id):
        raise CursorExpired(
            f"the changes after this point were deleted on {pruned.pruned_at:%Y-%m-%d} (kept "
            "for a limited time); start again from a full pull of the queues, then read the feed from now",
            field="since",
        )


def position_before(session: Session, moment: datetime) -> Position:
    """Where a first pull "since" a moment starts: just before the first row recorded then or later."""
    first = session.execute(
        select(DoctorChange.xact_id, DoctorChange.id)
        .where(DoctorChange.changed_at >= moment)
        .order_by(DoctorChange.xact_id, DoctorChange.id)
        .limit(1)
    ).first()
    if first is None:
        return _served_through(session)
    return Position(first[0], first[1] - 1)


def prune_changes(session: Session, before: datetime, now: datetime) -> int:
    """Deletes the rows recorded before ``before``, remembering the latest position deleted."""
    latest = session.execute(
        select(DoctorChange.xact_id, DoctorChange.id)
        .where(DoctorChange.changed_at < before)
        .order_by(DoctorChange.xact_id.desc(), DoctorChange.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return 0
    result: Any = session.execute(DoctorChange.__table__.delete().where(DoctorChange.changed_at < before))
    pruned = session.get(DoctorChangePruned, 1)
    if pruned is None:
        session.add(DoctorChangePruned(id=1, xact_id=latest[0], change_id=latest[1], pruned_at=now))
    elif Position(latest[0], latest[1]) > Position(pruned.xact_id, pruned.change_id):
        pruned.xact_id, pruned.change_id, pruned.pruned_at = latest[0], latest[1], now
    session.flush()
    return int(result.rowcount or 0)


__all__: Sequence[str] = (
    "START",
    "ChangeFeed",
    "ChangesRead",
    "CursorExpired",
    "Position",
    "Views",
    "change_rows",
    "doctor_views",
    "position_before",
    "prune_changes",
    "read_changes",
)
