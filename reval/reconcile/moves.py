"""A move: a doctor whose queue, reason or set of designated bodies seeing them changes from one
decision to the next. What a preview lists, what a dry run says a sync would do, and what a sync
did, all computed here from two decision views (``decision_view``: queue, reason, visibleTo)."""

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


def move_between(gmc_number: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> Move | None:
    """The doctor's move from the ``before`` decision view (None: not decided yet) to ``after``,
    or None when queue, reason and the bodies that see them all stay the same."""
    to_bodies = tuple(sorted(after["visibleTo"]))
    if before is None:
        return Move(gmc_number, None, None, after["queue"], after["reason"], (), to_bodies)
    from_bodies = tuple(sorted(before["visibleTo"]))
    if (before["queue"], before["reason"], from_bodies) == (after["queue"], after["reason"], to_bodies):
        return None
    return Move(gmc_number, before["queue"], before["reason"], after["queue"], after["reason"], from_bodies, to_bodies)
