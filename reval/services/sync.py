"""Running a sync now: from snapshot files, or live from GMC Connect and TIS."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path

from reval.progress import SILENT, Progress
from reval.reconcile.connections import DeliveryPolicy
from reval.reconcile.live import TisPullFailed, fetched_gmc_lists, fetched_tis_people, pulled_people
from reval.reconcile.nightly import run_nightly_in_process
from reval.reconcile.reference import configured_designated_bodies
from reval.reconcile.summary import SyncSummary
from reval.reconcile.sync import GmcInput, SyncControls, TisInput, run_sync
from reval.refusals import NotConfigured
from reval.services.access import require_national
from reval.services.audit import purge_expired_records
from reval.services.context import Context


def sync_now(
    context: Context,
    *,
    gmc_file: str | Path | None = None,
    tis_file: str | Path | None = None,
    as_of: date | None = None,
    allow_mass_changes: bool = False,
    wait_seconds: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    progress: Progress = SILENT,
) -> SyncSummary:
    """Takes each source from its file, or live when no file is given, decides every doctor and
    returns the run's summary. Without workers the sync is the whole nightly job, so due
    connection requests are delivered after it. ``allow_mass_changes``: apply a source the
    mass-change guard would hold back; ``wait_seconds``: how long to wait for another sync
    (default: the setting), telling ``on_wait`` why; ``progress`` hears each phase."""
    require_national(context.actor, "run a sync")
    day = context.checked_as_of(as_of)
    gateway = context.require_gateway()
    controls = sync_controls(context, allow_mass_changes, wait_seconds, on_wait, progress)
    with sync_inputs(context, gmc_file, tis_file, progress) as (gmc, tis, tis_not_fetched_reason):
        summary = SyncSummary.from_json(
            run_sync(
                context.sessions,
                gmc=gmc,
                tis=tis,
                as_of=day,
                tis_not_fetched_reason=tis_not_fetched_reason,
                controls=controls,
            )
        )
    if not gateway.broker_configured and _gmc_configured(context):
        progress.begin("deliver", "connection requests due")
        summary.connection_requests_delivered = delivered = gateway.deliver_due()
        progress.end(delivered["due"])
    return summary


def sync_controls(
    context: Context,
    allow_mass_changes: bool,
    wait_seconds: float | None,
    on_wait: Callable[[str], None] | None,
    progress: Progress,
) -> SyncControls:
    """The settings' guard, wait and helper, overridden where the caller asks."""
    return SyncControls.from_settings(
        context.require_gateway().settings,
        allow_mass_changes=allow_mass_changes,
        wait_seconds=wait_seconds,
        on_wait=on_wait,
        progress=progress,
    )


@contextlib.contextmanager
def sync_inputs(
    context: Context, gmc_file: str | Path | None, tis_file: str | Path | None, progress: Progress
) -> Iterator[tuple[GmcInput | None, TisInput | None, str | None]]:
    """Each source from its file, or live when no file is given, and why TIS was not fetched (if
    it could not be). Files are opened (and checked as far as their lists) and live services
    checked for settings before anything is fetched or written."""
    gateway = context.require_gateway()
    gmc = GmcInput.from_file(gmc_file) if gmc_file else None
    tis = TisInput.from_file(tis_file) if tis_file else None
    live_gmc = gateway.gmc_client() if gmc is None else None
    live_tis = gateway.tis_client() if tis is None else None
    tis_not_fetched_reason = None
    with contextlib.ExitStack() as stack:
        if live_gmc is not None:
            with context.reads() as session:
                codes = [body.code for body in configured_designated_bodies(session)]
            gmc = stack.enter_context(fetched_gmc_lists(live_gmc, codes, progress=progress))
        if live_tis is not None:
            try:
                tis = stack.enter_context(fetched_tis_people(live_tis, progress))
            except TisPullFailed as error:
                tis_not_fetched_reason = str(error)
        yield gmc, tis, tis_not_fetched_reason


def refresh_people_now(
    context: Context,
    person_ids: Sequence[int],
    as_of: date | None = None,
    wait_seconds: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    progress: Progress = SILENT,
) -> SyncSummary:
    """Pulls just these TIS people (404: deleted) and decides again the doctors they touch.
    Raises TisUnavailable when TIS cannot be read (nothing is changed)."""
    require_national(context.actor, "refresh TIS people")
    day = context.checked_as_of(as_of)
    gateway = context.require_gateway()
    controls = SyncControls.from_settings(
        gateway.settings, wait_seconds=wait_seconds, on_wait=on_wait, progress=progress
    )
    tis = pulled_people(gateway.tis_client(), person_ids)
    return SyncSummary.from_json(run_sync(context.sessions, gmc=None, tis=tis, as_of=day, controls=controls))


def nightly_in_process(
    context: Context,
    as_of: date | None = None,
    run_id: int | None = None,
    allow_mass_changes: bool = False,
    on_wait: Callable[[str], None] | None = None,
    progress: Progress = SILENT,
) -> SyncSummary:
    """The whole nightly job here, one step after another (no workers): fetch every source,
    reconcile, deliver due connection requests. ``run_id``: the run, if already recorded."""
    require_national(context.actor, "run the nightly job")
    day = context.checked_as_of(as_of)
    gateway = context.require_gateway()
    policy = DeliveryPolicy.from_settings(gateway.settings)
    controls = SyncControls.from_settings(
        gateway.settings, allow_mass_changes=allow_mass_changes, on_wait=on_wait, progress=progress
    )
    summary = SyncSummary.from_json(
        run_nightly_in_process(
            context.sessions, gateway.gmc_client(), gateway.tis_client(), day, policy, run_id=run_id, controls=controls
        )
    )
    purge_expired_records(context.sessions, context.now(), gateway.settings.audit_retention_days)  # housekeeping
    return summary


def _gmc_configured(context: Context) -> bool:
    try:
        context.require_gateway().check_delivery()
    except NotConfigured:
        return False
    return True
