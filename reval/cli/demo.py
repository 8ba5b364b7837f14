"""The synthetic dataset: `reval demo` and `reval bench`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import current_app

from reval.app import create_app
from reval.cli.base import AS_OF, CommandRefused, command, context, day, print_json, who
from reval.cli.progress import QUIET, progress_for
from reval.cli.runs import format_bodies, print_summary
from reval.cli.servers import _celery_app, check_port_free, serve_app
from reval.db import private_folder
from reval.demo import check_demo_database, demo_services, run_demo
from reval.extensions import database
from reval.rules import Queue
from reval.services.context import Actor, Context
from reval.services.terms import SyncSummary
from reval.synthetic import SHAPES


@command(stoppable=True)
@click.option("--doctors", default=3000, show_default=True, help="About how many GMC-connected doctors.")
@click.option("--seed", default=2026, show_default=True)
@click.option("--as-of", type=AS_OF, help="Tonight's date (default: today in London).")
@click.option("--database-url", help="A database for the demo (default: its own, made afresh in the instance folder).")
@click.option(
    "--serve/--no-serve", default=True, show_default=True, help="Serve the web UI on the demo data at the end."
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@QUIET
def demo(doctors, seed, as_of, database_url, serve, host, port, quiet):
    """Generate a synthetic national dataset, sync two nights of it, summarise the queues, serve the UI."""
    if serve:
        check_port_free(host, port)  # before a minute of work, not after it
    directory = Path(current_app.instance_path) / "demo"
    private_folder(directory)
    if database_url is None:
        database_file = directory / "reval-demo.sqlite"
        for stale in directory.glob("reval-demo.sqlite*"):  # the demo's own: made afresh
            stale.unlink()
        database_url = f"sqlite:///{database_file}"
    instance = {"REVAL_INSTANCE_PATH": current_app.instance_path, "REVAL_DATABASE_URL": database_url}
    tonight = context().checked_as_of(day(as_of))
    db = database(create_app(instance | {"REVAL_BROKER_URL": ""}))
    check_demo_database(db.sessions)
    progress = progress_for(quiet)
    with demo_services(directory, doctors, tonight, seed, progress) as services:
        result = run_demo(db.sessions, services, tonight, progress)
        demo_context = Context(db.sessions, db.reads, Actor.operator(who(None)))
        _print_demo(demo_context, result, seed, db.engine.url.render_as_string(hide_password=True))
        if serve:
            app = create_app(instance | services.app_settings() | {"REVAL_AUTH": "dev"})
            _print_offices(result, host, port)
            serve_app(app, host, port)


def _print_demo(ctx: Context, result, seed: int, database_url: str) -> None:
    dataset = result.dataset
    click.echo(
        f"Generated {dataset.gmc_doctors} GMC-connected doctors and {dataset.tis_people} TIS people "
        f"in {dataset.directory} (seed {seed})"
    )
    click.echo(
        f"Served both nights from local GMC Connect ({result.gmc_url}) and TIS simulators; synced the previous "
        f"night (run {SyncSummary.from_json(result.previous_night).sync_run_id}), then tonight:\n"
    )
    tonight = SyncSummary.from_json(result.tonight)
    print_summary(ctx, tonight, bodies=False)
    if tonight.rejected_records:
        click.echo("(The demo makes some TIS records bad on purpose, to show how Reval rejects and reports them.)")
    click.echo("\nAn admin connects unconnected trainees to their programme's owner at GMC:")
    for request in result.requests:
        click.echo(
            f"  request {request.id}: {request.action} {request.gmc_number} to {request.designated_body_code}: "
            f"{request.status.lower()}, {request.message}"
        )
    click.echo("\n" + format_bodies(result.bodies))
    click.echo(
        f"\nDatabase: {database_url}\n"
        "Try: reval export --queue DISCREPANCY --designated-body 1-1RSSQ05 | head -40; "
        f"reval explain {_example_number(result)}; reval requests; reval rules"
    )


def _example_number(result) -> str:
    """A doctor of the demo's to name in an example command: the first the admin asked GMC about."""
    return result.requests[0].gmc_number if result.requests else "GMCNO"


