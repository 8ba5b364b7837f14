"""A move: a doctor whose queue, reason or set of designated bodies seeing them changes from one
decision to the next. What a preview lists, what a dry run says a sync would do, and what a sync
did, all computed here from two placements (``move_from``), or from two decision views
(``move_between``, ``decision_view``: queue, reason, visibleTo)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Move:
    """``from_queue``/``from_reason`` are None for a doctor no decision has placed yet."""

    gmc_number: str
    from_queue: str | None
    from_reason: str | None
    to_queue: str
    to_reason: str
    from_bodies: tuple[str, ...]
    to_bodies: tuple[str, ...]

    @property
    def designated_bodies(self) -> tuple[str, ...]:
        """Every body concerned: those that see the doctor before or after (a body that loses
        a doctor is told as well as the body that gains them)."""
        return tuple(sorted(set(self.from_bodies) | set(self.to_bodies)))

    @property
    def placed_from(self) -> dict[str, str | None]:
        return {"queue": self.from_queue, "reason": self.from_reason}

    @property
    def placed_to(self) -> dict[str, str]:
        return {"queue": self.to_queue, "reason": self.to_reason}

    def concerns(self, bodies: Iterable[str]) -> bool:
        return not set(self.designated_bodies).isdisjoint(bodies)

    def as_json(self) -> dict[str, Any]:
        return {
            "gmcReferenceNumber": self.gmc_number,
            "from": self.placed_from,
            "to": self.placed_to,
            "designatedBodies": list(self.designated_bodies),
        }


# Where a decision puts a doctor, as a move compares it: queue, reason, and the bodies that see
# them, sorted.
Placement = tuple[str, str, tuple[str, ...]]


def placement_of(queue: str, reason: str, visible_to: Iterable[str]) -> Placement:
    return queue, reason, tuple(sorted(visible_to))


def move_between(gmc_number: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> Move | None:
    """The doctor's move from the ``before`` decision view (None: not decided yet) to ``after``,
    or None when queue, reason and the bodies that see them all stay the same."""
    return move_from(
        gmc_number,
        None if before is None else placement_of(before["queue"], before["reason"], before["visibleTo"]),
        placement_of(after["queue"], after["reason"], after["visibleTo"]),
    )


def move_from(gmc_number: str, before: Placement | None, after: Placement) -> Move | None:
    """``move_between`` for two placements (None: not decided yet)."""
    if before == after:
        return None
    if before is None:
        return Move(gmc_number, None, None, after[0], after[1], (), after[2])
    return Move(gmc_number, before[0], before[1], after[0], after[1], before[2], after[2])
