"""Syncs and runs: `reval sync`, `refresh-people`, `nightly`, `runs`, `rejections`."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import click
from celery.exceptions import TimeoutError as CeleryTimeout

from reval.cli.base import AS_OF, command, context, day, print_json
from reval.cli.preview import format_moves
from reval.cli.progress import QUIET, progress_for
from reval.extensions import broker_configured
from reval.rules import HIDDEN_BY_ADMIN, Queue
from reval.services import runs as run_service
from reval.services.context import Context
from reval.services.preview import SyncDryRun, dry_run_now
from reval.services.queues import BodyCounts, designated_body_counts
from reval.services.runs import run_view
from reval.services.sync import nightly_in_process, refresh_people_now, sync_now
from reval.services.terms import RunStatus, Status, SyncSummary
from reval.spreadsheets import SafeCsvWriter

ALLOW_MASS_CHANGES = click.option(
    "--allow-mass-changes",
    is_flag=True,
    help="Apply this once a source that would delete more than REVAL_MAX_TIS_DELETIONS_PERCENT of TIS people "
    "or disconnect more than REVAL_MAX_GMC_DISCONNECTIONS_PERCENT of a body's doctors (held back otherwise).",
)
WAIT_SECONDS = click.option(
    "--wait-seconds",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="How long to wait for another sync to finish before this one is recorded as SKIPPED "
    "(default: REVAL_SYNC_WAIT_SECONDS, 300).",
)


def say_waiting(message: str) -> None:
    click.echo(f"Sync lock busy: {message}", err=True)


@command(stoppable=True)
@click.option(
    "--gmc-file",
    type=click.Path(dir_okay=False),
    help="GMC snapshot (.json or .jsonl); default: fetch from GMC Connect.",
)
@click.option(
    "--tis-file", type=click.Path(dir_okay=False), help="TIS snapshot (.json or .jsonl); default: pull from TIS."
)
@click.option("--as-of", type=AS_OF, help="Judge dates on this day (default: today in London).")
@ALLOW_MASS_CHANGES
@WAIT_SECONDS
@QUIET
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (as --format json).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="How to print the summary.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read, validate and decide as the sync would, print what would change, and write nothing.",
)
def sync(gmc_file, tis_file, as_of, allow_mass_changes, wait_seconds, quiet, as_json, output_format, dry_run):
    """Take GMC's lists and TIS's people (from files, or live), decide every doctor, print the summary."""
    ctx = context()
    as_json = as_json or output_format == "json"
    arguments = {
        "gmc_file": gmc_file,
        "tis_file": tis_file,
        "as_of": day(as_of),
        "allow_mass_changes": allow_mass_changes,
        "wait_seconds": wait_seconds,
        "on_wait": say_waiting,
        "progress": progress_for(quiet),
    }
    if dry_run:
        print_dry_run(dry_run_now(ctx, **arguments), as_json)
        return
    summary = sync_now(ctx, **arguments)
    if as_json:
        print_json(summary.to_json())
        return
    print_summary(ctx, summary)


def print_dry_run(dry_run: SyncDryRun, as_json: bool) -> None:
    if as_json:
        print_json(dry_run.as_json())
        return
    click.echo(format_summary(dry_run.summary, [], would=True))
    for held in dry_run.held_back:
        click.echo(f"Would hold back {held['source']} {held.get('designatedBody', 'snapshot')}: {held['reason']}")
    click.echo(format_moves(dry_run.moves, would=True))


@command(name="refresh-people", stoppable=True)
@click.argument("person_ids", nargs=-1, required=True, type=int)
@click.option("--as-of", type=AS_OF, help="Judge dates on this day (default: today in London).")
@WAIT_SECONDS
@QUIET
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def refresh_people(person_ids, as_of, wait_seconds, quiet, as_json):
    """Pull just these TIS people (a 404 means deleted) and re-decide the doctors they touch."""
    ctx = context()
    summary = refresh_people_now(
        ctx, person_ids, day(as_of), wait_seconds=wait_seconds, on_wait=say_waiting, progress=progress_for(quiet)
    )
    if as_json:
        print_json(summary.to_json())
    else:
        print_summary(ctx, summary)


REASONS_IN_SUMMARY = 10


def print_summary(ctx: Context, summary: SyncSummary, *, bodies: bool = True) -> None:
    """A run's summary, each reason its records were rejected for said once, the connection
    requests it delivered; then (``bodies``) what each designated body now sees."""
    reasons = (
        run_service.rejection_reasons(ctx, summary.sync_run_id)
        if summary.rejected_records and summary.sync_run_id is not None
        else []
    )
    click.echo(format_summary(summary, reasons))
    if summary.connection_requests_delivered is not None:
        click.echo(f"Connection requests: {format_delivery(summary.connection_requests_delivered)}")
    if bodies:
        click.echo("\n" + format_bodies(designated_body_counts(ctx)))


BODY_WIDTH = 40  # a body's code and name; a longer name is cut short, so the numbers keep their columns
BODY_COLUMNS = (  # heading, and how a body's counts give it
    ("CONNECTED", lambda c: c[Queue.CONNECTED]),
    ("DISCREPANCY", lambda c: c[Queue.DISCREPANCY]),
    ("HIDDEN by rule", lambda c: c[Queue.HIDDEN] - c[HIDDEN_BY_ADMIN]),
    ("HIDDEN by admin", lambda c: c[HIDDEN_BY_ADMIN]),
    ("HISTORIC", lambda c: c[Queue.HISTORIC]),
)


def format_bodies(bodies: Sequence[BodyCounts]) -> str:
    """A table of what each designated body sees: one row a body, one column a queue."""
    widths = [max(len(heading) + 2, 9) for heading, _count in BODY_COLUMNS]
    lines = [
        "What each designated body sees:",
        f"{'designated body':<{BODY_WIDTH}}"
        + "".join(f"{heading:>{w}}" for (heading, _), w in zip(BODY_COLUMNS, widths, strict=True)),
    ]
    for body in bodies:
        label = f"{body.code} {body.name}"
        if len(label) > BODY_WIDTH - 1:
            label = label[: BODY_WIDTH - 4] + "..."
        counts = "".join(f"{count(body.counts):>{w}}" for (_, count), w in zip(BODY_COLUMNS, widths, strict=True))
        lines.append(f"{label:<{BODY_WIDTH}}{counts}")
    lines.append(
        "A doctor visible to several designated bodies is counted in each, so a column can add up to more than"
    )
    lines.append(
        "the doctors in that queue. HIDDEN by rule: the rule table hid them; by admin: an admin of that body did."
    )
    return "\n".join(lines)


def format_summary(summary: SyncSummary, reasons: Sequence[run_service.RejectionReason], *, would: bool = False) -> str:
    """``would``: a dry run's summary, worded as what the sync would do (its queues' "after" too)."""
    if would:
        return _dry_run_summary(summary)
    gmc, tis = summary.gmc, summary.tis
    lines = [
        f"Sync run {summary.sync_run_id} {summary.status.lower()}: as of {summary.as_of}, rules {summary.rule_table}",
    ]
    lines += _gmc_summary_lines(gmc)
    lines.append(_tis_summary_line(tis))
    lines.append(f"{'queue':<12}{'before':>8}{'after':>8}{'in':>8}{'out':>8}")
    for queue, counts in summary.queues.items():
        lines.append(f"{queue:<12}{counts['before']:>8}{counts['after']:>8}{counts['in']:>8}{counts['out']:>8}")
    lines.append(
        f"{summary.doctors} doctors, {summary.doctors_decided} decided afresh, "
        f"{summary.decisions_changed} decisions changed, "
        f"{summary.events} history events, {summary.hides_ended} hides ended, "
        f"{summary.archived} archived, {summary.restored} restored"
    )
    lines.append(f"Rejected records: {summary.rejected_records}")
    lines += _rejection_reason_lines(reasons, summary.sync_run_id)
    return "\n".join(lines)


def _dry_run_summary(summary: SyncSummary) -> str:
    outcome = {RunStatus.SUCCEEDED: "succeed", RunStatus.PARTIAL: "be partial"}.get(summary.status, "fail")
    lines = [
        f"Dry run, nothing written: a sync as of {summary.as_of} with rules {summary.rule_table} would {outcome}",
        "What the sources would change:",
        *("  " + line for line in _gmc_summary_lines(summary.gmc)),
        "  " + _tis_summary_line(summary.tis),
        f"{'queue':<12}{'now':>8}{'would be':>10}{'in':>8}{'out':>8}",
    ]
    for queue, counts in summary.queues.items():
        lines.append(f"{queue:<12}{counts['before']:>8}{counts['after']:>10}{counts['in']:>8}{counts['out']:>8}")
    lines.append(
        f"{summary.doctors} doctors: {summary.doctors_decided} would be decided afresh, "
        f"{summary.decisions_changed} decisions would change, "
        f"{summary.events} history events would be recorded, {summary.hides_ended} hides would end"
    )
    for label, key in (("archived", "archivedDoctors"), ("restored", "restoredDoctors")):
        numbers = summary.stored.get(key, [])
        lines.append(f"Doctors that would be {label}: {len(numbers)}" + (f" ({', '.join(numbers)})" if numbers else ""))
    lines.append(f"Records that would be rejected: {summary.rejected_records}")
    for rejection in summary.stored.get("rejections", []):
        lines.append(f"  {rejection['source']} {rejection['locator']}: {rejection['message']}")
    return "\n".join(lines)


def _gmc_summary_lines(gmc: dict[str, Any]) -> list[str]:
    lines = []
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
    return lines


def _tis_summary_line(tis: dict[str, Any]) -> str:
    if tis["source"] and not tis.get("fetched", True):
        return (
            f"TIS  {tis['source']}: {tis['peopleRead']} people read, not applied ({tis['notFetchedReason']}): "
            f"TIS people keep their previous state"
        )
    if tis["source"]:
        completeness = "complete" if tis["complete"] else "INCOMPLETE: nobody deleted"
        return (
            f"TIS  {tis['source']}: {tis['peopleRead']} people read ({completeness}); "
            f"+{tis['peopleAdded']} added, {tis['peopleUpdated']} updated, {tis['peopleDeleted']} deleted"
        )
    return f"TIS  not fetched in this run ({tis['notFetchedReason']}): TIS people keep their previous state"


def _rejection_reason_lines(reasons: Sequence[run_service.RejectionReason], run_id: Any) -> list[str]:
    lines = []
    shown, rest = reasons[:REASONS_IN_SUMMARY], reasons[REASONS_IN_SUMMARY:]
    for reason in shown:
        if reason.records == 1:
            lines.append(f"  {reason.source} {reason.locator}: {reason.message}")
        else:
            lines.append(f"  {reason.records} {reason.source} records: {reason.message}")
    if rest:
        lines.append(f"  ... and {sum(r.records for r in rest)} more records, for {len(rest)} other reasons")
    if reasons:
        lines.append(f"  Each one, with its field, value and reason: reval rejections --run {run_id}")
    return lines


REJECTION_FIELDS = ("run", "source", "locator", "key", "field", "value", "reason")


@command()
@click.option("--run", "run_id", type=int, help="The sync run (default: the latest).")
@click.option(
    "--source", type=click.Choice(run_service.SOURCES, case_sensitive=False), help="Only this source's records."
)
@click.option(
    "--format", "output_format", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
def rejections(run_id, source, output_format):
    """List every record a sync run rejected (the data-quality log): where it is, its field, value and reason."""
    found = run_service.run_rejections(context(), run_id, source)
    rows = [
        {
            "run": found.run.id,
            "source": r.source,
            "locator": r.locator,
            "key": r.record_key,
            "field": r.field,
            "value": r.value,
            "reason": r.reason or r.message,
        }
        for r in found.records
    ]
    if output_format == "json":
        print_json(rows)
        return
    writer = SafeCsvWriter(sys.stdout, delimiter="\t" if output_format == "table" else ",", lineterminator="\n")
    writer.writerow(REJECTION_FIELDS)
    for row in rows:
        writer.writerow(row[name] for name in REJECTION_FIELDS)


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
        ctx = context()
        print_summary(
            ctx,
            nightly_in_process(
                ctx,
                day(as_of),
                allow_mass_changes=allow_mass_changes,
                on_wait=say_waiting,
                progress=progress_for(quiet),
            ),
        )
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
            lines.append(
                f"  {source.upper()} not fetched: " + "; ".join(f"{k}: {v}" for k, v in details["notFetched"].items())
            )
    if view["queues"]:
        lines.append("  " + ", ".join(f"{q} {c['after']} (+{c['in']} -{c['out']})" for q, c in view["queues"].items()))
    if view["archived"] or view["restored"]:
        lines.append(f"  {view['archived']} archived, {view['restored']} restored")
    if view["error"]:
        lines.append(f"  {view['error']}")
    return "\n".join(lines)
