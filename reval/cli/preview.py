"""Seeing a change before it happens: `reval rules preview` (and the moves `reval sync --dry-run` prints)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from reval.cli.admin import rules
from reval.cli.base import AS_OF, command, context, day, print_json
from reval.services.preview import NEW, Move, moves_by_group, preview_rules
from reval.spreadsheets import SafeCsvWriter

CSV_FIELDS = ("gmcReferenceNumber", "fromQueue", "fromReason", "toQueue", "toReason", "designatedBodies")


@command(rules, name="preview")
@click.option("--as-of", type=AS_OF, help="Decide as on this day (default: today in London).")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
def rules_preview(as_of, output_format):
    """List who a sync as of a day would move. Writes nothing.

    Decides every stored doctor again from the stored sources with the installed rule table, as of
    --as-of (default today), and lists each doctor whose queue, reason or bodies would change, by
    from → to, then by designated body."""
    preview = preview_rules(context(), day(as_of), helper_process=True)
    if output_format == "json":
        print_json(preview.as_json())
    elif output_format == "csv":
        writer = SafeCsvWriter(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for move in preview.moves:
            writer.writerow(
                (
                    move.gmc_number,
                    move.from_queue or "",
                    move.from_reason or "",
                    move.to_queue,
                    move.to_reason,
                    " ".join(move.designated_bodies),
                )
            )
    else:
        click.echo(
            f"Rule preview, nothing written: {preview.doctors} doctors decided as of {preview.as_of.isoformat()} "
            f"with rules {preview.rule_table}"
        )
        click.echo(format_moves(preview.moves, would=True))


def format_moves(moves: Sequence[Move], *, would: bool) -> str:
    """The moves by from → to, then by body (a doctor seen by two bodies is under each), then
    each doctor's GMC number."""
    verb = "would move" if would else "moved"
    if not moves:
        return f"No doctor {verb}."
    lines = [f"{len(moves)} doctors {verb} (queue, reason or the designated bodies that see them):"]
    for (from_queue, from_reason, to_queue, to_reason), group in moves_by_group(moves).items():
        before = "not decided yet" if from_queue == NEW else f"{from_queue} ({from_reason})"
        lines.append(f"{before} → {to_queue} ({to_reason}): {len(group)}")
        by_body: dict[str, list[str]] = {}
        for move in group:
            for body in move.designated_bodies or ("no designated body",):
                by_body.setdefault(body, []).append(move.gmc_number)
        for body, numbers in sorted(by_body.items()):
            lines.append(f"  {body}: {len(numbers)}")
            lines.extend(f"    {number}" for number in numbers)
    return "\n".join(lines)
