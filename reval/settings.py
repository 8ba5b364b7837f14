"""Reval's settings: read once from the environment (or given to create_app), each bad value
refused with one line naming the setting and the value. The only module that reads the
environment."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
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


def whole_number(config: Mapping[str, Any], name: str, default: int, *, minimum: int = 0) -> int:
    """A whole number setting, at least ``minimum``."""
    return number(config, name, default, minimum=minimum, whole=True)


def text(config: Mapping[str, Any], name: str) -> str | None:
    """A text setting, stripped; None when unset or blank."""
    return str(config.get(name) or "").strip() or None


# Every setting's name: only these are read from the environment (or given to create_app); see
# docs/operations.md.
SETTINGS = (
    "REVAL_DATABASE_URL",
    "REVAL_BROKER_URL",
    "REVAL_GMC_URL",
    "REVAL_GMC_USERNAME",
    "REVAL_GMC_PASSWORD",
    "REVAL_GMC_CONNECT_TIMEOUT",
    "REVAL_GMC_READ_TIMEOUT",
    "REVAL_GMC_ATTEMPTS",
    "REVAL_GMC_BACKOFF_SECONDS",
    "REVAL_DELIVERY_MAX_ATTEMPTS",
    "REVAL_DELIVERY_BACKOFF_SECONDS",
    "REVAL_TIS_URL",
    "REVAL_TIS_TOKEN_URL",
    "REVAL_TIS_CLIENT_ID",
    "REVAL_TIS_CLIENT_SECRET",
    "REVAL_TIS_CONNECT_TIMEOUT",
    "REVAL_TIS_READ_TIMEOUT",
    "REVAL_TIS_ATTEMPTS",
    "REVAL_TIS_BACKOFF_SECONDS",
    "REVAL_TIS_PAGE_SIZE",
    "REVAL_TIS_CONCURRENCY",
    "REVAL_RESULT_BACKEND",
    "REVAL_LOCK_URL",
    "REVAL_NIGHTLY_LOCK_SECONDS",
    "REVAL_NIGHTLY_AT",
    "REVAL_NIGHTLY_RETRIES",
    "REVAL_NIGHTLY_RETRY_MINUTES",
    "REVAL_DELIVER_EVERY_MINUTES",
    "REVAL_HIDE_EXPIRY_AT",
    "REVAL_BROKER_VISIBILITY_TIMEOUT",
    "REVAL_SHARD_SIZE",
    "REVAL_INSTANCE_PATH",
    "REVAL_DB_BUSY_SECONDS",
    "REVAL_MAX_TIS_DELETIONS_PERCENT",
    "REVAL_MAX_GMC_DISCONNECTIONS_PERCENT",
    "REVAL_SYNC_WAIT_SECONDS",
    "REVAL_SYNC_HELPER",
    "REVAL_AUTH",
    "REVAL_SECRET_KEY",
    "REVAL_OIDC_ISSUER",
    "REVAL_OIDC_CLIENT_ID",
    "REVAL_OIDC_CLIENT_SECRET",
    "REVAL_OIDC_ROLES_CLAIM",
    "REVAL_OIDC_BODIES_CLAIM",
    "REVAL_SECURE_COOKIES",
    "REVAL_API_ISSUER",
    "REVAL_API_AUDIENCE",
    "REVAL_API_JWKS_URL",
    "REVAL_API_RATE_LIMIT",
    "REVAL_API_RATE_LIMITS",
    "REVAL_RATE_LIMIT_STORAGE_URL",
    "REVAL_MAX_REQUEST_BYTES",
    "REVAL_SESSION_IDLE_MINUTES",
    "REVAL_DEBUG",
    "REVAL_METRICS_TOKEN",
    "REVAL_METRICS_DIR",
    "REVAL_LOG_FORMAT",
    "REVAL_AUDIT_RETENTION_DAYS",
    "REVAL_CHANGES_RETENTION_DAYS",
    "REVAL_ARCHIVE_AFTER_DAYS",
)
LOG_FORMATS = ("text", "json")


def environment_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings set in the environment (this process's, unless ``environ`` is given)."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in SETTINGS if environ.get(name)}


def export_metrics_folder(folder: str) -> None:
    """Names the folder of this process's metrics (and its children's) the way prometheus-client
    reads it: from PROMETHEUS_MULTIPROC_DIR, as each process first writes a metric."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


