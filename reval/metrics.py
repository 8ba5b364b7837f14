"""Reval's Prometheus counters and histograms, shared by every process through prometheus-client's
multiprocess mode: each process writes its own files in one folder, and /metrics adds them up.

Gauges of stored state (doctors by queue, GMC requests by status, the last sync) are not kept
here: /metrics reads them from the database as it is scraped (reval.services.operations), so they
are right whichever process changed the data.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from reval.settings import export_metrics_folder, exported_metrics_folder

# Seconds: a page or API call (fast), and a call to GMC or TIS (a body's list takes minutes).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
SYNC_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

_FILE = re.compile(r"^[a-z_]+_(\d+)\.db$")  # prometheus-client's file names: <kind>_<pid>.db


@dataclass(frozen=True)
class Metrics:
    http_requests: Counter
    http_request_duration: Histogram
    sync_runs: Counter
    sync_duration: Histogram
    gmc_calls: Counter
    gmc_call_duration: Histogram
    tis_calls: Counter
    tis_call_duration: Histogram

    @classmethod
    def made(cls) -> Metrics:
        registry = CollectorRegistry()  # never scraped itself: /metrics reads the folder's files
        return cls(
            http_requests=Counter(
                "reval_http_requests",
                "HTTP requests answered, by route template, method and status.",
                ["route", "method", "status"],
                registry=registry,
            ),
            http_request_duration=Histogram(
                "reval_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template.",
                ["route"],
                buckets=REQUEST_BUCKETS,
                registry=registry,
            ),
            sync_runs=Counter("reval_sync_runs", "Syncs finished, by status.", ["status"], registry=registry),
            sync_duration=Histogram(
                "reval_sync_duration_seconds", "Time a sync took.", buckets=SYNC_BUCKETS, registry=registry
            ),
            gmc_calls=Counter(
                "reval_gmc_calls",
                "Calls to GMC Connect, by operation and outcome.",
                ["operation", "outcome"],
                registry=registry,
            ),
            gmc_call_duration=Histogram(
                "reval_gmc_call_duration_seconds",
                "Time a call to GMC Connect took, by operation.",
                ["operation"],
                buckets=CALL_BUCKETS,
                registry=registry,
            ),
            tis_calls=Counter(
                "reval_tis_calls",
                "Calls to TIS, by operation and outcome.",
                ["operation", "outcome"],
                registry=registry,
            ),
            tis_call_duration=Histogram(
                "reval_tis_call_duration_seconds",
                "Time a call to TIS took, by operation.",
                ["operation"],
                buckets=CALL_BUCKETS,
                registry=registry,
            ),
        )


_state: dict[str, Metrics | Path] = {}


def use_folder(folder: Path) -> Path:
    """This process's metrics folder: the first one named wins (a process writes to one folder;
    its children inherit it). Call before any metric is counted; the folder is made when the
    first one is."""
    chosen = _state.get("folder")
    if isinstance(chosen, Path):
        return chosen
    export_metrics_folder(str(folder))
    # prometheus-client chose its value class as it was imported; choose multiprocess values now.
    values.ValueClass = values.MultiProcessValue()
    _state["folder"] = folder
    return folder


def folder() -> Path | None:
    chosen = _state.get("folder")
    return chosen if isinstance(chosen, Path) else None


def metrics() -> Metrics:
    """The metrics, made on first use (after ``use_folder``, so they write to its files)."""
    made = _state.get("metrics")
    if not isinstance(made, Metrics):
        # A child started afresh (spawned) that chose no folder inherits its parent's, which the
        # parent may not have made yet: prometheus-client writes there all the same.
        chosen = folder() or _inherited_folder()
        if chosen is not None:
            chosen.mkdir(mode=0o700, parents=True, exist_ok=True)
        made = _state["metrics"] = Metrics.made()
    return made


def _inherited_folder() -> Path | None:
    named = exported_metrics_folder()
    return Path(named) if named else None


def remove_dead_processes(folder: Path) -> list[int]:
    """Removes the files of processes that no longer run (a server or worker starting calls this:
    what they counted starts again, which Prometheus' rate() and increase() read as a restart)."""
    removed = []
    for path in folder.glob("*.db"):
        matched = _FILE.match(path.name)
        if matched and not _running(int(matched.group(1))):
            path.unlink(missing_ok=True)
            removed.append(int(matched.group(1)))
    return sorted(set(removed))


def process_ended(pid: int) -> None:
    """The hook for a process manager's worker exit (gunicorn's ``child_exit``): forgets the
    process's live values. Its counts stay until the next start cleans the folder."""
    chosen = folder()
    if chosen is not None:
        mark_process_dead(pid, str(chosen))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def collected(folder: Path) -> CollectorRegistry:
    """A registry of every process's counters and histograms in ``folder`` (none before any is counted)."""
    registry = CollectorRegistry()
    if folder.is_dir():
        MultiProcessCollector(registry, path=str(folder))
    return registry


@contextmanager
def timed_call(counter: Counter, histogram: Histogram, operation: str) -> Iterator[list[str]]:
    """Counts one call to GMC or TIS and its time; the caller puts the outcome in the list it
    gets (left empty, an exception escaped: "error")."""
    outcome: list[str] = []
    started = time.perf_counter()
    try:
        yield outcome
    finally:
        histogram.labels(operation).observe(time.perf_counter() - started)
        counter.labels(operation, outcome[0] if outcome else "error").inc()
