"""Connection changes at GMC: `reval connect`, `disconnect`, `deliver`, `resend`, `requests`."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from reval.cli.base import command, context, print_json
from reval.cli.runs import format_delivery
from reval.gmc.codes import CHANGE_REASONS, Action
from reval.services.connections import (
    Requested,
    RequestState,
    list_requests,
    request_connection_change,
    request_view,
    resend_request,
)
from reval.services.terms import Status
from reval.spreadsheets import SafeCsvWriter


def _report(requested: Requested) -> None:
    """What became of a request, said once it is committed (and, here, delivered)."""
    request_id, request = requested.request.id, requested.delivered
    if request is None:
        click.echo(f"request {request_id} recorded; a worker will deliver it to GMC")
    elif request.status == Status.SUCCEEDED:
        click.echo(f"request {request_id} succeeded: {request.message}")
    elif request.status == Status.PENDING:
        click.echo(
            f"request {request_id} pending, next attempt at {_moment(request.next_attempt_at)}: {request.message}"
        )
    else:
        raise click.ClickException(
            f"request {request_id} failed: {request.message}; `reval resend {request_id}` tries again"
        )


def _connection_change_command(name: str, action: Action, preposition: str) -> None:
    reasons = "; ".join(f"{code} = {meaning}" for code, meaning in CHANGE_REASONS[action].items())

    @command(
        name=name, help=f"Ask GMC to {name} a doctor {preposition} a designated body (recorded first, never lost)."
    )
    @click.argument("gmc_number")
    @click.option("--designated-body", required=True, help=f"The designated body to {name} the doctor {preposition}.")
    @click.option("--reason", required=True, help=f"GMC change reason: {reasons}.")
    @click.option("--by", help="Who asks (default: your user name).")
    @click.option("--force", is_flag=True, help="Ask GMC even though Reval's checks advise against it (recorded).")
    def change(gmc_number, designated_body, reason, by, force):
        _report(request_connection_change(context(by), gmc_number, designated_body, action, reason, force=force))


_connection_change_command("connect", Action.ADD, "to")
_connection_change_command("disconnect", Action.REMOVE, "from")


@command()
@click.option(
    "--all", "ignore_backoff", is_flag=True, help="Deliver every pending request now, ignoring backoff timers."
)
def deliver(ignore_backoff):
    """Deliver every pending connection request that is due."""
    gateway = context().require_gateway()
    gateway.check_delivery()
    click.echo(format_delivery(gateway.deliver_due(ignore_backoff)))


@command()
@click.argument("request_id", type=int)
@click.option("--by", help="Who asks (default: your user name).")
@click.option("--force", is_flag=True, help="Resend even though a later request has superseded this one (recorded).")
def resend(request_id, by, force):
    """Make a new attempt of a failed connection request."""
    requested = resend_request(context(by), request_id, force=force)
    click.echo(f"request {requested.request.id} resends request {request_id}")
    _report(requested)


REQUEST_COLUMNS = (
    "id",
    "gmcReferenceNumber",
    "designatedBodyCode",
    "action",
    "reason",
    "status",
    "returnCode",
    "message",
    "attempts",
    "requestedBy",
    "requestedAt",
    "lastAttemptAt",
    "supersededBy",
)


def request_row(state: RequestState) -> dict:
    return request_view(state.request) | {"supersededBy": state.superseded_by}


@command()
@click.option(
    "--status",
    type=click.Choice([s.lower() for s in (Status.PENDING, Status.SUCCEEDED, Status.FAILED)], case_sensitive=False),
)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def requests(status, output_format):
    """List connection requests and what GMC answered (a failed one a later request superseded says so)."""
    rows = [request_row(state) for state in list_requests(context(), status)]
    if output_format == "json":
        print_json(rows)
        return
    writer = SafeCsvWriter(sys.stdout, delimiter="\t", lineterminator="\n")
    writer.writerow(REQUEST_COLUMNS)
    for row in rows:
        writer.writerow(row[name] for name in REQUEST_COLUMNS)


def _moment(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "not scheduled"
