"""Configuration and reference: `reval db`, `designated-bodies`, `rules`."""

from __future__ import annotations

import sys

import click

from reval.cli.base import cli, command, context
from reval.db import schema_is_current, upgrade_schema
from reval.designated_bodies import read_designated_bodies_csv
from reval.extensions import database
from reval.rules import DEFAULT_RULE_TABLE
from reval.rules.checks import TableReport, check_table, no_body_conditions
from reval.rules.table import RuleTable, format_value
from reval.services.reference import configured_bodies, replace_configured_bodies


@cli.group("db")
def db_group():
    """The database schema (migrated automatically on first use by a command)."""


@command(db_group, name="upgrade")
def db_upgrade():
    """Migrate the database to the latest schema."""
    upgrade_schema(database().engine)
    click.echo("database schema is up to date")


@command(db_group, name="current")
def db_current():
    """Say whether the database schema is up to date."""
    click.echo("up to date" if schema_is_current(database().engine) else "needs `reval db upgrade`")


@cli.group("designated-bodies", invoke_without_command=True)
@click.pass_context
def designated_bodies_group(ctx):
    """List the configured designated bodies (only these are fetched from GMC)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(_list_designated_bodies)


@command(designated_bodies_group, name="list", hidden=True)
def _list_designated_bodies():
    for body in configured_bodies(context().reads):
        click.echo(f"{body.code:<11} {body.name}" + (f" (TIS owner: {body.owner})" if body.owner != body.name else ""))


@command(designated_bodies_group, name="load")
@click.argument("csv_file", type=click.Path(dir_okay=False))
def designated_bodies_load(csv_file):
    """Replace the configured designated bodies with those in CSV_FILE (header code,name,owner)."""
    bodies = read_designated_bodies_csv(csv_file)
    replace_configured_bodies(context(), bodies)
    click.echo(f"{len(bodies)} designated bodies configured")


@cli.group("rules", invoke_without_command=True)
@click.option("--check", is_flag=True, help="Also run the static checks (exit 1 on a gap or unreachable row).")
@click.pass_context
def rules(ctx, check):
    """Print the rule table (or preview what it would change: `reval rules preview`)."""
    if ctx.invoked_subcommand is None:
        _print_rule_table(check)


def _print_rule_table(check: bool) -> None:
    table = DEFAULT_RULE_TABLE
    click.echo(f"Rule table {table.label} (hit policy {table.hit_policy}, fingerprint {table.fingerprint()})")
    click.echo(f"{'#':>2}  {'reason':<27}{'queue':<12}{'visible to':<22}when")
    for row in table.rows:
        audience = " + ".join(a.value for a in row.visible_to)
        click.echo(f"{row.number:>2}  {row.reason:<27}{row.queue.value:<12}{audience:<22}{row.describe_conditions()}")
        click.echo(f"    {row.label}: {row.description}")
    click.echo("Facts:")
    for fact in table.facts:
        click.echo(f"  {fact.name:<30} {'/'.join(format_value(v) for v in fact.domain):<15} {fact.meaning}")
    if check:
        report = check_table(table)
        _echo_report(table, report)
        if not report.ok:
            sys.exit(1)


def _echo_report(table: RuleTable, report: TableReport) -> None:
    """What `reval rules --check` found."""
    click.echo(
        f"Check: {report.combinations} consistent fact combinations, {len(report.gaps)} gaps, "
        f"{len(report.unreachable)} unreachable rows, {len(report.problems)} problems; "
        f"{len(report.seen_by_no_body)} rows can decide doctors no designated body sees"
    )
    for problem in report.problems:
        click.echo(f"  problem: {problem}")
    for facts in report.gaps[:10]:
        click.echo(f"  gap: {facts}")
    for row in report.unreachable:
        click.echo(f"  unreachable: row {row.number} {row.reason}")
    for row in (table.rows[number - 1] for number in sorted(report.seen_by_no_body)):
        when = " and ".join(f"{name} = {format_value(value)}" for name, value in no_body_conditions(row).items())
        click.echo(
            f"  seen by no designated body: row {row.number} {row.reason} ({row.queue.value}) when {when or 'always'}"
        )
