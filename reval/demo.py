"""``reval demo``: a synthetic national dataset on local GMC and TIS services, two nights, admins at work.

GMC Connect and TIS are served by their simulators over their real protocols (SOAP; REST with
OAuth2), so the demo runs the same path as production: live pulls in the sync, and connection
requests through the outbox. The simulators keep running while the demo's web UI is served, so
what an admin does there goes to the same local GMC Connect.

The demo keeps to a database of its own: one in the instance folder (made afresh each time), or
one named on purpose that holds no runs but the demo's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from reval.gmc.client import GmcClient, GmcSettings
from reval.gmc.codes import Action
from reval.gmc.simulator import GmcConnectState, InjectedFault, RunningSimulator
from reval.models import ConnectionRequest, Doctor, SyncRun
from reval.progress import SILENT, Progress
from reval.reconcile.connections import deliver_request, record_connection_request
from reval.reconcile.live import fetched_gmc_lists, fetched_tis_people
from reval.reconcile.reference import configured_designated_bodies
from reval.reconcile.sync import GmcInput, SyncControls, TisInput, run_sync
from reval.refusals import Conflict
from reval.services.queues import BodyCounts, body_counts
from reval.snapshot_files import UnparseableRecord, open_snapshot
from reval.synthetic import SyntheticDataset, generate
from reval.tis.client import TisClient, TisSettings
from reval.tis.simulator import RunningTisSimulator, TisState

# Every run the demo records says so in its sources, so a database can be told apart from a real one.
DEMO_LABEL = "reval demo"
DEMO_USER = "reval-demo"
ADMIN_CONNECTIONS = 2  # the doctors the demo's admin connects: one accepted, one locked at GMC once


@dataclass
class DemoServices:
    """The demo's dataset and the local GMC Connect and TIS serving it."""

    dataset: SyntheticDataset
    gmc: RunningSimulator
    gmc_settings: GmcSettings
    tis: RunningTisSimulator
    tis_settings: TisSettings

    def app_settings(self) -> dict[str, str]:
        """The settings that point an app at these simulators (and at nothing real)."""
        return {
            "REVAL_GMC_URL": self.gmc_settings.url,
            "REVAL_GMC_USERNAME": self.gmc_settings.username,
            "REVAL_GMC_PASSWORD": self.gmc_settings.password,
            "REVAL_GMC_BACKOFF_SECONDS": "0.1",
            "REVAL_TIS_URL": self.tis_settings.url,
            "REVAL_TIS_TOKEN_URL": self.tis_settings.token_url,
            "REVAL_TIS_CLIENT_ID": self.tis_settings.client_id,
            "REVAL_TIS_CLIENT_SECRET": self.tis_settings.client_secret,
            "REVAL_BROKER_URL": "",
        }


@dataclass
class DemoResult:
    dataset: SyntheticDataset
    gmc_url: str
    previous_night: dict[str, Any]
    tonight: dict[str, Any]
    bodies: list[BodyCounts]  # what each designated body sees once tonight's requests are made
    requests: list[ConnectionRequest]


def check_demo_database(sessions: sessionmaker[Session]) -> None:
    """Refuses a database holding runs that are not the demo's: it may be a real one."""
    with sessions.begin() as session:
        other = session.scalars(
            select(SyncRun.id)
            .where(
                or_(
                    SyncRun.gmc_source.is_(None) | ~SyncRun.gmc_source.startswith(DEMO_LABEL),
                    SyncRun.tis_source.is_(None) | ~SyncRun.tis_source.startswith(DEMO_LABEL),
                )
            )
            .limit(1)
        ).first()
    if other is not None:
        raise Conflict(
            f"this database holds sync runs that are not the demo's (run {other}); the demo writes synthetic doctors, "
            "so give it a database of its own"
        )


def sync_files(
    sessions: sessionmaker[Session], gmc: Path, tis: Path, as_of: date, progress: Progress = SILENT
) -> dict[str, Any]:
    return run_sync(
        sessions,
        gmc=GmcInput.from_file(gmc),
        tis=TisInput.from_file(tis),
        as_of=as_of,
        controls=SyncControls(progress=progress),
    )


def gmc_lists(path: Path) -> list[dict[str, Any]]:
    """A GMC snapshot file's lists as the simulator holds them (lines that do not parse are left out)."""
    return [
        record
        for _locator, record in open_snapshot(path, label="GMC", list_key="designatedBodies")
        if isinstance(record, dict) and not isinstance(record, UnparseableRecord)
    ]