def _print_offices(result, host: str, port: int) -> None:
    address = f"http://{host}:{port}"
    example = _example_number(result)
    simulator = urlsplit(result.gmc_url)._replace(path="", query="").geturl()
    click.echo(f"\nGMC Connect simulator, while the demo runs: {simulator}")
    click.echo(
        "Make GMC refuse a doctor's next change: curl -X POST "
        f"{simulator}/simulator/faults "
        f'-d \'{{"kind": "return-code", "gmcNumber": "{example}", "returnCode": "106"}}\''
    )
    click.echo(f"\nThe web UI, with development sign-in: {address}/auth/dev")
    click.echo("Sign in as an Admin of one of these offices (or as National to see them all):")
    for body in result.bodies:
        click.echo(
            f"  {body.name} ({body.code}): {body.counts[Queue.DISCREPANCY]} discrepancies, "
            f"{address}/queues/discrepancies?body={body.code}"
        )


@command(stoppable=True)
@click.option("--doctors", default=100_000, show_default=True)
@click.option("--seed", default=2026, show_default=True)
@click.option("--database-url", help="An empty database to use (default: a fresh SQLite file).")
@click.option(
    "--workers", type=int, help="Shard the decisions over this many `reval worker` processes (needs REVAL_BROKER_URL)."
)
@click.option("--shards", default=4, show_default=True, help="With --workers: how many shards.")
@click.option(
    "--shape",
    "shape_name",
    type=click.Choice(sorted(SHAPES)),
    default="default",
    show_default=True,
    help="The data's shape: the bench's own, or heavy (more discrepancies, curricula, people in one source only).",
)
@click.option("--memberships", type=int, help="Programme memberships per TIS person (overrides the shape).")
@click.option("--placements", type=int, help="Placements per TIS person (overrides the shape).")
@click.option("--curricula", type=int, help="Curricula per programme membership (overrides the shape).")
@click.option("--ended-share", type=float, help="Share of the extra memberships that have ended, 0 to 1.")
@click.option("--tis-only-share", type=float, help="Share of doctors in TIS with no GMC connection, 0 to 1.")
@click.option("--gmc-only-share", type=float, help="Share of doctors connected at GMC but missing from TIS, 0 to 1.")
@click.option("--discrepancy-share", type=float, help="Share of doctors in Discrepancies, 0 to 1.")
@click.option(
    "--pages",
    is_flag=True,
    help="Also time pages over HTTP against a real `reval serve`, one client then 16, beside a floor page.",
)
@click.option(
    "--scale-from",
    type=int,
    help="Also time a full sync of this many doctors of the same shape, just before and after the bench's own, "
    "and print how many times longer the bench's took (for example 100000 beside --doctors 1000000).",
)
@click.option("--json", "as_json", is_flag=True)
@QUIET
def bench(doctors, seed, database_url, workers, shards, shape_name, pages, scale_from, as_json, quiet, **overrides):
    """Time a full national sync, an unchanged re-sync and a rule preview into a fresh database."""
    from reval.bench import run_bench, run_sharded_bench

    today = context().today()
    if workers and pages:
        raise CommandRefused("--pages times one server on its own database: run it without --workers")
    if workers and scale_from:
        raise CommandRefused("--scale-from compares syncs in one process and its helper: run it without --workers")
    try:
        shape = replace(SHAPES[shape_name], **{name: value for name, value in overrides.items() if value is not None})
        if workers:
            _celery_app()
            figures = run_sharded_bench(doctors, seed, today, database_url, workers, shards, current_app, shape)
        else:
            figures = run_bench(
                doctors, seed, today, database_url, progress_for(quiet), shape, http_pages=pages, scale_from=scale_from
            )
    except ValueError as error:
        raise CommandRefused(str(error)) from None
    if as_json or workers:
        print_json(figures)
        return
    helper_memory = (
        f"helper process {figures['helperPeakMemoryMiB']:.0f} MiB" if figures["helperProcess"] else "no helper process"
    )
    click.echo(
        f"{figures['doctors']} GMC doctors, {figures['tisPeople']} TIS people, {figures['decided']} decided "
        f"on {figures['database']}, shape {figures['shape']}\n"
        f"  generate files          {figures['generateSeconds']:8.2f} s (not part of the sync)\n"
        f"  migrate schema          {figures['migrateSeconds']:8.2f} s\n"
        f"  load floor              {figures['floorSeconds']:8.2f} s "
        "(json + sqlite3: parse and insert the rows, nothing else; "
        f"the mean of {figures['floorRunsSeconds'][0]:.2f} s before the syncs "
        f"and {figures['floorRunsSeconds'][1]:.2f} s after)\n"
        f"  full sync               {figures['fullSyncSeconds']:8.2f} s = {figures['fullSyncToFloor']:.2f} x floor "
        f"{figures['fullSyncPhases']}\n"
        + (format_scale_base(figures) if "scaleBase" in figures else "")
        + f"  unchanged re-sync       {figures['unchangedResyncSeconds']:8.2f} s "
        f"= {figures['unchangedResyncToFloor']:.2f} x floor "
        f"{figures['unchangedResyncPhases']}, {figures['unchangedResyncEvents']} events\n"
        f"  rule preview            {figures['previewSeconds']:8.2f} s "
        f"= {figures['previewToFullSyncDecide']:.2f} x the full sync's decide step "
        f"({figures['previewDoctors']} doctors decided, {figures['previewMoves']} would move)\n"
        f"  peak memory             {figures['peakMemoryMiB']:8.0f} MiB "
        f"(before sync {figures['peakMemoryMiBBeforeSync']:.0f}, "
        f"after full sync {figures['peakMemoryMiBAfterFullSync']:.0f}); "
        f"{helper_memory}\n"
        f"  validating a TIS person {figures['bulkMicrosPerPerson']:8.1f} us bulk reader, "
        f"{figures['marshmallowMicrosPerPerson']:.1f} us marshmallow\n"
        f"  queues                  {figures['queues']}, {figures['rejectedRecords']} rejected records\n"
        + format_page_times(figures["pages"])
        + (format_http_pages(figures["httpPages"]) if "httpPages" in figures else "")
        + format_targets(figures["targets"])
    )


