"""Sync runs as people read them: what ran, when, from what, and what it moved."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from reval.models import SyncRun


def recent_runs(session: Session, limit: int = 20) -> list[SyncRun]:
    return list(session.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)))
