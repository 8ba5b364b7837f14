"""Syncs and runs: `reval sync`, `refresh-people`, `nightly`, `runs`."""

from __future__ import annotations

import time

import click
from celery.exceptions import TimeoutError as CeleryTimeout

from reval.cli.base import AS_OF, command, context, day, print_json
from reval.cli.progress import QUIET, progress_for
from reval.extensions import broker_configured
from reval.reconcile.connections import Status
from reval.reconcile.runs import run_view
from reval.reconcile.sync import RunStatus
from reval.services import runs as run_service
from reval.services.sync import nightly_in_process, refresh_people_now, sync_now


ALLOW_MASS_CHANGES = click.option(
    "--allow-mass-changes", is_flag=True,
    help="Apply this once a source that would delete more than REVAL_MAX_TIS_DELETIONS_PERCENT of TIS people "
         "or disconnect more than REVAL_MAX_GMC_DISCONNECTIONS_PERCENT of a body's doctors (held back otherwise).",
)
WAIT_SECONDS = click.option(
    "--wait-seconds", type=click.FloatRange(min=0), metavar="SECONDS",
    help="How long to wait for another sync to finish before this one is recorded as SKIPPED "
         "(default: REVAL_SYNC_WAIT_SECONDS, 300).",
)


def say_waiting(message: str) -> None:
    click.echo(f"Sync lock busy: {message}", err=True)


@command(stoppable=True)
@click.option("--gmc-file", type=click.Path(dir_okay=False), help="GMC snapshot (.json or .jsonl); default: fetch from GMC Connect.")
@click.option("--tis-file", type=click.Path(dir_okay=False), help="TIS snapshot (.json or .jsonl); default: pull from TIS.")
@click.option("--as-of", type=AS_OF, help="Judge dates on this day (default: today in London).")
@ALLOW_MASS_CHANGES
@WAIT_SECONDS
@QUIET
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def sync(gmc_file, tis_file, as_of, allow_mass_changes, wait_seconds, quiet, as_json):
    """Take GMC's lists and TIS's people (from files, or live), decide every doctor, print the summary."""
    summary = sync_now(context(), gmc_file=gmc_file, tis_file=tis_file, as_of=day(as_of),
                       allow_mass_changes=allow_mass_changes, wait_seconds=wait_seconds, on_wait=say_waiting,
                       progress=progress_for(quiet))
    if as_json:
        print_json(summary)
        return
    click.echo(format_summary(summary))
    if "connectionRequestsDelivered" in summary:
        click.echo(f"Connection requests: {format_delivery(summary['connectionRequestsDelivered'])}")


@command(name="refresh-people", stoppable=True)
@click.argument("person_ids", nargs=-1, required=True, type=int)
@click.option("--as-of", type=AS_OF, help="Judge dates on this day (default: today in London).")
@WAIT_SECONDS
@QUIET
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def refresh_people(person_ids, as_of, wait_seconds, quiet, as_json):
    """Pull just these TIS people (a 404 means deleted) and re-decide the doctors they touch."""
    summary = refresh_people_now(context(), person_ids, day(as_of), wait_seconds=wait_seconds, on_wait=say_waiting,
                                 progress=progress_for(quiet))
    if as_json:
        print_json(summary)
    else:
        click.echo(format_summary(summary))


