"""Sync runs as people read them: what ran, when, from what, and what it moved."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reval.models import SyncRun


def recent_runs(session: Session, limit: int = 20) -> list[SyncRun]:
    return list(session.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)))


def run_view(run: SyncRun) -> dict[str, Any]:
    summary = run.summary or {}
    gmc, tis = summary.get("gmc", {}), summary.get("tis", {})
    tis_reason = tis.get("notFetchedReason")
    return {
        "id": run.id,
        "status": run.status,
        "asOf": run.as_of.isoformat(),
        "startedAt": run.started_at.isoformat(),
        "finishedAt": run.finished_at.isoformat() if run.finished_at else None,
        "ruleTable": run.rule_table,
        "sources": {
            "gmc": {
                "source": run.gmc_source,
                "fetched": gmc.get("designatedBodiesFetched", []),
                "notFetched": gmc.get("designatedBodiesNotFetched", {}),
            },
            "tis": {
                "source": run.tis_source,
                "fetched": bool(tis.get("source")) and tis.get("fetched", True),
                "notFetched": {"TIS": tis_reason} if tis_reason else {},
            },
        },
        "queues": summary.get("queues", {}),
        "rejectedRecords": run.rejected_records,
        "error": run.error,
    }