def exported_metrics_folder() -> str | None:
    """The folder of this process's metrics as a parent process named it, if one did."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_environment(**settings: str) -> dict[str, str]:
    """This process's environment with these settings: for a process it starts (a worker)."""
    return {**os.environ, **settings}


@dataclass(frozen=True)
class Settings:
    """Every setting, read and checked once: ``from_mapping`` refuses a bad value with one line
    naming the setting (NotConfigured). Text settings left unset are None."""

    database_url: str | None = None
    instance_path: str | None = None
    db_busy_seconds: float = 30
    # Celery, and the Redis of the nightly run's lock
    broker_url: str | None = None
    result_backend: str | None = None
    broker_visibility_timeout: float = 3600
    lock_url: str | None = None
    # GMC Connect, and the outbox of connection requests
    gmc_url: str | None = None
    gmc_username: str = ""
    gmc_password: str = field(default="", repr=False)
    gmc_connect_timeout: float = 5.0
    gmc_read_timeout: float = 120.0  # a large designated body's list takes a while to build
    gmc_attempts: int = 4
    gmc_backoff_seconds: float = 2.0
    delivery_max_attempts: int = 8
    delivery_backoff_seconds: float = 60.0
    # TIS
    tis_url: str | None = None
    tis_token_url: str = ""
    tis_client_id: str = ""
    tis_client_secret: str = field(default="", repr=False)
    tis_connect_timeout: float = 5.0
    tis_read_timeout: float = 60.0
    tis_attempts: int = 5
    tis_backoff_seconds: float = 1.0
    tis_page_size: int = 500
    tis_concurrency: int = 8
    # the schedule and the nightly run
    nightly_at: tuple[int, int] = (0, 30)  # outside the hour that the clocks change in
    nightly_lock_seconds: float = 1800
    nightly_retries: int = 3
    nightly_retry_minutes: float = 30
    deliver_every_minutes: float = 5
    hide_expiry_at: tuple[int, int] = (6, 0)
    shard_size: int = 200_000
    # syncs
    max_tis_deletions_percent: float = 5.0
    max_gmc_disconnections_percent: float = 10.0
    sync_wait_seconds: float = 300
    sync_helper: bool = True
    # sign-in, the web and the API
    auth: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_roles_claim: str = "roles"
    oidc_bodies_claim: str = "designated_bodies"
    secure_cookies: bool | None = None  # None: on, except in development
    session_idle_minutes: float = 30
    api_issuer: str | None = None
    api_audience: str | None = None
    api_jwks_url: str | None = None
    api_rate_limit: str = "600/minute"
    api_rate_limits: bool = True
    rate_limit_storage_url: str | None = None
    max_request_bytes: int = 1024 * 1024
    # running it: metrics, logs and the access audit
    metrics_token: str | None = field(default=None, repr=False)
    metrics_dir: str | None = None  # None: the instance folder's metrics/
    log_format: str = "text"
    audit_retention_days: int = 2190  # six years
    # other systems: how long the changes feed keeps its items, and when a doctor nobody holds is archived
    changes_retention_days: int = 185
    archive_after_days: int = 365

    @property
    def dev(self) -> bool:
        """REVAL_AUTH=dev: development sign-in and development API tokens."""
        return (self.auth or "").lower() == "dev"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls.from_mapping(environment_settings(environ))

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> Settings:
        """The settings in ``config`` (REVAL_* names to text), each checked."""
        return cls(
            database_url=text(config, "REVAL_DATABASE_URL"),
            instance_path=text(config, "REVAL_INSTANCE_PATH"),
            db_busy_seconds=number(config, "REVAL_DB_BUSY_SECONDS", cls.db_busy_seconds),
            **_broker(config),
            **_gmc(config),
            **_tis(config),
            **_schedule(config),
            max_tis_deletions_percent=number(config, "REVAL_MAX_TIS_DELETIONS_PERCENT", cls.max_tis_deletions_percent),
            max_gmc_disconnections_percent=number(
                config, "REVAL_MAX_GMC_DISCONNECTIONS_PERCENT", cls.max_gmc_disconnections_percent
            ),
            sync_wait_seconds=number(config, "REVAL_SYNC_WAIT_SECONDS", cls.sync_wait_seconds),
            sync_helper=flag(config, "REVAL_SYNC_HELPER", cls.sync_helper),
            **_web(config),
            **_operations(config),
            **_consumers(config),
        )


