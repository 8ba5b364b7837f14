"""Sources fetched from the live services, staged on disk before the sync's transaction opens.

Fetching a national GMC list takes minutes; staging it first keeps the sync's transaction (and
SQLite's write lock) as short as an import of the same data from a file, and bounds memory.
"""

from __future__ import annotations

import logging
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import orjson

from reval.gmc.client import GmcClient, with_retries
from reval.reconcile.sync import GmcInput
from reval.snapshot_files import open_snapshot

log = logging.getLogger(__name__)


@contextmanager
def fetched_gmc_lists(
    client: GmcClient, designated_body_codes: Sequence[str], sleep: Callable[[float], None] = time.sleep
) -> Iterator[GmcInput]:
    """GetDoctorsForDB for each body, retried; a body that still fails is "not fetched", with why."""
    not_fetched: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="reval-gmc-") as directory:
        staged = Path(directory) / "gmc.jsonl"
        with staged.open("wb") as handle:
            for code in designated_body_codes:
                reply, attempts = with_retries(
                    lambda: client.get_doctors_for_db(code), client.settings.attempts, client.settings.backoff_seconds, sleep
                )
                if reply.succeeded:
                    handle.write(orjson.dumps({"designatedBodyCode": code, "doctors": reply.doctors}) + b"\n")
                    continue
                reference = f"; GMC request id {reply.gmc_request_id}" if reply.gmc_request_id else ""
                not_fetched[code] = f"{reply.message}, after {attempts} attempt{'s' if attempts > 1 else ''}{reference}"
                log.warning("GMC list of %s not fetched: %s", code, not_fetched[code])
        yield GmcInput(
            f"GMC Connect {client.settings.url}",
            open_snapshot(staged, label="GMC", list_key="designatedBodies"),
            not_fetched,
        )
