"""Doctors: `reval export`, `explain`, `history`, `hide`, `unhide`."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import date
from typing import IO, Any

import click
import orjson

from reval.cli.base import AS_OF, command, context, day, moment, print_json
from reval.clock import london_time
from reval.models import DoctorEvent
from reval.rules import DEFAULT_RULE_TABLE, Explanation, Queue, TisPersonView
from reval.rules.engine import placement_state, programme_state
from reval.rules.table import format_value
from reval.services.audit import View
from reval.services.changes import DEFAULT_PAGE_SIZE, changes_page
from reval.services.connections import request_view
from reval.services.doctors import (
    EVENT_SOURCES,
    DoctorDetail,
    describe_event,
    describe_request,
    doctor_detail,
    doctor_history,
    rejected_record_text,
)
from reval.services.hides import hide_doctor, unhide_doctor
from reval.services.queues import EXPORT_FIELDS, QueueEntry, QueueView, exported_entries
from reval.spreadsheets import SafeCsvWriter


@command()
@click.option("--format", "output_format", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--queue", type=click.Choice([q.value for q in Queue], case_sensitive=False))
@click.option("--designated-body", help="Only doctors this designated body sees, with its hides applied.")
@click.option("--archived", is_flag=True, help="Only the archived doctors (nobody holds them), with their last queue.")
def export(output_format, queue, designated_body, archived):
    """Write every doctor's queue and reason to standard output (archived doctors only with --archived)."""
    if archived and designated_body:
        raise click.UsageError("--archived lists doctors no designated body sees: leave out --designated-body")
    view = QueueView(designated_body, Queue(queue.upper()) if queue else None, archived=archived)
    entries = exported_entries(context(), view, View.EXPORT)  # recorded in the access audit
    first = next(entries, None)  # a refusal (an unknown body) comes before any output
    rows = (_export_row(entry, archived) for entry in _chain(first, entries))
    if output_format == "json":
        sys.stdout.write(orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        write_csv(rows, sys.stdout, (*EXPORT_FIELDS, "archivedOn") if archived else EXPORT_FIELDS)


@command()
@click.option("--since", help="The nextCursor of the last pull, or an RFC 3339 time for a first pull.")
@click.option("--page-size", default=DEFAULT_PAGE_SIZE, show_default=True, help="The most changes to show.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def changes(since, page_size, output_format):
    """The changes feed: what changed in any designated body's view of a doctor, oldest first."""
    page = changes_page(context(), since, page_size)
    if output_format == "json":
        print_json({"items": page.items, "nextCursor": page.next_cursor})
        return
    for item in page.items:
        seen = f"{item['queue']} / {item['reason']}" if item["visible"] else "no longer visible"
        click.echo(
            f"{item['changedAt']}  {item['gmcReferenceNumber']}  {item['kind']:<10} "
            f"{item['designatedBody'] or 'Unassigned'}: {seen}"
        )
    click.echo(f"Next cursor: {page.next_cursor}")


def _export_row(entry: QueueEntry, archived: bool) -> dict[str, Any]:
    """The export's row; an archived doctor's with the day they were archived."""
    row = entry.export_row()
    if archived:
        row["archivedOn"] = entry.archived_on.isoformat() if entry.archived_on else None
    return row


def _chain(first: QueueEntry | None, rest: Iterable[QueueEntry]) -> Iterable[QueueEntry]:
    if first is not None:
        yield first
        yield from rest


def write_csv(rows: Iterable[dict[str, Any]], stream: IO[str], fields: Sequence[str] = EXPORT_FIELDS) -> None:
    writer = SafeCsvWriter(stream, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow(row[name] for name in fields)


@command()
@click.argument("gmc_number")
@click.option("--as-of", type=AS_OF, help="Judge dates on this day (default: the last sync's as-of date).")
def explain(gmc_number, as_of):
    """Show a doctor's facts, the rule that decided them, and why each earlier rule did not."""
    ctx = context()
    click.echo(format_explanation(doctor_detail(ctx, gmc_number, ctx.checked_as_of(day(as_of)) if as_of else None)))


def format_explanation(detail: DoctorDetail) -> str:
    """A doctor's explanation as `reval explain` prints it: their sources, the facts, every rule
    tried, the decision, and what Reval holds for them (hides, GMC requests)."""
    explanation = detail.explanation
    return "\n".join(
        [
            *_sources_lines(detail),
            *_facts_lines(explanation),
            *_rules_tried_lines(explanation),
            *_decision_lines(detail),
            *_hides_lines(detail),
            *_requests_lines(detail),
        ]
    )


def _sources_lines(detail: DoctorDetail) -> list[str]:
    explanation = detail.explanation
    situation = explanation.situation
    lines = [
        f"Doctor {detail.gmc_number}, as of {explanation.as_of.isoformat()}, rules {explanation.decision.rule_table}",
        f"  GMC connection: {situation.gmc_designated_body or 'not connected'}",
        f"  last connected to: {situation.last_connected_designated_body or 'never connected'}",
    ]
    if not situation.tis_people and not detail.records.rejected_tis_people:
        lines.append("  TIS: no person has this GMC number")
    for rejected in detail.records.rejected_tis_people:
        lines.append(f"  TIS person {rejected.tis_person_id}: {rejected_record_text(rejected)}")
    for person in situation.tis_people:
        lines += _tis_person_lines(person, explanation.as_of)
    return lines


def _tis_person_lines(person: TisPersonView, as_of: date) -> list[str]:
    lines = [f"  TIS person {person.tis_person_id} ({person.status or 'status unknown'})"]
    for p in person.programmes:
        owner = p.owner_designated_body or "no designated body"
        lines.append(
            f"    programme {p.membership_type or '?'} {p.start.isoformat()} to "
            f"{p.end.isoformat() if p.end else 'open'}, owner {p.owner!r} -> {owner}: "
            f"{programme_state(p, as_of)}"
        )
    for placement in person.placements:
        lines.append(
            f"    placement {placement.grade or '?'} {placement.start.isoformat()} to "
            f"{placement.end.isoformat() if placement.end else 'open'}: "
            f"{placement_state(placement, as_of)}"
        )
    return lines


def _facts_lines(explanation: Explanation) -> list[str]:
    return ["Facts:"] + [
        f"  {fact.name:<30} {format_value(getattr(explanation.facts, fact.name)):<5} {fact.meaning}"
        for fact in DEFAULT_RULE_TABLE.facts
    ]


def _rules_tried_lines(explanation: Explanation) -> list[str]:
    lines = ["Rules tried:"]
    for outcome in explanation.rows_tried:
        row = outcome.row
        if outcome.failed:
            why = "; ".join(
                f"{name} is {format_value(actual)}, needs {format_value(required)}"
                for name, required, actual in outcome.failed
            )
            lines.append(f"  {row.number:>2} {row.reason:<27} no: {why}")
        else:
            lines.append(f"  {row.number:>2} {row.reason:<27} MATCHED ({row.describe_conditions()})")
    return lines


def _decision_lines(detail: DoctorDetail) -> list[str]:
    decision = detail.explanation.decision
    lines = [
        f"Decision: {decision.queue} / {decision.reason} (row {decision.rule_number}), "
        f"visible to {', '.join(decision.visible_to) or 'no designated body'}; "
        f"programme owners {', '.join(decision.programme_owner_designated_bodies) or 'none'}"
    ]
    stored = detail.stored
    if stored is None:
        lines.append("Stored decision: none yet (run a sync)")
    elif (stored.queue, stored.reason) != (decision.queue, decision.reason):
        lines.append(
            f"Stored decision: {stored.queue} / {stored.reason} from {stored.rule_table} (differs on this date)"
        )
    return lines


def _hides_lines(detail: DoctorDetail) -> list[str]:
    lines = []
    for hide in detail.records.hides:
        state = f"ended {hide.ended_at:%Y-%m-%d}: {hide.end_reason}" if hide.ended_at else "active"
        until = f" until {hide.until.isoformat()}" if hide.until else ""
        lines.append(f"Hidden for {hide.designated_body_code} by {hide.hidden_by}{until} ({hide.reason}): {state}")
    return lines


def _requests_lines(detail: DoctorDetail) -> list[str]:
    lines = ["GMC requests:" if detail.requests else "GMC requests: none"]
    for state in detail.requests:
        superseded = f" (superseded by request {state.superseded_by})" if state.superseded_by else ""
        lines.append(
            f"  {moment(state.request.requested_at)} {describe_request(request_view(state.request))}{superseded}"
        )
    for state in detail.requests:
        if state.flags_failure:
            failed = state.request
            lines.append(
                f"GMC update failed: request {failed.id}, the last for {failed.designated_body_code}, failed at "
                f"{moment(failed.last_attempt_at or failed.requested_at)}; `reval resend {failed.id}` tries again"
            )
    return lines


@command()
@click.argument("gmc_number")
@click.option("--json", "as_json", is_flag=True)
def history(gmc_number, as_json):
    """Every recorded change of a doctor's connection, decision and hides, oldest first."""
    events = doctor_history(context(), gmc_number)
    if as_json:
        print_json([event_row(event) for event in events])
        return
    if not events:
        click.echo(f"no history for {gmc_number}")
    for event in events:
        as_of = "" if london_time(event.recorded_at).date() == event.as_of else f" (as of {event.as_of.isoformat()})"
        click.echo(
            f"{moment(event.recorded_at)}  {f'run {event.sync_run_id}' if event.sync_run_id else '':<8} "
            f"{EVENT_SOURCES.get(event.source, event.source):<5} {describe_event(event)}{as_of}"
        )


def event_row(event: DoctorEvent) -> dict:
    return {
        "recordedAt": event.recorded_at.isoformat(),
        "asOf": event.as_of.isoformat(),
        "syncRunId": event.sync_run_id,
        "source": event.source,
        "kind": event.kind,
        "old": event.old,
        "new": event.new,
        "detail": event.detail,
    }


@command()
@click.argument("gmc_number")
@click.option("--designated-body", required=True)
@click.option("--reason", required=True)
@click.option("--until", type=AS_OF, help="The hide ends on this day.")
@click.option("--by", help="Who is hiding (default: your user name).")
def hide(gmc_number, designated_body, reason, until, by):
    """Hide a doctor for one designated body."""
    hidden = hide_doctor(context(by), gmc_number, designated_body, reason, day(until))
    click.echo(f"doctor {hidden.gmc_number} hidden for {hidden.designated_body_code}")


@command()
@click.argument("gmc_number")
@click.option("--designated-body", required=True)
@click.option("--by", help="Who is unhiding (default: your user name).")
def unhide(gmc_number, designated_body, by):
    """End a doctor's hide for one designated body."""
    hidden = unhide_doctor(context(by), gmc_number, designated_body)
    click.echo(f"doctor {hidden.gmc_number} no longer hidden for {hidden.designated_body_code}")