def _consumers(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "changes_retention_days": whole_number(
            config, "REVAL_CHANGES_RETENTION_DAYS", Settings.changes_retention_days, minimum=1
        ),
        "archive_after_days": whole_number(config, "REVAL_ARCHIVE_AFTER_DAYS", Settings.archive_after_days, minimum=1),
    }


def _broker(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "broker_url": text(config, "REVAL_BROKER_URL"),
        "result_backend": text(config, "REVAL_RESULT_BACKEND"),
        "broker_visibility_timeout": number(
            config, "REVAL_BROKER_VISIBILITY_TIMEOUT", Settings.broker_visibility_timeout, minimum=1
        ),
        "lock_url": text(config, "REVAL_LOCK_URL"),
    }


def _gmc(config: Mapping[str, Any]) -> dict[str, Any]:
    """REVAL_GMC_* and REVAL_DELIVERY_*: a URL without its account is refused (every call would fail)."""
    url = text(config, "REVAL_GMC_URL")
    username, password = str(config.get("REVAL_GMC_USERNAME") or ""), str(config.get("REVAL_GMC_PASSWORD") or "")
    missing = [
        name for name, value in (("REVAL_GMC_USERNAME", username), ("REVAL_GMC_PASSWORD", password)) if not value
    ]
    if url and missing:
        raise NotConfigured(
            f"REVAL_GMC_URL is set but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
            "GMC Connect would refuse every call"
        )
    return {
        "gmc_url": url,
        "gmc_username": username,
        "gmc_password": password,
        "gmc_connect_timeout": number(config, "REVAL_GMC_CONNECT_TIMEOUT", Settings.gmc_connect_timeout),
        "gmc_read_timeout": number(config, "REVAL_GMC_READ_TIMEOUT", Settings.gmc_read_timeout),
        "gmc_attempts": whole_number(config, "REVAL_GMC_ATTEMPTS", Settings.gmc_attempts, minimum=1),
        "gmc_backoff_seconds": number(config, "REVAL_GMC_BACKOFF_SECONDS", Settings.gmc_backoff_seconds),
        "delivery_max_attempts": whole_number(
            config, "REVAL_DELIVERY_MAX_ATTEMPTS", Settings.delivery_max_attempts, minimum=1
        ),
        "delivery_backoff_seconds": number(config, "REVAL_DELIVERY_BACKOFF_SECONDS", Settings.delivery_backoff_seconds),
    }


def _tis(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "tis_url": text(config, "REVAL_TIS_URL"),
        "tis_token_url": str(config.get("REVAL_TIS_TOKEN_URL") or ""),
        "tis_client_id": str(config.get("REVAL_TIS_CLIENT_ID") or ""),
        "tis_client_secret": str(config.get("REVAL_TIS_CLIENT_SECRET") or ""),
        "tis_connect_timeout": number(config, "REVAL_TIS_CONNECT_TIMEOUT", Settings.tis_connect_timeout),
        "tis_read_timeout": number(config, "REVAL_TIS_READ_TIMEOUT", Settings.tis_read_timeout),
        "tis_attempts": whole_number(config, "REVAL_TIS_ATTEMPTS", Settings.tis_attempts, minimum=1),
        "tis_backoff_seconds": number(config, "REVAL_TIS_BACKOFF_SECONDS", Settings.tis_backoff_seconds),
        "tis_page_size": whole_number(config, "REVAL_TIS_PAGE_SIZE", Settings.tis_page_size, minimum=1),
        "tis_concurrency": whole_number(config, "REVAL_TIS_CONCURRENCY", Settings.tis_concurrency, minimum=1),
    }


