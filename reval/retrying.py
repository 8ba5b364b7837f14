"""Backoff for retrying calls to the services Reval depends on (GMC Connect, TIS)."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    retry: int, base_seconds: float, cap_seconds: float = 3600.0, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform in [0, base * 2**retry), capped.

    Jitter spreads the retries of many callers that failed together, so they do not return
    together and fail again.
    """
    return min(cap_seconds, base_seconds * 2**retry) * rand()
