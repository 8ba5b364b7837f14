"""``reval demo``: a synthetic national dataset, synced over two nights into the configured database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from reval.reconcile.queries import queue_counts_by_body
from reval.reconcile.reference import configured_designated_bodies
from reval.reconcile.sync import GmcInput, TisInput, run_sync
from reval.snapshot_files import open_snapshot
from reval.synthetic import SyntheticDataset, generate


@dataclass
class DemoResult:
    dataset: SyntheticDataset
    previous_night: dict[str, Any]
    tonight: dict[str, Any]
    bodies: list[tuple[str, str, dict[str, int]]]  # (code, name, queue -> count)


def sync_files(sessions: sessionmaker[Session], gmc: Path, tis: Path, as_of: date) -> dict[str, Any]:
    return run_sync(
        sessions,
        gmc=GmcInput(str(gmc), open_snapshot(gmc, label="GMC", list_key="designatedBodies")),
        tis=TisInput(str(tis), open_snapshot(tis, label="TIS", list_key="people")),
        as_of=as_of,
    )


def run_demo(sessions: sessionmaker[Session], directory: Path, doctors: int, as_of: date, seed: int) -> DemoResult:
    dataset = generate(directory, doctors, as_of, seed)
    previous_night = sync_files(sessions, dataset.previous_gmc, dataset.tis, as_of - timedelta(days=1))
    tonight = sync_files(sessions, dataset.gmc, dataset.tis, as_of)
    with sessions.begin() as session:
        counts = queue_counts_by_body(session)
        bodies = [(b.code, b.name, counts.get(b.code, {})) for b in configured_designated_bodies(session)]
    return DemoResult(dataset, previous_night, tonight, bodies)
