"""``reval demo``: a synthetic national dataset on local GMC and TIS services, two nights, admins at work.

GMC Connect and TIS are served by their simulators over their real protocols (SOAP; REST with
OAuth2), so the demo runs the same path as production: live pulls in the sync, and connection
requests through the outbox.
"""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reval.gmc.client import GmcClient, GmcSettings
from reval.gmc.codes import Action
from reval.gmc.simulator import GmcConnectState, InjectedFault, RunningSimulator
from reval.models import ConnectionRequest, Doctor
from reval.reconcile.connections import deliver_request, record_connection_request
from reval.reconcile.live import fetched_gmc_lists, fetched_tis_people
from reval.services.queues import counts_by_body
from reval.reconcile.reference import configured_designated_bodies
from reval.reconcile.sync import GmcInput, TisInput, run_sync
from reval.snapshot_files import UnparseableRecord, open_snapshot
from reval.synthetic import SyntheticDataset, generate
from reval.tis.client import TisClient, TisSettings
from reval.tis.simulator import RunningTisSimulator, TisState


@dataclass
class DemoResult:
    dataset: SyntheticDataset
    gmc_url: str
    previous_night: dict[str, Any]
    tonight: dict[str, Any]
    bodies: list[tuple[str, str, dict[str, int]]]  # (code, name, queue -> count)
    requests: list[ConnectionRequest]


def sync_files(sessions: sessionmaker[Session], gmc: Path, tis: Path, as_of: date) -> dict[str, Any]:
    return run_sync(
        sessions,
        gmc=GmcInput.from_file(gmc),
        tis=TisInput.from_file(tis),
        as_of=as_of,
    )


def gmc_lists(path: Path) -> list[dict[str, Any]]:
    """A GMC snapshot file's lists as the simulator holds them (lines that do not parse are left out)."""
    return [
        record for _locator, record in open_snapshot(path, label="GMC", list_key="designatedBodies")
        if isinstance(record, dict) and not isinstance(record, UnparseableRecord)
    ]


@contextmanager
def local_tis(path: Path) -> Iterator[TisClient]:
    secret = secrets.token_urlsafe(12)
    people = [record for _locator, record in open_snapshot(path, label="TIS", list_key="people")]
    with RunningTisSimulator(TisState.from_snapshot(people, "reval-demo", secret), log_requests=False) as simulator:
        yield TisClient(TisSettings(simulator.url, simulator.token_url, "reval-demo", secret, concurrency=16))


@contextmanager
def local_gmc_connect(path: Path, as_of: date) -> Iterator[tuple[RunningSimulator, GmcClient]]:
    password = secrets.token_urlsafe(12)
    state = GmcConnectState.from_snapshot(gmc_lists(path), "reval-demo", password, today=lambda: as_of)
    with RunningSimulator(state, log_requests=False) as simulator:
        yield simulator, GmcClient(GmcSettings(simulator.url, "reval-demo", password, backoff_seconds=0.1))


def run_demo(sessions: sessionmaker[Session], directory: Path, doctors: int, as_of: date, seed: int) -> DemoResult:
    dataset = generate(directory, doctors, as_of, seed)
    with sessions.begin() as session:
        codes = [body.code for body in configured_designated_bodies(session)]
    with local_tis(dataset.tis) as tis_client, local_gmc_connect(dataset.previous_gmc, as_of - timedelta(days=1)) as (
        simulator, client
    ):
        with fetched_gmc_lists(client, codes) as gmc, fetched_tis_people(tis_client) as tis:
            previous_night = run_sync(sessions, gmc=gmc, tis=tis, as_of=as_of - timedelta(days=1))
        # During the day GMC's lists moved on to tonight's.
        tonight_state = GmcConnectState.from_snapshot(gmc_lists(dataset.gmc), "", "")
        simulator.state.lists, simulator.state.known_doctors = tonight_state.lists, tonight_state.known_doctors
        simulator.state.today = lambda: as_of
        with fetched_gmc_lists(client, codes) as gmc, fetched_tis_people(tis_client) as tis:
            tonight = run_sync(sessions, gmc=gmc, tis=tis, as_of=as_of)
        requests = _admins_connect_doctors(sessions, simulator, client, as_of)
    with sessions.begin() as session:
        counts = counts_by_body(session)
        bodies = [(b.code, b.name, counts.get(b.code, {})) for b in configured_designated_bodies(session)]
    return DemoResult(dataset, simulator.url, previous_night, tonight, bodies, requests)


def _admins_connect_doctors(
    sessions: sessionmaker[Session], simulator: RunningSimulator, client: GmcClient, as_of: date
) -> list[ConnectionRequest]:
    """Two unconnected trainees connected to their programme's owner: one accepted, one locked at GMC."""
    now = datetime.combine(as_of, time(9, 0), tzinfo=timezone.utc)
    with sessions.begin() as session:
        unconnected = session.scalars(
            select(Doctor).where(Doctor.reason == "NOT_CONNECTED").order_by(Doctor.gmc_number).limit(2)
        ).all()
        request_ids = [
            record_connection_request(
                session, gmc_number_text=doctor.gmc_number, designated_body=doctor.programme_owner_designated_bodies[0],
                action=Action.ADD, reason="1", requested_by="demo admin", now=now,
            ).id
            for doctor in unconnected
        ]
        numbers = [doctor.gmc_number for doctor in unconnected]
    if len(numbers) == 2:
        simulator.state.faults.append(InjectedFault("return-code", gmc_number=numbers[1], return_code="106"))
    return [deliver_request(sessions, client, request_id, now=lambda: now) for request_id in request_ids]