@contextmanager
def demo_services(
    directory: Path, doctors: int, as_of: date, seed: int, progress: Progress = SILENT
) -> Iterator[DemoServices]:
    """Generates the dataset and serves it from GMC Connect and TIS simulators until the block ends.
    GMC's lists start as the previous night's."""
    progress.begin("generate", "GMC-connected doctors")
    dataset = generate(directory, doctors, as_of, seed)
    progress.end(dataset.gmc_doctors)
    gmc_password, tis_secret = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    people = [record for _locator, record in open_snapshot(dataset.tis, label="TIS", list_key="people")]
    gmc_state = GmcConnectState.from_snapshot(
        gmc_lists(dataset.previous_gmc), DEMO_USER, gmc_password, today=lambda: as_of - timedelta(days=1)
    )
    with (
        RunningTisSimulator(TisState.from_snapshot(people, DEMO_USER, tis_secret), log_requests=False) as tis,
        RunningSimulator(gmc_state, log_requests=False) as gmc,
    ):
        yield DemoServices(
            dataset,
            gmc,
            GmcSettings(gmc.url, DEMO_USER, gmc_password, backoff_seconds=0.1),
            tis,
            TisSettings(tis.url, tis.token_url, DEMO_USER, tis_secret, concurrency=16),
        )


def run_demo(
    sessions: sessionmaker[Session], services: DemoServices, as_of: date, progress: Progress = SILENT
) -> DemoResult:
    """Two nights synced from the simulators, then an admin's connection requests."""
    gmc_client, tis_client = GmcClient(services.gmc_settings), TisClient(services.tis_settings)
    with sessions.begin() as session:
        codes = [body.code for body in configured_designated_bodies(session)]
    previous_night = _sync_live(sessions, gmc_client, tis_client, codes, as_of - timedelta(days=1), progress)
    # During the day GMC's lists moved on to tonight's.
    state = services.gmc.state
    tonight_state = GmcConnectState.from_snapshot(gmc_lists(services.dataset.gmc), "", "")
    state.lists, state.known_doctors = tonight_state.lists, tonight_state.known_doctors
    state.today = lambda: as_of
    tonight = _sync_live(sessions, gmc_client, tis_client, codes, as_of, progress)
    progress.begin("deliver", "connection requests")
    requests = _admins_connect_doctors(sessions, services.gmc, gmc_client, as_of)
    progress.end(len(requests))
    with sessions.begin() as session:
        bodies = body_counts(session)
    return DemoResult(services.dataset, services.gmc.url, previous_night, tonight, bodies, requests)


def _sync_live(
    sessions, gmc_client: GmcClient, tis_client: TisClient, codes: list[str], as_of: date, progress: Progress
) -> dict[str, Any]:
    with (
        fetched_gmc_lists(gmc_client, codes, progress=progress) as gmc,
        fetched_tis_people(tis_client, progress) as tis,
    ):
        gmc.label, tis.label = f"{DEMO_LABEL}: {gmc.label}", f"{DEMO_LABEL}: {tis.label}"
        return run_sync(sessions, gmc=gmc, tis=tis, as_of=as_of, controls=SyncControls(progress=progress))


def _admins_connect_doctors(
    sessions: sessionmaker[Session], simulator: RunningSimulator, client: GmcClient, as_of: date
) -> list[ConnectionRequest]:
    """Two unconnected trainees connected to their programme's owner: one accepted, one locked at GMC."""
    now = datetime.combine(as_of, time(9, 0), tzinfo=UTC)
    with sessions.begin() as session:
        unconnected = session.scalars(
            select(Doctor).where(Doctor.reason == "NOT_CONNECTED").order_by(Doctor.gmc_number).limit(ADMIN_CONNECTIONS)
        ).all()
        request_ids = [
            record_connection_request(
                session,
                gmc_number_text=doctor.gmc_number,
                designated_body=doctor.programme_owner_designated_bodies[0],
                action=Action.ADD,
                reason="1",
                requested_by="demo admin",
                now=now,
            ).id
            for doctor in unconnected
        ]
        numbers = [doctor.gmc_number for doctor in unconnected]
    if len(numbers) == ADMIN_CONNECTIONS:
        # Once: resent from the web UI, it goes through.
        simulator.state.faults.append(InjectedFault("return-code", gmc_number=numbers[1], return_code="106", times=1))
    delivered = [deliver_request(sessions, client, request_id, now=lambda: now) for request_id in request_ids]
    return [request for request in delivered if request is not None]  # (each is: just recorded, none claimed)
