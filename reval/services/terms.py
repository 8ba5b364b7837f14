"""The reconciliation's terms that entry points use: a run's and a request's status, a sync's
controls and summary, and how a sync can end without finishing. Defined with the reconciliation, published here."""

from __future__ import annotations

from reval.reconcile.connections import Status
from reval.reconcile.nightly import AllSourcesFailed
from reval.reconcile.preview import DryRunBusy, DryRunFailed
from reval.reconcile.summary import SyncSummary
from reval.reconcile.sync import RunStatus, SyncControls, SyncFailed, SyncInterrupted, SyncSkipped

__all__ = [
    "AllSourcesFailed",
    "DryRunBusy",
    "DryRunFailed",
    "RunStatus",
    "Status",
    "SyncControls",
    "SyncFailed",
    "SyncInterrupted",
    "SyncSkipped",
    "SyncSummary",
]
