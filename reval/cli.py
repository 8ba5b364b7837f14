"""The ``reval`` command: the same plain functions the web and workers call, for a terminal."""

from __future__ import annotations

import contextlib
import csv
import functools
import getpass
import io
import sys
import threading
from datetime import date, datetime
from pathlib import Path

import click
import orjson
from celery.exceptions import TimeoutError as CeleryTimeout
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from reval.app import NotConfigured, broker_configured, create_app, database, gmc_client, tis_client
from reval.gmc.client import GmcSettings
from reval.db import schema_is_current, upgrade_schema
from reval.designated_bodies import DesignatedBodyFileError, read_designated_bodies_csv
from reval.reconcile.common import RefusedRequest, utcnow
from reval.reconcile.connections import (
    DeliveryPolicy,
    Status,
    list_requests,
    record_connection_request,
    record_resend,
    request_view,
)
from reval.reconcile.hides import record_hide, record_unhide
from reval.reconcile.live import TisPullFailed, fetched_gmc_lists, fetched_tis_people, pulled_people
from reval.reconcile.queries import EXPORT_FIELDS, doctor_history, explain_doctor, export_rows
from reval.reconcile.reference import configured_code, configured_designated_bodies, replace_designated_bodies
from reval.reconcile.sync import GmcInput, SyncFailed, TisInput, latest_successful_run, run_sync
from reval.rules import DEFAULT_RULE_TABLE, Queue, RuleEngine
from reval.rules.checks import check_table
from reval.rules.engine import placement_state, programme_state
from reval.rules.table import format_value
from reval.snapshot_files import SnapshotUnreadable, open_snapshot
from reval.tasks import PersonChangedConsumer, beat_schedule, deliver_due_now, dispatch_delivery, london_today, nightly
from reval.reconcile.nightly import run_nightly_in_process
from reval.reconcile.runs import recent_runs, run_view
from reval.models import SyncRun
from reval.tis.client import TisUnavailable
from reval.gmc.codes import CHANGE_REASONS, Action
from reval.validation import InvalidValue


class CommandRefused(click.ClickException):
    """A one-line refusal with exit status 2: bad input, nothing changed."""

    exit_code = 2


def refusals_exit_2(command):
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (RefusedRequest, InvalidValue, SnapshotUnreadable, DesignatedBodyFileError, NotConfigured) as error:
            raise CommandRefused(str(error)) from None
        except SyncFailed as error:
            raise click.ClickException(str(error)) from None

    return wrapper


AS_OF = click.DateTime(formats=["%Y-%m-%d"])


def as_of_or_today(value: datetime | None) -> date:
    return value.date() if value else date.today()


def sessions():
    return database().sessions


def print_json(value) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False, load_dotenv=False, set_debug_flag=False)
def cli():
    """Reval: reconciles GMC prescribed connections with TIS programme memberships."""


def main() -> None:
    cli.main(prog_name="reval")


# --- database -----------------------------------------------------------------------------------


@cli.group("db")
def db_group():
    """The database schema (migrated automatically on first use)."""


@db_group.command("upgrade")
def db_upgrade():
    """Migrate the database to the latest schema."""
    upgrade_schema(database().engine)
    click.echo("database schema is up to date")


@db_group.command("current")
def db_current():
    """Say whether the database schema is up to date."""
    click.echo("up to date" if schema_is_current(database().engine) else "needs `reval db upgrade`")


# --- designated bodies --------------------------------------------------------------------------


@cli.group("designated-bodies", invoke_without_command=True)
@click.pass_context
@with_appcontext
def designated_bodies_group(ctx):
    """List the configured designated bodies (only these are fetched from GMC)."""
    if ctx.invoked_subcommand is None:
        with sessions().begin() as session:
            for body in configured_designated_bodies(session):
                click.echo(f"{body.code:<11} {body.name}" + (f" (TIS owner: {body.owner})" if body.owner != body.name else ""))


@designated_bodies_group.command("load")
@click.argument("csv_file", type=click.Path(dir_okay=False))
@refusals_exit_2
def designated_bodies_load(csv_file):
    """Replace the configured designated bodies with those in CSV_FILE (header code,name,owner)."""
    bodies = read_designated_bodies_csv(csv_file)
    with sessions().begin() as session:
        replace_designated_bodies(session, bodies)
    click.echo(f"{len(bodies)} designated bodies configured")


