"""What the next sync would change, before it runs: a rule preview (every stored doctor decided
again as of a day, with the installed rule table) and a dry run of a sync (its sources applied
to a scratch copy). Neither writes anything."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from reval.models import Doctor
from reval.progress import SILENT, Progress
from reval.reconcile.moves import Move
from reval.reconcile.preview import Preview, dry_run_sync, preview_helper, preview_moves, stored_state
from reval.reconcile.summary import SyncSummary
from reval.reconcile.sync import latest_successful_run
from reval.refusals import NotPermitted
from reval.rules import DEFAULT_RULE_TABLE, RuleEngine
from reval.services.access import require_national, visible_body
from reval.services.context import Context
from reval.services.sync import sync_controls, sync_inputs

__all__ = ["Move", "MoveGroup", "RulePreview", "SyncDryRun", "dry_run_now", "preview_rules"]


@dataclass(frozen=True)
class RulePreview:
    """The moves deciding every doctor again as of ``as_of`` would make, as far as the actor's
    bodies see them (a national actor: every move)."""

    as_of: date
    rule_table: str
    doctors: int
    moves: list[Move]

    def as_json(self) -> dict[str, Any]:
        return {
            "asOf": self.as_of.isoformat(),
            "ruleTable": self.rule_table,
            "doctors": self.doctors,
            "moves": [move.as_json() for move in self.moves],
        }


@dataclass(frozen=True, order=True)
class MoveGroup:
    """How many doctors one body sees move from one queue and reason to another. A doctor no
    body sees before or after has ``designated_body`` None (national users only)."""

    from_queue: str
    from_reason: str
    to_queue: str
    to_reason: str
    designated_body: str
    count: int


NEW = ""  # a group's from queue and reason when its doctors were not decided before
NO_BODY = ""  # a group's body when no body sees its doctors


def preview_rules(context: Context, as_of: date | None = None, *, helper_process: bool = False) -> RulePreview:
    """Every doctor decided again as of ``as_of`` (default today) with the installed rule table,
    compared with their stored decisions: the moves the actor's bodies see (a national actor's:
    all). Who may ask is the entry point's to say (require_previewer for the web).
    ``helper_process``: decide in a second process while this one reads (a command's choice:
    a web request works alone)."""
    day = context.checked_as_of(as_of)
    engine = RuleEngine(DEFAULT_RULE_TABLE)
    with context.reads() as session:
        key = (day, stored_state(session, engine))
        preview = RECENT_PREVIEWS.get(key)
        if preview is None:
            with preview_helper(session, helper_process) as helper:
                preview = preview_moves(session, as_of=day, now=context.now(), engine=engine, helper=helper)
            RECENT_PREVIEWS.put(key, preview)
    return RulePreview(preview.as_of, preview.rule_table, preview.doctors, scoped_moves(context, preview.moves))


class RecentPreviews:
    """The last few previews this process worked out, by day and stored state: a person opening
    a preview's groups, or a system paging through it, asks for the same one again and again,
    and at 100,000 doctors each takes seconds. Any sync or change of a decision makes a new key."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._previews: OrderedDict[Hashable, Preview] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Preview | None:
        with self._lock:
            preview = self._previews.get(key)
            if preview is not None:
                self._previews.move_to_end(key)
            return preview

    def put(self, key: Hashable, preview: Preview) -> None:
        with self._lock:
            self._previews[key] = preview
            while len(self._previews) > self.size:
                self._previews.popitem(last=False)


# Two: today's and one other day (each holds its moves, a few hundred bytes a doctor who moves).
RECENT_PREVIEWS = RecentPreviews(2)


def require_previewer(context: Context) -> None:
    """The web's preview is for national users and admins, who act on what it shows."""
    if not context.actor.may_act:
        raise NotPermitted(f"only national users and admins may preview the rules ({context.actor.name} is a viewer)")


def scoped_moves(context: Context, moves: Iterable[Move]) -> list[Move]:
    if context.actor.national:
        return list(moves)
    return [move for move in moves if move.concerns(context.actor.designated_bodies)]


def move_groups(context: Context, moves: Iterable[Move]) -> list[MoveGroup]:
    """Counts by from, to and body (each of the actor's bodies that sees a doctor counts them)."""
    counts: Counter[tuple[str, str, str, str, str]] = Counter()
    for move in moves:
        bodies = move.designated_bodies
        if not context.actor.national:
            bodies = tuple(code for code in bodies if code in context.actor.designated_bodies)
        for body in bodies or (NO_BODY,):
            counts[(move.from_queue or NEW, move.from_reason or NEW, move.to_queue, move.to_reason, body)] += 1
    return sorted(MoveGroup(*key, count) for key, count in counts.items())