def format_scale_base(figures: dict) -> str:
    base = figures["scaleBase"]
    before, after = base["fullSyncRunsSeconds"]
    return (
        f"  full sync to smaller    {figures['fullSyncToScaleBase']:8.2f} x the full sync of {base['doctors']:,} "
        f"doctors of the same shape ({before:.2f} s just before, {after:.2f} s just after)\n"
    )


def format_targets(targets: list[dict]) -> str:
    lines = ["\n  targets set at this size (docs/performance.md):"]
    for target in targets:
        verdict = "met" if target["met"] else "MISSED"
        sign = ">=" if target["atLeast"] else "<="
        lines.append(f"    {target['target']:<58}{target['figure']:9.2f} {sign} {target['limit']:<6g} {verdict}")
    return "\n".join(lines)


def format_page_times(pages: dict) -> str:
    lines = [
        f"  pages, {pages['designatedBody']} ({pages['bodyDiscrepancies']} discrepancies), server time p50 / p95 / max:"
    ]
    for name, times in pages.items():
        if isinstance(times, dict):
            lines.append(f"    {name:<22}{times['p50Ms']:8.1f} {times['p95Ms']:8.1f} {times['maxMs']:8.1f} ms")
    return "\n".join(lines)


def format_http_pages(pages: dict) -> str:
    floor = pages["floor"]
    lines = [
        f"\n  pages over HTTP, {pages['workers']} server processes, p95 (to the floor page's "
        f"{floor['oneClient']['floor']['p95Ms']:.1f} ms), one client:"
    ]
    for name, times in pages["reval"]["oneClient"].items():
        lines.append(f"    {name:<26}{times['p95Ms']:8.1f} ms {pages['oneClientP95ToFloor'][name]:6.2f} x floor")
    concurrent, floor_concurrent = pages["reval"]["concurrent"], floor["concurrent"]
    lines.append(
        f"  {concurrent['clients']} clients at once: p95 {concurrent['p95Ms']:.1f} ms "
        f"= {pages['concurrentP95ToFloor']:.2f} x the floor's {floor_concurrent['p95Ms']:.1f} ms; "
        f"{concurrent['requestsPerSecond']:.1f} requests/s = {pages['concurrentThroughputToFloor']:.2f} x the floor's "
        f"{floor_concurrent['requestsPerSecond']:.1f}"
    )
    return "\n".join(lines)
