"""Reading settings: each bad value refused with one line naming the setting and the value."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, overload

from reval.refusals import NotConfigured

FALSE = ("0", "false", "no", "off")
TRUE = ("1", "true", "yes", "on")
HOURS_A_DAY, MINUTES_AN_HOUR = 24, 60


def flag(config: Mapping[str, Any], name: str, default: bool) -> bool:
    value = str(config.get(name) if config.get(name) is not None else "").strip().lower()
    if not value:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise NotConfigured(f"{name} must be one of {', '.join(TRUE + FALSE)} (got {config.get(name)!r})")


@overload
def number(
    config: Mapping[str, Any], name: str, default: float, *, minimum: float = 0, whole: Literal[False] = False
) -> float: ...


@overload
def number(config: Mapping[str, Any], name: str, default: int, *, minimum: float = 0, whole: Literal[True]) -> int: ...


def number(config: Mapping[str, Any], name: str, default: float, *, minimum: float = 0, whole: bool = False) -> float:
    """A number setting (a whole number if ``whole``), at least ``minimum``."""
    raw = config.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(str(raw).strip()) if whole else float(str(raw).strip())
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise NotConfigured(f"{name} must be {kind} (got {raw!r})") from None
    if value < minimum or (isinstance(value, float) and math.isnan(value)):
        raise NotConfigured(f"{name} must be at least {minimum:g} (got {raw!r})")
    return value


def time_of_day(config: Mapping[str, Any], name: str, default: str) -> tuple[int, int]:
    """A time of day setting written HH:MM, as (hour, minute)."""
    raw = str(config.get(name) or default).strip()
    hour, _, minute = raw.partition(":")
    if not (
        hour.isdigit()
        and minute.isdigit()
        and int(hour) < HOURS_A_DAY
        and int(minute) < MINUTES_AN_HOUR
        and len(minute) == len("MM")
    ):
        raise NotConfigured(f"{name} must be a time of day written HH:MM, e.g. {default} (got {config.get(name)!r})")
    return int(hour), int(minute)