@dataclass(frozen=True)
class GroupAsked:
    """One from → to group of one body (``designated_body`` NO_BODY: the doctors no body sees)."""

    from_queue: str
    from_reason: str
    to_queue: str
    to_reason: str
    designated_body: str

    def holds(self, move: Move) -> bool:
        placed = (move.from_queue or NEW, move.from_reason or NEW, move.to_queue, move.to_reason)
        if placed != (self.from_queue, self.from_reason, self.to_queue, self.to_reason):
            return False
        if self.designated_body == NO_BODY:
            return not move.designated_bodies
        return self.designated_body in move.designated_bodies


@dataclass(frozen=True)
class PreviewDoctor:
    """A doctor of a group: their move, and their name as stored (None: not decided yet)."""

    move: Move
    first_name: str | None
    last_name: str | None

    @property
    def decided_before(self) -> bool:
        return self.move.from_queue is not None


def preview_group(context: Context, as_of: date | None, group: GroupAsked) -> tuple[RulePreview, list[PreviewDoctor]]:
    """The preview as of ``as_of`` and the doctors of one of its groups, in GMC-number order.
    The body must be one of the actor's (NO_BODY: national users only)."""
    if group.designated_body != NO_BODY or not context.actor.national:
        with context.reads() as session:
            visible_body(session, context.actor, group.designated_body)
    preview = preview_rules(context, as_of)
    moves = [move for move in preview.moves if group.holds(move)]
    names = _stored_names(context, [move.gmc_number for move in moves])
    return preview, [PreviewDoctor(move, *names.get(move.gmc_number, (None, None))) for move in moves]


def _stored_names(context: Context, numbers: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
    names: dict[str, tuple[str | None, str | None]] = {}
    with context.reads() as session:
        for start in range(0, len(numbers), NAMES_READ_AT_ONCE):
            chunk = numbers[start : start + NAMES_READ_AT_ONCE]
            for number, first, last in session.execute(
                select(Doctor.gmc_number, Doctor.first_name, Doctor.last_name).where(Doctor.gmc_number.in_(chunk))
            ):
                names[number] = (first, last)
    return names


NAMES_READ_AT_ONCE = 500


def decisions_rule_table(context: Context) -> str | None:
    """The rule table the stored decisions were made with (the last finished sync's), or None
    before any sync."""
    with context.reads() as session:
        run = latest_successful_run(session)
        return run.rule_table if run is not None else None


def installed_rule_table() -> str:
    return DEFAULT_RULE_TABLE.label


@dataclass(frozen=True)
class SyncDryRun:
    """What a sync would do: its summary as a run's (without the run) and its moves."""

    summary: SyncSummary
    moves: list[Move]
    held_back: list[dict[str, str]]

    def as_json(self) -> dict[str, Any]:
        return {
            "asOf": self.summary.as_of,
            "ruleTable": self.summary.rule_table,
            "doctors": self.summary.doctors,
            "moves": [move.as_json() for move in self.moves],
            "rejectedRecords": self.summary.rejected_records,
            "heldBack": self.held_back,
            "archived": self.summary.stored.get("archivedDoctors", []),
            "restored": self.summary.stored.get("restoredDoctors", []),
        }


def dry_run_now(
    context: Context,
    *,
    gmc_file: str | Path | None = None,
    tis_file: str | Path | None = None,
    as_of: date | None = None,
    allow_mass_changes: bool = False,
    wait_seconds: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    progress: Progress = SILENT,
) -> SyncDryRun:
    """What ``sync_now`` with the same arguments would do, with nothing written and nothing
    delivered. Raises DryRunBusy when another sync holds the lock for the whole wait."""
    require_national(context.actor, "run a sync")
    day = context.checked_as_of(as_of)
    controls = sync_controls(context, allow_mass_changes, wait_seconds, on_wait, progress)
    with sync_inputs(context, gmc_file, tis_file, progress) as (gmc, tis, tis_not_fetched_reason):
        dry_run = dry_run_sync(
            context.sessions,
            gmc=gmc,
            tis=tis,
            as_of=day,
            tis_not_fetched_reason=tis_not_fetched_reason,
            controls=controls,
        )
    return SyncDryRun(SyncSummary.from_json(dry_run.summary), dry_run.moves, dry_run.held_back)


def moves_by_group(moves: Sequence[Move]) -> dict[tuple[str, str, str, str], list[Move]]:
    """The moves by from and to (queue, reason), in that order, each group's in GMC-number order."""
    groups: dict[tuple[str, str, str, str], list[Move]] = {}
    for move in sorted(moves, key=lambda m: (m.from_queue or NEW, m.from_reason or NEW, m.to_queue, m.to_reason)):
        key = (move.from_queue or NEW, move.from_reason or NEW, move.to_queue, move.to_reason)
        groups.setdefault(key, []).append(move)
    return groups
