"""Progress on standard error: a line redrawn in place on a terminal, a line per phase otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

import click

from reval.progress import SILENT, Progress

QUIET = click.option(
    "--quiet", "-q", is_flag=True, help="No progress on standard error (warnings and alerts still show)."
)


class TerminalProgress(Progress):
    """Each phase as it goes: on a terminal one line, redrawn a few times a second, with the count,
    the rate and (where the phase can tell how far it is) the time left; elsewhere (a log, cron's
    mail) one line when the phase ends. Every line starts with the phase's name."""

    REDRAW_SECONDS = 0.25
    ESTIMATE_FROM_FRACTION = 0.02  # before this much is done, a time left would be a guess
    RATE_FROM_SECONDS = 0.05  # a rate over less time than this says nothing

    def __init__(
        self, stream: TextIO | None = None, interactive: bool | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.clock = clock
        self.phase: str | None = None

    def begin(self, phase: str, unit: str) -> None:
        self.phase, self.unit, self.done = phase, unit, 0
        self.started = self.drawn = self.clock()

    def advance(self, done: int, fraction: float | None = None) -> None:
        self.done = done
        now = self.clock()
        if not self.interactive or now - self.drawn < self.REDRAW_SECONDS:
            return
        self.drawn = now
        elapsed = now - self.started
        line = f"{self.phase:<8}{done:,} {self.unit}, {done / elapsed if elapsed else 0:,.0f}/s"
        if (
            fraction is not None
            and self.ESTIMATE_FROM_FRACTION < fraction < 1
            and (left := elapsed / fraction * (1 - fraction)) >= 1
        ):
            line += f", about {left:.0f} s left"
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()

    def end(self, done: int | None = None) -> None:
        if self.phase is None:
            return
        if done is not None:
            self.done = done
        elapsed = self.clock() - self.started
        rate = f" ({self.done / elapsed:,.0f}/s)" if elapsed >= self.RATE_FROM_SECONDS and self.done else ""
        line = f"{self.phase:<8}{self.done:,} {self.unit} in {elapsed:.1f} s{rate}"
        self.stream.write(f"\r{line}\x1b[K\n" if self.interactive else f"{line}\n")
        self.stream.flush()
        self.phase = None


def progress_for(quiet: bool) -> Progress:
    return SILENT if quiet else TerminalProgress()
