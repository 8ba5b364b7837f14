"""Running Reval: `reval check` (a container's health check) and `reval audit` (who saw what)."""

from __future__ import annotations

import sys

import click
from flask import current_app

from reval.cli.base import AS_OF, command, context, day, print_json
from reval.readiness import readiness, ready
from reval.services.audit import AUDIT_FIELDS, AuditQuery, audit_cells, audit_records, audit_row
from reval.spreadsheets import SafeCsvWriter


@command()
def check():
    """Check what a server or worker needs: the database, its schema, and the broker if one is
    configured. Prints each check; exit status 0 when all are ok, else 1."""
    checks = readiness(current_app)
    for name, state in checks.items():
        click.echo(f"{name}: {state}")
    if not ready(checks):
        sys.exit(1)


@command()
@click.option("--actor", help="Only this person's views (their name as recorded, any case).")
@click.option("--doctor", "gmc_number", help="Only views of this doctor (GMC number).")
@click.option("--since", type=AS_OF, help="Only views on or after this day (London time).")
@click.option("--until", type=AS_OF, help="Only views on or before this day (London time).")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
def audit(actor, gmc_number, since, until, output_format):
    """The access audit: who viewed which doctor's data or exported which view, newest first."""
    query = AuditQuery(actor=actor, gmc_number=gmc_number, since=day(since), until=day(until))
    records = audit_records(context(), query)
    if output_format == "json":
        print_json([audit_row(record) for record in records])
        return
    writer = SafeCsvWriter(sys.stdout, delimiter="\t" if output_format == "table" else ",", lineterminator="\n")
    writer.writerow(AUDIT_FIELDS)
    for record in records:
        writer.writerow(audit_cells(record))