def _schedule(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "nightly_at": time_of_day(config, "REVAL_NIGHTLY_AT", "00:30"),
        "nightly_lock_seconds": number(config, "REVAL_NIGHTLY_LOCK_SECONDS", Settings.nightly_lock_seconds, minimum=1),
        "nightly_retries": whole_number(config, "REVAL_NIGHTLY_RETRIES", Settings.nightly_retries),
        "nightly_retry_minutes": number(config, "REVAL_NIGHTLY_RETRY_MINUTES", Settings.nightly_retry_minutes),
        "deliver_every_minutes": number(
            config, "REVAL_DELIVER_EVERY_MINUTES", Settings.deliver_every_minutes, minimum=0.1
        ),
        "hide_expiry_at": time_of_day(config, "REVAL_HIDE_EXPIRY_AT", "06:00"),
        "shard_size": whole_number(config, "REVAL_SHARD_SIZE", Settings.shard_size, minimum=1),
    }


def _web(config: Mapping[str, Any]) -> dict[str, Any]:
    secure_cookies = flag(config, "REVAL_SECURE_COOKIES", True) if text(config, "REVAL_SECURE_COOKIES") else None
    return {
        "auth": text(config, "REVAL_AUTH"),
        "secret_key": text(config, "REVAL_SECRET_KEY"),
        "oidc_issuer": text(config, "REVAL_OIDC_ISSUER"),
        "oidc_client_id": text(config, "REVAL_OIDC_CLIENT_ID"),
        "oidc_client_secret": text(config, "REVAL_OIDC_CLIENT_SECRET"),
        "oidc_roles_claim": text(config, "REVAL_OIDC_ROLES_CLAIM") or Settings.oidc_roles_claim,
        "oidc_bodies_claim": text(config, "REVAL_OIDC_BODIES_CLAIM") or Settings.oidc_bodies_claim,
        "secure_cookies": secure_cookies,
        "session_idle_minutes": number(config, "REVAL_SESSION_IDLE_MINUTES", Settings.session_idle_minutes, minimum=1),
        "api_issuer": text(config, "REVAL_API_ISSUER"),
        "api_audience": text(config, "REVAL_API_AUDIENCE"),
        "api_jwks_url": text(config, "REVAL_API_JWKS_URL"),
        "api_rate_limit": str(config.get("REVAL_API_RATE_LIMIT") or Settings.api_rate_limit),
        "api_rate_limits": flag(config, "REVAL_API_RATE_LIMITS", Settings.api_rate_limits),
        "rate_limit_storage_url": str(config.get("REVAL_RATE_LIMIT_STORAGE_URL") or "") or None,
        "max_request_bytes": whole_number(config, "REVAL_MAX_REQUEST_BYTES", Settings.max_request_bytes, minimum=1),
    }


def _operations(config: Mapping[str, Any]) -> dict[str, Any]:
    log_format = (text(config, "REVAL_LOG_FORMAT") or Settings.log_format).lower()
    if log_format not in LOG_FORMATS:
        raise NotConfigured(
            f"REVAL_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)} (got {config.get('REVAL_LOG_FORMAT')!r})"
        )
    return {
        "metrics_token": text(config, "REVAL_METRICS_TOKEN"),
        "metrics_dir": text(config, "REVAL_METRICS_DIR"),
        "log_format": log_format,
        "audit_retention_days": whole_number(
            config, "REVAL_AUDIT_RETENTION_DAYS", Settings.audit_retention_days, minimum=1
        ),
    }
