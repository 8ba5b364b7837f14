"""How a long job tells whoever started it how it goes: phase by phase, how much is done.

The reconciliation reports through ``Progress`` and knows nothing of who listens: the command line
draws it on standard error, a nightly task extends its lock with it, a test or the web server
hears nothing (``SILENT``).
"""

from __future__ import annotations


class Progress:
    """Hears a job's phases begin, advance and end. This one hears nothing."""

    def begin(self, phase: str, unit: str) -> None:
        """A phase starts: ``phase`` names it (GMC, TIS, decide, deliver), ``unit`` what it counts."""

    def advance(self, done: int, fraction: float | None = None) -> None:
        """``done`` so far in this phase; ``fraction`` of the phase's work, where it can be told."""

    def end(self, done: int | None = None) -> None:
        """The phase is over (``done``: its final count, where it differs from the last advance)."""


SILENT = Progress()