def format_summary(summary: dict) -> str:
    gmc, tis = summary["gmc"], summary["tis"]
    lines = [
        f"Sync run {summary['syncRunId']} {summary['status'].lower()}: as of {summary['asOf']}, rules {summary['ruleTable']}",
    ]
    if gmc["source"]:
        lines.append(
            f"GMC  {gmc['source']}: {len(gmc['designatedBodiesFetched'])} designated bodies fetched, "
            f"{gmc['doctorsRead']} doctors read; connections +{gmc['connectionsAdded']} -{gmc['connectionsRemoved']}, "
            f"{gmc['connectionsMoved']} moved, {gmc['connectionsUpdated']} details updated"
        )
    by_reason: dict[str, list[str]] = {}
    for code, why in gmc["designatedBodiesNotFetched"].items():
        by_reason.setdefault(why, []).append(code)
    for why, codes in by_reason.items():
        lines.append(f"     {len(codes)} not fetched ({why}), their doctors keep their connections: {', '.join(codes)}")
    if tis["source"] and not tis.get("fetched", True):
        lines.append(
            f"TIS  {tis['source']}: {tis['peopleRead']} people read, not applied ({tis['notFetchedReason']}): "
            f"TIS people keep their previous state"
        )
    elif tis["source"]:
        completeness = "complete" if tis["complete"] else "INCOMPLETE: nobody deleted"
        lines.append(
            f"TIS  {tis['source']}: {tis['peopleRead']} people read ({completeness}); "
            f"+{tis['peopleAdded']} added, {tis['peopleUpdated']} updated, {tis['peopleDeleted']} deleted"
        )
    else:
        lines.append(f"TIS  not fetched in this run ({tis['notFetchedReason']}): TIS people keep their previous state")
    lines.append(f"{'queue':<12}{'before':>8}{'after':>8}{'in':>8}{'out':>8}")
    for queue, counts in summary["queues"].items():
        lines.append(f"{queue:<12}{counts['before']:>8}{counts['after']:>8}{counts['in']:>8}{counts['out']:>8}")
    lines.append(
        f"{summary['doctors']} doctors, {summary['doctorsDecided']} decided afresh, {summary['decisionsChanged']} decisions changed, "
        f"{summary['events']} history events, {summary['hidesEnded']} hides ended"
    )
    lines.append(f"Rejected records: {summary['rejectedRecords']}")
    for rejection in summary["rejections"]:
        lines.append(f"  {rejection['source']} {rejection['locator']}: {rejection['message']}")
    if summary["rejectedRecords"] > len(summary["rejections"]):
        lines.append(f"  ... and {summary['rejectedRecords'] - len(summary['rejections'])} more in the data-quality log")
    return "\n".join(lines)


def format_delivery(counts: dict[str, int]) -> str:
    return (
        f"{counts['due']} due: {counts[Status.SUCCEEDED]} succeeded, {counts[Status.FAILED]} failed, "
        f"{counts[Status.PENDING]} still pending"
    )


NIGHTLY_START_SECONDS = 60


@command(stoppable=True)
@click.option("--wait", is_flag=True, help="Wait for the run to finish and print its summary.")
@click.option("--as-of", type=AS_OF, help="Judge dates on this day (default: today in London).")
@ALLOW_MASS_CHANGES
@QUIET
def nightly(wait, as_of, allow_mass_changes, quiet):
    """Trigger the nightly run now: by the workers when a broker is configured, else here."""
    if not broker_configured():
        summary = nightly_in_process(context(), day(as_of), allow_mass_changes=allow_mass_changes, on_wait=say_waiting,
                                     progress=progress_for(quiet))
        click.echo(format_summary(summary))
        click.echo(f"Connection requests: {format_delivery(summary['connectionRequestsDelivered'])}")
        return
    from reval.tasks import nightly as nightly_task

    as_of_day = context().checked_as_of(day(as_of))
    try:
        started = nightly_task.delay(as_of=as_of_day.isoformat(), allow_mass_changes=allow_mass_changes).get(
            timeout=NIGHTLY_START_SECONDS
        )
    except CeleryTimeout:
        raise click.ClickException(
            f"no worker started the nightly run within {NIGHTLY_START_SECONDS} s; is `reval worker` running?"
        ) from None
    click.echo(f"nightly run {started['runId']} {started['status'].lower()}")
    if wait and started["status"] == RunStatus.RUNNING:
        run = _wait_for_run(started["runId"])
        click.echo(format_run(run_view(run)))
        if run.status == RunStatus.FAILED:
            raise click.ClickException(f"nightly run {run.id} failed: {run.error}")


def _wait_for_run(run_id: int):
    while True:
        run = run_service.get_run(context(), run_id)
        if run.status != RunStatus.RUNNING:
            return run
        time.sleep(1)


@command()
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--limit", default=20, show_default=True, help="The most recent runs to show.")
def runs(output_format, limit):
    """List sync runs: status, times, sources fetched or not (and why), queue movements, rejections."""
    views = [run_view(run) for run in run_service.list_runs(context(), limit)]
    if output_format == "json":
        print_json(views)
        return
    for view in views:
        click.echo(format_run(view))


def format_run(view: dict) -> str:
    lines = [
        f"run {view['id']} {view['status'].lower()}: as of {view['asOf']}, started {view['startedAt']}, "
        f"finished {view['finishedAt'] or '-'}; {view['rejectedRecords']} rejected records"
    ]
    for source in ("gmc", "tis"):
        details = view["sources"][source]
        if details["notFetched"]:
            lines.append(f"  {source.upper()} not fetched: " + "; ".join(f"{k}: {v}" for k, v in details["notFetched"].items()))
    if view["queues"]:
        lines.append("  " + ", ".join(f"{q} {c['after']} (+{c['in']} -{c['out']})" for q, c in view["queues"].items()))
    if view["error"]:
        lines.append(f"  {view['error']}")
    return "\n".join(lines)
