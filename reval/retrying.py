"""Retrying calls to the services Reval depends on (GMC Connect, TIS): one policy, on tenacity.

A call that fails in a way worth trying again (``RetryLater``) is tried again after exponential
backoff with full jitter, or after as long as the service asked, up to a number of attempts.
The GMC outbox keeps its own timers in the database, with the same backoff; Celery's tasks keep
theirs (``autoretry_for``), the task layer's own policy.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

T = TypeVar("T")


class RetryLater(Exception):
    """An attempt failed in a way worth another. ``problem`` says how; ``retry_after``: the seconds
    the service asked to wait, if it did; ``outcome``: what the attempt returned, if anything."""

    def __init__(self, problem: str, retry_after: float | None = None, outcome: object = None):
        super().__init__(problem)
        self.problem, self.retry_after, self.outcome = problem, retry_after, outcome


def backoff_delay(
    retry: int, base_seconds: float, cap_seconds: float = 3600.0, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform in [0, base * 2**retry), capped.

    Jitter spreads the retries of many callers that failed together, so they do not return
    together and fail again.
    """
    return min(cap_seconds, base_seconds * 2**retry) * rand()


def with_retries(
    attempt: Callable[[], T],
    attempts: int,
    backoff_seconds: float,
    on_retry: Callable[[RetryLater, int, float], None],
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """``attempt()``'s result and how many calls it took. A call that raises RetryLater is made
    again, up to ``attempts`` calls in all, after ``on_retry(error, attempt number, delay)``; the
    last call's RetryLater is raised. Anything else it raises is not retried."""

    def wait(state: tenacity.RetryCallState) -> float:
        asked = _retry_later(state).retry_after
        return asked if asked is not None else backoff_delay(state.attempt_number - 1, backoff_seconds)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        on_retry(_retry_later(state), state.attempt_number, state.upcoming_sleep)

    policy = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait,
        retry=tenacity.retry_if_exception_type(RetryLater),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    for trying in policy:
        with trying:
            result = attempt()
    return result, trying.retry_state.attempt_number


def _retry_later(state: tenacity.RetryCallState) -> RetryLater:
    error = state.outcome.exception() if state.outcome is not None else None
    assert isinstance(error, RetryLater)  # only RetryLater is retried
    return error
