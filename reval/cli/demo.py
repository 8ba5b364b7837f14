"""The synthetic dataset: `reval demo` and `reval bench`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app

from reval.cli.base import AS_OF, CommandRefused, command, context, day, print_json
from reval.cli.runs import format_summary
from reval.cli.servers import _celery_app
from reval.extensions import database
from reval.rules import Queue


@command()
@click.option("--doctors", default=3000, show_default=True, help="About how many GMC-connected doctors.")
@click.option("--seed", default=2026, show_default=True)
@click.option("--as-of", type=AS_OF, help="Tonight's date (default: today in London).")
def demo(doctors, seed, as_of):
    """Generate a synthetic national dataset, sync two nights of it, and summarise the queues."""
    from reval.demo import run_demo

    ctx = context()
    directory = Path(current_app.instance_path) / "demo"
    result = run_demo(ctx.sessions, directory, doctors, ctx.checked_as_of(day(as_of)), seed)
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


@command()
@click.option("--doctors", default=100_000, show_default=True)
@click.option("--seed", default=2026, show_default=True)
@click.option("--database-url", help="An empty database to use (default: a fresh SQLite file).")
@click.option("--workers", type=int, help="Shard the decisions over this many `reval worker` processes (needs REVAL_BROKER_URL).")
@click.option("--shards", default=4, show_default=True, help="With --workers: how many shards.")
@click.option("--json", "as_json", is_flag=True)
def bench(doctors, seed, database_url, workers, shards, as_json):
    """Time a full national sync and an unchanged re-sync into a fresh database."""
    from reval.bench import run_bench, run_sharded_bench

    today = context().today()
    try:
        if workers:
            _celery_app()
            figures = run_sharded_bench(doctors, seed, today, database_url, workers, shards, current_app)
        else:
            figures = run_bench(doctors, seed, today, database_url)
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
