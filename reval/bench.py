"""``reval bench``: sync a synthetic national dataset into a fresh database and measure it."""

from __future__ import annotations

import resource
import tempfile
import time
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from reval.db import ensure_schema, make_engine, session_factory
from reval.demo import sync_files
from reval.models import Doctor
from reval.snapshot_files import open_snapshot
from reval.synthetic import generate
from reval.tis.records import PersonSchema, read_person

VALIDATION_SAMPLE = 2000


def peak_memory_mib() -> float:
    # ru_maxrss is in KiB on Linux: the peak of this process so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(action) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def validation_cost(tis_file: Path) -> dict[str, float]:
    """Microseconds per TIS person: the bulk reader against the marshmallow schema, same records."""
    sample = [raw for _locator, raw in islice(open_snapshot(tis_file, label="TIS", list_key="people"), VALIDATION_SAMPLE)]
    schema = PersonSchema()

    def each(validate):
        def run():
            for raw in sample:
                try:
                    validate(raw)
                except Exception:  # rejected records cost time too; which error is beside the point here
                    pass
        return run

    _, bulk = _timed(each(read_person))
    _, marshmallow = _timed(each(schema.load))
    return {"bulkMicrosPerPerson": bulk / len(sample) * 1e6, "marshmallowMicrosPerPerson": marshmallow / len(sample) * 1e6}


def run_bench(doctors: int, seed: int, as_of: date, database_url: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="reval-bench-") as work:
        directory = Path(work)
        dataset, generate_seconds = _timed(lambda: generate(directory, doctors, as_of, seed))
        engine = make_engine(database_url or f"sqlite:///{directory / 'bench.sqlite'}")
        sessions = session_factory(engine)
        _, migrate_seconds = _timed(lambda: ensure_schema(engine))
        with sessions.begin() as session:
            if session.scalar(select(func.count()).select_from(Doctor)):
                raise ValueError(f"the bench needs an empty database; {database_url} already holds doctors")
        memory_before = peak_memory_mib()
        full, full_seconds = _timed(lambda: sync_files(sessions, dataset.gmc, dataset.tis, as_of))
        memory_after_full = peak_memory_mib()
        again, again_seconds = _timed(lambda: sync_files(sessions, dataset.gmc, dataset.tis, as_of))
        figures = {
            "doctors": dataset.gmc_doctors,
            "tisPeople": dataset.tis_people,
            "decided": full["doctors"],
            "database": engine.dialect.name,
            "generateSeconds": generate_seconds,
            "migrateSeconds": migrate_seconds,
            "fullSyncSeconds": full_seconds,
            "unchangedResyncSeconds": again_seconds,
            "unchangedResyncEvents": again["events"],
            "fullSyncPhases": full["seconds"],
            "unchangedResyncPhases": again["seconds"],
            "peakMemoryMiBBeforeSync": memory_before,
            "peakMemoryMiBAfterFullSync": memory_after_full,
            "peakMemoryMiB": peak_memory_mib(),
            "queues": {queue: counts["after"] for queue, counts in full["queues"].items()},
            "rejectedRecords": full["rejectedRecords"],
            **validation_cost(dataset.tis),
        }
        engine.dispose()
        return figures
