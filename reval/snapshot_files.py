"""Reading snapshot files: one JSON document, or JSON Lines streamed a record at a time.

A file that cannot be read at all raises ``SnapshotUnreadable`` before anything is stored.
A single JSON Lines line that does not parse is a bad record, not a bad file: it is yielded as
``UnparseableRecord`` so the caller can reject it and carry on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson


class SnapshotUnreadable(Exception):
    """The whole file is unusable: missing, not JSON, or not the expected shape."""


@dataclass(frozen=True, slots=True)
class UnparseableRecord:
    problem: str


def open_snapshot(path: str | Path, *, label: str, list_key: str, undecoded: bool = False) -> Iterator[tuple[str, Any]]:
    """Checks the file can be read, then returns an iterator of (locator, record).

    The check happens here, eagerly, so callers learn of an unreadable file before they open a
    transaction; the records themselves are produced lazily. ``undecoded``: JSON Lines records
    come as their line's bytes, for whoever validates them to decode (``parse_line``); a sync
    does that in its helper process.
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        try:
            handle = path.open("rb")
        except OSError as error:
            raise SnapshotUnreadable(f"{label} file '{path}' cannot be read: {error.strerror}") from None
        return _json_lines(handle, undecoded)
    if path.suffix == ".json":
        try:
            document = orjson.loads(path.read_bytes())
        except OSError as error:
            raise SnapshotUnreadable(f"{label} file '{path}' cannot be read: {error.strerror}") from None
        except orjson.JSONDecodeError as error:
            raise SnapshotUnreadable(f"{label} file '{path}' is not valid JSON: {error}") from None
        if not isinstance(document, dict) or not isinstance(document.get(list_key), list):
            raise SnapshotUnreadable(
                f"{label} file '{path}' must be a JSON object with a '{list_key}' list"
            )
        records = document[list_key]
        return ((f"{list_key}[{index}]", record) for index, record in enumerate(records))
    raise SnapshotUnreadable(f"{label} file '{path}' must end in .json or .jsonl")


def _json_lines(handle, undecoded: bool) -> Iterator[tuple[str, Any]]:
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            yield f"line {number}", line if undecoded else parse_line(line)


def parse_line(line: bytes) -> Any:
    """One JSON Lines record, or UnparseableRecord: a bad line is a bad record, not a bad file."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return UnparseableRecord(f"line is not valid JSON: {error}")