# --- sync ---------------------------------------------------------------------------------------


@cli.command("sync")
@click.option("--gmc-file", type=click.Path(dir_okay=False), help="GMC snapshot (.json or .jsonl); default: fetch from GMC Connect.")
@click.option("--tis-file", type=click.Path(dir_okay=False), help="TIS snapshot (.json or .jsonl); default: pull from TIS.")
@click.option("--as-of", type=AS_OF, help="Judge dates on this day (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@refusals_exit_2
def sync_command(gmc_file, tis_file, as_of, as_json):
    """Take GMC's lists and TIS's people (from files, or live), decide every doctor, print the summary."""
    # Files are opened (and a .json one fully read), and live services checked for settings,
    # before anything is fetched or written.
    gmc = GmcInput.from_file(gmc_file) if gmc_file else None
    tis = TisInput.from_file(tis_file) if tis_file else None
    live_gmc = gmc_client() if gmc is None else None
    live_tis = tis_client() if tis is None else None
    tis_not_fetched_reason = None
    with contextlib.ExitStack() as stack:
        if live_gmc is not None:
            with sessions().begin() as session:
                codes = [body.code for body in configured_designated_bodies(session)]
            gmc = stack.enter_context(fetched_gmc_lists(live_gmc, codes))
        if live_tis is not None:
            try:
                tis = stack.enter_context(fetched_tis_people(live_tis))
            except TisPullFailed as error:
                tis_not_fetched_reason = str(error)
        summary = run_sync(
            sessions(), gmc=gmc, tis=tis, as_of=as_of_or_today(as_of), tis_not_fetched_reason=tis_not_fetched_reason
        )
    if not broker_configured() and GmcSettings.from_environment(current_app.config) is not None:
        # Without workers, the sync is the nightly job: pending connection requests go with it.
        summary["connectionRequestsDelivered"] = deliver_due_now()
    if as_json:
        print_json(summary)
    else:
        click.echo(format_summary(summary))
        if "connectionRequestsDelivered" in summary:
            click.echo(f"Connection requests: {format_delivery(summary['connectionRequestsDelivered'])}")


@cli.command("refresh-people")
@click.argument("person_ids", nargs=-1, required=True, type=int)
@click.option("--as-of", type=AS_OF, help="Judge dates on this day (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@refusals_exit_2
def refresh_people_command(person_ids, as_of, as_json):
    """Pull just these TIS people (a 404 means deleted) and re-decide the doctors they touch."""
    try:
        tis = pulled_people(tis_client(), person_ids)
    except TisUnavailable as error:
        raise click.ClickException(f"TIS could not be read, nothing changed: {error}") from None
    summary = run_sync(sessions(), gmc=None, tis=tis, as_of=as_of_or_today(as_of))
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
    if tis["source"]:
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


# --- reading ------------------------------------------------------------------------------------


@cli.command("export")
@click.option("--format", "output_format", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--queue", type=click.Choice([q.value for q in Queue], case_sensitive=False))
@click.option("--designated-body", help="Only doctors this designated body sees, with its hides applied.")
@refusals_exit_2
def export_command(output_format, queue, designated_body):
    """Write every doctor's queue and reason to standard output."""
    with sessions().begin() as session:
        code = configured_code(session, designated_body) if designated_body is not None else None
        rows = export_rows(session, queue=queue.upper() if queue else None, designated_body=code)
        if output_format == "json":
            sys.stdout.write(orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            write_csv(rows, sys.stdout)


def write_csv(rows, stream: io.TextIOBase) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        writer.writerow(
            [";".join(map(str, value)) if isinstance(value, list) else ("" if value is None else value)
             for value in (row[name] for name in EXPORT_FIELDS)]
        )


@cli.command("explain")
@click.argument("gmc_number")
@click.option("--as-of", type=AS_OF, help="Judge dates on this day (default: the last sync's as-of date).")
@refusals_exit_2
def explain_command(gmc_number, as_of):
    """Show a doctor's facts, the rule that decided them, and why each earlier rule did not."""
    engine = RuleEngine(DEFAULT_RULE_TABLE)
    with sessions().begin() as session:
        if as_of is None:
            last_run = latest_successful_run(session)
            day = last_run.as_of if last_run else date.today()
        else:
            day = as_of.date()
        result = explain_doctor(session, gmc_number, day, engine)
        click.echo(format_explanation(result))


def format_explanation(result) -> str:
    explanation = result.explanation
    decision, situation = explanation.decision, explanation.situation
    lines = [f"Doctor {result.gmc_number}, as of {explanation.as_of.isoformat()}, rules {decision.rule_table}"]
    lines.append(f"  GMC connection: {situation.gmc_designated_body or 'not connected'}")
    lines.append(f"  last connected to: {situation.last_connected_designated_body or 'never connected'}")
    if not situation.tis_people:
        lines.append("  TIS: no person has this GMC number")
    for person in situation.tis_people:
        lines.append(f"  TIS person {person.tis_person_id} ({person.status or 'status unknown'})")
        for p in person.programmes:
            owner = p.owner_designated_body or "no designated body"
            lines.append(
                f"    programme {p.membership_type or '?'} {p.start.isoformat()} to "
                f"{p.end.isoformat() if p.end else 'open'}, owner {p.owner!r} -> {owner}: {programme_state(p, explanation.as_of)}"
            )
        for placement in person.placements:
            lines.append(
                f"    placement {placement.grade or '?'} {placement.start.isoformat()} to "
                f"{placement.end.isoformat() if placement.end else 'open'}: {placement_state(placement, explanation.as_of)}"
            )
    lines.append("Facts:")
    for fact in DEFAULT_RULE_TABLE.facts:
        lines.append(f"  {fact.name:<30} {format_value(getattr(explanation.facts, fact.name)):<5} {fact.meaning}")
    lines.append("Rules tried:")
    for outcome in explanation.rows_tried:
        row = outcome.row
        if outcome.failed:
            why = "; ".join(f"{name} is {format_value(actual)}, needs {format_value(required)}"
                            for name, required, actual in outcome.failed)
            lines.append(f"  {row.number:>2} {row.reason:<27} no: {why}")
        else:
            lines.append(f"  {row.number:>2} {row.reason:<27} MATCHED ({row.describe_conditions()})")
    lines.append(
        f"Decision: {decision.queue} / {decision.reason} (row {decision.rule_number}), "
        f"visible to {', '.join(decision.visible_to) or 'no designated body'}; "
        f"programme owners {', '.join(decision.programme_owner_designated_bodies) or 'none'}"
    )
    stored = result.stored
    if stored is None:
        lines.append("Stored decision: none yet (run a sync)")
    elif (stored.queue, stored.reason) != (decision.queue, decision.reason):
        lines.append(f"Stored decision: {stored.queue} / {stored.reason} from {stored.rule_table} (differs on this date)")
    for hide in result.hides:
        state = f"ended {hide.ended_at:%Y-%m-%d}: {hide.end_reason}" if hide.ended_at else "active"
        until = f" until {hide.until.isoformat()}" if hide.until else ""
        lines.append(f"Hidden for {hide.designated_body_code} by {hide.hidden_by}{until} ({hide.reason}): {state}")
    return "\n".join(lines)


@cli.command("history")
@click.argument("gmc_number")
@click.option("--json", "as_json", is_flag=True)
@refusals_exit_2
def history_command(gmc_number, as_json):
    """Every recorded change of a doctor's connection, decision and hides, oldest first."""
    with sessions().begin() as session:
        events = doctor_history(session, gmc_number)
        rows = [
            {
                "recordedAt": event.recorded_at.isoformat(),
                "asOf": event.as_of.isoformat(),
                "syncRunId": event.sync_run_id,
                "source": event.source,
                "kind": event.kind,
                "old": event.old,
                "new": event.new,
                "detail": event.detail,
            }
            for event in events
        ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(f"no history for {gmc_number}")
    for row in rows:
        click.echo(
            f"{row['asOf']} run {row['syncRunId'] or '-':>4} {row['source']:<9} {row['kind']:<10} "
            f"{_brief(row['old'])} -> {_brief(row['new'])}  {row['detail'] or ''}"
        )


def _brief(value) -> str:
    if value is None:
        return "none"
    return " ".join(f"{key}={','.join(v) if isinstance(v, list) else v}" for key, v in value.items())


@cli.command("rules")
@click.option("--check", is_flag=True, help="Also run the static checks (exit 1 on a gap or unreachable row).")
def rules_command(check):
    """Print the rule table."""
    table = DEFAULT_RULE_TABLE
    click.echo(f"Rule table {table.label} (hit policy {table.hit_policy}, fingerprint {table.fingerprint()})")
    click.echo(f"{'#':>2}  {'reason':<27}{'queue':<12}{'visible to':<22}when")
    for row in table.rows:
        audience = " + ".join(a.value for a in row.visible_to)
        click.echo(f"{row.number:>2}  {row.reason:<27}{row.queue.value:<12}{audience:<22}{row.describe_conditions()}")
    click.echo("Facts:")
    for fact in table.facts:
        click.echo(f"  {fact.name:<30} {'/'.join(format_value(v) for v in fact.domain):<15} {fact.meaning}")
    if check:
        report = check_table(table)
        click.echo(
            f"Check: {report.combinations} consistent fact combinations, {len(report.gaps)} gaps, "
            f"{len(report.unreachable)} unreachable rows, {len(report.problems)} problems"
        )
        for problem in report.problems:
            click.echo(f"  problem: {problem}")
        for facts in report.gaps[:10]:
            click.echo(f"  gap: {facts}")
        for row in report.unreachable:
            click.echo(f"  unreachable: row {row.number} {row.reason}")
        if not report.ok:
            sys.exit(1)


# --- admin actions ------------------------------------------------------------------------------


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except OSError:
        return "unknown"


@cli.command("hide")
@click.argument("gmc_number")
@click.option("--designated-body", required=True)
@click.option("--reason", required=True)
@click.option("--until", type=AS_OF, help="The hide ends on this day.")
@click.option("--by", help="Who is hiding (default: your user name).")
@refusals_exit_2
def hide_command(gmc_number, designated_body, reason, until, by):
    """Hide a doctor for one designated body."""
    with sessions().begin() as session:
        hide = record_hide(
            session, gmc_number, designated_body, reason, until.date() if until else None, _who(by),
            as_of=date.today(), now=utcnow(),
        )
        click.echo(f"doctor {hide.gmc_number} hidden for {hide.designated_body_code}")


@cli.command("unhide")
@click.argument("gmc_number")
@click.option("--designated-body", required=True)
@click.option("--by", help="Who is unhiding (default: your user name).")
@refusals_exit_2
def unhide_command(gmc_number, designated_body, by):
    """End a doctor's hide for one designated body."""
    with sessions().begin() as session:
        hide = record_unhide(session, gmc_number, designated_body, _who(by), as_of=date.today(), now=utcnow())
        click.echo(f"doctor {hide.gmc_number} no longer hidden for {hide.designated_body_code}")


# --- connection changes at GMC ------------------------------------------------------------------


def _change_connection(gmc_number: str, designated_body: str, action: Action, reason: str, by: str | None) -> None:
    if not broker_configured():
        gmc_client()  # refuse now, before recording a request nothing could deliver
    with sessions().begin() as session:
        request = record_connection_request(
            session, gmc_number_text=gmc_number, designated_body=designated_body, action=action, reason=reason,
            requested_by=_who(by), now=utcnow(),
        )
        request_id = request.id
    _report_delivery(request_id, dispatch_delivery(request_id))


def _report_delivery(request_id: int, request) -> None:
    if request is None:
        click.echo(f"request {request_id} recorded; a worker will deliver it to GMC")
    elif request.status == Status.SUCCEEDED:
        click.echo(f"request {request_id} succeeded: {request.message}")
    elif request.status == Status.PENDING:
        click.echo(f"request {request_id} pending, next attempt at {request.next_attempt_at.isoformat()}: {request.message}")
    else:
        raise click.ClickException(f"request {request_id} failed: {request.message}; `reval resend {request_id}` tries again")


def _connection_change_command(name: str, action: Action, preposition: str) -> None:
    reasons = "; ".join(f"{code} = {meaning}" for code, meaning in CHANGE_REASONS[action].items())

    @cli.command(name, help=f"Ask GMC to {name} a doctor {preposition} a designated body (recorded first, never lost).")
    @click.argument("gmc_number")
    @click.option("--designated-body", required=True, help=f"The designated body to {name} the doctor {preposition}.")
    @click.option("--reason", required=True, help=f"GMC change reason: {reasons}.")
    @click.option("--by", help="Who asks (default: your user name).")
    @refusals_exit_2
    def command(gmc_number, designated_body, reason, by):
        _change_connection(gmc_number, designated_body, action, reason, by)


_connection_change_command("connect", Action.ADD, "to")
_connection_change_command("disconnect", Action.REMOVE, "from")


@cli.command("deliver")
@click.option("--all", "ignore_backoff", is_flag=True, help="Deliver every pending request now, ignoring backoff timers.")
@refusals_exit_2
def deliver_command(ignore_backoff):
    """Deliver every pending connection request that is due."""
    counts = deliver_due_now(ignore_backoff)
    click.echo(format_delivery(counts))


def format_delivery(counts: dict[str, int]) -> str:
    return (
        f"{counts['due']} due: {counts[Status.SUCCEEDED]} succeeded, {counts[Status.FAILED]} failed, "
        f"{counts[Status.PENDING]} still pending"
    )


@cli.command("resend")
@click.argument("request_id", type=int)
@click.option("--by", help="Who asks (default: the original requester).")
@refusals_exit_2
def resend_command(request_id, by):
    """Make a new attempt of a failed connection request."""
    if not broker_configured():
        gmc_client()
    with sessions().begin() as session:
        request = record_resend(session, request_id, by, utcnow())
        new_id = request.id
    click.echo(f"request {new_id} resends request {request_id}")
    _report_delivery(new_id, dispatch_delivery(new_id))


REQUEST_COLUMNS = (
    "id", "gmcReferenceNumber", "designatedBodyCode", "action", "reason", "status", "returnCode", "message",
    "attempts", "requestedBy", "requestedAt", "lastAttemptAt",
)


@cli.command("requests")
@click.option("--status", type=click.Choice([s.lower() for s in (Status.PENDING, Status.SUCCEEDED, Status.FAILED)]))
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def requests_command(status, output_format):
    """List connection requests and what GMC answered."""
    with sessions().begin() as session:
        views = [request_view(request) for request in list_requests(session, status)]
    if output_format == "json":
        print_json(views)
        return
    writer = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    writer.writerow(REQUEST_COLUMNS)
    for view in views:
        writer.writerow(["" if view[name] is None else view[name] for name in REQUEST_COLUMNS])


@cli.command("gmc-simulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="GMC snapshot the simulator starts from.")
@click.option("--username", envvar="REVAL_GMC_USERNAME", default="reval", show_default=True)
@click.option("--password", envvar="REVAL_GMC_PASSWORD", default="reval", show_default=False)
@refusals_exit_2
def gmc_simulator_command(host, port, data_file, username, password):
    """Serve a local GMC Connect (development and tests only)."""
    from reval.gmc.simulator import GmcConnectState, RunningSimulator

    state = GmcConnectState.from_snapshot(_records(data_file, "GMC", "designatedBodies"), username, password)
    with sessions().begin() as session:
        for body in configured_designated_bodies(session):
            state.lists.setdefault(body.code, {})
    _serve(RunningSimulator(state, host, port), lambda simulator: f"GMC Connect simulator on {simulator.url} (WSDL at ?wsdl)")


@cli.command("tis-simulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8082, show_default=True)
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="TIS snapshot the simulator serves.")
@click.option("--client-id", envvar="REVAL_TIS_CLIENT_ID", default="reval", show_default=True)
@click.option("--client-secret", envvar="REVAL_TIS_CLIENT_SECRET", default="reval", show_default=False)
@click.option("--token-lifetime", default=300, show_default=True, help="Seconds an access token lasts.")
@refusals_exit_2
def tis_simulator_command(host, port, data_file, client_id, client_secret, token_lifetime):
    """Serve a local TIS: the TCS API and its token endpoint (development and tests only)."""
    from reval.tis.simulator import RunningTisSimulator, TisState

    state = TisState.from_snapshot(_records(data_file, "TIS", "people"), client_id, client_secret, token_lifetime=token_lifetime)
    _serve(
        RunningTisSimulator(state, host, port),
        lambda simulator: f"TIS simulator: REVAL_TIS_URL={simulator.url} REVAL_TIS_TOKEN_URL={simulator.token_url}, "
        f"{len(state.people)} people",
    )


def _records(path: str | None, label: str, list_key: str) -> list:
    return [record for _locator, record in open_snapshot(path, label=label, list_key=list_key)] if path else []


def _serve(simulator, banner) -> None:
    with simulator:
        click.echo(f"{banner(simulator)}; faults: POST /simulator/faults. Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


# --- background work ----------------------------------------------------------------------------


@cli.command("worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker_command(ctx):
    """Start a Celery worker, with TIS's person-changed consumer; further arguments go to Celery."""
    celery_app = _celery_app()
    celery_app.steps["consumer"].add(PersonChangedConsumer)
    celery_app.worker_main(["worker", "--loglevel=INFO", *ctx.args])


@cli.command("beat", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def beat_command(ctx):
    """Start Celery beat with Reval's schedule (run exactly one); further arguments go to Celery."""
    celery_app = _celery_app()
    celery_app.conf.beat_schedule = beat_schedule(current_app.config)
    celery_app.start(["beat", "--loglevel=INFO", *ctx.args])


def _celery_app():
    if not broker_configured():
        raise CommandRefused("no broker is configured: set REVAL_BROKER_URL, e.g. redis://127.0.0.1:6379/0")
    return current_app.extensions["celery"]


NIGHTLY_START_SECONDS = 60


@cli.command("nightly")
@click.option("--wait", is_flag=True, help="Wait for the run to finish and print its summary.")
@click.option("--as-of", type=AS_OF, help="Judge dates on this day (default: today in London).")
@refusals_exit_2
def nightly_command(wait, as_of):
    """Trigger the nightly run now: by the workers when a broker is configured, else here."""
    day = as_of.date() if as_of else london_today()
    if not broker_configured():
        policy = DeliveryPolicy.from_config(current_app.config)
        summary = run_nightly_in_process(sessions(), gmc_client(), tis_client(), day, policy)
        click.echo(format_summary(summary))
        delivered = summary["connectionRequestsDelivered"]
        click.echo(f"Connection requests: {format_delivery(delivered)}")
        return
    try:
        started = nightly.delay(as_of=day.isoformat()).get(timeout=NIGHTLY_START_SECONDS)
    except CeleryTimeout:
        raise click.ClickException(
            f"no worker started the nightly run within {NIGHTLY_START_SECONDS} s; is `reval worker` running?"
        ) from None
    click.echo(f"nightly run {started['runId']} {started['status'].lower()}")
    if wait and started["status"] == "RUNNING":
        run = _wait_for_run(started["runId"])
        click.echo(format_run(run_view(run)))
        if run.status == "FAILED":
            raise click.ClickException(f"nightly run {run.id} failed: {run.error}")


def _wait_for_run(run_id: int):
    import time

    while True:
        with sessions().begin() as session:
            run = session.get(SyncRun, run_id)
            if run.status != "RUNNING":
                return run
        time.sleep(1)


@cli.command("runs")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--limit", default=20, show_default=True, help="The most recent runs to show.")
def runs_command(output_format, limit):
    """List sync runs: status, times, sources fetched or not (and why), queue movements, rejections."""
    with sessions().begin() as session:
        views = [run_view(run) for run in recent_runs(session, limit)]
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


# --- demo and benchmark -------------------------------------------------------------------------


@cli.command("demo")
@click.option("--doctors", default=3000, show_default=True, help="About how many GMC-connected doctors.")
@click.option("--seed", default=2026, show_default=True)
@click.option("--as-of", type=AS_OF, help="Tonight's date (default: today).")
def demo_command(doctors, seed, as_of):
    """Generate a synthetic national dataset, sync two nights of it, and summarise the queues."""
    from reval.demo import run_demo

    directory = Path(current_app.instance_path) / "demo"
    result = run_demo(sessions(), directory, doctors, as_of_or_today(as_of), seed)
    dataset = result.dataset
    click.echo(
        f"Generated {dataset.gmc_doctors} GMC-connected doctors and {dataset.tis_people} TIS people "
        f"in {dataset.directory} (seed {seed})"
    )
    click.echo(
        f"Served both nights from local GMC Connect ({result.gmc_url}) and TIS simulators; synced the previous "
        f"night (run {result.previous_night['syncRunId']}), then tonight:\n"
    )
    click.echo(format_summary(result.tonight))
    click.echo("\nAn admin connects unconnected trainees to their programme's owner at GMC:")
    for request in result.requests:
        click.echo(
            f"  request {request.id}: {request.action} {request.gmc_number} to {request.designated_body_code}: "
            f"{request.status.lower()}, {request.message}"
        )
    queues = [q.value for q in Queue]
    click.echo("\nWhat each designated body sees:")
    click.echo(f"{'designated body':<58}" + "".join(f"{q:>13}" for q in queues))
    for code, name, counts in result.bodies:
        click.echo(f"{code + ' ' + name:<58}" + "".join(f"{counts.get(q, 0):>13}" for q in queues))
    click.echo(
        f"\nDatabase: {database().engine.url.render_as_string(hide_password=True)}\n"
        "Try: reval export --queue DISCREPANCY --designated-body 1-1RSSQ05 | head -40; reval explain GMCNO; "
        "reval requests; reval rules"
    )


@cli.command("bench")
@click.option("--doctors", default=100_000, show_default=True)
@click.option("--seed", default=2026, show_default=True)
@click.option("--database-url", help="An empty database to use (default: a fresh SQLite file).")
@click.option("--workers", type=int, help="Shard the decisions over this many `reval worker` processes (needs REVAL_BROKER_URL).")
@click.option("--shards", default=4, show_default=True, help="With --workers: how many shards.")
@click.option("--json", "as_json", is_flag=True)
@refusals_exit_2
def bench_command(doctors, seed, database_url, workers, shards, as_json):
    """Time a full national sync and an unchanged re-sync into a fresh database."""
    from reval.bench import run_bench, run_sharded_bench

    try:
        if workers:
            _celery_app()
            figures = run_sharded_bench(doctors, seed, date.today(), database_url, workers, shards, current_app)
        else:
            figures = run_bench(doctors, seed, date.today(), database_url)
    except ValueError as error:
        raise CommandRefused(str(error)) from None
    if as_json or workers:
        print_json(figures)
        return
    click.echo(
        f"{figures['doctors']} GMC doctors, {figures['tisPeople']} TIS people, {figures['decided']} decided "
        f"on {figures['database']}\n"
        f"  generate files          {figures['generateSeconds']:8.2f} s (not part of the sync)\n"
        f"  migrate schema          {figures['migrateSeconds']:8.2f} s\n"
        f"  full sync               {figures['fullSyncSeconds']:8.2f} s {figures['fullSyncPhases']}\n"
        f"  unchanged re-sync       {figures['unchangedResyncSeconds']:8.2f} s {figures['unchangedResyncPhases']}, "
        f"{figures['unchangedResyncEvents']} events\n"
        f"  peak memory             {figures['peakMemoryMiB']:8.0f} MiB "
        f"(before sync {figures['peakMemoryMiBBeforeSync']:.0f}, after full sync {figures['peakMemoryMiBAfterFullSync']:.0f}); "
        f"{'helper process ' + format(figures['helperPeakMemoryMiB'], '.0f') + ' MiB' if figures['helperProcess'] else 'no helper process'}\n"
        f"  validating a TIS person {figures['bulkMicrosPerPerson']:8.1f} us bulk reader, "
        f"{figures['marshmallowMicrosPerPerson']:.1f} us marshmallow\n"
        f"  queues                  {figures['queues']}, {figures['rejectedRecords']} rejected records"
    )
