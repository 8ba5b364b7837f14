"""Sources fetched from the live services, staged on disk before the sync's transaction opens.

Fetching a national GMC list or TIS pull takes minutes; staging it first keeps the sync's transaction (and
SQLite's write lock) as short as an import of the same data from a file, and bounds memory.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from reval.clock import utcnow
from reval.gmc.client import GmcClient, with_retries
from reval.progress import SILENT, Progress
from reval.reconcile.sync import GmcInput, TisInput
from reval.snapshot_files import open_snapshot
from reval.tis.client import TisClient, TisUnavailable

log = logging.getLogger(__name__)


def fetch_gmc_list(
    client: GmcClient, code: str, sleep: Callable[[float], None] = time.sleep
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """One body's list, retried: (doctors, None), or (None, why it could not be fetched)."""
    reply, attempts = with_retries(
        lambda: client.get_doctors_for_db(code), client.settings.attempts, client.settings.backoff_seconds, sleep
    )
    if reply.succeeded:
        return reply.doctors, None
    reference = f"; GMC request id {reply.gmc_request_id}" if reply.gmc_request_id else ""
    reason = f"{reply.message}, after {attempts} attempt{'s' if attempts > 1 else ''}{reference}"
    log.warning("GMC list of %s not fetched: %s", code, reason)
    return None, reason


@contextmanager
def fetched_gmc_lists(
    client: GmcClient,
    designated_body_codes: Sequence[str],
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = SILENT,
) -> Iterator[GmcInput]:
    """GetDoctorsForDB for each body, retried; a body that still fails is "not fetched", with why."""
    not_fetched: dict[str, str] = {}
    began: dict[str, datetime] = {}  # when each list's fetch began
    with tempfile.TemporaryDirectory(prefix="reval-gmc-") as directory:
        staged = Path(directory) / "gmc.jsonl"
        progress.begin("GMC", "lists fetched")
        with staged.open("wb") as handle:
            for index, code in enumerate(designated_body_codes, start=1):
                began[code] = utcnow()
                doctors, reason = fetch_gmc_list(client, code, sleep)
                if reason is None:
                    handle.write(orjson.dumps({"designatedBodyCode": code, "doctors": doctors}) + b"\n")
                else:
                    not_fetched[code] = reason
                progress.advance(index - len(not_fetched), index / len(designated_body_codes))
        progress.end()
        gmc = staged_gmc_input(staged, f"GMC Connect {client.settings.url}", not_fetched)
        gmc.body_taken_at = began
        yield gmc


class TisPullFailed(Exception):
    """A full TIS pull that did not finish: not a snapshot, so nobody may be deleted on its account."""


@contextmanager
def fetched_tis_people(client: TisClient, progress: Progress = SILENT) -> Iterator[TisInput]:
    """Every person TIS lists, fetched and staged on disk; raises TisPullFailed part-way."""
    with tempfile.TemporaryDirectory(prefix="reval-tis-") as directory:
        staged = Path(directory) / "tis.jsonl"
        progress.begin("TIS", "people fetched")
        try:
            write_lines(staged, counted(client.everyone(), progress))
        except TisUnavailable as error:
            progress.end()
            log.warning("TIS full pull failed part-way: %s", error)
            raise TisPullFailed(pull_failure(error)) from None
        yield staged_tis_input(staged, f"TIS {client.settings.url}")


def counted(records, progress: Progress):
    """The records, told to ``progress`` as they pass."""
    count = 0
    for count, record in enumerate(records, start=1):
        if count % 500 == 0:
            progress.advance(count)
        yield record
    progress.end(count)


def pull_failure(error: TisUnavailable) -> str:
    """Why TIS was not fetched when a full pull failed."""
    return f"the full pull failed part-way: {error}"


def write_lines(path: Path, records) -> Path:
    """Stages records as JSON Lines, the form the sync streams back."""
    with path.open("wb") as handle:
        for record in records:
            handle.write(orjson.dumps(record) + b"\n")
    return path


def staged_gmc_input(path: Path, label: str, not_fetched: dict[str, str]) -> GmcInput:
    """Staged GMC lists as the sync takes them; a rejected doctor is located by the call that listed it."""
    lists = open_snapshot(path, label="GMC", list_key="designatedBodies", undecoded=True)
    return GmcInput(label, (("GetDoctorsForDB", item) for _line, item in lists), not_fetched, path.stat().st_size)


def staged_tis_input(path: Path, label: str) -> TisInput:
    """Staged TIS people as the sync takes them; a rejected person is located by their TIS id."""
    people = open_snapshot(path, label="TIS", list_key="people")
    return TisInput(
        label, ((f"person {person['tisPersonId']}", person) for _line, person in people), size_bytes=path.stat().st_size
    )


def pulled_people(client: TisClient, person_ids: Sequence[int]) -> TisInput:
    """Just these people, fetched now (a 404 means deleted); raises TisUnavailable if TIS fails."""
    people, deleted = [], set()
    for person_id, person in client.people(sorted(set(person_ids))):
        if person is None:
            deleted.add(person_id)
        else:
            people.append((f"person {person_id}", person))
    label = f"TIS {client.settings.url}, {len(people) + len(deleted)} people refreshed"
    return TisInput(label, people, full_snapshot=False, deleted_person_ids=frozenset(deleted))
