"""A sync run's summary, typed where it is read. It is stored as JSON on the run and printed by
`reval sync --json`, with camelCase keys; ``to_json`` gives back exactly the JSON it was read
from (same keys, same order), with any field set since written into it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from reval.reconcile.sync import RunStatus

# Each field's key in the JSON.
KEYS = {
    "status": "status",
    "sync_run_id": "syncRunId",
    "as_of": "asOf",
    "rule_table": "ruleTable",
    "gmc": "gmc",
    "tis": "tis",
    "queues": "queues",
    "doctors": "doctors",
    "doctors_decided": "doctorsDecided",
    "decisions_changed": "decisionsChanged",
    "hides_ended": "hidesEnded",
    "archived": "archived",
    "restored": "restored",
    "events": "events",
    "rejected_records": "rejectedRecords",
    "shards": "shards",
    "connection_requests_delivered": "connectionRequestsDelivered",
}


@dataclass
class SyncSummary:
    """What a sync run did. A run that never reached its sources (skipped, failed) has little
    more than its status: the other fields keep their defaults, and are not written out."""

    status: RunStatus
    sync_run_id: int | None = None
    as_of: str | None = None  # ISO date
    rule_table: str | None = None
    gmc: dict[str, Any] = field(default_factory=dict)  # what was fetched from GMC and what it changed
    tis: dict[str, Any] = field(default_factory=dict)  # the same of TIS
    queues: dict[str, dict[str, int]] = field(default_factory=dict)  # per queue: before, after, in, out
    doctors: int = 0
    doctors_decided: int = 0
    decisions_changed: int = 0
    hides_ended: int = 0
    archived: int = 0  # doctors nobody holds, archived by the run
    restored: int = 0  # archived doctors back in a source
    events: int = 0
    rejected_records: int = 0
    shards: int | None = None  # a sharded run's
    connection_requests_delivered: dict[str, int] | None = None  # when the run delivered them too
    stored: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the JSON read

    @classmethod
    def from_json(cls, summary: dict[str, Any]) -> SyncSummary:
        values = {name: summary[key] for name, key in KEYS.items() if key in summary}
        values["status"] = RunStatus(summary["status"])
        return cls(**values, stored=dict(summary))

    def to_json(self) -> dict[str, Any]:
        """The summary as stored: the JSON read, each field written over its key (in its place),
        and a field new since (a default before) added at the end."""
        out = dict(self.stored)
        for each in fields(self):
            key = KEYS.get(each.name)
            if key is None:
                continue
            value = getattr(self, each.name)
            if key in out or value != _default(each):
                out[key] = value.value if isinstance(value, RunStatus) else value
        return out


def _default(each: Any) -> Any:
    return each.default_factory() if callable(each.default_factory) else each.default
